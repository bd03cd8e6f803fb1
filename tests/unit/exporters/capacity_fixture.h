// A small alliance for the exporter tests: two regions, three dcs, GPU and CPU-only servers,
// one inter-dc link, a facility meter; two sweeps 10 s apart so every rate is known.
// Thread-safety: test-only helpers over values.
#pragma once

#include <string>
#include <vector>

#include "aggregator/capacity/capacity_model.h"

namespace suanli::exporters::testing {

inline constexpr int64_t kT0 = 1'700'000'000'000;

inline TimeSeries At(const std::string& region, const std::string& dc, const std::string& instance,
                     const char* name, std::vector<Label> extra, int64_t ts, double v) {
  extra.push_back({"__name__", name});
  extra.push_back({"region", region});
  extra.push_back({"dc", dc});
  extra.push_back({"instance", instance});
  return TimeSeries{Labels(std::move(extra)), {{ts, v}}};
}

// One sweep of a server with 2 CPUs at `busy` utilization (counters as if it ran since 0) and
// optionally one GPU.
inline void AddServer(std::vector<TimeSeries>& b, const std::string& region, const std::string& dc,
                      const std::string& instance, int64_t ts, double busy, bool gpu) {
  double secs = double(ts - kT0) / 1000.0 + 100;
  auto add = [&](const char* name, std::vector<Label> extra, double v) {
    b.push_back(At(region, dc, instance, name, std::move(extra), ts, v));
  };
  for (const char* cpu : {"0", "1"}) {
    add("node_cpu_seconds_total", {{"cpu", cpu}, {"mode", "idle"}}, secs * (1 - busy));
    add("node_cpu_seconds_total", {{"cpu", cpu}, {"mode", "user"}}, secs * busy);
  }
  add("node_memory_MemTotal_bytes", {}, 1000);
  add("node_memory_MemAvailable_bytes", {}, 1000 * (1 - busy));
  add("suanli_node_compute_capacity_flops", {{"precision", "fp32"}}, gpu ? 21e12 : 1e12);
  add("suanli_node_compute_capacity_flops_by_source", {{"precision", "fp32"}, {"source", "cpu"}},
      1e12);
  if (gpu) {
    add("suanli_node_compute_capacity_flops_by_source", {{"precision", "fp32"}, {"source", "gpu"}},
        20e12);
    add("suanli_node_compute_capacity_flops", {{"precision", "fp16"}}, 300e12);
    add("suanli_node_compute_capacity_flops_by_source", {{"precision", "fp16"}, {"source", "gpu"}},
        300e12);
    add("suanli_gpu_utilization_ratio", {{"gpu", "0"}, {"uuid", "GPU-" + instance}}, busy);
    add("suanli_gpu_power_watts", {{"gpu", "0"}, {"uuid", "GPU-" + instance}}, 300);
  }
  add("suanli_node_power_watts", {{"source", gpu ? "redfish" : "rapl_psys"}}, gpu ? 800 : 200);
  add("suanli_node_energy_joules_total", {}, secs * 500);
}

inline capacity::CapacitySnapshot SmallAlliance(capacity::CapacityModel* model = nullptr) {
  capacity::CapacityOptions o;
  o.watcher_window = std::chrono::minutes(15);
  o.facility_power_watts[{"ningxia", "zw-1"}] = 500;
  capacity::CapacityModel local(o);
  capacity::CapacityModel& m = model ? *model : local;
  for (int64_t ts : {kT0, kT0 + 10'000}) {
    std::vector<TimeSeries> b;
    AddServer(b, "gansu", "lz-1", "lz-1-a", ts, 0.25, true);
    AddServer(b, "gansu", "lz-1", "lz-1-b", ts, 0.5, false);
    AddServer(b, "gansu", "qy-1", "qy-1-a", ts, 0.9, true);
    AddServer(b, "ningxia", "zw-1", "zw-1-a", ts, 0.1, false);
    double k = double(ts - kT0) / 1000.0;
    b.push_back(At("gansu", "lz-1", "lz-1-a", "suanli_link_receive_bytes_total",
                   {{"link", "passage \"east\""}, {"peer_dc", "sh-1"}, {"device", "eth1"}}, ts,
                   k * 1e9));
    b.push_back(At("gansu", "lz-1", "lz-1-a", "suanli_link_transmit_bytes_total",
                   {{"link", "passage \"east\""}, {"peer_dc", "sh-1"}, {"device", "eth1"}}, ts,
                   k * 2e9));
    b.push_back(At("gansu", "lz-1", "lz-1-a", "suanli_link_capacity_bits_per_second",
                   {{"link", "passage \"east\""}, {"peer_dc", "sh-1"}}, ts, 80e9));
    b.push_back(At("gansu", "lz-1", "meter", "suanli_facility_power_watts", {}, ts, 1300));
    m.Observe(b);
  }
  return m.Snapshot(kT0 + 12'000);
}

}  // namespace suanli::exporters::testing
