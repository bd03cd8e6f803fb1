#include "agent/collectors/power/hwmon.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>
#include <utility>

#include "agent/collectors/proc_file.h"
#include "core/file_util.h"
#include "core/labels.h"

namespace suanli::agent {

namespace {

// Closes the directory stream on every return path.
struct DirCloser {
  DIR* dir;
  ~DirCloser() {
    if (dir) ::closedir(dir);
  }
};

// node_exporter's cleanMetricName: lower case, every character outside [a-z0-9:_] replaced by
// '_' (one per UTF-8 character, as Go's regexp works on runes), '_' trimmed from both ends.
std::string CleanName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '_') {
      out += static_cast<char>(c);
      continue;
    }
    out += '_';
    if (c >= 0xC0) {
      while (i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) ++i;
    }
  }
  size_t b = out.find_first_not_of('_');
  if (b == std::string::npos) return {};
  size_t e = out.find_last_not_of('_');
  return out.substr(b, e - b + 1);
}

std::string_view Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view Dirname(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

// The resolved path (all symlinks followed), empty when it does not exist.
std::string RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
  return real ? std::string(real.get()) : std::string();
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A small sysfs text file, '\n' trimmed as node_exporter does; empty when unreadable.
std::string ReadText(const std::string& path, std::string& buf) {
  size_t size = 0;
  if (!ReadWholeFile(path, buf, size).ok()) return {};
  std::string_view text(buf.data(), size);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  while (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  std::string out(text);
  if (!IsValidUtf8(out)) {
    // A label value must be UTF-8 (remote_write rejects it otherwise): U+FFFD per bad byte.
    std::string fixed;
    for (char c : out) {
      if (static_cast<unsigned char>(c) < 0x80) {
        fixed += c;
      } else {
        fixed += "\xEF\xBF\xBD";
      }
    }
    out = std::move(fixed);
  }
  return out;
}

// "power1_average_interval" -> ("power", 1, "average_interval"), for the sensor types this
// collector reads. False for anything else ("name", "device", "power" the PM directory).
bool ParseAttrName(std::string_view file, std::string_view& type, int& num,
                   std::string_view& prop) {
  static constexpr std::string_view kTypes[] = {"power", "energy", "in", "curr"};
  size_t i = 0;
  while (i < file.size() && !(file[i] >= '0' && file[i] <= '9')) ++i;
  type = file.substr(0, i);
  if (std::find(std::begin(kTypes), std::end(kTypes), type) == std::end(kTypes)) return false;
  size_t j = i;
  while (j < file.size() && file[j] >= '0' && file[j] <= '9') ++j;
  if (j == i || j - i > 6) return false;
  int64_t n = 0;
  if (!ParseInt64(file.substr(i, j - i), n)) return false;
  num = static_cast<int>(n);
  if (j == file.size()) {
    prop = {};
    return true;
  }
  if (file[j] != '_' || j + 1 == file.size()) return false;
  prop = file.substr(j + 1);
  return true;
}

// Value attributes of a power channel that node_exporter exports as node_hwmon_power_<p>_watt.
constexpr std::string_view kWattProps[] = {"average",
                                           "average_highest",
                                           "average_lowest",
                                           "average_max",
                                           "average_min",
                                           "input_highest",
                                           "input_lowest",
                                           "cap",
                                           "cap_hyst",
                                           "cap_max",
                                           "cap_min",
                                           "max",
                                           "min",
                                           "crit",
                                           "lcrit",
                                           "rated_max",
                                           "rated_min"};
constexpr std::string_view kIntervalProps[] = {"average_interval", "average_interval_min",
                                               "average_interval_max"};

template <size_t N>
bool OneOf(std::string_view s, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

// The attributes of one chip: (type, index) -> property -> path.
using Channels = std::map<std::pair<std::string, int>, std::map<std::string, std::string>>;

void ListAttrs(const std::string& dir, Channels& channels) {
  DirCloser d{::opendir(dir.c_str())};
  if (d.dir == nullptr) return;
  while (struct dirent* e = ::readdir(d.dir)) {
    std::string_view type, prop;
    int num = 0;
    if (!ParseAttrName(e->d_name, type, num, prop) || prop.empty()) continue;
    // Later directories (device/) override, as node_exporter.
    channels[{std::string(type), num}][std::string(prop)] = dir + "/" + e->d_name;
  }
}

bool IsMax20730Family(std::string_view name) {
  return name == "max20710" || name == "max20730" || name == "max20734" || name == "max20743";
}

// Errors that mean "no value right now" (sensor not ready, channel not applicable).
bool IsTransient(int err) {
  return err == ENODATA || err == EAGAIN || err == EINVAL || err == EOPNOTSUPP || err == ENXIO;
}

constexpr std::string_view kPowerHelp =
    "Power drawn by a hwmon power rail in watts: measured by the chip, or its voltage times its "
    "current.";

}  // namespace

HwmonCollector::HwmonCollector(const HostPaths& paths, RescanTimer::Clock now)
    : dir_(paths.sysfs + "/class/hwmon"), list_timer_(std::move(now)) {
  buf_.resize(64);
}

bool HwmonCollector::List(int& err) {
  DirCloser dir{::opendir(dir_.c_str())};
  if (dir.dir == nullptr) {
    err = errno;
    return false;
  }
  size_t n = 0;
  errno = 0;
  while (struct dirent* e = ::readdir(dir.dir)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    // Assigned in place, so that the strings' buffers are reused between sweeps.
    if (n == entries_.size()) entries_.emplace_back();
    entries_[n].first.assign(name);
    entries_[n].second = e->d_ino;
    ++n;
  }
  err = errno;
  entries_.resize(n);
  std::sort(entries_.begin(), entries_.end());
  return err == 0;
}

size_t HwmonCollector::FamilyIndex(std::string name, std::string help, MetricType type) {
  for (size_t i = 0; i < families_.size(); ++i) {
    if (families_[i].name == name) return i;
  }
  families_.push_back({std::move(name), std::move(help), type});
  return families_.size() - 1;
}

size_t HwmonCollector::AddReading(std::string path) {
  for (size_t i = readings_.size(); i-- > 0;) {
    if (readings_[i].path == path) return i;
  }
  readings_.push_back({std::move(path), 0, false});
  return readings_.size() - 1;
}

bool HwmonCollector::Enabled(size_t enable) const {
  return enable == kNone || !readings_[enable].ok || readings_[enable].value != 0;
}

void HwmonCollector::Scan() {
  families_.clear();
  readings_.clear();
  exports_.clear();
  products_.clear();
  infos_.clear();

  struct Chip {
    std::string entry, base, chip_name, device_base, label;
  };
  std::vector<Chip> chips;
  for (const auto& [entry, ino] : entries_) {
    std::string path = dir_ + "/" + entry;
    if (!IsDirectory(path)) continue;  // follows the class symlinks
    Chip c;
    c.entry = entry;
    c.chip_name = CleanName(ReadText(path + "/name", buf_));
    // node_exporter's chip label: "<device type>_<device>" from the device link, which is
    // stable across boots where hwmonN numbering is not; else the name; else hwmonN.
    std::string device = RealPath(path + "/device");
    if (!device.empty()) {
      c.device_base = std::string(Basename(device));
      std::string dev_name = CleanName(c.device_base);
      std::string dev_type = CleanName(Basename(Dirname(device)));
      if (!dev_type.empty() && !dev_name.empty()) {
        c.base = dev_type + "_" + dev_name;
      } else {
        c.base = dev_name;
      }
    }
    if (c.base.empty()) c.base = c.chip_name;
    if (c.base.empty()) c.base = CleanName(Basename(RealPath(path)));
    if (c.base.empty()) continue;
    chips.push_back(std::move(c));
  }

  // Chips sharing a label (several hwmon devices under one parent, or same-name chips without a
  // device link) get "_<name>" when that tells them apart, else "_<hwmonN>", as node_exporter
  // 1.12; a label must never name two chips, or their series would merge.
  auto sharing = [&](auto same) { return std::count_if(chips.begin(), chips.end(), same); };
  for (Chip& c : chips) {
    if (sharing([&](const Chip& o) { return o.base == c.base; }) == 1) {
      c.label = c.base;
    } else if (!c.chip_name.empty() && sharing([&](const Chip& o) {
                                         return o.base == c.base && o.chip_name == c.chip_name;
                                       }) == 1) {
      c.label = c.base + "_" + c.chip_name;
    } else {
      c.label = c.base + "_" + CleanName(c.entry);
    }
  }
  for (size_t i = 0; i < chips.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (chips[j].label == chips[i].label) chips[i].label += "_" + CleanName(chips[i].entry);
    }
  }

  for (const Chip& c : chips) ScanChip(c.entry, c.label, c.chip_name, c.device_base);

  auto by_family = [](const auto& a, const auto& b) { return a.family < b.family; };
  std::stable_sort(exports_.begin(), exports_.end(), by_family);
  std::stable_sort(infos_.begin(), infos_.end(), by_family);
  scanned_ = entries_;
}

void HwmonCollector::ScanChip(const std::string& entry, const std::string& chip,
                              const std::string& chip_name, const std::string& device_base) {
  std::string path = dir_ + "/" + entry;
  Channels channels;
  ListAttrs(path, channels);
  bool has_device = IsDirectory(path + "/device");
  if (has_device) ListAttrs(path + "/device", channels);

  constexpr MetricType kGauge = MetricType::kGauge;
  if (!chip_name.empty()) {
    infos_.push_back({FamilyIndex("node_hwmon_chip_names",
                                  "Annotation metric for human-readable chip names", kGauge),
                      kNone,
                      {Label{"chip", chip}, Label{"chip_name", chip_name}}});
  }
  bool acpi_meter =
      chip_name == "power_meter" || device_base.rfind("ACPI000D", 0) == 0 ||
      (has_device && CleanName(ReadText(path + "/device/name", buf_)) == "power_meter");

  // Voltage and current channels, for chips without a power attribute.
  struct Rail {
    std::string input, average, label;
    size_t enable = kNone;
  };
  std::map<int, Rail> volts, amps;
  bool has_power = false;
  // value = raw * mul / div
  auto add = [&](size_t family, const std::string& file, size_t enable, double mul, double div,
                 std::vector<Label> labels) {
    exports_.push_back({family, AddReading(file), enable, mul, div, std::move(labels)});
  };

  for (const auto& [key, props] : channels) {
    const auto& [type, num] = key;
    std::string sensor = type + std::to_string(num);
    auto prop = [&props = props](const char* p) -> const std::string* {
      auto it = props.find(p);
      return it == props.end() ? nullptr : &it->second;
    };
    size_t enable = kNone;
    if (const std::string* p = prop("enable")) enable = AddReading(*p);
    std::string label;
    if (const std::string* p = prop("label")) label = ReadText(*p, buf_);

    if (type == "in" || type == "curr") {
      Rail& r = (type == "in" ? volts : amps)[num];
      if (const std::string* p = prop("input")) r.input = *p;
      if (const std::string* p = prop("average")) r.average = *p;
      r.label = label;
      r.enable = enable;
      continue;
    }
    if (!label.empty()) {
      infos_.push_back(
          {FamilyIndex("node_hwmon_sensor_label", "Label for given chip and sensor", kGauge),
           enable,
           {Label{"chip", chip}, Label{"label", label}, Label{"sensor", sensor}}});
    }
    std::vector<Label> labels = {Label{"chip", chip}, Label{"sensor", sensor}};
    if (type == "energy") {
      if (const std::string* p = prop("input")) {
        add(FamilyIndex("node_hwmon_energy_joule_total",
                        "Hardware monitor for joules used so far (input)", MetricType::kCounter),
            *p, enable, 1, 1e6, labels);
      }
      continue;
    }
    for (const auto& [p, file] : props) {  // a power channel
      if (p == "input") {
        add(FamilyIndex("node_hwmon_power_watt",
                        "Hardware monitor for power usage in watts (input)", kGauge),
            file, enable, 1, 1e6, labels);
      } else if (OneOf(p, kWattProps)) {
        add(FamilyIndex("node_hwmon_power_" + p + "_watt",
                        "Hardware monitor for power usage in watts (" + p + ")", kGauge),
            file, enable, 1, 1e6, labels);
      } else if (OneOf(p, kIntervalProps)) {
        add(FamilyIndex("node_hwmon_power_" + p + "_seconds",
                        "Hardware monitor power usage update interval (" + p + ")", kGauge),
            file, enable, 0.001, 1, labels);
      } else if (p == "alarm") {
        add(FamilyIndex("node_hwmon_power_alarm", "Hardware sensor alarm status (power)", kGauge),
            file, enable, 1, 1, labels);
      }
      // Anything else is a flag (enable, *_alarm, is_battery), a string (model_number,
      // accuracy "95.0%") or write-only (reset_history): not a number of watts.
    }
    const std::string* measured = prop("average");
    if (measured == nullptr) measured = prop("input");
    if (measured == nullptr) continue;
    has_power = true;
    add(FamilyIndex("suanli_hwmon_power_watts", std::string(kPowerHelp), kGauge), *measured, enable,
        1, 1e6, {Label{"chip", chip}, Label{"method", "measured"}, Label{"sensor", sensor}});
    if (acpi_meter && num == 1) {
      add(FamilyIndex("suanli_acpi_power_meter_watts",
                      "Whole-server power in watts from the ACPI power meter (ACPI000D).", kGauge),
          *measured, enable, 1, 1e6, {Label{"chip", chip}});
    }
  }
  if (has_power || volts.empty() || amps.empty()) return;

  // Which voltage goes with which current (rules in the header).
  std::vector<std::pair<int, int>> pairs;
  auto add_if_present = [&](int v, int a) {
    if (volts.count(v) && amps.count(a)) pairs.emplace_back(v, a);
  };
  if (chip_name == "ina3221") {
    for (int n = 1; n <= 3; ++n) add_if_present(n, n);
  } else if (chip_name.rfind("ina2", 0) == 0) {
    add_if_present(1, 1);
  } else if (IsMax20730Family(chip_name)) {
    add_if_present(2, 1);
  } else {
    for (const auto& [a, amp] : amps) {
      if (amp.label.empty()) continue;
      // PMBus names rails vin/iin and voutN/ioutN.
      std::string want = amp.label;
      if (want.rfind("iin", 0) == 0 || want.rfind("iout", 0) == 0) want[0] = 'v';
      for (const auto& [v, volt] : volts) {
        if (volt.label == amp.label || volt.label == want) {
          pairs.emplace_back(v, a);
          break;
        }
      }
    }
    if (pairs.empty()) {
      for (const auto& [a, amp] : amps) add_if_present(a, a);
    }
  }
  for (const auto& [v, a] : pairs) {
    const Rail& volt = volts[v];
    const Rail& amp = amps[a];
    bool averages = !volt.average.empty() && !amp.average.empty();
    const std::string& vpath = averages ? volt.average : volt.input;
    const std::string& apath = averages ? amp.average : amp.input;
    if (vpath.empty() || apath.empty()) continue;
    products_.push_back({AddReading(vpath),
                         AddReading(apath),
                         volt.enable,
                         amp.enable,
                         {Label{"chip", chip}, Label{"method", "voltage_x_current"},
                          Label{"sensor", "curr" + std::to_string(a)}}});
  }
}

CollectResult HwmonCollector::Collect(Sweep& out) {
  if (entries_.empty() && !list_timer_.Due()) return no_chips_;
  int err = 0;
  if (!List(err)) {
    if (err == ENOENT || err == ENOTDIR) {
      entries_.clear();
      scanned_.clear();
      no_chips_ = CollectResult::NoData("no " + dir_ + ": no hwmon class in sysfs");
      list_timer_.Missed();
      return no_chips_;
    }
    return CollectResult::Failed(ErrnoStatus(err, dir_).message());
  }
  if (entries_.empty()) {
    no_chips_ = CollectResult::NoData("no hwmon chips under " + dir_);
    list_timer_.Missed();
    return no_chips_;
  }
  list_timer_.Found();
  if (rescan_ || entries_ != scanned_) {
    Scan();
    rescan_ = false;
  }

  std::string error;
  for (Reading& r : readings_) {
    r.ok = false;
    size_t size = 0;
    int e = 0;
    Status st = ReadWholeFile(r.path, buf_, size, &e);
    if (!st.ok()) {
      if (e == ENOENT || e == ENODEV) {
        rescan_ = true;  // the chip went away or was re-registered
      } else if (!IsTransient(e) && error.empty()) {
        error = st.message();
      }
      continue;
    }
    if (!ParseDouble(TrimBlanks(std::string_view(buf_.data(), size)), r.value)) {
      if (error.empty()) error = r.path + ": not a number";
      continue;
    }
    r.ok = true;
  }

  for (const Export& e : exports_) {
    const Reading& r = readings_[e.reading];
    if (!r.ok || !Enabled(e.enable)) continue;
    const Family& f = families_[e.family];
    // Multiply then divide, as node_exporter (value/1000000.0, value*0.001): the same bits.
    out.Add(f.name, f.help, f.type, e.labels, r.value * e.mul / e.div);
  }
  for (const Product& p : products_) {
    const Reading& v = readings_[p.volts];
    const Reading& a = readings_[p.amps];
    if (!v.ok || !a.ok || !Enabled(p.volts_enable) || !Enabled(p.amps_enable)) continue;
    // mV × mA = µW.
    out.Add("suanli_hwmon_power_watts", kPowerHelp, MetricType::kGauge, p.labels,
            v.value * a.value / 1e6);
  }
  for (const Info& i : infos_) {
    if (!Enabled(i.enable)) continue;
    const Family& f = families_[i.family];
    out.Add(f.name, f.help, f.type, i.labels, 1);
  }
  if (!error.empty()) return CollectResult::Failed(std::move(error));
  return CollectResult::Ok();
}

}  // namespace suanli::agent
