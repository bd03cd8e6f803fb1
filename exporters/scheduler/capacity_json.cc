#include "exporters/scheduler/capacity_json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <tuple>

#include "exporters/scheduler/json_output.h"

namespace suanli::exporters {
namespace {

using capacity::ComputeFigures;
using capacity::GroupFigures;

using json::IntMember;
using json::Key;
using json::NumberMember;
using json::StringMember;
using json::Writer;

// Whether an entry passes the precision and min_free_flops filters.
bool Wanted(const GroupFigures& f, const CapacityQuery& q) {
  if (q.precision.empty() && !q.min_free_flops) return true;
  for (const auto& [precision, c] : f.compute) {
    if (!q.precision.empty() && precision != q.precision) continue;
    if (!q.min_free_flops || c.free_flops >= *q.min_free_flops) return true;
  }
  return false;
}

void WriteGroup(const GroupFigures& f, int64_t now_ms, const CapacityQuery& q, Writer& w) {
  if (f.newest_sample_ms > 0) {
    NumberMember(w, "freshness_seconds", double(now_ms - f.newest_sample_ms) / 1000.0);
    NumberMember(w, "newest_sample_timestamp", double(f.newest_sample_ms) / 1000.0);
  } else {
    Key(w, "freshness_seconds");
    w.Null();
    Key(w, "newest_sample_timestamp");
    w.Null();
  }
  Key(w, "nodes");
  w.StartObject();
  IntMember(w, "up", f.nodes_up);
  IntMember(w, "stale", f.nodes_stale);
  IntMember(w, "gone", f.nodes_gone);
  w.EndObject();
  Key(w, "cpu");
  w.StartObject();
  NumberMember(w, "cores", f.cpu_cores);
  NumberMember(w, "utilization_ratio", f.cpu_utilization());
  w.EndObject();
  Key(w, "memory");
  w.StartObject();
  NumberMember(w, "total_bytes", f.memory_total_bytes);
  NumberMember(w, "available_bytes", f.memory_available_bytes);
  w.EndObject();
  Key(w, "gpu");
  w.StartObject();
  NumberMember(w, "count", f.gpus);
  NumberMember(w, "utilization_ratio", f.gpu_utilization());
  NumberMember(w, "memory_total_bytes", f.gpu_memory_total_bytes);
  NumberMember(w, "memory_used_bytes", f.gpu_memory_used_bytes);
  NumberMember(w, "power_watts", f.gpu_power_watts);
  w.EndObject();
  Key(w, "compute");
  w.StartObject();
  for (const auto& [precision, c] : f.compute) {
    if (!q.precision.empty() && precision != q.precision) continue;
    Key(w, precision);
    w.StartObject();
    NumberMember(w, "capacity_flops", c.capacity_flops);
    NumberMember(w, "free_flops", c.free_flops);
    if (c.capacity_flops > 0) {
      NumberMember(w, "free_ratio", c.free_flops / c.capacity_flops);
    }
    Key(w, "by_source");
    w.StartObject();
    Key(w, "cpu");
    w.StartObject();
    NumberMember(w, "capacity_flops", c.cpu_capacity_flops);
    NumberMember(w, "free_flops", c.cpu_free_flops);
    w.EndObject();
    Key(w, "gpu");
    w.StartObject();
    NumberMember(w, "capacity_flops", c.gpu_capacity_flops);
    NumberMember(w, "free_flops", c.gpu_free_flops);
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  Key(w, "power");
  w.StartObject();
  NumberMember(w, "watts", f.power_watts);
  IntMember(w, "nodes_reporting", f.nodes_with_power);
  // The part read from chassis shared by several servers, each counted once (absent: none).
  if (f.shared_power_watts > 0) {
    NumberMember(w, "shared_watts", f.shared_power_watts);
  }
  // Estimated from utilization where a node has no meter (method="estimated"): shown apart,
  // never part of `watts`, with how many nodes it covers.
  NumberMember(w, "estimated_watts", f.estimated_power_watts);
  IntMember(w, "estimated_nodes", f.nodes_with_estimated_power);
  NumberMember(w, "energy_joules_total", f.energy_joules_total);
  NumberMember(w, "estimated_energy_joules_total", f.estimated_energy_joules_total);
  if (f.dcs_with_facility_power > 0) {
    NumberMember(w, "facility_watts", f.facility_power_watts);
  }
  if (f.has_pue()) {
    NumberMember(w, "pue", f.pue());
  }
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
  // About 2 KB per entry: one allocation instead of a dozen growing copies.
  rapidjson::StringBuffer out(nullptr, 2048 * (snap.dcs.size() + snap.regions.size() + 1));
  Writer w(out);
  w.StartObject();
  StringMember(w, "status", "success");
  Key(w, "data");
  w.StartObject();
  NumberMember(w, "timestamp", double(snap.at_ms) / 1000.0);
  NumberMember(w, "stale_after_seconds", double(snap.stale_after_ms) / 1000.0);
  if (q.region.empty() && q.dc.empty() && Wanted(snap.alliance, q)) {
    Key(w, "alliance");
    w.StartObject();
    WriteGroup(snap.alliance, snap.at_ms, q, w);
    w.EndObject();
  }
  // A dc filter asks about dcs: region entries would only repeat other dcs' figures.
  if (q.dc.empty()) {
    Key(w, "regions");
    w.StartArray();
    for (const auto& [region, f] : snap.regions) {
      if ((!q.region.empty() && region != q.region) || !Wanted(f, q)) continue;
      w.StartObject();
      StringMember(w, "region", region);
      WriteGroup(f, snap.at_ms, q, w);
      w.EndObject();
    }
    w.EndArray();
  }
  Key(w, "dcs");
  w.StartArray();
  auto link = snap.links.begin();
  for (const auto& [loc, f] : snap.dcs) {
    if ((!q.region.empty() && loc.region != q.region) || (!q.dc.empty() && loc.dc != q.dc) ||
        !Wanted(f, q)) {
      continue;
    }
    w.StartObject();
    StringMember(w, "region", loc.region);
    StringMember(w, "dc", loc.dc);
    WriteGroup(f, snap.at_ms, q, w);
    Key(w, "links");
    w.StartArray();
    // Links are ordered (region, dc, ...), as dcs are: walk both together.
    while (link != snap.links.end() &&
           std::tie(link->first.region, link->first.dc) < std::tie(loc.region, loc.dc)) {
      ++link;
    }
    for (auto it = link;
         it != snap.links.end() && it->first.region == loc.region && it->first.dc == loc.dc; ++it) {
      const capacity::LinkFigures& l = it->second;
      w.StartObject();
      StringMember(w, "link", it->first.link);
      StringMember(w, "peer_dc", it->first.peer_dc);
      NumberMember(w, "capacity_bytes_per_second", l.capacity_bytes_per_second);
      NumberMember(w, "receive_bytes_per_second", l.receive_bytes_per_second);
      NumberMember(w, "transmit_bytes_per_second", l.transmit_bytes_per_second);
      if (l.capacity_bytes_per_second > 0) {
        NumberMember(w, "utilization_ratio",
                     std::max(l.receive_utilization(), l.transmit_utilization()));
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  return json::Text(out);
}

std::string JsonError(std::string_view type, std::string_view message) {
  rapidjson::StringBuffer out;
  Writer w(out);
  w.StartObject();
  StringMember(w, "status", "error");
  StringMember(w, "errorType", type);
  StringMember(w, "error", message);
  w.EndObject();
  return json::Text(out);
}

}  // namespace suanli::exporters
