// RemoteWriteSender: delivers the spool's records to one remote_write endpoint from its own
// thread, over one keep-alive connection. It reads from its own cursor in the shared Spool and
// acknowledges what the endpoint accepted, so every endpoint gets every sample and a record
// leaves the spool only when all endpoints are done with it.
//
// Batching: while a backlog waits (after an outage, or a slow endpoint), consecutive spooled
// sweeps are merged into one request of up to max_samples_per_send samples: the records are
// decoded, samples of the same series joined (labels sent once per request, not once per
// sample), metadata kept once per metric family, and the result re-encoded. A single sweep is
// sent as it was spooled, without re-encoding.
//
// Spacing: once caught up, the next request starts no sooner than min_send_interval after the
// last one; a sweep that comes later than that is sent at once, earlier ones wait and go
// together (so at 100 ms sampling and 1 s spacing, one request per second carries ten sweeps).
// A wait shorter than a tenth of min_send_interval is skipped (see SpacingWait). A backlog,
// retries and one-at-a-time resends are never held back.
//
// Answers (core/remote_write_response.h, the table every Suanli sender shares): network errors,
// 5xx, 408 and 429 are retried with exponential backoff and full jitter on the upper half,
// honouring Retry-After (seconds or an HTTP-date; at most 5 minutes). After a network error
// the wait is at most one sample interval, so a link that comes back is used within one
// interval; 5xx and 429 back off up to max_backoff. 401, 403, 404 and 3xx are held: the batch
// stays in the spool and is retried every max_backoff (a rotated token must not empty the
// backlog), with the `blocked` gauge at 1 and a warning. 400, 409, 415, 422 and other 4xx are
// not retried: a merged batch that is refused is sent again one sweep at a time so that only
// the sweep the receiver refuses is dropped (logged with the server's reason, counted as
// dropped by reason). 413 does the same for a merged batch; a single sweep still too large is
// dropped (reason too_large): the agent sends what one server measured in one sweep.
//
// Units: durations in milliseconds, timestamps Unix seconds in metrics.
// Thread-safety: Start/Stop from one thread; the rest runs on the sender's thread; metrics are
// prometheus-cpp handles (thread-safe).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_config.h"
#include "agent/spool.h"
#include "core/remote_codec.h"
#include "core/status.h"

namespace suanli::agent {

// One remote_write body from `records` (consecutive records of one spool, in sequence order):
// the body of a lone record as is, else the merged re-encoding described above.
// `series` (optional) receives the number of series in the request.
Result<std::string> MergeRecords(const std::vector<SpoolRecord>& records, size_t* series = nullptr);

using WriteOutcome = remote::WriteOutcome;

// How long a caught-up sender holds its next request back so that it starts min_send_interval
// after the last one (`last_send`); zero when that time has come, and also when less than a
// tenth of the interval is left: such a wait batches no other sweep, it only costs a wake-up
// and delays the sweep (at a sample interval equal to min_send_interval every sweep came a
// few milliseconds before the spacing ended). Requests are then at least 0.9 x
// min_send_interval apart.
std::chrono::steady_clock::duration SpacingWait(std::chrono::steady_clock::time_point last_send,
                                                std::chrono::steady_clock::time_point now,
                                                std::chrono::milliseconds min_send_interval);

class RemoteWriteSender {
 public:
  // `index`: the endpoint's position in the list the Spool was opened with.
  // `sample_interval`: the longest wait after a network error.
  RemoteWriteSender(RemoteWriteEndpoint endpoint, size_t index, Spool& spool,
                    std::chrono::milliseconds sample_interval, prometheus::Registry& registry);
  ~RemoteWriteSender();  // Stop()s
  RemoteWriteSender(const RemoteWriteSender&) = delete;
  RemoteWriteSender& operator=(const RemoteWriteSender&) = delete;

  void Start();
  // Stops after the request in flight (bounded by the endpoint timeout), or after one attempt
  // at what min_send_interval held back. Unsent records stay in the spool (on disk: sent after
  // a restart).
  void Stop();

  const RemoteWriteEndpoint& endpoint() const { return endpoint_; }

 private:
  void Run();
  // Waits `d` unless Stop() comes first; false when stopping.
  bool Sleep(std::chrono::milliseconds d);

  RemoteWriteEndpoint endpoint_;
  const size_t index_;
  Spool& spool_;
  const std::chrono::milliseconds sample_interval_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;

  prometheus::Counter& samples_sent_;
  prometheus::Counter& samples_retried_;
  prometheus::Family<prometheus::Counter>& samples_dropped_family_;
  prometheus::Counter& requests_ok_;
  prometheus::Counter& requests_retried_;
  prometheus::Counter& requests_rejected_;
  prometheus::Counter& requests_held_;
  prometheus::Gauge& last_success_;
  prometheus::Gauge& blocked_;
};

}  // namespace suanli::agent
