#include "agent/links.h"

#include <charconv>
#include <cmath>

namespace suanli::agent {

Result<double> ParseBitsPerSecond(const std::string& text) {
  std::string t = text;
  if (t.size() > 3 && t.compare(t.size() - 3, 3, "bps") == 0) t.resize(t.size() - 3);
  double mult = 1;
  if (!t.empty()) {
    switch (t.back()) {
      case 'K':
      case 'k':
        mult = 1e3;
        break;
      case 'M':
        mult = 1e6;
        break;
      case 'G':
        mult = 1e9;
        break;
      case 'T':
        mult = 1e12;
        break;
      default:
        break;
    }
    if (mult != 1) t.pop_back();
  }
  double v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size() || !std::isfinite(v) || v <= 0) {
    return InvalidArgument("bad capacity \"" + text +
                           "\": expected bits per second such as 100G, 400M or 1e11");
  }
  return v * mult;
}

Result<std::vector<LinkSpec>> ParseLinks(ConfigMap& root) {
  ASSIGN_OR_RETURN(std::vector<ConfigMap> items, root.List("links"));
  std::vector<LinkSpec> links;
  for (ConfigMap& m : items) {
    LinkSpec l;
    std::string capacity;
    RETURN_IF_ERROR(m.Get("device", &l.device));
    RETURN_IF_ERROR(m.Get("name", &l.name));
    RETURN_IF_ERROR(m.Get("peer_dc", &l.peer_dc));
    RETURN_IF_ERROR(m.Get("capacity", &capacity));
    if (l.device.empty()) return m.Error("device", "is required");
    if (l.name.empty()) return m.Error("name", "is required");
    if (l.peer_dc.empty()) return m.Error("peer_dc", "is required");
    if (capacity.empty()) return m.Error("capacity", "is required (e.g. 100G)");
    auto bps = ParseBitsPerSecond(capacity);
    if (!bps.ok()) return m.Error("capacity", bps.status().message());
    l.capacity_bits_per_second = *bps;
    RETURN_IF_ERROR(m.Finish());
    for (const LinkSpec& other : links) {
      if (other.name == l.name) return m.Error("name", "link \"" + l.name + "\" declared twice");
    }
    links.push_back(std::move(l));
  }
  return links;
}

namespace {
const Point* FindDevice(const Family* f, const std::string& device) {
  if (f == nullptr) return nullptr;
  for (const Point& p : f->points) {
    for (const Label& l : p.labels) {
      if (l.name == "device" && l.value == device) return &p;
    }
  }
  return nullptr;
}
}  // namespace

std::vector<std::string> Links::Derive(Sweep& sweep) const {
  std::vector<std::string> missing;
  if (specs_.empty()) return missing;
  const Family* rx = sweep.Find("node_network_receive_bytes_total");
  const Family* tx = sweep.Find("node_network_transmit_bytes_total");
  const Family* up = sweep.Find("node_network_up");
  struct Out {
    const char* name;
    const char* help;
    MetricType type;
    std::vector<Label> labels;
    double value;
  };
  std::vector<Out> out;  // collected first: Add() may reallocate the families found above
  for (const LinkSpec& l : specs_) {
    const Point* r = FindDevice(rx, l.device);
    const Point* t = FindDevice(tx, l.device);
    const Point* u = FindDevice(up, l.device);
    std::vector<Label> id = {{"link", l.name}, {"peer_dc", l.peer_dc}};
    std::vector<Label> with_device = {
        {"device", l.device}, {"link", l.name}, {"peer_dc", l.peer_dc}};
    out.push_back({"suanli_link_capacity_bits_per_second",
                   "Provisioned capacity of an inter-dc link, from the agent's configuration.",
                   MetricType::kGauge, id, l.capacity_bits_per_second});
    if (r == nullptr || t == nullptr) {
      missing.push_back(l.device);
      continue;
    }
    out.push_back({"suanli_link_receive_bytes_total", "Bytes received over an inter-dc link.",
                   MetricType::kCounter, with_device, r->value});
    out.push_back({"suanli_link_transmit_bytes_total", "Bytes sent over an inter-dc link.",
                   MetricType::kCounter, with_device, t->value});
    if (u != nullptr) {
      out.push_back({"suanli_link_up", "1 when the link's interface is operationally up.",
                     MetricType::kGauge, id, u->value});
    }
  }
  for (Out& o : out) sweep.Add(o.name, o.help, o.type, std::move(o.labels), o.value);
  return missing;
}

}  // namespace suanli::agent
