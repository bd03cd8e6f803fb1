// NodePower: the node's one whole-server power figure, suanli_node_power_watts{source}, and its
// integral suanli_node_energy_joules_total, derived from what the power collectors put in the
// sweep. Sources never overlap: the first available in this order wins.
//
//   1. redfish           the BMC's reading of this server's own chassis
//                        (suanli_redfish_server_power_watts: the Redfish collector follows the
//                        server's ComputerSystem to it, never to an enclosure or rack beside it)
//      redfish_shared    the same, where the reading covers several servers (a multi-node
//                        chassis, a blade's enclosure); the series carries the chassis'
//                        identity (chassis_identity) and the servers it covers (systems), so
//                        the aggregator counts each such chassis once per dc
//   2. ipmi_dcmi         the BMC's DCMI power reading, when measurement is active;
//      ipmi_dcmi_shared  where a platform rule says it covers the chassis (ipmi_dcmi.h)
//   3. acpi_power_meter  the ACPI000D whole-server meter (sum of meters)
//   4. rapl_psys         RAPL platform (psys) energy rate, plus GPU board power
//   5. rapl              RAPL package + dram energy rate, plus GPU board power
//   6. gpu               GPU board power alone (no RAPL on this host)
//   7. estimated         no measurement at all (a virtual machine): the CPUs' power model of
//                        the inventory collector (suanli_node_cpu_power_model_{idle,max}_watts)
//                        at the CPU utilization of the last interval,
//                        P = idle + (max - idle) x utilization
//
// 1-3 measure at the wall and include everything; 4-6 are component sums and miss fans,
// disks, NICs and PSU losses; 7 is a model of the CPU cores alone: the source label tells
// operators which they are looking at. A BMC reading older than three sample intervals (at
// least 30 s) is not used.
//
// The estimate is used only when the sweep holds no power measurement of any kind (no Redfish,
// IPMI DCMI, ACPI meter, RAPL zone, hwmon power rail or GPU power family, even a stale one), so
// it never stands in for a meter that missed a sweep and is never added to a measured figure.
// Utilization is that of node_cpu_seconds_total between two sweeps: 1 - (idle + iowait) / all
// modes, over every CPU (iowait counts as idle: the CPU halts while it waits). The first sweep,
// a counter that went back (CPU hotplug) or no CPU time passing gives no estimate.
//
// The energy counter integrates measured power only; an estimate integrates into its own
// series, suanli_node_energy_joules_total{source="estimated"}, so that summing a dc's energy
// never mixes a model into meter readings. Each counter integrates only between sweeps whose
// figure was of its kind: the time a meter covered is never counted again as estimated.
// Thread-safety: Derive() from the sampling thread only (it keeps RAPL state across sweeps).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "agent/collector.h"

namespace suanli::agent {

class NodePower {
 public:
  explicit NodePower(std::chrono::milliseconds sample_interval);

  // Adds suanli_node_power_watts{source} and suanli_node_energy_joules_total (with
  // source="estimated" for an estimate) to `sweep`, taken at `timestamp_ms`. Adds nothing when
  // no source is available.
  void Derive(Sweep& sweep, int64_t timestamp_ms);

 private:
  struct RaplPoint {
    double joules = 0;
    int64_t ms = 0;
  };
  // Watts of each RAPL zone over the last interval, from the wrap-corrected energy counters.
  std::map<std::string, double> RaplWatts(const Sweep& sweep, int64_t timestamp_ms);

  // The utilization of the CPUs since the previous sweep; nullopt when unknown.
  std::optional<double> CpuUtilization(const Sweep& sweep);

  double max_age_seconds_;
  bool have_cpu_prev_ = false;
  double cpu_idle_prev_ = 0, cpu_all_prev_ = 0;  // seconds, summed over CPUs
  std::map<std::string, RaplPoint> rapl_prev_;   // key: zone \0 index
  // Trapezoid integral of one kind of power figure (measured or estimated).
  struct EnergyIntegral {
    double joules = 0;
    double last_watts = -1;  // < 0: no previous figure of this kind to integrate from
    int64_t last_ms = 0;
    void Add(double watts, int64_t timestamp_ms);
  };
  EnergyIntegral measured_energy_;
  EnergyIntegral estimated_energy_;
};

}  // namespace suanli::agent
