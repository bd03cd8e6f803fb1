// CpuCollector: per-CPU time from /proc/stat, as node_exporter's cpu collector exports it:
//   node_cpu_seconds_total{cpu,mode}        counter, seconds (USER_HZ ticks / 100); modes user,
//                                           nice, system, idle, iowait, irq, softirq, steal
//   node_cpu_guest_seconds_total{cpu,mode}  counter, seconds; modes user, nice
// Guest time is also inside user and nice (the kernel counts it twice); like node_exporter we
// export both as read, without subtracting.
//
// Counters never go backwards: the kernel's iowait (and idle on NOHZ) can dip, which Prometheus
// would read as a reset; a dipping field keeps its previous value. When idle drops by 3 s or more
// the CPU was hot-plugged and its state restarts from the new values (node_exporter's rule).
//
// A missing or unreadable /proc/stat is Failed; malformed lines are skipped.
// Thread-safety: not thread-safe (keeps per-CPU state between calls); one thread at a time.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class CpuCollector : public Collector {
 public:
  explicit CpuCollector(const HostPaths& paths);
  CollectResult Collect(Sweep& out) override;

  static constexpr int kModes = 8;    // user .. steal
  static constexpr int kFields = 10;  // + guest, guest_nice

 private:
  struct CpuState {
    bool present = false;  // in the last read
    std::array<double, kFields> seconds{};
    // Label sets built once per CPU: {cpu, mode} for each mode, then the two guest modes.
    std::array<std::vector<Label>, kFields> labels;
  };

  ProcFile stat_;
  std::vector<CpuState> cpus_;  // indexed by CPU number
  std::vector<bool> seen_;      // scratch: CPUs in this read
};

}  // namespace suanli::agent
