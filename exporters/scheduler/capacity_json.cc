#include "exporters/scheduler/capacity_json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <tuple>

#include "exporters/scheduler/json_writer.h"

namespace suanli::exporters {
namespace {

using capacity::ComputeFigures;
using capacity::GroupFigures;

// Whether an entry passes the precision and min_free_flops filters.
bool Wanted(const GroupFigures& f, const CapacityQuery& q) {
  if (q.precision.empty() && !q.min_free_flops) return true;
  for (const auto& [precision, c] : f.compute) {
    if (!q.precision.empty() && precision != q.precision) continue;
    if (!q.min_free_flops || c.free_flops >= *q.min_free_flops) return true;
  }
  return false;
}

void WriteGroup(const GroupFigures& f, int64_t now_ms, const CapacityQuery& q, JsonWriter& w) {
  if (f.newest_sample_ms > 0) {
    w.Key("freshness_seconds").Number(double(now_ms - f.newest_sample_ms) / 1000.0);
    w.Key("newest_sample_timestamp").Number(double(f.newest_sample_ms) / 1000.0);
  } else {
    w.Key("freshness_seconds").Null();
    w.Key("newest_sample_timestamp").Null();
  }
  w.Key("nodes").BeginObject();
  w.Key("up").Int(f.nodes_up).Key("stale").Int(f.nodes_stale).Key("gone").Int(f.nodes_gone);
  w.EndObject();
  w.Key("cpu").BeginObject();
  w.Key("cores").Number(f.cpu_cores).Key("utilization_ratio").Number(f.cpu_utilization());
  w.EndObject();
  w.Key("memory").BeginObject();
  w.Key("total_bytes").Number(f.memory_total_bytes);
  w.Key("available_bytes").Number(f.memory_available_bytes);
  w.EndObject();
  w.Key("gpu").BeginObject();
  w.Key("count").Number(f.gpus).Key("utilization_ratio").Number(f.gpu_utilization());
  w.Key("memory_total_bytes").Number(f.gpu_memory_total_bytes);
  w.Key("memory_used_bytes").Number(f.gpu_memory_used_bytes);
  w.Key("power_watts").Number(f.gpu_power_watts);
  w.EndObject();
  w.Key("compute").BeginObject();
  for (const auto& [precision, c] : f.compute) {
    if (!q.precision.empty() && precision != q.precision) continue;
    w.Key(precision).BeginObject();
    w.Key("capacity_flops").Number(c.capacity_flops).Key("free_flops").Number(c.free_flops);
    if (c.capacity_flops > 0) w.Key("free_ratio").Number(c.free_flops / c.capacity_flops);
    w.Key("by_source").BeginObject();
    w.Key("cpu").BeginObject();
    w.Key("capacity_flops").Number(c.cpu_capacity_flops).Key("free_flops").Number(c.cpu_free_flops);
    w.EndObject();
    w.Key("gpu").BeginObject();
    w.Key("capacity_flops").Number(c.gpu_capacity_flops).Key("free_flops").Number(c.gpu_free_flops);
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.Key("power").BeginObject();
  w.Key("watts").Number(f.power_watts).Key("nodes_reporting").Int(f.nodes_with_power);
  // The part read from chassis shared by several servers, each counted once (absent: none).
  if (f.shared_power_watts > 0) w.Key("shared_watts").Number(f.shared_power_watts);
  w.Key("energy_joules_total").Number(f.energy_joules_total);
  if (f.dcs_with_facility_power > 0) w.Key("facility_watts").Number(f.facility_power_watts);
  if (f.has_pue()) w.Key("pue").Number(f.pue());
  w.EndObject();
}

}  // namespace

Result<CapacityQuery> ParseCapacityQuery(const std::map<std::string, std::string>& params) {
  CapacityQuery q;
  auto get = [&](const char* k) -> std::string {
    auto it = params.find(k);
    return it == params.end() ? "" : it->second;
  };
  q.region = get("region");
  q.dc = get("dc");
  q.precision = get("precision");
  std::string min = get("min_free_flops");
  if (!min.empty()) {
    char* end = nullptr;
    double v = std::strtod(min.c_str(), &end);
    if (end != min.c_str() + min.size() || !std::isfinite(v) || v < 0) {
      return InvalidArgument("min_free_flops: expected a non-negative number of FLOPS, got \"" +
                             min + "\"");
    }
    q.min_free_flops = v;
  }
  return q;
}

std::string CapacityJson(const capacity::CapacitySnapshot& snap, const CapacityQuery& q) {
  JsonWriter w;
  w.BeginObject().Key("status").String("success").Key("data").BeginObject();
  w.Key("timestamp").Number(double(snap.at_ms) / 1000.0);
  w.Key("stale_after_seconds").Number(double(snap.stale_after_ms) / 1000.0);
  if (q.region.empty() && q.dc.empty() && Wanted(snap.alliance, q)) {
    w.Key("alliance").BeginObject();
    WriteGroup(snap.alliance, snap.at_ms, q, w);
    w.EndObject();
  }
  // A dc filter asks about dcs: region entries would only repeat other dcs' figures.
  if (q.dc.empty()) {
    w.Key("regions").BeginArray();
    for (const auto& [region, f] : snap.regions) {
      if ((!q.region.empty() && region != q.region) || !Wanted(f, q)) continue;
      w.BeginObject().Key("region").String(region);
      WriteGroup(f, snap.at_ms, q, w);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("dcs").BeginArray();
  auto link = snap.links.begin();
  for (const auto& [loc, f] : snap.dcs) {
    if ((!q.region.empty() && loc.region != q.region) || (!q.dc.empty() && loc.dc != q.dc) ||
        !Wanted(f, q)) {
      continue;
    }
    w.BeginObject().Key("region").String(loc.region).Key("dc").String(loc.dc);
    WriteGroup(f, snap.at_ms, q, w);
    w.Key("links").BeginArray();
    // Links are ordered (region, dc, ...), as dcs are: walk both together.
    while (link != snap.links.end() &&
           std::tie(link->first.region, link->first.dc) < std::tie(loc.region, loc.dc)) {
      ++link;
    }
    for (auto it = link;
         it != snap.links.end() && it->first.region == loc.region && it->first.dc == loc.dc; ++it) {
      const capacity::LinkFigures& l = it->second;
      w.BeginObject().Key("link").String(it->first.link).Key("peer_dc").String(it->first.peer_dc);
      w.Key("capacity_bytes_per_second").Number(l.capacity_bytes_per_second);
      w.Key("receive_bytes_per_second").Number(l.receive_bytes_per_second);
      w.Key("transmit_bytes_per_second").Number(l.transmit_bytes_per_second);
      if (l.capacity_bytes_per_second > 0) {
        w.Key("utilization_ratio")
            .Number(std::max(l.receive_utilization(), l.transmit_utilization()));
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject().EndObject();
  return std::move(w).Take();
}

std::string JsonError(std::string_view type, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Key("status").String("error").Key("errorType").String(type);
  w.Key("error").String(message).EndObject();
  return std::move(w).Take();
}

}  // namespace suanli::exporters
