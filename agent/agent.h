// Agent: the suanli-agent daemon assembled: a sampling thread that runs the Sampler every
// sample_interval and appends each sweep, encoded once, to the Spool; one RemoteWriteSender per
// endpoint reading from it; and the HTTP endpoints /metrics and /-/healthy.
// Thread-safety: Start/Stop/Reload from the main thread; HTTP handlers run concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <semaphore.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/agent_config.h"
#include "agent/collector.h"
#include "agent/links.h"
#include "agent/node_power.h"
#include "agent/sampler.h"
#include "agent/sender.h"
#include "agent/spool.h"
#include "agent/write_request_encoder.h"
#include "core/clock.h"
#include "core/http_server.h"
#include "core/remote_codec.h"

namespace suanli::agent {

// Turns one sweep into a remote_write request (the reference for WriteRequestEncoder, which the
// sampling loop uses: same bytes, without building these objects): every point gets __name__ and
// the static labels (which win over a collector's label of the same name), all at `timestamp_ms`.
remote::WriteRequest SweepToWriteRequest(const Sweep& sweep,
                                         const std::map<std::string, std::string>& static_labels,
                                         int64_t timestamp_ms);

class Agent {
 public:
  Agent(AgentConfig config, const Clock& clock);
  ~Agent();  // Stop()s

  // Binds the listen address, then starts sampling and sending.
  Status Start();
  void Stop();
  // Applies a new configuration: sampling and senders restart with it; the listen address
  // changes only on restart (a warning says so).
  void Reload(AgentConfig config);
  std::string address() const;

 private:
  void StartPipeline();
  void StopPipeline();
  void SampleLoop();
  // Sleeps until `t` (steady clock) or StopPipeline(); true when stopping.
  bool SleepUntil(std::chrono::steady_clock::time_point t);
  HttpResponse HandleMetrics() const;

  const Clock& clock_;
  AgentConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* sweeps_ = nullptr;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<Links> links_;
  std::unique_ptr<NodePower> node_power_;
  std::unique_ptr<WriteRequestEncoder> encoder_;  // sampling thread only
  std::unique_ptr<Spool> spool_;                  // outlives the senders that read it
  std::vector<std::unique_ptr<RemoteWriteSender>> senders_;

  // The sampling thread sleeps until its next tick on a semaphore that StopPipeline() posts:
  // one futex call per sweep. (A condition variable re-locks its mutex as "contended" after a
  // timed-out wait, so its unlock cost a second, useless futex wake every sweep.)
  sem_t loop_wake_;
  std::atomic<bool> loop_stop_{false};
  bool warned_missing_links_ = false;
  std::thread loop_;

  mutable std::mutex snapshot_mu_;
  // The latest sweep, for /metrics; read only under snapshot_mu_, so that the sampling thread
  // can take it back to build the next sweep in (Sweep::Recycle) once it has swapped in a new one.
  std::unique_ptr<Sweep> snapshot_;
};

}  // namespace suanli::agent
