#include "agent/collectors/inventory/inventory.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using testing::FindFamily;
using testing::FixturePath;
using testing::TempTree;
using testing::ValueOf;

// /proc/cpuinfo of `sockets` x `cores` x `threads_per_core` processors, numbered as Linux does
// (first thread of every core, then the siblings).
std::string Cpuinfo(const std::string& model, int sockets, int cores, int threads_per_core = 2,
                    const std::string& vendor = "GenuineIntel") {
  std::string s;
  int n = 0;
  for (int t = 0; t < threads_per_core; ++t) {
    for (int p = 0; p < sockets; ++p) {
      for (int c = 0; c < cores; ++c) {
        s += "processor\t: " + std::to_string(n++) + "\nvendor_id\t: " + vendor +
             "\nmodel name\t: " + model + "\nphysical id\t: " + std::to_string(p) +
             "\ncore id\t\t: " + std::to_string(c * 2) +  // core ids are sparse on Xeons
             "\ncpu cores\t: " + std::to_string(cores) + "\n\n";
      }
    }
  }
  return s;
}

constexpr char kMeminfo[] = "MemTotal:       1056462404 kB\nMemFree:        1000 kB\n";

ComputeModelTable Shipped() {
  auto shipped = ComputeModelTable::Shipped();
  EXPECT_TRUE(shipped.ok()) << shipped.status().message();
  return ComputeModelTable(*shipped);
}

double Capacity(const Sweep& s, const std::string& precision) {
  return ValueOf(s, "suanli_node_compute_capacity_flops", {{"precision", precision}});
}
double BySource(const Sweep& s, const std::string& source, const std::string& precision,
                const std::string& method = "datasheet") {
  return ValueOf(s, "suanli_node_compute_capacity_flops_by_source",
                 {{"method", method}, {"precision", precision}, {"source", source}});
}
double Known(const Sweep& s, const std::string& kind, const std::string& model) {
  return ValueOf(s, "suanli_node_compute_model_known", {{"kind", kind}, {"model", model}});
}

// An agent file's collector_config.inventory section.
struct Section {
  explicit Section(const std::string& inventory_yaml) {
    auto root = ConfigMap::Parse("agent.yml", "collector_config:\n  inventory:\n" + inventory_yaml);
    EXPECT_TRUE(root.ok()) << root.status().message();
    auto cc = root->Map("collector_config");
    auto inv = cc->Map("inventory");
    EXPECT_TRUE(inv.ok());
    map.emplace(std::move(*inv));
  }
  std::optional<ConfigMap> map;
};

std::unique_ptr<Collector> MakeFromConfig(const HostPaths& paths, const std::string& yaml) {
  Section s(yaml);
  CollectorContext ctx{paths, *s.map};
  auto c = InventoryCollector::Make(ctx);
  EXPECT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(s.map->Finish().ok()) << s.map->Finish().message();
  return c.ok() ? std::move(*c) : nullptr;
}

void ExpectValidNames(const Sweep& sweep) {
  for (const Family& f : sweep.families()) {
    EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.type, MetricType::kGauge) << f.name;
    for (const Point& p : f.points) {
      Labels labels(p.labels);
      labels.Set("__name__", f.name);
      EXPECT_TRUE(labels.Validate().ok()) << labels.ToString();
    }
  }
}

SUANLI_CONFORMANCE_TEST(InventoryCollectorTest, NodeExporterFixture) {
  InventoryCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")},
                       Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectValidNames(s);
  const std::string model = "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz";
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_info", {{"model", model}, {"vendor", "GenuineIntel"}}), 1);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_sockets"), 1);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_cores"), 4);  // core ids 0-3 on physical id 0
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_threads"), 8);
  // Its cpufreq directories have no cpuinfo_max_freq: left out, not 0.
  EXPECT_EQ(FindFamily(s, "suanli_node_cpu_max_frequency_hertz"), nullptr);
  EXPECT_EQ(ValueOf(s, "suanli_node_memory_bytes"), 3742148.0 * 1024);
  // bus/pci/devices and class/net/eth0 are link-files in this copy, bond0/dmz/int are virtual.
  EXPECT_EQ(FindFamily(s, "suanli_node_gpus"), nullptr);
  EXPECT_EQ(FindFamily(s, "suanli_node_nic_speed_bits_per_second"), nullptr);
  // A laptop part the table does not know: estimated from its flags (avx2, fma: fp64 16, fp32 32
  // per cycle and core) x 4 cores x 1.9 GHz, the frequency in its name (no cpuinfo_max_freq),
  // labelled so, still reported as unknown, and said so.
  EXPECT_EQ(Known(s, "cpu", model), 0);
  EXPECT_EQ(Capacity(s, "fp64"), 4 * 1.9e9 * 16);
  EXPECT_EQ(Capacity(s, "fp32"), 4 * 1.9e9 * 32);
  EXPECT_EQ(BySource(s, "cpu", "fp64", "estimated"), 4 * 1.9e9 * 16);
  EXPECT_EQ(BySource(s, "cpu", "fp32", "estimated"), 4 * 1.9e9 * 32);
  for (const char* p : {"fp16", "int8"}) {
    EXPECT_EQ(Capacity(s, p), 0) << p;
    EXPECT_EQ(BySource(s, "cpu", p, "estimated"), 0) << p;
  }
  for (const char* p : {"fp64", "fp32", "fp16", "int8"}) {
    EXPECT_EQ(BySource(s, "gpu", p), 0) << p;
  }
  EXPECT_EQ(FindFamily(s, "suanli_node_compute_capacity_flops_by_source")->points.size(), 8u);
  EXPECT_EQ(r.message, "unknown CPU model \"" + model +
                           "\": add it to collector_config.inventory.models; capacity estimated "
                           "from its flags (avx2+fma: fp64 16, fp32 32 FLOP/cycle/core) x physical "
                           "cores x the frequency in its name");
  // No power entry for it: the per-core default, 1.25 W idle and 5 W at full load per core.
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_idle_watts"), 4 * 1.25);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_max_watts"), 4 * 5.0);
}

SUANLI_CONFORMANCE_TEST(InventoryCollectorTest, ProcfsFixture) {
  InventoryCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")},
                       Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectValidNames(s);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_sockets"), 1);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_cores"), 4);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_threads"), 8);
  // cpu1/cpufreq/cpuinfo_max_freq is 3300000 kHz (policy0's 2400000 is not a cpuN directory).
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_max_frequency_hertz"), 3.3e9);
  EXPECT_EQ(ValueOf(s, "suanli_node_memory_bytes"), 15666184.0 * 1024);
  // eth0 has a device link and speed 1000 (Mb/s).
  EXPECT_EQ(ValueOf(s, "suanli_node_nic_speed_bits_per_second", {{"device", "eth0"}}), 1e9);
  EXPECT_EQ(FindFamily(s, "suanli_node_nic_speed_bits_per_second")->points.size(), 1u);
  EXPECT_EQ(Known(s, "cpu", "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"), 0);
  // Estimated (avx2+fma) at the highest cpuinfo_max_freq, which comes before the name's 1.9 GHz.
  EXPECT_EQ(Capacity(s, "fp64"), 4 * 3.3e9 * 16);
  EXPECT_EQ(BySource(s, "cpu", "fp32", "estimated"), 4 * 3.3e9 * 32);
  EXPECT_NE(r.message.find("x physical cores x the highest cpuinfo_max_freq"), std::string::npos)
      << r.message;
}

TEST(InventoryCollectorTest, SapphireRapidsCapacityByHand) {
  TempTree t;
  // 2 sockets x 56 cores x 2 threads of Xeon Platinum 8480+ (2.0 GHz base in the table).
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  t.Write("proc/meminfo", kMeminfo);
  // intel_pstate reports the turbo frequency: it must not be used when the table has a base.
  t.Write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3800000\n");
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(r.message, "");
  ExpectValidNames(s);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_sockets"), 2);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_cores"), 112);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_threads"), 224);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_max_frequency_hertz"), 3.8e9);
  EXPECT_EQ(ValueOf(s, "suanli_node_memory_bytes"), 1056462404.0 * 1024);
  const double cores = 2 * 56, hz = 2.0e9;
  EXPECT_EQ(Capacity(s, "fp64"), cores * hz * 32);
  EXPECT_EQ(Capacity(s, "fp32"), cores * hz * 64);
  EXPECT_EQ(Capacity(s, "fp16"), cores * hz * 1024);
  EXPECT_EQ(Capacity(s, "int8"), cores * hz * 2048);
  EXPECT_EQ(BySource(s, "cpu", "fp64"), cores * hz * 32);
  EXPECT_EQ(BySource(s, "gpu", "fp64"), 0);
  EXPECT_EQ(Known(s, "cpu", "Intel(R) Xeon(R) Platinum 8480+"), 1);
  EXPECT_EQ(FindFamily(s, "suanli_node_compute_capacity_flops")->points.size(), 4u);
  EXPECT_EQ(FindFamily(s, "suanli_node_compute_capacity_flops_by_source")->points.size(), 8u);
}

TEST(InventoryCollectorTest, FrequencyFromModelNameThenCpufreq) {
  {
    TempTree t;
    t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 1, 20));
    t.Write("proc/meminfo", kMeminfo);
    t.Write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3900000\n");
    InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
    Sweep s;
    CollectResult r = c.Collect(s);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(r.message, "");
    EXPECT_EQ(Capacity(s, "fp64"), 20 * 2.5e9 * 32);
    EXPECT_EQ(Capacity(s, "fp16"), 0);  // no AMX on Cascade Lake: not counted
  }
  {
    TempTree t;
    t.Write("proc/cpuinfo", Cpuinfo("AMD EPYC 7742 64-Core Processor", 2, 64, 2, "AuthenticAMD"));
    t.Write("proc/meminfo", kMeminfo);
    for (int cpu : {0, 1, 255}) {
      t.Write("sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpufreq/cpuinfo_max_freq",
              cpu == 255 ? "2250000\n" : "1500000\n");
    }
    InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
    Sweep s;
    CollectResult r = c.Collect(s);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_max_frequency_hertz"), 2.25e9);
    EXPECT_EQ(Capacity(s, "fp64"), 128 * 2.25e9 * 16);
    EXPECT_EQ(Capacity(s, "fp32"), 128 * 2.25e9 * 32);
    EXPECT_NE(r.message.find("AMD EPYC 7742 64-Core Processor\": no base frequency known, "
                             "capacity uses cpuinfo_max_freq (2.25 GHz"),
              std::string::npos)
        << r.message;
  }
  {
    // Known model, but no frequency anywhere: 0 and said so.
    TempTree t;
    t.Write("proc/cpuinfo", Cpuinfo("AMD EPYC 9654 96-Core Processor", 1, 96, 2, "AuthenticAMD"));
    t.Write("proc/meminfo", kMeminfo);
    InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
    Sweep s;
    CollectResult r = c.Collect(s);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(Known(s, "cpu", "AMD EPYC 9654 96-Core Processor"), 1);
    EXPECT_EQ(Capacity(s, "fp64"), 0);
    EXPECT_NE(r.message.find("no frequency known"), std::string::npos) << r.message;
  }
}

TEST(InventoryCollectorTest, ArmCoresFromSysfsTopologyAndLscpuNames) {
  TempTree t;
  std::string cpuinfo;
  for (int n = 0; n < 4; ++n) {
    cpuinfo += "processor\t: " + std::to_string(n) +
               "\nBogoMIPS\t: 200.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
               "CPU implementer\t: 0x48\nCPU architecture: 8\nCPU variant\t: 0x1\n"
               "CPU part\t: 0xd01\nCPU revision\t: 0\n\n";
    std::string topo = "sys/devices/system/cpu/cpu" + std::to_string(n) + "/topology/";
    t.Write(topo + "physical_package_id", "0\n");
    t.Write(topo + "core_id", std::to_string(n) + "\n");
    t.Write("sys/devices/system/cpu/cpu" + std::to_string(n) + "/cpufreq/cpuinfo_max_freq",
            "2600000\n");
  }
  t.Write("proc/cpuinfo", cpuinfo);
  t.Write("proc/meminfo", kMeminfo);
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_info",
                    {{"model", "HiSilicon Kunpeng-920"}, {"vendor", "HiSilicon"}}),
            1);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_cores"), 4);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_sockets"), 1);
  EXPECT_EQ(Capacity(s, "fp64"), 4 * 2.6e9 * 4);
  EXPECT_EQ(Capacity(s, "fp32"), 0);  // not confirmed for TaiShan v110: left out
}

TEST(InventoryCollectorTest, UserEntryInConfigWinsOverShipped) {
  TempTree t;
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  t.Write("proc/meminfo", kMeminfo);
  std::unique_ptr<Collector> c = MakeFromConfig({t.Path("proc"), t.Path("sys")},
                                                "    models:\n"
                                                "      - kind: cpu\n"
                                                "        match: \"Platinum 8480+\"\n"
                                                "        base_frequency_hertz: 1.9e9\n"
                                                "        flops_per_cycle_per_core: {fp64: 16}\n");
  ASSERT_NE(c, nullptr);
  Sweep s;
  CollectResult r = c->Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Capacity(s, "fp64"), 112 * 1.9e9 * 16);
  EXPECT_EQ(Capacity(s, "fp32"), 0);  // the user's entry has none: the shipped one is not mixed in
}

TEST(InventoryCollectorTest, GpusFromConfig) {
  TempTree t;
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  t.Write("proc/meminfo", kMeminfo);
  // A PCI device the configured list replaces: not counted.
  t.Write("sys/bus/pci/devices/0000:18:00.0/vendor", "0x10de\n");
  t.Write("sys/bus/pci/devices/0000:18:00.0/class", "0x030200\n");
  t.Write("sys/bus/pci/devices/0000:18:00.0/device", "0x2330\n");
  std::unique_ptr<Collector> c =
      MakeFromConfig({t.Path("proc"), t.Path("sys")},
                     "    gpus:\n"
                     "      - {model: NVIDIA H100 80GB HBM3, count: 8}\n"
                     "      - {model: NVIDIA B200, count: 2, vendor: nvidia}\n");
  ASSERT_NE(c, nullptr);
  Sweep s;
  CollectResult r = c->Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectValidNames(s);
  EXPECT_EQ(
      ValueOf(s, "suanli_node_gpus", {{"model", "NVIDIA H100 80GB HBM3"}, {"vendor", "nvidia"}}),
      8);
  EXPECT_EQ(ValueOf(s, "suanli_node_gpus", {{"model", "NVIDIA B200"}, {"vendor", "nvidia"}}), 2);
  EXPECT_EQ(FindFamily(s, "suanli_node_gpus")->points.size(), 2u);
  EXPECT_EQ(Known(s, "gpu", "NVIDIA H100 80GB HBM3"), 1);
  EXPECT_EQ(Known(s, "gpu", "NVIDIA B200"), 0);
  EXPECT_EQ(BySource(s, "gpu", "fp16"), 8 * 989e12);
  EXPECT_EQ(BySource(s, "gpu", "int8"), 8 * 1979e12);
  const double cpu_fp64 = 112 * 2.0e9 * 32;
  EXPECT_EQ(BySource(s, "cpu", "fp64"), cpu_fp64);
  EXPECT_EQ(Capacity(s, "fp64"), cpu_fp64 + 8 * 67e12);
  EXPECT_EQ(r.message,
            "unknown GPU model \"NVIDIA B200\": add it to collector_config.inventory.models");
}

TEST(InventoryCollectorTest, GpusFromPciIds) {
  TempTree t;
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  t.Write("proc/meminfo", kMeminfo);
  struct Dev {
    const char* addr;
    const char* vendor;
    const char* cls;
    const char* device;
  };
  const Dev devs[] = {
      {"0000:18:00.0", "0x10de", "0x030200", "0x2330"},  // H100 SXM
      {"0000:2a:00.0", "0x10de", "0x030200", "0x2330"},
      {"0000:3a:00.0", "0x10de", "0x030200", "0x20b2"},  // A100 SXM4 80GB
      {"0000:5d:00.0", "0x10de", "0x030000", "0x2901"},  // unknown to the table
      {"0000:07:00.0", "0x10de", "0x068000", "0x22a3"},  // NVSwitch: a bridge, not a GPU
      {"0000:03:00.0", "0x1a03", "0x030000", "0x2000"},  // the BMC's ASPEED VGA
      {"0000:4b:00.0", "0x15b3", "0x020700", "0x1021"},  // a ConnectX NIC
  };
  for (const Dev& d : devs) {
    // As in sysfs: bus/pci/devices/<addr> links to the device's directory.
    std::string dir = std::string("sys/devices/pci0000:00/") + d.addr;
    t.Write(dir + "/vendor", std::string(d.vendor) + "\n");
    t.Write(dir + "/class", std::string(d.cls) + "\n");
    t.Write(dir + "/device", std::string(d.device) + "\n");
    t.Symlink(t.Path(dir), std::string("sys/bus/pci/devices/") + d.addr);
  }
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectValidNames(s);
  EXPECT_EQ(
      ValueOf(s, "suanli_node_gpus", {{"model", "NVIDIA H100 80GB HBM3"}, {"vendor", "nvidia"}}),
      2);
  EXPECT_EQ(
      ValueOf(s, "suanli_node_gpus", {{"model", "NVIDIA A100-SXM4-80GB"}, {"vendor", "nvidia"}}),
      1);
  EXPECT_EQ(ValueOf(s, "suanli_node_gpus", {{"model", "PCI 10de:2901"}, {"vendor", "nvidia"}}), 1);
  EXPECT_EQ(FindFamily(s, "suanli_node_gpus")->points.size(), 3u);
  EXPECT_EQ(Known(s, "gpu", "NVIDIA H100 80GB HBM3"), 1);
  EXPECT_EQ(Known(s, "gpu", "PCI 10de:2901"), 0);
  EXPECT_EQ(BySource(s, "gpu", "fp16"), 2 * 989e12 + 312e12);
  EXPECT_EQ(BySource(s, "gpu", "fp64"), 2 * 67e12 + 19.5e12);
  EXPECT_NE(r.message.find("unknown GPU PCI device 10de:2901 (1 devices)"), std::string::npos)
      << r.message;
}

TEST(InventoryCollectorTest, OnlyPhysicalNicsWithAKnownSpeed) {
  TempTree t;
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 1, 4));
  t.Write("proc/meminfo", kMeminfo);
  auto nic = [&](const std::string& name, const char* speed, bool physical) {
    std::string dir = "sys/devices/net/" + name;
    if (speed != nullptr) t.Write(dir + "/speed", speed);
    t.MakeDir(dir);
    if (physical) t.Symlink(t.Path("sys/devices/pci0000:00"), dir + "/device");
    t.Symlink(t.Path(dir), "sys/class/net/" + name);
  };
  t.MakeDir("sys/devices/pci0000:00");
  nic("ens1f0", "25000\n", true);
  nic("ens1f1", "-1\n", true);     // no link
  nic("ens2", nullptr, true);      // speed refused (EINVAL while down)
  nic("bond0", "50000\n", false);  // virtual
  nic("lo", nullptr, false);
  t.Write("sys/class/net/bonding_masters", "bond0\n");
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  const Family* f = FindFamily(s, "suanli_node_nic_speed_bits_per_second");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->points.size(), 1u);
  EXPECT_EQ(ValueOf(s, "suanli_node_nic_speed_bits_per_second", {{"device", "ens1f0"}}), 25e9);
}

TEST(InventoryCollectorTest, CachesForRefreshIntervalAndRereadsAfterAFailure) {
  TempTree t;
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  t.Write("proc/meminfo", kMeminfo);
  FakeClock clock;
  InventoryOptions opts;  // default refresh_interval: 10 minutes
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), opts, clock);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(first, "suanli_node_cpu_cores"), 112);

  // The host changes: not seen until the interval has passed.
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 1, 56));
  clock.AdvanceMs(9 * 60 * 1000);
  Sweep cached;
  ASSERT_EQ(c.Collect(cached).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(testing::SeriesValues(cached), testing::SeriesValues(first));
  clock.AdvanceMs(60 * 1000);
  Sweep refreshed;
  ASSERT_EQ(c.Collect(refreshed).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(refreshed, "suanli_node_cpu_cores"), 56);

  // A failed read is retried on the next Collect(), without waiting for the interval.
  fs::remove(t.Path("proc/cpuinfo"));
  clock.AdvanceMs(10 * 60 * 1000);
  Sweep failed;
  CollectResult r = c.Collect(failed);
  ASSERT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(t.Path("proc/cpuinfo")), std::string::npos) << r.message;
  EXPECT_EQ(ValueOf(failed, "suanli_node_memory_bytes"), 1056462404.0 * 1024);  // still read
  EXPECT_EQ(FindFamily(failed, "suanli_node_cpu_cores"), nullptr);
  t.Write("proc/cpuinfo", Cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 2, 56));
  Sweep recovered;
  ASSERT_EQ(c.Collect(recovered).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(recovered, "suanli_node_cpu_cores"), 112);
}

TEST(InventoryCollectorTest, MissingSourcesAndMalformedFiles) {
  TempTree t;
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(t.Path("proc/cpuinfo")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(t.Path("proc/meminfo")), std::string::npos) << r.message;
  // Capacity is still exported, as 0.
  EXPECT_EQ(Capacity(s, "fp64"), 0);

  t.Write("proc/cpuinfo", "garbage\nno processors here\n");
  t.Write("proc/meminfo", "MemFree: 12 kB\n");
  Sweep s2;
  r = c.Collect(s2);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("no \"processor : N\" entries"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("no \"MemTotal: N kB\" line"), std::string::npos) << r.message;
}

// A virtual machine with no power meter (tests/fixtures/suanli/vm-amd-epyc): 2 vCPUs named
// "AMD EPYC" (unknown to the table), flags avx2 and fma, cpuinfo_max_freq 3.5 GHz.
TEST(InventoryCollectorTest, BareVmEstimatedCapacityAndPowerModel) {
  const std::string model = "AMD EPYC";
  InventoryCollector c(
      {FixturePath("suanli/vm-amd-epyc/proc"), FixturePath("suanli/vm-amd-epyc/sys")}, Shipped(),
      {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectValidNames(s);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_info", {{"model", model}, {"vendor", "AuthenticAMD"}}), 1);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_cores"), 2);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_max_frequency_hertz"), 3.5e9);
  EXPECT_EQ(Known(s, "cpu", model), 0);
  // 2 cores x 3.5 GHz x (fp64 16, fp32 32) FLOP per cycle and core.
  EXPECT_EQ(Capacity(s, "fp64"), 112e9);
  EXPECT_EQ(Capacity(s, "fp32"), 224e9);
  EXPECT_EQ(Capacity(s, "fp16"), 0);
  EXPECT_EQ(Capacity(s, "int8"), 0);
  EXPECT_EQ(BySource(s, "cpu", "fp64", "estimated"), 112e9);
  EXPECT_EQ(BySource(s, "cpu", "fp32", "estimated"), 224e9);
  EXPECT_EQ(BySource(s, "gpu", "fp32", "datasheet"), 0);
  EXPECT_TRUE(std::isnan(BySource(s, "cpu", "fp32", "datasheet")));
  EXPECT_EQ(r.message,
            "unknown CPU model \"AMD EPYC\": add it to "
            "collector_config.inventory.models; capacity estimated from its flags "
            "(avx2+fma: fp64 16, fp32 32 FLOP/cycle/core) x physical cores x the "
            "highest cpuinfo_max_freq");
  // Power model: no entry for "AMD EPYC", so 2 cores x (1.25 W idle, 5 W full load).
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_idle_watts"), 2.5);
  EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_max_watts"), 10);

  // The same VM without cpufreq: the highest "cpu MHz" of cpuinfo.
  TempTree t;
  t.Write("proc/cpuinfo", testing::Slurp(FixturePath("suanli/vm-amd-epyc/proc/cpuinfo")));
  t.Write("proc/meminfo", kMeminfo);
  InventoryCollector bare({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep b;
  r = bare.Collect(b);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Capacity(b, "fp32"), 2 * (2445.406 * 1e6) * 32);
  EXPECT_NE(r.message.find("x the highest \"cpu MHz\" of /proc/cpuinfo (the current frequency)"),
            std::string::npos)
      << r.message;
  // The message names the rule, not the frequency: unchanged when the MHz moves, logged once.
  std::string first = r.message;
  std::string moved = testing::Slurp(FixturePath("suanli/vm-amd-epyc/proc/cpuinfo"));
  moved.replace(moved.find("2445.406"), 8, "2600.000");
  t.Write("proc/cpuinfo", moved);
  InventoryCollector again({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep a;
  r = again.Collect(a);
  EXPECT_EQ(r.message, first);
  EXPECT_EQ(Capacity(a, "fp32"), 2 * (2600.0 * 1e6) * 32);
}

TEST(InventoryCollectorTest, UnknownCpuWithoutIsaFlagsCountsZero) {
  TempTree t;
  // Cpuinfo() writes no flags line, as on ARM or in a trimmed file.
  t.Write("proc/cpuinfo", Cpuinfo("Some Future CPU", 1, 8));
  t.Write("proc/meminfo", kMeminfo);
  t.Write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3000000\n");
  InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
  Sweep s;
  CollectResult r = c.Collect(s);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Capacity(s, "fp64"), 0);
  EXPECT_EQ(BySource(s, "cpu", "fp64", "datasheet"), 0);
  EXPECT_EQ(r.message,
            "unknown CPU model \"Some Future CPU\": add it to collector_config.inventory.models; "
            "no FLOPs per cycle known from its flags: CPU capacity counted as 0");
}

TEST(InventoryCollectorTest, PowerModelFromTheTableOrTheConfig) {
  TempTree t;
  // 2 sockets x 64 cores of EPYC 7763: the shipped entry (280 W TDP, 70 W idle per socket).
  t.Write("proc/cpuinfo", Cpuinfo("AMD EPYC 7763 64-Core Processor", 2, 64, 2, "AuthenticAMD"));
  t.Write("proc/meminfo", kMeminfo);
  {
    InventoryCollector c({t.Path("proc"), t.Path("sys")}, Shipped(), {});
    Sweep s;
    ASSERT_EQ(c.Collect(s).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_idle_watts"), 2 * 70.0);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_max_watts"), 2 * 280.0);
    EXPECT_EQ(BySource(s, "cpu", "fp64", "datasheet"), 128 * 2.45e9 * 16);
  }
  {
    // An operator's entry wins over the shipped one; a VM with 4 of its 64 cores gets 4/64.
    TempTree vm;
    vm.Write("proc/cpuinfo", Cpuinfo("AMD EPYC 7763 64-Core Processor", 1, 4, 1, "AuthenticAMD"));
    vm.Write("proc/meminfo", kMeminfo);
    auto c = MakeFromConfig({vm.Path("proc"), vm.Path("sys")},
                            "    power_models:\n"
                            "      - {match: EPYC 7763, cores: 64, idle_watts: 96, max_watts: 320,"
                            " source: measured}\n");
    ASSERT_NE(c, nullptr);
    Sweep s;
    ASSERT_EQ(c->Collect(s).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_idle_watts"), 96.0 * 4 / 64);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_max_watts"), 320.0 * 4 / 64);
  }
  {
    // The per-core default, configured.
    TempTree vm;
    vm.Write("proc/cpuinfo", Cpuinfo("Some Future CPU", 1, 8, 1));
    vm.Write("proc/meminfo", kMeminfo);
    auto c = MakeFromConfig({vm.Path("proc"), vm.Path("sys")},
                            "    power_per_core: {idle_watts: 2, max_watts: 8}\n");
    ASSERT_NE(c, nullptr);
    Sweep s;
    ASSERT_EQ(c->Collect(s).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_idle_watts"), 16);
    EXPECT_EQ(ValueOf(s, "suanli_node_cpu_power_model_max_watts"), 64);
  }
}

TEST(InventoryCollectorTest, OptionErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml;
    std::string want;
  };
  const Case cases[] = {
      {"    gpus:\n      - {model: NVIDIA H100 80GB HBM3}\n",
       "agent.yml:4: collector_config.inventory.gpus[0].count: required"},
      {"    gpus:\n      - {count: 8}\n",
       "agent.yml:4: collector_config.inventory.gpus[0].model: required"},
      {"    gpus:\n      - {model: X, count: 8, memory: 80}\n",
       "agent.yml:4: collector_config.inventory.gpus[0].memory: unknown key"},
      {"    refresh_interval: 0s\n",
       "agent.yml:3: collector_config.inventory.refresh_interval: must be longer than 0s"},
      {"    models:\n      - {kind: gpu, model: X, peak_flops: {fp16: x}}\n",
       "agent.yml:4: collector_config.inventory.models[0].peak_flops.fp16: expected a number"},
      {"    power_models:\n      - {match: X, cores: 8, max_watts: 100}\n",
       "agent.yml:4: collector_config.inventory.power_models[0].idle_watts: required"},
      {"    power_models:\n      - {match: X, cores: 8, idle_watts: 120, max_watts: 100}\n",
       "agent.yml:4: collector_config.inventory.power_models[0].idle_watts: must be at least 0 and "
       "below max_watts"},
      {"    power_models:\n      - {cores: 8, idle_watts: 10, max_watts: 100}\n",
       "agent.yml:4: collector_config.inventory.power_models[0]: needs model (the exact name), "
       "match (a substring) or glob"},
      {"    power_models:\n      - {match: X, idle_watts: 10, max_watts: 100}\n",
       "agent.yml:4: collector_config.inventory.power_models[0].cores: required"},
      {"    power_per_core: {idle_watts: 3, max_watts: 0}\n",
       "agent.yml:3: collector_config.inventory.power_per_core.max_watts: must be a positive "
       "number"},
      {"    power_per_core: {idle: 3}\n",
       "agent.yml:3: collector_config.inventory.power_per_core.idle: unknown key"},
  };
  for (const Case& c : cases) {
    Section s(c.yaml);
    CollectorContext ctx{HostPaths{"/nonexistent/proc", "/nonexistent/sys"}, *s.map};
    auto made = InventoryCollector::Make(ctx);
    ASSERT_FALSE(made.ok()) << c.yaml;
    EXPECT_EQ(made.status().message().substr(0, c.want.size()), c.want) << c.yaml;
  }
  // The factory touches no host file (it also runs for --config.check).
  Section ok("    refresh_interval: 1h\n    gpus: []\n");
  CollectorContext ctx{HostPaths{"/nonexistent/proc", "/nonexistent/sys"}, *ok.map};
  EXPECT_TRUE(InventoryCollector::Make(ctx).ok());
  EXPECT_TRUE(ok.map->Finish().ok());
}

}  // namespace
}  // namespace suanli::agent
