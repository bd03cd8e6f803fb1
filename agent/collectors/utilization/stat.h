// StatCollector: the kernel-wide counters of /proc/stat, as node_exporter's stat collector:
//   node_boot_time_seconds       gauge, Unix seconds (btime)
//   node_context_switches_total  counter (ctxt)
//   node_forks_total             counter (processes)
//   node_intr_total              counter, interrupts serviced (first field of the intr line)
//   node_procs_running           gauge, runnable tasks
//   node_procs_blocked           gauge, tasks blocked on I/O
// The intr line carries one column per IRQ number (132 KB on large hosts); only its first field
// is parsed, the rest is skipped with memchr. A line the file lacks is left out (node_exporter
// prints 0). Missing /proc/stat, or none of these lines, is Failed.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include "agent/collector.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class StatCollector : public Collector {
 public:
  explicit StatCollector(const HostPaths& paths);
  CollectResult Collect(Sweep& out) override;

 private:
  ProcFile stat_;
};

}  // namespace suanli::agent
