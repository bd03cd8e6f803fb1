// InventoryCollector: what the server is made of, and its peak compute capacity. All gauges:
//   suanli_node_cpu_info{model,vendor}             1 per CPU model in /proc/cpuinfo
//   suanli_node_cpu_sockets                        distinct "physical id"s
//   suanli_node_cpu_cores                          physical cores: distinct (physical id, core id)
//   suanli_node_cpu_threads                        logical CPUs ("processor" entries)
//   suanli_node_cpu_max_frequency_hertz            highest cpu*/cpufreq/cpuinfo_max_freq, hertz;
//                                                  absent without cpufreq (most VMs): "cpu MHz"
//                                                  is the current frequency, not a maximum
//   suanli_node_memory_bytes                       MemTotal of /proc/meminfo, bytes
//   suanli_node_gpus{vendor,model}                 GPU count per model
//   suanli_node_nic_speed_bits_per_second{device}  link speed of each physical NIC (one with a
//                                                  /sys/class/net/<dev>/device link) whose speed
//                                                  the kernel knows (link up), bits per second
//   suanli_node_compute_model_known{kind,model}    1 when the model table knows the CPU or GPU
//                                                  model, 0 when its capacity is counted as 0
//   suanli_node_compute_capacity_flops{precision}  peak of the CPUs plus all GPUs, FLOPS
//                                                  (int8: operations per second)
//   suanli_node_compute_capacity_flops_by_source{source="cpu"|"gpu",precision,method}
//                                                  method="datasheet": from the table;
//                                                  "estimated": some of it from ISA flags
//   suanli_node_cpu_power_model_idle_watts         the CPUs' power model (power_model_table.h):
//   suanli_node_cpu_power_model_max_watts          idle and full-load watts of the cores seen
// Every precision (fp64, fp32, fp16, int8) is always exported; 0 means unknown or not counted.
//
// CPU capacity, per CPU model: physical cores x frequency x the table's FLOPs per cycle per
// core. The frequency is, in this order: the table entry's base_frequency_hertz (the SKU's
// all-core base frequency); the nominal frequency printed in the model name ("... @ 2.50GHz",
// Intel's base frequency); the highest cpuinfo_max_freq (often the turbo frequency: a message
// says so).
//
// A CPU model the table does not know is estimated (method="estimated"): physical cores x the
// highest cpuinfo_max_freq (else the frequency in its name, else the highest "cpu MHz" of
// /proc/cpuinfo, the current frequency: what most VMs offer) x the FLOPs per cycle of its ISA
// flags (EstimatedFlopsPerCycle(): fp64 and fp32 only). Without any of those flags (ARM) it
// counts 0. Either way suanli_node_compute_model_known stays 0 and the message asks for a table
// entry. ARM cpuinfo has no model name; the model is "<implementer> <part>" as lscpu names
// it ("HiSilicon Kunpeng-920"). Cores and sockets come from cpuinfo's physical id / core id, or
// from sysfs topology when cpuinfo lacks them (ARM).
//
// GPUs: from the `gpus` option when it is set (NVML names and counts; it replaces the scan),
// else from a PCI scan of /sys/bus/pci/devices: NVIDIA (vendor 0x10de) display or 3D
// controllers (class 0x0300xx, 0x0302xx), named by the table's pci_device_ids. A device the
// table does not know is counted as model "PCI 10de:<device>" with capacity 0.
//
// An unknown model is not an error: Collect() returns Ok with a message naming the model and
// the key to add (collector_config.inventory.models). Unreadable /proc/cpuinfo or
// /proc/meminfo, or an unlistable sysfs directory (other than absent), is Failed; what was read
// is still exported.
//
// Inventory changes rarely: the files are read on the first Collect(), then again once
// refresh_interval has passed (default 10m) or right away after a Failed read; in between,
// Collect() replays the cached families (no file access).
//
// Options (collector_config.inventory):
//   models: [...]            entries tried before the shipped table (compute_model_table.h)
//   gpus: [{model: "NVIDIA H100 80GB HBM3", count: 8, vendor: nvidia}]   vendor optional
//   refresh_interval: 10m
//   power_models: [...]      entries tried before the shipped power table (power_model_table.h)
//   power_per_core: {idle_watts: 1.25, max_watts: 5}   for CPU models no power entry matches
//
// Thread-safety: not thread-safe; one thread at a time (the Collector contract).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/inventory/compute_model_table.h"
#include "agent/collectors/inventory/power_model_table.h"
#include "core/clock.h"

namespace suanli::agent {

struct InventoryOptions {
  struct Gpu {
    std::string model;   // as NVML names it
    std::string vendor;  // label value; empty: the table entry's vendor, else "unknown"
    int64_t count = 0;
  };
  // Set when the `gpus` key is present (even as an empty list): replaces the PCI scan.
  std::optional<std::vector<Gpu>> gpus;
  std::chrono::milliseconds refresh_interval = std::chrono::minutes(10);
  // power_models and power_per_core, then the shipped power table.
  PowerModelTable power;
};

class InventoryCollector : public Collector {
 public:
  // The registry's factory: reads models, gpus and refresh_interval; touches no host file.
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);
  // Reads options from a collector's configuration section (errors name file, line and key).
  static Result<InventoryOptions> ParseOptions(ConfigMap& options);

  InventoryCollector(const HostPaths& paths, ComputeModelTable table, InventoryOptions options,
                     const Clock& clock = SystemClock::Get());

  CollectResult Collect(Sweep& out) override;

 private:
  // Reads every source and rebuilds cached_ and cached_result_.
  void Refresh();

  HostPaths paths_;
  ComputeModelTable table_;
  InventoryOptions options_;
  const Clock& clock_;
  std::optional<std::chrono::steady_clock::time_point> next_refresh_;
  Sweep cached_;
  CollectResult cached_result_;
};

}  // namespace suanli::agent
