// PressureCollector: pressure stall information (PSI) from /proc/pressure/{cpu,io,memory,irq},
// as node_exporter's pressure collector (the kernel's "total=" is microseconds; exported in
// seconds):
//   node_pressure_cpu_waiting_seconds_total     counter  cpu "some"
//   node_pressure_io_waiting_seconds_total      counter  io "some"
//   node_pressure_io_stalled_seconds_total      counter  io "full"
//   node_pressure_memory_waiting_seconds_total  counter  memory "some"
//   node_pressure_memory_stalled_seconds_total  counter  memory "full"
//   node_pressure_irq_stalled_seconds_total     counter  irq "full" (Linux >= 6.1)
// cpu "full" (Linux >= 5.13) is not exported, as node_exporter. The avg10/60/300 figures are
// rate() of these counters and are not exported either.
//
// A resource file found absent on procfs stays absent until reboot (the kernel creates them at
// boot; irq needs Linux >= 6.1 and CONFIG_IRQ_TIME_ACCOUNTING): it is not looked up again, since
// a failed lookup per sweep cost ~7% of the sampling thread at 100 ms sweeps. Under a
// --path.procfs that is not procfs (a fixture tree) it is looked up every sweep, as a file there
// may appear.
//
// Outcomes: no PSI file at all (kernel < 4.20 or CONFIG_PSI=n) and EOPNOTSUPP (booted with
// psi=0) are NoData; a resource file that is absent is skipped (irq is absent before 6.1); other
// read errors and a file without one valid line are Failed, after adding what the other files
// gave; a malformed line beside valid ones is skipped.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <array>
#include <string>

#include "agent/collector.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class PressureCollector : public Collector {
 public:
  explicit PressureCollector(const HostPaths& paths);
  CollectResult Collect(Sweep& out) override;

 private:
  // Whether dir_ (or, when it is absent, the procfs root) is on procfs; asked once.
  bool OnProcfs();

  std::string root_, dir_;
  std::array<ProcFile, 4> files_;  // cpu, io, memory, irq
  std::array<bool, 4> gone_{};     // absent on procfs: not looked up again
  int on_procfs_ = -1;             // -1: not asked yet
};

}  // namespace suanli::agent
