// NetclassCollector: interface properties from /sys/class/net/<device>/, as node_exporter's
// netclass collector (all gauges, label {device}):
//   node_network_up                     1 if operstate is "up", else 0
//   node_network_info{address,adminstate,broadcast,device,duplex,ifalias,operstate}  always 1;
//                                       adminstate is "up"/"down" from IFF_UP in flags
//   node_network_carrier                carrier (absent while the link is administratively down)
//   node_network_mtu_bytes              mtu, bytes
//   node_network_speed_bytes            speed (Mb/s) * 125000, bytes per second; absent when the
//                                       kernel reports -1 (unknown) or refuses the read, as
//                                       node_exporter with
//                                       --collector.netclass.ignore-invalid-speed
//   node_network_transmit_queue_length  tx_queue_len, packets
// An attribute the kernel refuses (EINVAL on a down link, EOPNOTSUPP) or that does not parse is
// left out for that device, as node_exporter does. Directory entries that are not directories
// (bonding_masters) are skipped; /sys/class/net entries are symlinks into /sys/devices.
//
// Devices: every directory of /sys/class/net, unless collector_config.netclass.device_include
// or device_exclude (node_exporter's --collector.netclass.ignored-devices is the exclude pattern)
// says otherwise: see DeviceFilter. An excluded device's files are never opened.
//
// Cost: the ten attribute files of a device stay open between sweeps (read again with pread, see
// ProcFile), for the first kMaxDevicesKeptOpen devices in name order; a host with more (a
// Kubernetes node's veths) opens the rest at each read, so the agent never needs more than a few
// hundred descriptors. Kept open, an attribute costs one pread instead of open, two reads and
// close (4 interfaces: ~500 -> ~200 us per sweep on a 2-core VM).
//
// Outcomes: no /sys/class/net is NoData; another error listing it is Failed.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/network/device_filter.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class NetclassCollector : public Collector {
 public:
  explicit NetclassCollector(const HostPaths& paths, DeviceFilter filter = {});
  // From collector_config.netclass: device_include, device_exclude.
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);
  CollectResult Collect(Sweep& out) override;

 private:
  enum Attr {
    kOperstate,
    kAddress,
    kBroadcast,
    kDuplex,
    kIfalias,
    kFlags,
    kCarrier,
    kMtu,
    kSpeed,
    kTxQueueLen,
    kAttrCount
  };
  static constexpr size_t kMaxDevicesKeptOpen = 64;
  struct Device {
    std::string name;
    std::vector<ProcFile> files;  // kAttrCount, built once per device
    bool kept_open = false;       // its files keep their descriptors (within the cap)
    std::vector<Label> labels;    // {device}
    std::vector<Label> info;      // node_network_info's labels; values rewritten in place each read
    double up = 0;
    std::optional<int64_t> carrier, mtu, speed, tx_queue_len;
  };
  // Reads one attribute; the trimmed text (valid until that file is read again), or nullopt when
  // unreadable.
  static std::optional<std::string_view> ReadAttr(ProcFile& file);
  static std::optional<int64_t> ReadInt(ProcFile& file);
  static void ReadDevice(Device& d);
  // Whether the filter lets the device through (remembered per name).
  bool Exported(std::string_view name);

  std::string dir_;  // <sysfs>/class/net
  DeviceFilter filter_;
  // The filter's verdicts on names seen so far (a container host's veths come and go by the
  // thousand: forgotten when the map grows past a bound, then matched again).
  std::unordered_map<std::string, bool> verdicts_;
  std::vector<std::string> names_;  // scratch: this listing, sorted
  std::vector<Device> devices_;     // same order as names_
};

}  // namespace suanli::agent
