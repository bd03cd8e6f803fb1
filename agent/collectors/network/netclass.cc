#include "agent/collectors/network/netclass.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>

#include "agent/collectors/proc_file.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

// In the order of NetclassCollector::Attr.
constexpr std::array<std::string_view, 10> kAttrFiles = {
    "operstate", "address", "broadcast", "duplex", "ifalias",
    "flags",     "carrier", "mtu",       "speed",  "tx_queue_len"};

constexpr int64_t kIffUp = 1;  // IFF_UP in <net/if.h>
// speed is in Mb/s: 1e6 bits / 8.
constexpr int64_t kBytesPerMegabit = 125000;

// Closes the directory stream on every return path.
struct DirCloser {
  DIR* dir;
  ~DirCloser() {
    if (dir) ::closedir(dir);
  }
};

}  // namespace

NetclassCollector::NetclassCollector(const HostPaths& paths, DeviceFilter filter)
    : dir_(paths.sysfs + "/class/net"), filter_(std::move(filter)) {}

Result<std::unique_ptr<Collector>> NetclassCollector::Make(CollectorContext& ctx) {
  ASSIGN_OR_RETURN(DeviceFilter filter, DeviceFilter::FromOptions(ctx.options));
  return std::unique_ptr<Collector>(
      std::make_unique<NetclassCollector>(ctx.paths, std::move(filter)));
}

bool NetclassCollector::Exported(std::string_view name) {
  if (!filter_.active()) return true;
  constexpr size_t kMaxVerdicts = 4096;
  if (verdicts_.size() >= kMaxVerdicts) verdicts_.clear();
  auto [it, added] = verdicts_.try_emplace(std::string(name), false);
  if (added) it->second = filter_.Accepts(name);
  return it->second;
}

std::optional<std::string_view> NetclassCollector::ReadAttr(ProcFile& file) {
  if (!file.Read().ok()) return std::nullopt;
  return TrimBlanks(file.contents());
}

std::optional<int64_t> NetclassCollector::ReadInt(ProcFile& file) {
  std::optional<std::string_view> text = ReadAttr(file);
  if (!text) return std::nullopt;
  int64_t v = 0;
  // flags is printed in hex ("0x1303").
  bool ok = text->substr(0, 2) == "0x" ? ParseInt64(text->substr(2), v, 16) : ParseInt64(*text, v);
  if (!ok) return std::nullopt;
  return v;
}

void NetclassCollector::ReadDevice(Device& d) {
  // info's labels, sorted by name: address, adminstate, broadcast, device, duplex, ifalias,
  // operstate. Values are assigned in place so that their buffers are reused.
  auto set = [&](size_t label, Attr attr) {
    std::optional<std::string_view> text = ReadAttr(d.files[attr]);
    d.info[label].value.assign(text ? *text : std::string_view{});
  };
  set(0, kAddress);
  set(2, kBroadcast);
  set(4, kDuplex);
  set(5, kIfalias);
  set(6, kOperstate);
  d.up = d.info[6].value == "up" ? 1 : 0;
  std::optional<int64_t> flags = ReadInt(d.files[kFlags]);
  d.info[1].value.assign(!flags ? "unknown" : (*flags & kIffUp) ? "up" : "down");

  d.carrier = ReadInt(d.files[kCarrier]);
  d.mtu = ReadInt(d.files[kMtu]);
  d.speed = ReadInt(d.files[kSpeed]);
  if (d.speed && *d.speed < 0) d.speed.reset();  // -1: unknown (no link, virtual device)
  d.tx_queue_len = ReadInt(d.files[kTxQueueLen]);
}

CollectResult NetclassCollector::Collect(Sweep& out) {
  DirCloser dir{::opendir(dir_.c_str())};
  if (dir.dir == nullptr) {
    int err = errno;
    if (err == ENOENT) return CollectResult::NoData("no " + dir_ + ": no network class in sysfs");
    return CollectResult::Failed(ErrnoStatus(err, dir_).message());
  }
  names_.clear();
  errno = 0;
  while (struct dirent* e = ::readdir(dir.dir)) {
    std::string_view name = e->d_name;
    if (name == "." || name == ".." || !Exported(name)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::fstatat(::dirfd(dir.dir), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) names_.emplace_back(name);  // interface names fit std::string's inline buffer
  }
  if (errno != 0) return CollectResult::Failed(ErrnoStatus(errno, dir_).message());
  std::sort(names_.begin(), names_.end());

  bool same = names_.size() == devices_.size();
  for (size_t i = 0; same && i < names_.size(); ++i) same = names_[i] == devices_[i].name;
  if (!same) {
    // Interfaces came or went: keep the known ones' files and labels, build the new ones'.
    std::vector<Device> next(names_.size());
    size_t kept_open = 0;
    for (size_t i = 0; i < names_.size(); ++i) {
      auto old = std::find_if(devices_.begin(), devices_.end(),
                              [&](const Device& d) { return d.name == names_[i]; });
      if (old != devices_.end()) {
        next[i] = std::move(*old);
        kept_open += next[i].kept_open ? 1 : 0;
      }
    }
    for (size_t i = 0; i < names_.size(); ++i) {
      Device& d = next[i];
      if (!d.name.empty()) continue;  // known
      d.name = names_[i];
      d.kept_open = kept_open < kMaxDevicesKeptOpen;
      kept_open += d.kept_open ? 1 : 0;
      std::string base = dir_ + "/" + d.name + "/";
      static_assert(kAttrFiles.size() == kAttrCount);
      d.files.reserve(kAttrCount);
      for (size_t a = 0; a < kAttrCount; ++a) {
        // Attributes are one short line; sized for ifalias (IFALIASZ is 256).
        d.files.emplace_back(base + std::string(kAttrFiles[a]), 64, ProcFile::Layout::kWhole,
                             d.kept_open ? ProcFile::Keep::kOpen : ProcFile::Keep::kNever);
      }
      d.labels = {Label{"device", d.name}};
      d.info = {Label{"address", ""},    Label{"adminstate", ""}, Label{"broadcast", ""},
                Label{"device", d.name}, Label{"duplex", ""},     Label{"ifalias", ""},
                Label{"operstate", ""}};
    }
    devices_ = std::move(next);
  }

  for (Device& d : devices_) ReadDevice(d);

  // Family by family, so that each Add finds its family at the back of the sweep.
  constexpr MetricType kGauge = MetricType::kGauge;
  for (const Device& d : devices_) {
    out.Add("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", kGauge, d.labels,
            d.up);
  }
  for (const Device& d : devices_) {
    out.Add("node_network_info", "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            kGauge, d.info, 1);
  }
  auto emit = [&](std::string_view name, std::string_view help,
                  std::optional<int64_t> Device::*field, double scale) {
    for (const Device& d : devices_) {
      if (!(d.*field)) continue;
      out.Add(name, help, kGauge, d.labels, static_cast<double>(*(d.*field)) * scale);
    }
  };
  emit("node_network_carrier", "Network device property: carrier", &Device::carrier, 1);
  emit("node_network_mtu_bytes", "Network device property: mtu_bytes", &Device::mtu, 1);
  emit("node_network_speed_bytes", "Network device property: speed_bytes", &Device::speed,
       kBytesPerMegabit);
  emit("node_network_transmit_queue_length", "Network device property: transmit_queue_length",
       &Device::tx_queue_len, 1);
  return CollectResult::Ok();
}

}  // namespace suanli::agent
