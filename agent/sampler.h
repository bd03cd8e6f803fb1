// Sampler: runs the enabled collectors once per sweep and merges their output. It owns the
// per-collector self-metrics (duration, success, no data, timeouts), so collectors don't.
// Collectors marked may_block in the registry run on a thread of their own with a deadline:
// a hung BMC or sensor costs its own figures, never the sweep.
// Thread-safety: RunOnce() from one thread at a time (the sampling thread).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_config.h"
#include "agent/collector.h"
#include "agent/collectors/registry.h"

namespace suanli::agent {

struct BuiltCollector {
  const CollectorSpec* spec;
  std::unique_ptr<Collector> collector;
};

// Builds every collector the configuration enables, in registry order. Errors name the
// collector's configuration section (file, line, key). Touches nothing on the host.
Result<std::vector<BuiltCollector>> BuildCollectors(const AgentConfig& config);

// Runs one collector on its own thread so that the caller can give up after a deadline.
// Thread-safety: Run() from one thread; the worker thread is internal.
class BlockingCollectorRunner {
 public:
  // `name`: the collector's, for the thread's name.
  BlockingCollectorRunner(std::unique_ptr<Collector> collector, std::string name = "");
  ~BlockingCollectorRunner();  // waits for a run in progress to return

  // Starts a run and waits until `deadline`. On time: fills `out`, returns the result. Late,
  // or still busy with an earlier run: returns Failed("timed out ...") and leaves the run going;
  // its late output is discarded (its samples would carry the wrong sweep's timestamp).
  CollectResult Run(Sweep& out, std::chrono::steady_clock::time_point deadline);

 private:
  void Loop();
  enum class State { kIdle, kRequested, kRunning, kDone };
  std::unique_ptr<Collector> collector_;
  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kIdle;
  bool stop_ = false;
  Sweep output_;
  CollectResult result_;
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
};

class Sampler {
 public:
  Sampler(std::vector<BuiltCollector> collectors, std::chrono::milliseconds timeout,
          prometheus::Registry& registry);

  // One sweep: every collector in registration order; a failing one never stops the others.
  void RunOnce(Sweep& out);
  std::vector<std::string> enabled() const;

 private:
  struct Entry {
    std::string name;
    std::unique_ptr<Collector> collector;             // inline collectors
    std::unique_ptr<BlockingCollectorRunner> runner;  // may_block collectors
    prometheus::Gauge* duration;
    prometheus::Gauge* success;
    prometheus::Gauge* no_data;
    prometheus::Counter* failures;
    CollectResult::Kind last_kind = CollectResult::Kind::kOk;
    bool ran = false;  // success and no_data are set on the first run and on a change of kind
    std::string last_message;
  };
  std::vector<Entry> entries_;
  std::chrono::milliseconds timeout_;
  Sweep scratch_;
};

}  // namespace suanli::agent
