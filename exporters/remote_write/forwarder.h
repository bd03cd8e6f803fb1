// Forwarding: remote_write from this aggregator to a higher tier or a distributed store, one
// Forwarder per `forward:` target (forward_config.h), reading from the store through a
// durable cursor (forward_source.h): nothing is buffered aside, so an outage of the target, a
// restart or a SIGKILL of either end loses nothing, and memory follows the requests in flight.
//
// A unit of work is sent in `queue_config.shards` parallel shards (a series always goes to
// the same shard, so each series stays in time order), each as requests of at most
// max_samples_per_send samples; the cursor moves once the whole unit is delivered or
// dropped. A restart resends at most the unit in flight: duplicates only as exact repeats.
// Answers follow core/remote_write_response.h (the table the agent's sender shares).
//
// Self-metrics (label `target`): samples sent, dropped by reason, retried; requests by status
// class; backlog age; blocked; last success; history skipped past max_backlog.
// Thread-safety: ForwardManager's methods from one thread (start, reload, stop), but
// TargetStates from any; each Forwarder runs its own thread and its shards' threads.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "core/http_client.h"
#include "exporters/remote_write/forward_config.h"
#include "exporters/remote_write/forward_source.h"

namespace suanli::exporters {

// The families of every target's self-metrics.
struct ForwardMetrics {
  explicit ForwardMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& sent;
  prometheus::Family<prometheus::Counter>& dropped;
  prometheus::Family<prometheus::Counter>& retried;
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Counter>& skipped_seconds;
  prometheus::Family<prometheus::Gauge>& backlog_seconds;
  prometheus::Family<prometheus::Gauge>& blocked;
  prometheus::Family<prometheus::Gauge>& last_success;
};

// A target's state as the status page shows it: the figures of its self-metrics.
struct ForwardTargetState {
  std::string name;
  std::string url;
  std::string select;               // raw, rollups, capacity
  double backlog_seconds = 0;       // age of the oldest data not yet forwarded
  bool blocked = false;             // held by 401, 403, 404 or 3xx
  double last_success_seconds = 0;  // Unix time; 0: none yet
  double samples_sent = 0;
};

// The store key of a target's cursor.
std::string ForwardCursorName(const std::string& target);

class Forwarder {
 public:
  Forwarder(ForwardTarget target, storage::Store& store, const CapacityProgress* capacity,
            ForwardMetrics& metrics, const Clock& clock);
  ~Forwarder();  // Stop()s
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void Start();
  // Stops after the requests in flight (each bounded by remote_timeout); what is not
  // delivered stays behind the cursor and goes after the next start.
  void Stop();
  const ForwardTarget& target() const { return target_; }
  ForwardTargetState State() const;

 private:
  enum class Delivery { kDone, kStopped };
  void Run();
  Delivery Deliver(std::vector<EncodedSeries>& series);
  Delivery SendShard(HttpClient& client, std::vector<EncodedSeries> series);
  Delivery Send(HttpClient& client, std::vector<EncodedSeries> series);
  std::map<std::string, std::string> RequestHeaders();
  // Waits `d` unless Stop() comes first; false when stopping.
  bool Wait(std::chrono::milliseconds d);
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  const ForwardTarget target_;
  storage::Store& store_;
  const CapacityProgress* capacity_;
  ForwardMetrics& metrics_;
  const Clock& clock_;
  std::vector<std::unique_ptr<HttpClient>> clients_;  // one per shard: keep-alive connections

  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  std::atomic<int> holding_{0};  // shards held by 401/403/404/3xx right now
  std::atomic<int> failing_{0};  // shards retrying right now (for one warning per episode)
  // Oldest sample of the unit being delivered (INT64_MAX: none), for the backlog gauge, which
  // retries keep current while a target is down.
  std::atomic<int64_t> unit_oldest_ms_{std::numeric_limits<int64_t>::max()};
  void UpdateBacklog();

  prometheus::Counter& sent_;
  prometheus::Counter& retried_;
  prometheus::Counter& skipped_seconds_;
  prometheus::Gauge& backlog_seconds_;
  prometheus::Gauge& blocked_;
  prometheus::Gauge& last_success_;
};

// Every target of the configuration. Capacity targets read the evaluations of the aggregator's
// CapacityRecorder (capacity_recorder.h) up to `capacity`.
class ForwardManager {
 public:
  ForwardManager(storage::Store& store, const CapacityProgress& capacity,
                 prometheus::Registry& registry, const Clock& clock);
  ~ForwardManager();  // Stop()s

  // Makes the running targets those of `targets`: a new one starts from now, a removed one
  // stops and its cursor is deleted, a changed one restarts from its cursor (from now when
  // its select changed).
  void Apply(const std::vector<ForwardTarget>& targets);
  void Stop();
  // Every running target, by name (any thread).
  std::vector<ForwardTargetState> TargetStates() const;

 private:
  storage::Store& store_;
  const Clock& clock_;
  mutable std::mutex forwarders_mu_;  // forwarders_ changes (Apply, Stop) against TargetStates
  ForwardMetrics metrics_;
  const CapacityProgress& capacity_;
  std::map<std::string, std::unique_ptr<Forwarder>> forwarders_;
};

}  // namespace suanli::exporters
