// RemoteWriteSender: pushes encoded remote_write bodies to one endpoint from its own thread,
// over one keep-alive connection. 5xx, 429 and network errors are retried with exponential
// backoff and jitter (Retry-After honoured); other statuses are dropped and logged with the
// server's reason. While the endpoint is unreachable, bodies wait in a bounded in-memory
// queue; when it is full the oldest are dropped and counted. (The disk spool that loses
// nothing through long outages is a separate layer; this queue only bridges short ones.)
// Thread-safety: Enqueue() from any thread; metrics are prometheus-cpp handles (thread-safe).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/agent_config.h"

namespace suanli::agent {

// One encoded request: snappy-compressed protobuf plus how many samples it carries.
struct EncodedBatch {
  std::string body;
  size_t samples = 0;
};

class RemoteWriteSender {
 public:
  RemoteWriteSender(RemoteWriteEndpoint endpoint, prometheus::Registry& registry);
  ~RemoteWriteSender();  // Stop()s
  RemoteWriteSender(const RemoteWriteSender&) = delete;
  RemoteWriteSender& operator=(const RemoteWriteSender&) = delete;

  void Start();
  // Stops after the request in flight (bounded by the endpoint timeout); queued data is lost.
  void Stop();
  void Enqueue(std::shared_ptr<const EncodedBatch> batch);

  const RemoteWriteEndpoint& endpoint() const { return endpoint_; }
  size_t pending_bytes() const;

 private:
  void Run();

  RemoteWriteEndpoint endpoint_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const EncodedBatch>> queue_;
  size_t queue_bytes_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  prometheus::Counter& samples_sent_;
  prometheus::Counter& requests_ok_;
  prometheus::Counter& requests_retried_;
  prometheus::Counter& dropped_rejected_;
  prometheus::Counter& dropped_queue_full_;
  prometheus::Gauge& pending_bytes_;
  prometheus::Gauge& last_success_;
};

}  // namespace suanli::agent
