#include "exporters/prometheus/capacity_metrics.h"

#include <functional>

#include "exporters/prometheus/text_exposition.h"

namespace suanli::exporters {
namespace {

using capacity::GroupFigures;
using prometheus::MetricType;
using Labels = std::vector<prometheus::ClientMetric::Label>;

struct Figure {
  const char* suffix;
  const char* help;
  std::function<double(const GroupFigures&)> value;
};

// One table drives both levels, so a dc figure never lacks its region twin.
const std::vector<Figure>& Figures() {
  static const std::vector<Figure> figures = {
      {"cpu_cores", "CPU cores (logical CPUs) of the nodes reporting.",
       [](const GroupFigures& f) { return f.cpu_cores; }},
      {"cpu_utilization_ratio", "Share of CPU time in use over the nodes' last interval (0-1).",
       [](const GroupFigures& f) { return f.cpu_utilization(); }},
      {"memory_total_bytes", "Memory of the nodes reporting.",
       [](const GroupFigures& f) { return f.memory_total_bytes; }},
      {"memory_available_bytes", "Memory available for new work on the nodes reporting.",
       [](const GroupFigures& f) { return f.memory_available_bytes; }},
      {"network_receive_bytes_per_second", "Bytes received per second, all non-loopback NICs.",
       [](const GroupFigures& f) { return f.network_receive_bytes_per_second; }},
      {"network_transmit_bytes_per_second", "Bytes sent per second, all non-loopback NICs.",
       [](const GroupFigures& f) { return f.network_transmit_bytes_per_second; }},
  };
  return figures;
}

template <typename Key>
void AddLevel(const std::string& level, const std::map<Key, GroupFigures>& groups,
              const std::function<Labels(const Key&)>& labels_of,
              std::vector<prometheus::MetricFamily>& out) {
  FamilyBuilder nodes("suanli_" + level + "_nodes",
                      "Nodes by state: up (reporting) or stale (silent past capacity.stale_after).",
                      MetricType::Gauge);
  for (const auto& [key, f] : groups) {
    Labels up = labels_of(key), stale = labels_of(key);
    up.push_back({"state", "up"});
    stale.push_back({"state", "stale"});
    nodes.Add(std::move(up), static_cast<double>(f.nodes_up));
    nodes.Add(std::move(stale), static_cast<double>(f.nodes_stale));
  }
  out.push_back(std::move(nodes).Build());
  for (const Figure& fig : Figures()) {
    FamilyBuilder b("suanli_" + level + "_" + fig.suffix, fig.help, MetricType::Gauge);
    for (const auto& [key, f] : groups) b.Add(labels_of(key), fig.value(f));
    out.push_back(std::move(b).Build());
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> CapacityFamilies(const capacity::CapacitySnapshot& snap) {
  std::vector<prometheus::MetricFamily> out;
  if (snap.dcs.empty()) return out;
  AddLevel<capacity::Location>(
      "dc", snap.dcs,
      [](const capacity::Location& l) { return Labels{{"dc", l.dc}, {"region", l.region}}; }, out);
  AddLevel<std::string>(
      "region", snap.regions, [](const std::string& r) { return Labels{{"region", r}}; }, out);
  return out;
}

}  // namespace suanli::exporters
