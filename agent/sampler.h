// Sampler: runs the enabled collectors once per sweep and merges their output. It owns the
// per-collector self-metrics (duration, success, no data), so collectors don't.
// Thread-safety: RunOnce() from one thread at a time (the sampling thread).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/collector.h"

namespace suanli::agent {

class Sampler {
 public:
  // Instantiates every collector enabled by default or by `overrides` (NAME -> on/off).
  Sampler(const HostPaths& paths, const std::map<std::string, bool>& overrides,
          prometheus::Registry& registry);

  // One sweep: every collector in registration order; a failing one never stops the others.
  void RunOnce(Sweep& out);
  std::vector<std::string> enabled() const;

 private:
  struct Entry {
    std::string name;
    std::unique_ptr<Collector> collector;
    prometheus::Gauge* duration;
    prometheus::Gauge* success;
    prometheus::Gauge* no_data;
    prometheus::Counter* failures;
    CollectResult::Kind last_kind = CollectResult::Kind::kOk;
    std::string last_message;
  };
  std::vector<Entry> entries_;
  Sweep scratch_;
};

}  // namespace suanli::agent
