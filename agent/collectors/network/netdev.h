// NetdevCollector: per-interface traffic counters from /proc/net/dev, as node_exporter's netdev
// collector reading procfs (all counters, label {device}):
//   node_network_receive_{bytes,packets,errs,drop,fifo,frame,compressed,multicast}_total
//   node_network_transmit_{bytes,packets,errs,drop,fifo,colls,carrier,compressed}_total
// Every device is exported, lo included (node_exporter's default), unless
// collector_config.netdev.device_include or device_exclude (node_exporter's
// --collector.netdev.device-include / device-exclude) says otherwise: see DeviceFilter. A device
// is matched once, when it first appears, so the patterns cost nothing in the steady state.
// node_exporter >= 1.7 reads netlink by default, which adds receive_nohandler_total;
// /proc/net/dev does not carry it.
//
// Outcomes: no /proc/net/dev (a kernel without networking) is NoData; another read error, or
// no valid device line, is Failed; malformed lines are skipped.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/network/device_filter.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class NetdevCollector : public Collector {
 public:
  explicit NetdevCollector(const HostPaths& paths, DeviceFilter filter = {});
  // From collector_config.netdev: device_include, device_exclude.
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);
  CollectResult Collect(Sweep& out) override;

  static constexpr size_t kFields = 16;

 private:
  struct Device {
    std::string name;
    std::vector<Label> labels;  // {device=name}, built once
    std::array<uint64_t, kFields> values{};
    bool exported = true;  // the filter's verdict, taken when the slot is made
  };
  // The device's slot; devices come in the same order every read, so `index` almost always hits.
  Device& Slot(std::string_view name, size_t index);

  ProcFile dev_;
  DeviceFilter filter_;
  std::vector<Device> devices_;  // the first count_ are this read's, in file order
  size_t count_ = 0;
};

}  // namespace suanli::agent
