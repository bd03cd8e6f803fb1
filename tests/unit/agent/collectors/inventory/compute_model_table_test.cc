#include "agent/collectors/inventory/compute_model_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace suanli::agent {
namespace {

constexpr size_t kFp64 = 0, kFp32 = 1, kFp16 = 2, kInt8 = 3;

ComputeModelTable ShippedTable() {
  auto shipped = ComputeModelTable::Shipped();
  EXPECT_TRUE(shipped.ok()) << shipped.status().message();
  return ComputeModelTable(shipped.ok() ? *shipped : std::vector<ComputeModel>{});
}

// collector_config.inventory of an agent file, as the framework hands it to the factory.
struct Options {
  explicit Options(const std::string& inventory_yaml) {
    auto root = ConfigMap::Parse("agent.yml", "collector_config:\n  inventory:\n" + inventory_yaml);
    EXPECT_TRUE(root.ok()) << root.status().message();
    auto section = root->Map("collector_config");
    EXPECT_TRUE(section.ok());
    auto inventory = section->Map("inventory");
    EXPECT_TRUE(inventory.ok());
    map.emplace(std::move(*inventory));
  }
  std::optional<ConfigMap> map;
};

TEST(ComputeModelTableTest, ShippedTableParsesAndEveryEntryNamesItsSource) {
  auto shipped = ComputeModelTable::Shipped();
  ASSERT_TRUE(shipped.ok()) << shipped.status().message();
  ASSERT_GT(shipped->size(), 40u);
  std::set<uint16_t> pci_ids;
  for (const ComputeModel& m : *shipped) {
    EXPECT_FALSE(m.source.empty()) << m.model << m.match << m.glob;
    if (m.kind == ComputeKind::kGpu) {
      // Shipped GPUs are named exactly: a substring would give "NVIDIA H800 PCIe" the SXM figures.
      EXPECT_FALSE(m.model.empty());
      EXPECT_TRUE(m.match.empty() && m.glob.empty()) << m.model;
      EXPECT_EQ(m.vendor, "nvidia") << m.model;
      EXPECT_FALSE(m.pci_device_ids.empty()) << m.model;
      for (uint16_t id : m.pci_device_ids) EXPECT_TRUE(pci_ids.insert(id).second) << id;
    } else {
      EXPECT_TRUE(m.flops_per_cycle_per_core[kFp64].has_value());
    }
  }
}

TEST(ComputeModelTableTest, GpuDatasheetFiguresByNameAndByPciId) {
  ComputeModelTable t = ShippedTable();
  const ComputeModel* h100 = t.FindGpu("NVIDIA H100 80GB HBM3");
  ASSERT_NE(h100, nullptr);
  EXPECT_EQ(h100->peak_flops[kFp64], 67e12);  // FP64 Tensor Core
  EXPECT_EQ(h100->peak_flops[kFp32], 67e12);
  EXPECT_EQ(h100->peak_flops[kFp16], 989e12);  // dense, not the 2:4-sparse 1979
  EXPECT_EQ(h100->peak_flops[kInt8], 1979e12);
  EXPECT_EQ(t.FindGpuByPciDevice(0x2330), h100);

  const ComputeModel* a100 = t.FindGpuByPciDevice(0x20b2);
  ASSERT_NE(a100, nullptr);
  EXPECT_EQ(a100->model, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(a100->peak_flops[kFp64], 19.5e12);
  EXPECT_EQ(a100->peak_flops[kFp32], 19.5e12);
  EXPECT_EQ(a100->peak_flops[kFp16], 312e12);
  EXPECT_EQ(a100->peak_flops[kInt8], 624e12);

  ASSERT_NE(t.FindGpuByPciDevice(0x20f1), nullptr);
  EXPECT_EQ(t.FindGpuByPciDevice(0x20f1)->model, "NVIDIA A100-PCIE-40GB");
  ASSERT_NE(t.FindGpuByPciDevice(0x26b9), nullptr);
  EXPECT_EQ(t.FindGpuByPciDevice(0x26b9)->model, "NVIDIA L40S");
  ASSERT_NE(t.FindGpuByPciDevice(0x1eb8), nullptr);
  EXPECT_EQ(t.FindGpuByPciDevice(0x1eb8)->model, "Tesla T4");
  ASSERT_NE(t.FindGpuByPciDevice(0x1db1), nullptr);
  EXPECT_EQ(t.FindGpuByPciDevice(0x1db1)->peak_flops[kFp64], 7.8e12);
  // Not in a datasheet: left out, never guessed.
  EXPECT_FALSE(t.FindGpu("NVIDIA L40S")->peak_flops[kFp64].has_value());
  EXPECT_EQ(t.FindGpuByPciDevice(0x2901), nullptr);
}

TEST(ComputeModelTableTest, GpuNamesMatchExactlyAndCaseInsensitively) {
  ComputeModelTable t = ShippedTable();
  EXPECT_NE(t.FindGpu("nvidia h100 80gb hbm3"), nullptr);
  EXPECT_NE(t.FindGpu("  NVIDIA   H100 80GB HBM3 "), nullptr);
  // Variants with other figures are not caught by a shorter name.
  EXPECT_EQ(t.FindGpu("NVIDIA H800 PCIe"), nullptr);
  EXPECT_EQ(t.FindGpu("NVIDIA H100 NVL"), nullptr);
  EXPECT_EQ(t.FindGpu("NVIDIA H100"), nullptr);
}

TEST(ComputeModelTableTest, CpuEntriesMostSpecificFirst) {
  ComputeModelTable t = ShippedTable();
  const ComputeModel* spr = t.FindCpu("Intel(R) Xeon(R) Platinum 8480+");
  ASSERT_NE(spr, nullptr);
  EXPECT_EQ(spr->base_frequency_hertz, 2.0e9);
  EXPECT_EQ(spr->flops_per_cycle_per_core[kFp64], 32);
  EXPECT_EQ(spr->flops_per_cycle_per_core[kFp32], 64);
  EXPECT_EQ(spr->flops_per_cycle_per_core[kFp16], 1024);  // AMX BF16
  EXPECT_EQ(spr->flops_per_cycle_per_core[kInt8], 2048);  // AMX INT8

  const ComputeModel* spr_family = t.FindCpu("Intel(R) Xeon(R) Platinum 8468");
  ASSERT_NE(spr_family, nullptr);
  EXPECT_NE(spr_family, spr);
  EXPECT_FALSE(spr_family->base_frequency_hertz.has_value());

  const ComputeModel* clx = t.FindCpu("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz");
  ASSERT_NE(clx, nullptr);
  EXPECT_EQ(clx->flops_per_cycle_per_core[kFp64], 32);
  EXPECT_FALSE(clx->flops_per_cycle_per_core[kFp16].has_value());

  const ComputeModel* milan = t.FindCpu("AMD EPYC 7763 64-Core Processor");
  ASSERT_NE(milan, nullptr);
  EXPECT_EQ(milan->base_frequency_hertz, 2.45e9);
  EXPECT_EQ(milan->flops_per_cycle_per_core[kFp64], 16);
  const ComputeModel* rome = t.FindCpu("AMD EPYC 7742 64-Core Processor");
  ASSERT_NE(rome, nullptr);
  EXPECT_EQ(rome->glob, "AMD EPYC 7??2*");
  ASSERT_NE(t.FindCpu("AMD EPYC 9654 96-Core Processor"), nullptr);
  ASSERT_NE(t.FindCpu("Hygon C86 7185 32-core Processor"), nullptr);
  ASSERT_NE(t.FindCpu("HiSilicon Kunpeng-920"), nullptr);
  EXPECT_EQ(t.FindCpu("HiSilicon Kunpeng-920")->flops_per_cycle_per_core[kFp64], 4);

  // Not confirmed, so not shipped: Naples (Zen 1 EPYC), desktop parts, Xeon Gold 5xxx.
  EXPECT_EQ(t.FindCpu("AMD EPYC 7551 32-Core Processor"), nullptr);
  EXPECT_EQ(t.FindCpu("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"), nullptr);
  EXPECT_EQ(t.FindCpu("Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz"), nullptr);
  // A GPU name never matches a CPU entry and the reverse.
  EXPECT_EQ(t.FindCpu("NVIDIA H100 80GB HBM3"), nullptr);
  EXPECT_EQ(t.FindGpu("Intel(R) Xeon(R) Platinum 8480+"), nullptr);
}

TEST(ComputeModelTableTest, MatchingRules) {
  ComputeModel m;
  m.glob = "AMD EPYC 7??3*";
  EXPECT_TRUE(m.Matches("AMD EPYC 7543P 32-Core Processor"));
  EXPECT_TRUE(m.Matches("amd epyc 7b13 64-core processor"));
  EXPECT_FALSE(m.Matches("AMD EPYC 7542 32-Core Processor"));
  EXPECT_FALSE(m.Matches("AMD EPYC 713"));
  EXPECT_FALSE(m.Matches("Server AMD EPYC 7543"));  // a glob covers the whole name

  ComputeModel sub;
  sub.match = "Platinum 84";
  EXPECT_TRUE(sub.Matches("Intel(R) Xeon(R) PLATINUM 8480+"));
  EXPECT_FALSE(sub.Matches("Intel(R) Xeon(R) Gold 6430"));

  ComputeModel exact;
  exact.model = "NVIDIA A10";
  EXPECT_TRUE(exact.Matches("nvidia a10"));
  EXPECT_FALSE(exact.Matches("NVIDIA A100-SXM4-80GB"));
  EXPECT_FALSE(exact.Matches("NVIDIA A10G"));
}

TEST(ComputeModelTableTest, CpuPeakIsCoresTimesFrequencyTimesFlopsPerCycle) {
  ComputeModelTable t = ShippedTable();
  const ComputeModel* spr = t.FindCpu("Intel(R) Xeon(R) Platinum 8480+");
  ASSERT_NE(spr, nullptr);
  PerPrecision peak = CpuPeak(*spr, 112, 2.0e9);
  EXPECT_EQ(peak[kFp64], 112 * 2.0e9 * 32);
  EXPECT_EQ(peak[kFp32], 112 * 2.0e9 * 64);
  EXPECT_EQ(peak[kFp16], 112 * 2.0e9 * 1024);
  EXPECT_EQ(peak[kInt8], 112 * 2.0e9 * 2048);
  PerPrecision rome = CpuPeak(*t.FindCpu("AMD EPYC 7742 64-Core Processor"), 64, 2.25e9);
  EXPECT_EQ(rome[kFp64], 64 * 2.25e9 * 16);
  EXPECT_FALSE(rome[kFp16].has_value());
}

TEST(ComputeModelTableTest, FrequencyInModelName) {
  EXPECT_EQ(FrequencyInModelName("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"), 2.5e9);
  EXPECT_EQ(FrequencyInModelName("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"), 1.9e9);
  EXPECT_EQ(FrequencyInModelName("Some CPU @ 2400 MHz"), 2.4e9);
  EXPECT_FALSE(FrequencyInModelName("AMD EPYC 7763 64-Core Processor").has_value());
  EXPECT_FALSE(FrequencyInModelName("Intel(R) Xeon(R) Platinum 8480+").has_value());
  EXPECT_FALSE(FrequencyInModelName("CPU @ fast").has_value());
  EXPECT_FALSE(FrequencyInModelName("CPU @ 2.5").has_value());
}

TEST(ComputeModelTableTest, UserEntriesComeBeforeShippedOnes) {
  Options o(
      "    models:\n"
      "      - kind: gpu\n"
      "        model: NVIDIA H100 80GB HBM3\n"
      "        peak_flops: {fp16: 1.0e15}\n"
      "        source: our own measurement\n"
      "      - kind: cpu\n"
      "        match: Platinum 8480+\n"
      "        base_frequency_hertz: 1.9e9\n"
      "        flops_per_cycle_per_core: {fp64: 16}\n"
      "      - kind: gpu\n"
      "        model: NVIDIA L20\n"
      "        pci_device_ids: [0x26ba]\n"
      "        peak_flops: {fp32: 59.8e12}\n");
  auto t = ComputeModelTable::FromOptions(*o.map);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_TRUE(o.map->Finish().ok());
  const ComputeModel* h100 = t->FindGpu("NVIDIA H100 80GB HBM3");
  ASSERT_NE(h100, nullptr);
  EXPECT_EQ(h100->peak_flops[kFp16], 1.0e15);
  EXPECT_FALSE(h100->peak_flops[kFp64].has_value());
  EXPECT_EQ(h100->source, "our own measurement");
  // Found by its PCI id, the user's entry does not list one: the shipped entry answers.
  EXPECT_EQ(t->FindGpuByPciDevice(0x2330)->peak_flops[kFp16], 989e12);
  const ComputeModel* cpu = t->FindCpu("Intel(R) Xeon(R) Platinum 8480+");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->base_frequency_hertz, 1.9e9);
  EXPECT_FALSE(cpu->flops_per_cycle_per_core[kFp32].has_value());
  ASSERT_NE(t->FindGpuByPciDevice(0x26ba), nullptr);
  EXPECT_EQ(t->FindGpuByPciDevice(0x26ba)->model, "NVIDIA L20");
  // Everything else still comes from the shipped table.
  EXPECT_NE(t->FindGpu("NVIDIA A10"), nullptr);
}

// Each malformed entry is refused with file, line and the full key path.
TEST(ComputeModelTableTest, FlopsPerCycleEstimatedFromIsaFlags) {
  struct Case {
    std::string flags, isa;
    double fp64, fp32;
  };
  const Case cases[] = {
      {"fpu sse sse2 avx fma avx2 avx512f avx512dq", "avx512f", 16, 32},
      {"fpu sse sse2 ssse3 fma avx f16c avx2 bmi2", "avx2+fma", 16, 32},
      {"fpu sse sse2 avx avx2", "avx", 8, 16},  // avx2 without fma: no FMA units
      {"fpu sse sse2 ssse3 avx", "avx", 8, 16},
      {"fpu sse sse2", "sse2", 4, 8},
      {"fpu\tsse\tsse2", "sse2", 4, 8},
  };
  for (const Case& c : cases) {
    FlopsEstimate e = EstimatedFlopsPerCycle(c.flags);
    EXPECT_EQ(e.isa, c.isa) << c.flags;
    EXPECT_EQ(e.flops_per_cycle_per_core[0], c.fp64) << c.flags;
    EXPECT_EQ(e.flops_per_cycle_per_core[1], c.fp32) << c.flags;
    EXPECT_FALSE(e.flops_per_cycle_per_core[2]) << c.flags;
    EXPECT_FALSE(e.flops_per_cycle_per_core[3]) << c.flags;
  }
  // Names are whole words: "avx512fx" or "xfma" are not the flags.
  EXPECT_EQ(EstimatedFlopsPerCycle("avx512fx xfma avx2").isa, "");
  EXPECT_EQ(EstimatedFlopsPerCycle("").isa, "");
  EXPECT_EQ(EstimatedFlopsPerCycle("fp asimd evtstrm aes pmull sha1").isa, "");  // ARM
}

TEST(ComputeModelTableTest, MalformedModelsNameFileLineAndKey) {
  struct Case {
    std::string yaml;  // the entry, at line 4 of agent.yml
    std::string want;
  };
  const std::string kAt = "agent.yml:";
  const std::string kKey = "collector_config.inventory.models[0]";
  const Case cases[] = {
      {"      - kind: tpu\n        model: X\n",
       kAt + "4: " + kKey + ".kind: \"tpu\" is not cpu or gpu"},
      {"      - model: X\n        peak_flops: {fp16: 1}\n", kAt + "4: " + kKey + ".kind: required"},
      {"      - kind: gpu\n        model: X\n        peak_flops: {fp16: lots}\n",
       kAt + "6: " + kKey + ".peak_flops.fp16: expected a number"},
      {"      - kind: gpu\n        model: X\n        peak_flops: {fp16: -5}\n",
       kAt + "6: " + kKey + ".peak_flops.fp16: must be a positive number"},
      {"      - kind: gpu\n        model: X\n        peak_flops: {bf8: 1}\n",
       kAt + "6: " + kKey + ".peak_flops.bf8: unknown precision"},
      {"      - kind: gpu\n        model: X\n",
       kAt + "4: " + kKey + ".peak_flops: required for kind: gpu"},
      {"      - kind: cpu\n        match: X\n        peak_flops: {fp16: 1}\n",
       kAt + "6: " + kKey + ".peak_flops: only for kind: gpu"},
      {"      - kind: cpu\n        match: X\n        flops_per_cycle_per_core: {fp64: 16}\n"
       "        base_frequency_hertz: 2.0GHz\n",
       kAt + "7: " + kKey + ".base_frequency_hertz: expected a number"},
      {"      - kind: gpu\n        model: X\n        peak_flops: {fp16: 1}\n"
       "        pci_device_ids: [0xZZ]\n",
       kAt + "7: " + kKey + ".pci_device_ids: \"0xZZ\" is not a PCI device id"},
      {"      - kind: gpu\n        match: X\n        peak_flops: {fp16: 1}\n"
       "        pci_device_ids: [0x2330]\n",
       kAt + "7: " + kKey + ".pci_device_ids: needs model"},
      {"      - kind: gpu\n        peak_flops: {fp16: 1}\n",
       kAt + "4: " + kKey + ": needs model (the exact name), match (a substring) or glob"},
      {"      - kind: gpu\n        model: X\n        peak_flops: {fp16: 1}\n        tflops: 3\n",
       kAt + "7: " + kKey + ".tflops: unknown key"},
      {"      - kind gpu\n", kAt + "4: " + kKey + ": expected a mapping"},
  };
  for (const Case& c : cases) {
    Options o("    models:\n" + c.yaml);
    auto t = ComputeModelTable::FromOptions(*o.map);
    ASSERT_FALSE(t.ok()) << c.yaml;
    EXPECT_EQ(t.status().message().substr(0, c.want.size()), c.want) << c.yaml;
  }
  Options not_a_list("    models: {kind: gpu}\n");
  auto t = ComputeModelTable::FromOptions(*not_a_list.map);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "agent.yml:3: collector_config.inventory.models: expected a list");
}

}  // namespace
}  // namespace suanli::agent
