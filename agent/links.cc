#include "agent/links.h"

#include <algorithm>
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
    const bool router = m.Has("snmp");
    if (router) {
      if (m.Has("device")) {
        return m.Error(
            "device", "set device (a NIC of this server) or snmp (a router's interface), not both");
      }
      ASSIGN_OR_RETURN(ConfigMap snmp, m.Map("snmp"));
      ASSIGN_OR_RETURN(l.snmp, ParseSnmpLinkOptions(snmp));
    } else if (l.device.empty()) {
      return m.Error("device", "is required (or snmp, for a link that ends on a router)");
    }
    if (l.name.empty()) return m.Error("name", "is required");
    if (l.peer_dc.empty()) return m.Error("peer_dc", "is required");
    if (capacity.empty() && !router) return m.Error("capacity", "is required (e.g. 100G)");
    if (!capacity.empty()) {
      auto bps = ParseBitsPerSecond(capacity);
      if (!bps.ok()) return m.Error("capacity", bps.status().message());
      l.capacity_bits_per_second = *bps;
    }
    RETURN_IF_ERROR(m.Finish());
    for (const LinkSpec& other : links) {
      if (other.name == l.name) return m.Error("name", "link \"" + l.name + "\" declared twice");
      // One router, one session: its figures are labelled by target alone.
      if (l.snmp && other.snmp && other.snmp->session.target == l.snmp->session.target &&
          !(other.snmp->session == l.snmp->session &&
            other.snmp->community_file == l.snmp->community_file &&
            other.snmp->auth_passphrase_file == l.snmp->auth_passphrase_file &&
            other.snmp->priv_passphrase_file == l.snmp->priv_passphrase_file)) {
        return m.Error("snmp", "router " + l.snmp->session.target + " is polled by link \"" +
                                   other.name +
                                   "\" with other settings: links on one router share its "
                                   "version, credentials, timeout and retries");
      }
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

Links::Links(std::vector<LinkSpec> specs, std::chrono::milliseconds snmp_interval) {
  std::vector<SnmpLink> routers;
  for (LinkSpec& l : specs) {
    if (l.snmp) {
      routers.push_back({l.name, l.peer_dc, l.capacity_bits_per_second, *l.snmp});
    } else {
      specs_.push_back(std::move(l));
    }
  }
  if (!routers.empty()) {
    routers_ = std::make_unique<SnmpLinkPoller>(
        std::move(routers),
        std::max<std::chrono::milliseconds>(snmp_interval, std::chrono::seconds(5)));
  }
}

std::vector<std::string> Links::Derive(Sweep& sweep) {
  std::vector<std::string> missing;
  if (routers_ != nullptr) routers_->AddTo(sweep);
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
    out.push_back(
        {"suanli_link_capacity_bits_per_second",
         "Provisioned capacity of an inter-dc link: configured, else the router interface's "
         "ifHighSpeed.",
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
