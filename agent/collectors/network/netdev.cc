#include "agent/collectors/network/netdev.h"

#include <cerrno>

namespace suanli::agent {

namespace {

// /proc/net/dev's column order (receive 8, transmit 8), and node_exporter's names for them.
constexpr std::array<std::string_view, NetdevCollector::kFields> kNames = {
    "node_network_receive_bytes_total",      "node_network_receive_packets_total",
    "node_network_receive_errs_total",       "node_network_receive_drop_total",
    "node_network_receive_fifo_total",       "node_network_receive_frame_total",
    "node_network_receive_compressed_total", "node_network_receive_multicast_total",
    "node_network_transmit_bytes_total",     "node_network_transmit_packets_total",
    "node_network_transmit_errs_total",      "node_network_transmit_drop_total",
    "node_network_transmit_fifo_total",      "node_network_transmit_colls_total",
    "node_network_transmit_carrier_total",   "node_network_transmit_compressed_total",
};
constexpr std::array<std::string_view, NetdevCollector::kFields> kHelps = {
    "Network device statistic receive_bytes.",      "Network device statistic receive_packets.",
    "Network device statistic receive_errs.",       "Network device statistic receive_drop.",
    "Network device statistic receive_fifo.",       "Network device statistic receive_frame.",
    "Network device statistic receive_compressed.", "Network device statistic receive_multicast.",
    "Network device statistic transmit_bytes.",     "Network device statistic transmit_packets.",
    "Network device statistic transmit_errs.",      "Network device statistic transmit_drop.",
    "Network device statistic transmit_fifo.",      "Network device statistic transmit_colls.",
    "Network device statistic transmit_carrier.",   "Network device statistic transmit_compressed.",
};

}  // namespace

NetdevCollector::NetdevCollector(const HostPaths& paths, DeviceFilter filter)
    : dev_(paths.procfs + "/net/dev", 4096), filter_(std::move(filter)) {}

Result<std::unique_ptr<Collector>> NetdevCollector::Make(CollectorContext& ctx) {
  ASSIGN_OR_RETURN(DeviceFilter filter, DeviceFilter::FromOptions(ctx.options));
  return std::unique_ptr<Collector>(
      std::make_unique<NetdevCollector>(ctx.paths, std::move(filter)));
}

NetdevCollector::Device& NetdevCollector::Slot(std::string_view name, size_t index) {
  // Move the device's cached slot (name, labels) to `index`, or make one there.
  for (size_t i = index; i < devices_.size(); ++i) {
    if (devices_[i].name == name) {
      if (i != index) std::swap(devices_[i], devices_[index]);
      return devices_[index];
    }
  }
  Device d;
  d.name = std::string(name);
  d.labels = {Label{"device", d.name}};
  d.exported = filter_.Accepts(d.name);
  devices_.insert(devices_.begin() + static_cast<ptrdiff_t>(index), std::move(d));
  return devices_[index];
}

CollectResult NetdevCollector::Collect(Sweep& out) {
  if (Status st = dev_.Read(); !st.ok()) {
    if (dev_.error_number() == ENOENT) {
      return CollectResult::NoData("no " + dev_.path() + ": kernel without networking");
    }
    return CollectResult::Failed(st.message());
  }

  count_ = 0;
  std::string first_error;
  int skipped = 0;
  std::string_view rest = dev_.contents();
  for (int line_no = 1; !rest.empty(); ++line_no) {
    bool terminated = false;
    std::string_view line = NextLine(rest, &terminated);
    if (line_no <= 2) continue;  // the two header lines
    if (TrimBlanks(line).empty()) continue;
    auto skip = [&](std::string_view why) {
      if (first_error.empty()) first_error = LineError(dev_.path(), line_no, why);
      ++skipped;
    };
    if (!terminated) {
      skip("truncated line (no newline)");
      continue;
    }
    // "  eth0: 874354587 1036395 ...": long names run into the first number ("veth1234:5678"),
    // so split at the colon, not at blanks.
    size_t colon = line.rfind(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : TrimBlanks(line.substr(0, colon));
    if (name.empty()) {
      skip("want \"device: 16 counters\"");
      continue;
    }
    std::string_view fields = line.substr(colon + 1);
    std::array<uint64_t, kFields> values{};
    size_t n = 0;
    for (; n < kFields; ++n) {
      if (!ParseUint64(NextField(fields), values[n])) break;
    }
    if (n < kFields) {
      skip("want 16 counters after \"device:\"");
      continue;
    }
    Device& d = Slot(name, count_++);
    d.values = values;
  }

  if (count_ == 0) {
    return CollectResult::Failed(first_error.empty() ? dev_.path() + ": no device lines"
                                                     : first_error);
  }
  // Family by family, so that each Add finds its family at the back of the sweep.
  for (size_t f = 0; f < kFields; ++f) {
    for (size_t i = 0; i < count_; ++i) {
      if (!devices_[i].exported) continue;
      out.Add(kNames[f], kHelps[f], MetricType::kCounter, devices_[i].labels,
              static_cast<double>(devices_[i].values[f]));
    }
  }
  if (skipped > 0) {
    return {CollectResult::Kind::kOk,
            "skipped " + std::to_string(skipped) + " malformed line(s); first: " + first_error};
  }
  return CollectResult::Ok();
}

}  // namespace suanli::agent
