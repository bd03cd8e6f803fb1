#include "agent/collectors/power/rapl.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>

#include "agent/collectors/proc_file.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

constexpr std::string_view kMsrPrefix = "intel-rapl:";
constexpr std::string_view kMmioPrefix = "intel-rapl-mmio:";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsMetricChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// node_exporter's SanitizeMetricName: every run of invalid characters, with the underscores
// around it, becomes one '_'.
std::string SanitizeMetricName(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (IsMetricChar(s[i])) {
      out += s[i++];
      continue;
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    while (i < s.size() && (!IsMetricChar(s[i]) || s[i] == '_')) ++i;
    out += '_';
  }
  return out;
}

// Closes the directory stream on every return path.
struct DirCloser {
  DIR* dir;
  ~DirCloser() {
    if (dir) ::closedir(dir);
  }
};

std::string NoZones(const std::string& dir, std::string_view why) {
  std::string msg = "no RAPL zones under " + dir;
  msg += why;
  return msg;
}

}  // namespace

RaplCollector::RaplCollector(const HostPaths& paths) : RaplCollector(paths, &ReadWholeFile) {}

RaplCollector::RaplCollector(const HostPaths& paths, FileReader reader, RescanTimer::Clock now)
    : dir_(paths.sysfs + "/class/powercap"), read_(std::move(reader)), rescan_(std::move(now)) {
  buf_.resize(64);
}

CollectResult RaplCollector::Scan() {
  DirCloser dir{::opendir(dir_.c_str())};
  if (dir.dir == nullptr) {
    int err = errno;
    zones_.clear();
    if (err == ENOENT || err == ENOTDIR) {
      return CollectResult::NoData(NoZones(dir_, ": no powercap class in sysfs"));
    }
    return CollectResult::Failed(ErrnoStatus(err, dir_).message());
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir.dir)) {
    std::string_view name = e->d_name;
    if (StartsWith(name, kMsrPrefix) || StartsWith(name, kMmioPrefix)) names.emplace_back(name);
  }
  if (errno != 0) return CollectResult::Failed(ErrnoStatus(errno, dir_).message());
  // Byte order, as node_exporter (Go's os.ReadDir): it decides the index of names without one
  // ("core"). MSR zones go before MMIO ones so that they win over their copies (see the header);
  // node_exporter lists MMIO first, which only matters for an unindexed MMIO zone (none known).
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    bool a_mmio = StartsWith(a, kMmioPrefix), b_mmio = StartsWith(b, kMmioPrefix);
    if (a_mmio != b_mmio) return !a_mmio;
    return a < b;
  });

  std::vector<Zone> next;
  std::vector<std::pair<std::string, int64_t>> unindexed_counts;
  for (const std::string& name : names) {
    std::string base = dir_ + "/" + name + "/";
    size_t size = 0;
    // Only zones have a name file (intel-rapl itself, the control type, has none).
    if (!read_(base + "name", buf_, size, nullptr).ok()) continue;
    std::string_view zone_name = TrimBlanks(std::string_view(buf_.data(), size));
    if (zone_name.empty()) continue;

    Zone z;
    z.dir_name = name;
    z.mmio = StartsWith(name, kMmioPrefix);
    // "package-10" -> ("package", 10), as node_exporter: exactly one '-' followed by a number.
    size_t dash = zone_name.find('-');
    int64_t index = 0;
    if (dash != std::string_view::npos && zone_name.find('-', dash + 1) == std::string_view::npos &&
        ParseInt64(zone_name.substr(dash + 1), index)) {
      z.zone = std::string(zone_name.substr(0, dash));
      z.index = index;
    } else {
      z.zone = std::string(zone_name);
      auto it = std::find_if(unindexed_counts.begin(), unindexed_counts.end(),
                             [&](const auto& c) { return c.first == z.zone; });
      if (it == unindexed_counts.end()) {
        unindexed_counts.emplace_back(z.zone, 0);
        it = unindexed_counts.end() - 1;
      }
      z.index = it->second++;
    }
    bool duplicate = std::any_of(next.begin(), next.end(), [&](const Zone& o) {
      return o.zone == z.zone && o.index == z.index;
    });
    if (duplicate) continue;  // the MMIO copy of an MSR zone

    uint64_t max_uj = 0;
    if (read_(base + "max_energy_range_uj", buf_, size, nullptr).ok() &&
        ParseUint64(TrimBlanks(std::string_view(buf_.data(), size)), max_uj)) {
      z.max_uj = max_uj;
    }
    z.energy_path = base + "energy_uj";
    std::string index_text = std::to_string(z.index);
    z.node_family = "node_rapl_" + SanitizeMetricName(z.zone) + "_joules_total";
    z.node_help = "Current RAPL " + z.zone + " value in joules";
    z.node_labels = {Label{"index", index_text}};
    z.labels = {Label{"index", index_text}, Label{"zone", z.zone}};

    auto old = std::find_if(zones_.begin(), zones_.end(),
                            [&](const Zone& o) { return o.zone == z.zone && o.index == z.index; });
    if (old != zones_.end()) {
      z.have_prev = old->have_prev;
      z.prev_uj = old->prev_uj;
      z.total_uj = old->total_uj;
    }
    next.push_back(std::move(z));
  }
  zones_ = std::move(next);
  if (zones_.empty())
    return CollectResult::NoData(NoZones(
        dir_, ": no intel-rapl zone (a CPU or VM without RAPL, or intel_rapl_msr not loaded)"));
  return CollectResult::Ok();
}

RaplCollector::ReadOutcome RaplCollector::ReadAll(std::string& refused, std::string& error) {
  ReadOutcome outcome = ReadOutcome::kOk;
  int refused_count = 0;
  refused.clear();
  error.clear();
  for (Zone& z : zones_) {
    z.read_ok = false;
    size_t size = 0;
    int err = 0;
    Status st = read_(z.energy_path, buf_, size, &err);
    if (!st.ok()) {
      if (err == ENOENT || err == ENODEV || err == ENOTDIR) {
        outcome = ReadOutcome::kGone;
        if (error.empty()) error = st.message();
      } else if (err == EACCES || err == EPERM) {
        if (refused_count++ == 0) refused = z.energy_path;
      } else if (error.empty()) {
        error = st.message();
      }
      continue;
    }
    std::string_view text = TrimBlanks(std::string_view(buf_.data(), size));
    if (!ParseUint64(text, z.raw_uj)) {
      if (error.empty()) error = z.energy_path + ": not a number of microjoules";
      continue;
    }
    z.read_ok = true;
  }
  if (refused_count > 0) {
    refused +=
        " not readable (root-only since CVE-2020-8694): run the agent with "
        "CAP_DAC_READ_SEARCH or as root";
    if (refused_count > 1) {
      refused += " (" + std::to_string(refused_count - 1) + " more zones refused)";
    }
  }
  if (outcome == ReadOutcome::kOk && !error.empty()) outcome = ReadOutcome::kError;
  return outcome;
}

void RaplCollector::Accumulate(Zone& z) {
  if (!z.have_prev) {
    z.total_uj = z.raw_uj;
  } else if (z.raw_uj >= z.prev_uj) {
    z.total_uj += z.raw_uj - z.prev_uj;
  } else if (z.max_uj != 0 && z.prev_uj <= z.max_uj) {
    // Wrapped once: (cur - prev) mod (max + 1).
    z.total_uj += (z.max_uj - z.prev_uj) + z.raw_uj + 1;
  } else {
    z.total_uj += z.raw_uj;  // range unknown: a reset to 0
  }
  z.prev_uj = z.raw_uj;
  z.have_prev = true;
}

CollectResult RaplCollector::Collect(Sweep& out) {
  // Scans; a scan that finds no zone is repeated only when the rescan timer says so.
  auto scan = [this] {
    CollectResult r = Scan();
    if (r.kind == CollectResult::Kind::kNoData) {
      rescan_.Missed();
      no_zones_ = r;
    } else {
      rescan_.Found();
    }
    return r;
  };
  if (zones_.empty()) {
    if (!rescan_.Due()) return no_zones_;
    CollectResult r = scan();
    if (r.kind != CollectResult::Kind::kOk) return r;
  }
  std::string refused, error;
  if (ReadAll(refused, error) == ReadOutcome::kGone) {
    // A zone vanished (driver reloaded, CPU hot-removed): list the zones again, once.
    CollectResult r = scan();
    if (r.kind != CollectResult::Kind::kOk) return r;
    ReadAll(refused, error);
  }

  for (Zone& z : zones_) {
    if (z.read_ok) Accumulate(z);
  }
  constexpr MetricType kCounter = MetricType::kCounter;
  constexpr MetricType kGauge = MetricType::kGauge;
  for (const Zone& z : zones_) {
    if (!z.read_ok) continue;
    // One division, as node_exporter, so that values match it to the last bit.
    out.Add(z.node_family, z.node_help, kCounter, z.node_labels,
            static_cast<double>(z.raw_uj) / 1000000.0);
  }
  for (const Zone& z : zones_) {
    if (!z.read_ok) continue;
    out.Add("suanli_rapl_energy_joules_total",
            "Energy used by a RAPL zone in joules, corrected for energy_uj wrapping at "
            "max_energy_range_uj (assumes at most one wrap between two sweeps).",
            kCounter, z.labels, static_cast<double>(z.total_uj) / 1000000.0);
  }
  for (const Zone& z : zones_) {
    if (z.max_uj == 0) continue;
    out.Add("suanli_rapl_max_energy_joules",
            "Range of a RAPL zone's energy_uj counter in joules: where it wraps to 0.", kGauge,
            z.labels, static_cast<double>(z.max_uj) / 1000000.0);
  }
  for (const Zone& z : zones_) {
    out.Add("suanli_rapl_zone_readable",
            "1 if the agent could read the RAPL zone's energy_uj this sweep, 0 if not (it is "
            "root-only since CVE-2020-8694).",
            kGauge, z.labels, z.read_ok ? 1 : 0);
  }

  if (!refused.empty()) {
    if (!error.empty()) refused += "; " + error;
    return CollectResult::Failed(std::move(refused));
  }
  if (!error.empty()) return CollectResult::Failed(std::move(error));
  return CollectResult::Ok();
}

}  // namespace suanli::agent
