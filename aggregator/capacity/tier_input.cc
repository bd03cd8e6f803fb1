#include "aggregator/capacity/tier_input.h"

#include <algorithm>
#include <cmath>

namespace suanli::capacity {
namespace {

constexpr std::string_view kDcPrefix = "suanli_dc_";
constexpr std::string_view kLinkCapacity = "suanli_link_capacity_bytes_per_second";
constexpr std::string_view kLinkThroughput = "suanli_link_throughput_bytes_per_second";

// Labels that place a series, not part of the value's key.
bool IsPlacement(std::string_view name) {
  return name == "__name__" || name == "region" || name == "dc" || name == "shard";
}

// The key of a family's value: its name and the labels that tell its values apart.
std::string ValueKey(std::string_view family, const Labels& labels) {
  std::string key(family);
  key.push_back('\0');
  for (const Label& l : labels.items()) {
    if (IsPlacement(l.name)) continue;
    key += l.name;
    key.push_back('=');
    key += l.value;
    key.push_back('\0');
  }
  return key;
}

// Splits a ValueKey back: the family and its labels.
std::pair<std::string_view, std::map<std::string_view, std::string_view>> SplitKey(
    std::string_view key) {
  size_t z = key.find('\0');
  std::string_view family = key.substr(0, z);
  std::map<std::string_view, std::string_view> labels;
  key.remove_prefix(z + 1);
  while (!key.empty()) {
    z = key.find('\0');
    std::string_view pair = key.substr(0, z);
    size_t eq = pair.find('=');
    labels[pair.substr(0, eq)] = pair.substr(eq + 1);
    key.remove_prefix(z + 1);
  }
  return {family, labels};
}

std::string Get(const std::map<std::string_view, std::string_view>& m, std::string_view k) {
  auto it = m.find(k);
  return it == m.end() ? std::string() : std::string(it->second);
}

}  // namespace

bool TierInput::Uses(std::string_view n) {
  return n.starts_with(kDcPrefix) || n == kLinkCapacity || n == kLinkThroughput;
}

void TierInput::Observe(const TimeSeries& ts) {
  std::string_view name = ts.labels.MetricName();
  std::string_view dc = ts.labels.Get("dc");
  if (dc.empty() || ts.samples.empty()) return;
  Shard& shard = shards_[{std::string(ts.labels.Get("region")), std::string(dc),
                          std::string(ts.labels.Get("shard"))}];
  std::string family =
      name.starts_with(kDcPrefix) ? std::string(name.substr(kDcPrefix.size())) : std::string(name);
  Sample& v = shard.values[ValueKey(family, ts.labels)];
  for (const Sample& s : ts.samples) {
    if (IsStaleNaN(s.value) || s.timestamp_ms < v.timestamp_ms) continue;
    v = s;
    shard.newest_ms = std::max(shard.newest_ms, s.timestamp_ms);
  }
}

bool TierInput::Has(const Location& loc) const {
  auto it = shards_.lower_bound({loc.region, loc.dc, ""});
  return it != shards_.end() && it->first.region == loc.region && it->first.dc == loc.dc;
}

std::map<Location, TierInput::DcFigures> TierInput::Figures(int64_t stale_before,
                                                            int64_t forget_before) {
  std::map<Location, DcFigures> out;
  for (auto it = shards_.begin(); it != shards_.end();) {
    if (it->second.newest_ms < forget_before) {
      it = shards_.erase(it);
      continue;
    }
    const Shard& shard = it->second;
    DcFigures& dc = out[{it->first.region, it->first.dc}];
    ++it;
    dc.shards += 1;
    dc.shards_fresh += shard.newest_ms >= stale_before ? 1 : 0;
    dc.newest_evaluation_ms = std::max(dc.newest_evaluation_ms, shard.newest_ms);
    GroupFigures f;
    double cpu_ratio = NAN, gpu_ratio = NAN, gpus_reporting = NAN;
    for (const auto& [key, s] : shard.values) {
      if (s.timestamp_ms != shard.newest_ms) continue;  // not in the newest evaluation
      auto [family, labels] = SplitKey(key);
      const double v = s.value;
      if (family == "nodes") {
        (Get(labels, "state") == "up" ? f.nodes_up : f.nodes_stale) += std::llround(v);
      } else if (family == "nodes_gone_total") {
        f.nodes_gone += std::llround(v);
      } else if (family == "newest_sample_age_seconds") {
        f.newest_sample_ms = s.timestamp_ms - std::llround(v * 1000);
      } else if (family == "cpu_cores") {
        f.cpu_cores = v;
      } else if (family == "cpu_utilization_ratio") {
        cpu_ratio = v;
      } else if (family == "memory_total_bytes") {
        f.memory_total_bytes = v;
      } else if (family == "memory_available_bytes") {
        f.memory_available_bytes = v;
      } else if (family == "network_receive_bytes_per_second") {
        f.network_receive_bytes_per_second = v;
      } else if (family == "network_transmit_bytes_per_second") {
        f.network_transmit_bytes_per_second = v;
      } else if (family == "gpus") {
        f.gpus = v;
      } else if (family == "gpus_reporting_utilization") {
        gpus_reporting = v;
      } else if (family == "gpu_utilization_ratio") {
        gpu_ratio = v;
      } else if (family == "gpu_memory_total_bytes") {
        f.gpu_memory_total_bytes = v;
      } else if (family == "gpu_memory_used_bytes") {
        f.gpu_memory_used_bytes = v;
      } else if (family == "gpu_power_watts") {
        f.gpu_power_watts = v;
      } else if (family == "power_watts") {
        f.power_watts = v;
      } else if (family == "power_shared_watts") {
        f.shared_power_watts = v;
      } else if (family == "power_shared_chassis") {
        f.shared_power_chassis = std::llround(v);
      } else if (family == "estimated_power_watts") {
        f.estimated_power_watts = v;
      } else if (family == "power_estimated_nodes") {
        f.nodes_with_estimated_power = std::llround(v);
      } else if (family == "power_source_nodes") {
        f.power_sources[Get(labels, "source")] += std::llround(v);
        f.nodes_with_power += std::llround(v);
      } else if (family == "energy_joules_total") {
        f.energy_joules_total = v;
      } else if (family == "estimated_energy_joules_total") {
        f.estimated_energy_joules_total = v;
      } else if (family == "facility_power_watts") {
        f.facility_power_watts = v;
        f.dcs_with_facility_power = 1;
      } else if (family == "compute_capacity_flops") {
        f.compute[Get(labels, "precision")].capacity_flops = v;
      } else if (family == "compute_free_flops") {
        f.compute[Get(labels, "precision")].free_flops = v;
      } else if (family == "compute_capacity_by_source_flops" ||
                 family == "compute_free_by_source_flops") {
        ComputeFigures& c = f.compute[Get(labels, "precision")];
        const bool cpu = Get(labels, "source") == "cpu";
        if (family == "compute_capacity_by_source_flops") {
          (cpu ? c.cpu_capacity_flops : c.gpu_capacity_flops) = v;
        } else {
          (cpu ? c.cpu_free_flops : c.gpu_free_flops) = v;
        }
      } else if (family == kLinkCapacity) {
        LinkFigures& l = dc.links[{Get(labels, "link"), Get(labels, "peer_dc")}];
        l.capacity_bytes_per_second = std::max(l.capacity_bytes_per_second, v);
      } else if (family == kLinkThroughput) {
        LinkFigures& l = dc.links[{Get(labels, "link"), Get(labels, "peer_dc")}];
        (Get(labels, "direction") == "receive" ? l.receive_bytes_per_second
                                               : l.transmit_bytes_per_second) += v;
      }
      // Derived figures (PUE, energy per operation, utilization of links) and the dcs count
      // are computed again here, not summed.
    }
    if (!std::isnan(cpu_ratio)) {
      f.cpu_busy_cores = cpu_ratio * f.cpu_cores;
      f.nodes_with_cpu_rate = f.nodes_up;
    }
    f.gpus_with_utilization = std::isnan(gpus_reporting) ? f.gpus : gpus_reporting;
    if (!std::isnan(gpu_ratio)) f.gpu_busy = gpu_ratio * f.gpus_with_utilization;
    // Facility power is the dc's, whichever shards report it: the largest, not a sum.
    const double facility = f.facility_power_watts;
    f.facility_power_watts = 0;
    f.dcs_with_facility_power = 0;
    dc.figures.Add(f);
    if (facility > 0) {
      dc.figures.facility_power_watts = std::max(dc.figures.facility_power_watts, facility);
      dc.figures.dcs_with_facility_power = 1;
    }
  }
  for (auto& [loc, dc] : out) {
    if (dc.figures.dcs_with_facility_power > 0) {
      dc.figures.pue_it_power_watts = dc.figures.power_watts;
    }
  }
  return out;
}

}  // namespace suanli::capacity
