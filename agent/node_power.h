// NodePower: the node's one whole-server power figure, suanli_node_power_watts{source}, and its
// integral suanli_node_energy_joules_total, derived from what the power collectors put in the
// sweep. Sources never overlap: the first available in this order wins.
//
//   1. redfish           the BMC's chassis power (Redfish); several chassis: the largest,
//                        since a BMC may report an enclosure and the server inside it
//   2. ipmi_dcmi         the BMC's DCMI power reading, when measurement is active
//   3. acpi_power_meter  the ACPI000D whole-server meter (sum of meters)
//   4. rapl_psys         RAPL platform (psys) energy rate, plus GPU board power
//   5. rapl              RAPL package + dram energy rate, plus GPU board power
//   6. gpu               GPU board power alone (no RAPL on this host)
//
// 1-3 measure at the wall and include everything; 4-6 are component sums and miss fans,
// disks, NICs and PSU losses: the source label tells operators which they are looking at. A
// BMC reading older than three sample intervals (at least 30 s) is not used.
// Thread-safety: Derive() from the sampling thread only (it keeps RAPL state across sweeps).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "agent/collector.h"

namespace suanli::agent {

class NodePower {
 public:
  explicit NodePower(std::chrono::milliseconds sample_interval);

  // Adds suanli_node_power_watts{source} and suanli_node_energy_joules_total to `sweep`, taken
  // at `timestamp_ms`. Adds nothing when no source is available.
  void Derive(Sweep& sweep, int64_t timestamp_ms);

 private:
  struct RaplPoint {
    double joules = 0;
    int64_t ms = 0;
  };
  // Watts of each RAPL zone over the last interval, from the wrap-corrected energy counters.
  std::map<std::string, double> RaplWatts(const Sweep& sweep, int64_t timestamp_ms);

  double max_age_seconds_;
  std::map<std::string, RaplPoint> rapl_prev_;  // key: zone \0 index
  double energy_joules_ = 0;
  double last_watts_ = -1;
  int64_t last_ms_ = 0;
};

}  // namespace suanli::agent
