#include "agent/collectors/registry.h"

#include "agent/collectors/inventory/inventory.h"
#include "agent/collectors/network/netclass.h"
#include "agent/collectors/network/netdev.h"
#include "agent/collectors/power/hwmon.h"
#include "agent/collectors/power/ipmi_dcmi.h"
#include "agent/collectors/power/nvml_gpu.h"
#include "agent/collectors/power/rapl.h"
#include "agent/collectors/power/redfish.h"
#include "agent/collectors/utilization/cpu.h"
#include "agent/collectors/utilization/loadavg.h"
#include "agent/collectors/utilization/meminfo.h"
#include "agent/collectors/utilization/pressure.h"
#include "agent/collectors/utilization/stat.h"

namespace suanli::agent {

namespace {

// For collectors that take no options: built from the host paths alone.
template <typename T>
Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx) {
  return std::unique_ptr<Collector>(std::make_unique<T>(ctx.paths));
}

}  // namespace

const std::vector<CollectorSpec>& AllCollectors() {
  static const std::vector<CollectorSpec> kAll = {
      {"cpu", true, "Seconds each CPU spent in each mode, from /proc/stat.", Make<CpuCollector>},
      {"stat", true,
       "Boot time, context switches, forks, interrupts and task states, from "
       "/proc/stat.",
       Make<StatCollector>},
      {"meminfo", true, "Memory usage, every field of /proc/meminfo.", Make<MeminfoCollector>},
      {"loadavg", true, "1, 5 and 15 minute load averages, from /proc/loadavg.",
       Make<LoadavgCollector>},
      {"pressure", true, "Pressure stall information (PSI), from /proc/pressure.",
       Make<PressureCollector>},
      {"netdev", true, "Per-interface traffic counters, from /proc/net/dev.",
       NetdevCollector::Make},
      {"netclass", true, "Interface state, speed, MTU and identity, from /sys/class/net.",
       NetclassCollector::Make},
      {"rapl", true,
       "CPU package, core, DRAM and platform energy from RAPL (powercap), wrap-corrected.",
       Make<RaplCollector>},
      {"hwmon", true,
       "Power and energy sensors from /sys/class/hwmon, the ACPI power meter, voltage x current.",
       Make<HwmonCollector>, /*may_block=*/true},
      {"gpu", true,
       "NVIDIA GPU power, energy, power limit, utilization and memory (and MIG instance memory), "
       "through NVML.",
       NvmlGpuCollector::Make, /*may_block=*/true},
      {"ipmi_dcmi", true,
       "Whole-server power from the BMC: DCMI Get Power Reading through /dev/ipmi0.",
       IpmiDcmiCollector::Make, /*may_block=*/true},
      {"redfish", false,
       "Chassis power from the BMC's Redfish service (needs collector_config.redfish.url).",
       RedfishCollector::Make, /*may_block=*/true},
      {"inventory", true,
       "Hardware inventory (CPU model and cores, memory, GPUs, NIC speeds) and peak compute "
       "capacity in FLOPS per precision.",
       InventoryCollector::Make},
  };
  return kAll;
}

}  // namespace suanli::agent
