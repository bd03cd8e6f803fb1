#include "agent/collectors/inventory/inventory.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "agent/collectors/proc_file.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

constexpr MetricType kGauge = MetricType::kGauge;
constexpr uint32_t kNvidiaVendor = 0x10de;

// Closes the directory stream on every return path.
struct DirCloser {
  DIR* dir;
  ~DirCloser() {
    if (dir) ::closedir(dir);
  }
};

// Entry names of `dir`, sorted; ENOENT is an empty listing (no such class on this host).
Status ListDir(const std::string& dir, std::vector<std::string>& names) {
  names.clear();
  DirCloser d{::opendir(dir.c_str())};
  if (d.dir == nullptr) {
    int err = errno;
    return err == ENOENT ? Status::Ok() : ErrnoStatus(err, dir);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d.dir)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) return ErrnoStatus(errno, dir);
  std::sort(names.begin(), names.end());
  return Status::Ok();
}

// The trimmed contents of a small sysfs/proc file; nullopt when unreadable.
std::optional<std::string> ReadAttr(const std::string& path, std::string& buf) {
  size_t size = 0;
  if (!ReadWholeFile(path, buf, size).ok()) return std::nullopt;
  return std::string(TrimBlanks(std::string_view(buf.data(), size)));
}

// "0x10de" (sysfs, cpuinfo) or "10de" -> 0x10de.
std::optional<uint32_t> ParseHex(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  int64_t v = 0;
  if (!ParseInt64(s, v, 16) || v < 0 || v > 0xffffffff) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", digits, v);
  return buf;
}

// ---- /proc/cpuinfo ----------------------------------------------------------------------

struct CpuRecord {
  int64_t processor = -1;
  std::string model_name, vendor_id, implementer, part;
  std::optional<int64_t> package, core;
  std::string flags;  // x86 "flags"
  double mhz = 0;     // "cpu MHz": the current frequency
};

// One record per "processor : N" line; the keys after it belong to it.
std::vector<CpuRecord> ParseCpuinfo(std::string_view text) {
  std::vector<CpuRecord> out;
  while (!text.empty()) {
    std::string_view line = NextLine(text);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = TrimBlanks(line.substr(0, colon));
    std::string_view value = TrimBlanks(line.substr(colon + 1));
    if (key == "processor") {
      // arm64 kernels before 4.x also print "Processor : AArch64 Processor rev 1": not a CPU.
      int64_t n = 0;
      if (ParseInt64(value, n)) out.emplace_back().processor = n;
      continue;
    }
    if (out.empty()) continue;
    CpuRecord& r = out.back();
    int64_t n = 0;
    if (key == "model name") {
      r.model_name = value;
    } else if (key == "vendor_id") {
      r.vendor_id = value;
    } else if (key == "physical id" && ParseInt64(value, n)) {
      r.package = n;
    } else if (key == "core id" && ParseInt64(value, n)) {
      r.core = n;
    } else if (key == "CPU implementer") {
      r.implementer = value;
    } else if (key == "CPU part") {
      r.part = value;
    } else if (key == "flags") {
      r.flags = value;
    } else if (key == "cpu MHz") {
      double mhz = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), mhz);
      if (ec == std::errc() && p == value.data() + value.size() && mhz > 0) r.mhz = mhz;
    }
  }
  return out;
}

struct ArmName {
  uint32_t implementer;
  uint32_t part;  // 0xffffffff: the implementer's name only
  const char* name;
};

// util-linux lscpu's names (lscpu-arm.c), for the implementers and parts seen in servers.
constexpr ArmName kArmNames[] = {
    {0x41, 0xffffffff, "ARM"},       {0x41, 0xd0c, "Neoverse-N1"},   {0x41, 0xd40, "Neoverse-V1"},
    {0x41, 0xd49, "Neoverse-N2"},    {0x41, 0xd4f, "Neoverse-V2"},   {0x42, 0xffffffff, "Broadcom"},
    {0x43, 0xffffffff, "Cavium"},    {0x46, 0xffffffff, "FUJITSU"},  {0x46, 0x001, "A64FX"},
    {0x48, 0xffffffff, "HiSilicon"}, {0x48, 0xd01, "Kunpeng-920"},   {0x4e, 0xffffffff, "Nvidia"},
    {0x50, 0xffffffff, "APM"},       {0x51, 0xffffffff, "Qualcomm"}, {0x53, 0xffffffff, "Samsung"},
    {0x56, 0xffffffff, "Marvell"},   {0x61, 0xffffffff, "Apple"},    {0xc0, 0xffffffff, "Ampere"},
    {0xc0, 0xac3, "Ampere-1"},       {0xc0, 0xac4, "Ampere-1a"},
};

const char* ArmLookup(uint32_t implementer, uint32_t part) {
  for (const ArmName& a : kArmNames) {
    if (a.implementer == implementer && a.part == part) return a.name;
  }
  return nullptr;
}

// (model, vendor) of an ARM core from cpuinfo's hex ids: ("HiSilicon Kunpeng-920", "HiSilicon").
std::pair<std::string, std::string> ArmModel(const CpuRecord& r) {
  std::optional<uint32_t> impl = ParseHex(r.implementer);
  std::optional<uint32_t> part = ParseHex(r.part);
  const char* vendor = impl ? ArmLookup(*impl, 0xffffffff) : nullptr;
  const char* part_name = impl && part ? ArmLookup(*impl, *part) : nullptr;
  std::string v = vendor ? vendor : "implementer " + r.implementer;
  std::string model = v + " " + (part_name ? part_name : "part " + r.part);
  return {model, vendor ? vendor : r.implementer};
}

// ---- the sources ---------------------------------------------------------------------------

struct CpuGroup {
  std::string model, vendor;
  std::set<std::pair<int64_t, int64_t>> cores;  // (package, core)
  std::string flags;                            // of its first processor
  double max_mhz = 0;                           // highest "cpu MHz" of its processors
};

struct Cpus {
  std::vector<CpuGroup> groups;  // one per model, in cpuinfo order
  size_t threads = 0;
  bool topology_known = false;  // every processor has a package and a core id
  size_t cores = 0, sockets = 0;
};

Cpus ReadCpus(const HostPaths& paths, std::string& buf, std::vector<std::string>& errors) {
  Cpus out;
  std::vector<CpuRecord> records;
  const std::string path = paths.procfs + "/cpuinfo";
  size_t size = 0;
  if (Status st = ReadWholeFile(path, buf, size); !st.ok()) {
    errors.push_back(st.message());
    return out;
  }
  records = ParseCpuinfo(std::string_view(buf.data(), size));
  if (records.empty()) {
    errors.push_back(path + ": no \"processor : N\" entries");
    return out;
  }
  out.threads = records.size();
  out.topology_known = true;
  for (CpuRecord& r : records) {
    if (r.package && r.core) continue;
    // cpuinfo lacks them on ARM: sysfs topology has them.
    std::string base =
        paths.sysfs + "/devices/system/cpu/cpu" + std::to_string(r.processor) + "/topology/";
    int64_t pkg = 0, core = 0;
    std::optional<std::string> p = ReadAttr(base + "physical_package_id", buf);
    std::optional<std::string> c = ReadAttr(base + "core_id", buf);
    if (p && c && ParseInt64(*p, pkg) && ParseInt64(*c, core)) {
      r.package = std::max<int64_t>(pkg, 0);  // -1: firmware gave no package; one socket
      r.core = core;
    } else {
      out.topology_known = false;
    }
  }
  std::set<std::pair<int64_t, int64_t>> all_cores;
  std::set<int64_t> packages;
  for (const CpuRecord& r : records) {
    std::string model = r.model_name, vendor = r.vendor_id;
    if (!r.implementer.empty()) std::tie(model, vendor) = ArmModel(r);
    if (model.empty()) model = "unknown";
    if (vendor.empty()) vendor = "unknown";
    auto g = std::find_if(out.groups.begin(), out.groups.end(),
                          [&](const CpuGroup& x) { return x.model == model; });
    if (g == out.groups.end()) {
      g = out.groups.insert(out.groups.end(), {model, vendor, {}, r.flags, 0});
    }
    g->max_mhz = std::max(g->max_mhz, r.mhz);
    if (out.topology_known) {
      g->cores.insert({*r.package, *r.core});
      all_cores.insert({*r.package, *r.core});
      packages.insert(*r.package);
    }
  }
  out.cores = all_cores.size();
  out.sockets = packages.size();
  return out;
}

// Highest cpuN/cpufreq/cpuinfo_max_freq (kHz) in hertz; nullopt without cpufreq.
std::optional<double> ReadMaxFrequency(const HostPaths& paths, std::string& buf,
                                       std::vector<std::string>& errors) {
  const std::string dir = paths.sysfs + "/devices/system/cpu";
  std::vector<std::string> names;
  if (Status st = ListDir(dir, names); !st.ok()) errors.push_back(st.message());
  std::optional<double> max_hz;
  for (const std::string& n : names) {
    int64_t idx = 0;
    if (n.size() < 4 || n.compare(0, 3, "cpu") != 0 || !ParseInt64(n.substr(3), idx)) continue;
    std::optional<std::string> khz = ReadAttr(dir + "/" + n + "/cpufreq/cpuinfo_max_freq", buf);
    int64_t v = 0;
    if (khz && ParseInt64(*khz, v) && v > 0) {
      max_hz = std::max(max_hz.value_or(0), static_cast<double>(v) * 1000);
    }
  }
  return max_hz;
}

std::optional<double> ReadMemTotal(const HostPaths& paths, std::string& buf,
                                   std::vector<std::string>& errors) {
  const std::string path = paths.procfs + "/meminfo";
  size_t size = 0;
  if (Status st = ReadWholeFile(path, buf, size); !st.ok()) {
    errors.push_back(st.message());
    return std::nullopt;
  }
  std::string_view rest(buf.data(), size);
  while (!rest.empty()) {
    std::string_view line = NextLine(rest);
    if (line.substr(0, 9) != "MemTotal:") continue;
    line.remove_prefix(9);
    uint64_t kb = 0;
    if (ParseUint64(NextField(line), kb) && NextField(line) == "kB") {
      return static_cast<double>(kb) * 1024;
    }
  }
  errors.push_back(path + ": no \"MemTotal: N kB\" line");
  return std::nullopt;
}

// NVIDIA GPUs on the PCI bus: device id -> count.
std::map<uint32_t, int64_t> ScanNvidiaGpus(const HostPaths& paths, std::string& buf,
                                           std::vector<std::string>& errors) {
  const std::string dir = paths.sysfs + "/bus/pci/devices";
  std::vector<std::string> names;
  if (Status st = ListDir(dir, names); !st.ok()) errors.push_back(st.message());
  std::map<uint32_t, int64_t> by_device;
  for (const std::string& n : names) {
    std::string base = dir + "/" + n + "/";
    std::optional<std::string> vendor = ReadAttr(base + "vendor", buf);
    std::optional<uint32_t> vendor_id = vendor ? ParseHex(*vendor) : std::nullopt;
    if (!vendor_id || *vendor_id != kNvidiaVendor) continue;
    std::optional<std::string> cls = ReadAttr(base + "class", buf);
    std::optional<uint32_t> class_id = cls ? ParseHex(*cls) : std::nullopt;
    // 0x0300xx VGA controller, 0x0302xx 3D controller (NVSwitches are bridges: 0x0680xx).
    if (!class_id || ((*class_id >> 8) != 0x0300 && (*class_id >> 8) != 0x0302)) continue;
    std::optional<std::string> device = ReadAttr(base + "device", buf);
    std::optional<uint32_t> device_id = device ? ParseHex(*device) : std::nullopt;
    if (!device_id || *device_id > 0xffff) continue;
    ++by_device[*device_id];
  }
  return by_device;
}

// (device, bits per second) of the physical NICs whose speed is known.
std::vector<std::pair<std::string, double>> ReadNicSpeeds(const HostPaths& paths, std::string& buf,
                                                          std::vector<std::string>& errors) {
  const std::string dir = paths.sysfs + "/class/net";
  std::vector<std::string> names;
  if (Status st = ListDir(dir, names); !st.ok()) errors.push_back(st.message());
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& n : names) {
    std::string base = dir + "/" + n + "/";
    // Physical: has a device link (lo, bridges, bonds, veth, bonding_masters have none).
    struct stat st;
    if (::lstat((base + "device").c_str(), &st) != 0) continue;
    std::optional<std::string> speed = ReadAttr(base + "speed", buf);
    int64_t mbps = 0;
    // Unreadable (EINVAL while the link is down) or -1: unknown, left out.
    if (speed && ParseInt64(*speed, mbps) && mbps > 0) out.emplace_back(n, mbps * 1e6);
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

std::string FormatGhz(double hz) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g GHz", hz / 1e9);
  return buf;
}

}  // namespace

Result<InventoryOptions> InventoryCollector::ParseOptions(ConfigMap& options) {
  InventoryOptions o;
  ASSIGN_OR_RETURN(o.power, PowerModelTable::FromOptions(options));
  RETURN_IF_ERROR(options.Get("refresh_interval", &o.refresh_interval));
  if (o.refresh_interval.count() <= 0) {
    return options.Error("refresh_interval", "must be longer than 0s");
  }
  if (options.Has("gpus")) {
    ASSIGN_OR_RETURN(std::vector<ConfigMap> list, options.List("gpus"));
    o.gpus.emplace();
    for (ConfigMap& g : list) {
      InventoryOptions::Gpu gpu;
      RETURN_IF_ERROR(g.Get("model", &gpu.model));
      RETURN_IF_ERROR(g.Get("vendor", &gpu.vendor));
      RETURN_IF_ERROR(g.Get("count", &gpu.count));
      if (TrimBlanks(gpu.model).empty()) {
        return g.Error("model", "required: the GPU model as NVML names it");
      }
      if (gpu.count < 1) return g.Error("count", "required: the number of such GPUs (1 or more)");
      RETURN_IF_ERROR(g.Finish());
      o.gpus->push_back(std::move(gpu));
    }
  }
  return o;
}

Result<std::unique_ptr<Collector>> InventoryCollector::Make(CollectorContext& ctx) {
  ASSIGN_OR_RETURN(ComputeModelTable table, ComputeModelTable::FromOptions(ctx.options));
  ASSIGN_OR_RETURN(InventoryOptions options, ParseOptions(ctx.options));
  return std::unique_ptr<Collector>(
      std::make_unique<InventoryCollector>(ctx.paths, std::move(table), std::move(options)));
}

InventoryCollector::InventoryCollector(const HostPaths& paths, ComputeModelTable table,
                                       InventoryOptions options, const Clock& clock)
    : paths_(paths), table_(std::move(table)), options_(std::move(options)), clock_(clock) {}

CollectResult InventoryCollector::Collect(Sweep& out) {
  auto now = clock_.SteadyNow();
  if (!next_refresh_ || now >= *next_refresh_ ||
      cached_result_.kind == CollectResult::Kind::kFailed) {
    Refresh();
    next_refresh_ = now + options_.refresh_interval;
  }
  for (const Family& f : cached_.families()) {
    for (const Point& p : f.points) out.Add(f.name, f.help, f.type, p.labels, p.value);
  }
  return cached_result_;
}

void InventoryCollector::Refresh() {
  Sweep& out = cached_;
  out.Clear();
  std::vector<std::string> errors, warnings;
  std::string buf;

  Cpus cpus = ReadCpus(paths_, buf, errors);
  std::optional<double> max_freq_hz = ReadMaxFrequency(paths_, buf, errors);
  std::optional<double> mem_bytes = ReadMemTotal(paths_, buf, errors);
  std::vector<std::pair<std::string, double>> nics = ReadNicSpeeds(paths_, buf, errors);

  // GPUs: from the operator's list, else from the PCI scan.
  struct GpuGroup {
    std::string vendor, model;
    int64_t count;
    const ComputeModel* entry;  // nullptr: unknown to the table
  };
  std::vector<GpuGroup> gpus;
  if (options_.gpus) {
    for (const InventoryOptions::Gpu& g : *options_.gpus) {
      const ComputeModel* m = table_.FindGpu(g.model);
      std::string vendor = !g.vendor.empty()                    ? g.vendor
                           : m != nullptr && !m->vendor.empty() ? m->vendor
                                                                : "unknown";
      gpus.push_back({vendor, g.model, g.count, m});
      if (m == nullptr) {
        warnings.push_back("unknown GPU model \"" + g.model +
                           "\": add it to collector_config.inventory.models");
      }
    }
  } else {
    for (const auto& [device_id, count] : ScanNvidiaGpus(paths_, buf, errors)) {
      const ComputeModel* m = table_.FindGpuByPciDevice(static_cast<uint16_t>(device_id));
      std::string pci = Hex(kNvidiaVendor, 4) + ":" + Hex(device_id, 4);
      gpus.push_back({"nvidia", m != nullptr ? m->model : "PCI " + pci, count, m});
      if (m == nullptr) {
        warnings.push_back("unknown GPU PCI device " + pci + " (" + std::to_string(count) +
                           " devices): add an entry with its pci_device_ids to "
                           "collector_config.inventory.models, or list the GPUs under "
                           "collector_config.inventory.gpus");
      }
    }
  }

  // Capacity.
  std::array<double, kPrecisionCount> cpu_peak{}, gpu_peak{};
  bool cpu_estimated = false;
  for (const CpuGroup& g : cpus.groups) {
    const ComputeModel* m = table_.FindCpu(g.model);
    if (m == nullptr) {
      std::string warning =
          "unknown CPU model \"" + g.model + "\": add it to collector_config.inventory.models";
      // Estimated from its ISA flags; the message names the rule, never the changing figures,
      // so that it is logged once.
      FlopsEstimate est = EstimatedFlopsPerCycle(g.flags);
      std::optional<double> hz = max_freq_hz;
      const char* hz_from = "the highest cpuinfo_max_freq";
      if (!hz) {
        hz = FrequencyInModelName(g.model);
        hz_from = "the frequency in its name";
      }
      if (!hz && g.max_mhz > 0) {
        hz = g.max_mhz * 1e6;
        hz_from = "the highest \"cpu MHz\" of /proc/cpuinfo (the current frequency)";
      }
      if (est.isa.empty()) {
        warning += "; no FLOPs per cycle known from its flags: CPU capacity counted as 0";
      } else if (!cpus.topology_known) {
        warning += "; physical cores unknown: CPU capacity counted as 0";
      } else if (!hz) {
        warning += "; no frequency known: CPU capacity counted as 0";
      } else {
        PerPrecision fpc = est.flops_per_cycle_per_core;
        warning += "; capacity estimated from its flags (" + est.isa + ": fp64 " +
                   std::to_string(static_cast<int>(*fpc[0])) + ", fp32 " +
                   std::to_string(static_cast<int>(*fpc[1])) +
                   " FLOP/cycle/core) x physical cores x " + hz_from;
        ComputeModel estimated;
        estimated.flops_per_cycle_per_core = fpc;
        PerPrecision peak = CpuPeak(estimated, static_cast<double>(g.cores.size()), *hz);
        for (size_t i = 0; i < kPrecisionCount; ++i) cpu_peak[i] += peak[i].value_or(0);
        cpu_estimated = true;
      }
      warnings.push_back(std::move(warning));
      continue;
    }
    if (!cpus.topology_known) {
      warnings.push_back("CPU model \"" + g.model +
                         "\": physical cores unknown (no physical id / core id in cpuinfo or "
                         "sysfs topology): CPU capacity counted as 0");
      continue;
    }
    std::optional<double> hz = m->base_frequency_hertz;
    if (!hz) hz = FrequencyInModelName(g.model);
    if (!hz && max_freq_hz) {
      hz = max_freq_hz;
      warnings.push_back("CPU model \"" + g.model + "\": no base frequency known, capacity uses " +
                         "cpuinfo_max_freq (" + FormatGhz(*hz) +
                         ", often the turbo frequency): set base_frequency_hertz in a "
                         "collector_config.inventory.models entry");
    }
    if (!hz) {
      warnings.push_back("CPU model \"" + g.model +
                         "\": no frequency known (no base_frequency_hertz in its table entry, "
                         "none in its name, no cpuinfo_max_freq): CPU capacity counted as 0; set "
                         "base_frequency_hertz in a collector_config.inventory.models entry");
      continue;
    }
    PerPrecision peak = CpuPeak(*m, static_cast<double>(g.cores.size()), *hz);
    for (size_t i = 0; i < kPrecisionCount; ++i) cpu_peak[i] += peak[i].value_or(0);
  }
  for (const GpuGroup& g : gpus) {
    if (g.entry == nullptr) continue;
    for (size_t i = 0; i < kPrecisionCount; ++i) {
      gpu_peak[i] += static_cast<double>(g.count) * g.entry->peak_flops[i].value_or(0);
    }
  }

  // Families, each added whole so that Sweep::Add finds it at the back.
  for (const CpuGroup& g : cpus.groups) {
    out.Add("suanli_node_cpu_info", "CPU model and vendor, from /proc/cpuinfo; value is always 1.",
            kGauge, {{"model", g.model}, {"vendor", g.vendor}}, 1);
  }
  if (cpus.topology_known) {
    out.Add("suanli_node_cpu_sockets", "CPU sockets (distinct physical ids).", kGauge, {},
            static_cast<double>(cpus.sockets));
    out.Add("suanli_node_cpu_cores", "Physical CPU cores (distinct physical id, core id pairs).",
            kGauge, {}, static_cast<double>(cpus.cores));
  }
  if (cpus.threads > 0) {
    out.Add("suanli_node_cpu_threads", "Logical CPUs (processor entries in /proc/cpuinfo).", kGauge,
            {}, static_cast<double>(cpus.threads));
  }
  if (max_freq_hz) {
    out.Add("suanli_node_cpu_max_frequency_hertz",
            "Highest cpuinfo_max_freq of any CPU, in hertz; absent without cpufreq (most VMs).",
            kGauge, {}, *max_freq_hz);
  }
  if (mem_bytes) {
    out.Add("suanli_node_memory_bytes", "Total usable memory (MemTotal), in bytes.", kGauge, {},
            *mem_bytes);
  }
  for (const GpuGroup& g : gpus) {
    out.Add("suanli_node_gpus", "GPUs by vendor and model.", kGauge,
            {{"model", g.model}, {"vendor", g.vendor}}, static_cast<double>(g.count));
  }
  for (const auto& [device, bits] : nics) {
    out.Add("suanli_node_nic_speed_bits_per_second",
            "Link speed of a physical network interface, in bits per second.", kGauge,
            {{"device", device}}, bits);
  }
  const char* kKnownHelp =
      "1 if the compute model table knows this CPU or GPU model, 0 if its capacity is counted "
      "as 0.";
  for (const CpuGroup& g : cpus.groups) {
    out.Add("suanli_node_compute_model_known", kKnownHelp, kGauge,
            {{"kind", "cpu"}, {"model", g.model}}, table_.FindCpu(g.model) != nullptr ? 1 : 0);
  }
  for (const GpuGroup& g : gpus) {
    out.Add("suanli_node_compute_model_known", kKnownHelp, kGauge,
            {{"kind", "gpu"}, {"model", g.model}}, g.entry != nullptr ? 1 : 0);
  }
  for (size_t i = 0; i < kPrecisionCount; ++i) {
    out.Add("suanli_node_compute_capacity_flops",
            "Peak compute capacity of the node's CPUs and GPUs, in operations per second.", kGauge,
            {{"precision", std::string(kPrecisionNames[i])}}, cpu_peak[i] + gpu_peak[i]);
  }
  for (const char* source : {"cpu", "gpu"}) {
    const bool cpu = std::string_view(source) == "cpu";
    const auto& peak = cpu ? cpu_peak : gpu_peak;
    const char* method = cpu && cpu_estimated ? "estimated" : "datasheet";
    for (size_t i = 0; i < kPrecisionCount; ++i) {
      out.Add(
          "suanli_node_compute_capacity_flops_by_source",
          "Peak compute capacity of the node's CPUs or GPUs, in operations per second; "
          "method: datasheet (the model table) or estimated (from ISA flags).",
          kGauge,
          {{"method", method}, {"precision", std::string(kPrecisionNames[i])}, {"source", source}},
          peak[i]);
    }
  }
  // The CPUs' power model: per CPU model, its power entry's per-core share, else the default.
  if (cpus.topology_known && !cpus.groups.empty()) {
    double idle = 0, max = 0;
    for (const CpuGroup& g : cpus.groups) {
      const double cores = static_cast<double>(g.cores.size());
      if (const PowerModel* pm = options_.power.Find(g.model)) {
        idle += pm->idle_watts * cores / pm->cores;
        max += pm->max_watts * cores / pm->cores;
      } else {
        idle += options_.power.per_core().idle_watts * cores;
        max += options_.power.per_core().max_watts * cores;
      }
    }
    out.Add("suanli_node_cpu_power_model_idle_watts",
            "Idle power of the node's CPU cores per the power model, in watts (the estimate's "
            "floor where nothing measures power).",
            kGauge, {}, idle);
    out.Add("suanli_node_cpu_power_model_max_watts",
            "Full-load power of the node's CPU cores per the power model, in watts.", kGauge, {},
            max);
  }

  if (!errors.empty()) {
    errors.insert(errors.end(), warnings.begin(), warnings.end());
    cached_result_ = CollectResult::Failed(Join(errors));
  } else {
    cached_result_ = {CollectResult::Kind::kOk, Join(warnings)};
  }
}

}  // namespace suanli::agent
