// libFuzzer target: the /proc and /sys parsers, run as the agent runs them. The first byte
// picks a collector; the rest is split at "\n@@\n" into the contents of that collector's files
// (in the order of kTrees below; files without a part are absent), written under a private
// temporary root that is passed as --path.procfs / --path.sysfs. Each collector runs twice
// (the second sweep exercises the counters' previous-value paths).
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/registry.h"
#include "core/config.h"

namespace {

struct Tree {
  const char* collector;
  std::vector<const char*> files;  // relative to the temporary root
};

const std::vector<Tree>& Trees() {
  static const auto* const kTrees = new std::vector<Tree>{
      {"cpu", {"proc/stat"}},
      {"stat", {"proc/stat"}},
      {"meminfo", {"proc/meminfo"}},
      {"loadavg", {"proc/loadavg"}},
      {"pressure",
       {"proc/pressure/cpu", "proc/pressure/memory", "proc/pressure/io", "proc/pressure/irq"}},
      {"netdev", {"proc/net/dev"}},
      {"netclass",
       {"sys/class/net/eth0/operstate", "sys/class/net/eth0/speed", "sys/class/net/eth0/mtu",
        "sys/class/net/eth0/address", "sys/class/net/eth0/carrier", "sys/class/net/eth0/duplex",
        "sys/class/net/eth0/flags", "sys/class/net/eth0/ifalias", "sys/class/net/eth0/broadcast",
        "sys/class/net/eth0/tx_queue_len"}},
      {"rapl",
       {"sys/class/powercap/intel-rapl:0/name", "sys/class/powercap/intel-rapl:0/energy_uj",
        "sys/class/powercap/intel-rapl:0/max_energy_range_uj",
        "sys/class/powercap/intel-rapl:0:0/name", "sys/class/powercap/intel-rapl:0:0/energy_uj",
        "sys/class/powercap/intel-rapl:0:0/max_energy_range_uj"}},
      {"hwmon",
       {"sys/class/hwmon/hwmon0/name", "sys/class/hwmon/hwmon0/power1_average",
        "sys/class/hwmon/hwmon0/power1_input", "sys/class/hwmon/hwmon0/energy1_input",
        "sys/class/hwmon/hwmon0/in1_input", "sys/class/hwmon/hwmon0/curr1_input",
        "sys/class/hwmon/hwmon0/power1_average_interval", "sys/class/hwmon/hwmon0/power1_label"}},
  };
  return *kTrees;
}

std::string* g_root = nullptr;

void MakeParents(const std::string& path) {
  for (size_t i = g_root->size() + 1; i < path.size(); ++i) {
    if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // collectors log what they skip; not the point here
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/suanli-fuzz-procfs-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) std::abort();
  g_root = new std::string(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Tree& tree = Trees()[data[0] % Trees().size()];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> parts;
  for (;;) {
    size_t sep = rest.find("\n@@\n");
    parts.push_back(rest.substr(0, sep));
    if (sep == std::string_view::npos) break;
    rest.remove_prefix(sep + 4);
  }
  for (size_t i = 0; i < tree.files.size(); ++i) {
    std::string path = *g_root + "/" + tree.files[i];
    if (i < parts.size()) {
      MakeParents(path);
      std::ofstream(path, std::ios::binary | std::ios::trunc)
          .write(parts[i].data(), static_cast<std::streamsize>(parts[i].size()));
    } else {
      unlink(path.c_str());
    }
  }
  suanli::agent::HostPaths paths;
  paths.procfs = *g_root + "/proc";
  paths.sysfs = *g_root + "/sys";
  paths.devfs = *g_root + "/dev";
  auto options = suanli::ConfigMap::Parse("fuzz", "{}");
  if (!options.ok()) std::abort();
  for (const auto& spec : suanli::agent::AllCollectors()) {
    if (spec.name != tree.collector) continue;
    suanli::agent::CollectorContext ctx{paths, *options, std::chrono::milliseconds(1000)};
    auto collector = spec.make(ctx);
    if (!collector.ok()) std::abort();
    for (int sweep = 0; sweep < 2; ++sweep) {
      suanli::agent::Sweep out;
      (void)(*collector)->Collect(out);
      for (const auto& family : out.families()) {
        for (const auto& point : family.points) {
          suanli::Labels(point.labels).Validate().IgnoreError();
        }
      }
    }
  }
  return 0;
}
