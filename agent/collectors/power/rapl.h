// RaplCollector: CPU energy from RAPL through the powercap class, <sysfs>/class/powercap/:
// zones intel-rapl:N (package-N, psys), subzones intel-rapl:N:M (core, uncore, dram) and
// intel-rapl-mmio:N. AMD parts (amd_energy aside) expose the same intel-rapl tree.
//
// Families (energy_uj and max_energy_range_uj are microjoules; exported in joules):
//   node_rapl_<zone>_joules_total{index}         counter  energy_uj / 1e6, raw, exactly as
//       node_exporter 1.x (without its `path` label). It wraps at max_energy_range_uj and
//       Prometheus reads each wrap as a counter reset, losing the energy since the last scrape.
//   suanli_rapl_energy_joules_total{zone,index}  counter  the same energy made monotonic across
//       wraps: it starts at the first raw reading (so it equals node_exporter's value until the
//       first wrap) and then adds (cur - prev) mod (max_energy_range_uj + 1) every sweep.
//   suanli_rapl_max_energy_joules{zone,index}    gauge    max_energy_range_uj / 1e6: where
//       energy_uj wraps, so an operator can check the sampling interval against it.
//   suanli_rapl_zone_readable{zone,index}        gauge    1 if energy_uj was read this sweep,
//       0 if it was refused (root-only since CVE-2020-8694) or failed.
// zone and index come from the zone's `name` file as node_exporter derives them: "package-10"
// is zone "package", index 10; a name without "-N" ("core", "dram") is indexed by how many
// zones of that name came before it in directory order.
//
// Wrap assumption: at most one wrap between two sweeps. The range is about 262 kJ on current
// parts, i.e. 20 minutes at 200 W per socket and a few minutes on the largest parts, so any
// sampling interval under a minute is safe. When the range is unknown (unreadable or 0) a
// decrease is taken as a reset to 0: the new reading is all the energy since.
//
// The intel-rapl-mmio:N copy of a package zone (same name and index as an intel-rapl:N zone) is
// the same counter read through MMIO; it is exported once, from the MSR zone, since adding both
// double counts the package (node_exporter 1.x exports both, told apart only by `path`).
//
// Zone paths are resolved once and the zone list is rescanned only when a read fails with ENOENT
// (the driver was unloaded or reloaded) or while no zone has been found, then at most every
// RescanTimer::kInterval (60 s; rescan_timer.h): a driver loaded later is found within a minute,
// and a host without RAPL pays no failed lookup per sweep. A zone added next to existing ones
// waits for the next rescan. The per-zone wrap state survives rescans.
//
// Outcomes: no powercap directory or no intel-rapl zones is NoData; an energy_uj that cannot be
// read (EACCES) is Failed with a message saying how to grant access, and the zone is reported
// with suanli_rapl_zone_readable 0 — never as "no RAPL here"; other read or parse errors are
// Failed. Readable zones are exported in every case.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/rescan_timer.h"
#include "core/status.h"

namespace suanli::agent {

class RaplCollector : public Collector {
 public:
  // Reads a whole file with ReadWholeFile's contract (proc_file.h): on failure `*err` is the
  // errno. A seam for tests: root, which runs them, reads files whatever their mode, so a
  // refused energy_uj can only be simulated.
  using FileReader =
      std::function<Status(const std::string& path, std::string& buf, size_t& size, int* err)>;

  explicit RaplCollector(const HostPaths& paths);
  // `now`: the clock of the rescan rate limit (a seam for tests).
  RaplCollector(const HostPaths& paths, FileReader reader,
                RescanTimer::Clock now = &std::chrono::steady_clock::now);
  CollectResult Collect(Sweep& out) override;

 private:
  struct Zone {
    std::string dir_name;     // "intel-rapl:0:1"
    std::string energy_path;  // <dir>/energy_uj
    bool mmio = false;
    std::string zone;  // "package"
    int64_t index = 0;
    std::string node_family;  // node_rapl_package_joules_total
    std::string node_help;
    std::vector<Label> node_labels;  // {index}
    std::vector<Label> labels;       // {index, zone}
    uint64_t max_uj = 0;             // 0: unknown
    // Wrap state, carried across sweeps and rescans.
    bool have_prev = false;
    uint64_t prev_uj = 0;
    uint64_t total_uj = 0;
    // This sweep.
    bool read_ok = false;
    uint64_t raw_uj = 0;
  };
  enum class ReadOutcome { kOk, kGone, kError };

  // Lists the zones, keeping the wrap state of those already known. NoData/Failed results are
  // returned as they are; Ok means zones_ may be used.
  CollectResult Scan();
  // Reads every zone's energy_uj; kGone when one has vanished (rescan and retry).
  ReadOutcome ReadAll(std::string& refused, std::string& error);
  void Accumulate(Zone& z);

  std::string dir_;  // <sysfs>/class/powercap
  FileReader read_;
  std::vector<Zone> zones_;
  RescanTimer rescan_;
  CollectResult no_zones_;  // what the last scan that found no zone said, returned until the next
  std::string buf_;
};

}  // namespace suanli::agent
