// LoadavgCollector: the kernel's load averages from /proc/loadavg, as node_exporter:
//   node_load1, node_load5, node_load15   gauges, runnable + uninterruptible tasks, averaged
//                                         over 1, 5 and 15 minutes
// A missing file or a line without three numbers is Failed.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include "agent/collector.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class LoadavgCollector : public Collector {
 public:
  explicit LoadavgCollector(const HostPaths& paths);
  CollectResult Collect(Sweep& out) override;

 private:
  ProcFile loadavg_;
};

}  // namespace suanli::agent
