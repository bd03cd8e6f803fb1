#include "agent/collectors/power/nvml_gpu.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using testing::FindFamily;
using testing::TempTree;
using testing::ValueOf;

// The fake NVML (fake_nvml.cc) is opened here too, so the collector's dlopen of the same path gets
// this very copy and the test can steer it through its fake_nvml_* functions.
class NvmlGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = ::dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << ::dlerror();
    Fn<void()>("fake_nvml_reset")();
  }
  void TearDown() override {
    if (lib_ != nullptr) ::dlclose(lib_);
  }

  template <typename F>
  F* Fn(const char* name) {
    void* sym = ::dlsym(lib_, name);
    EXPECT_NE(sym, nullptr) << name;
    return reinterpret_cast<F*>(sym);
  }

  void SetGpuCount(unsigned n) { Fn<void(unsigned)>("fake_nvml_set_gpu_count")(n); }
  void SetInitResult(int code) { Fn<void(int)>("fake_nvml_set_init_result")(code); }
  void SetPowerMw(unsigned i, unsigned mw) {
    Fn<void(unsigned, unsigned)>("fake_nvml_set_power_mw")(i, mw);
  }
  void SetEnergyMj(unsigned i, unsigned long long mj) {
    Fn<void(unsigned, unsigned long long)>("fake_nvml_set_energy_mj")(i, mj);
  }
  void SetPowerLimitMw(unsigned i, unsigned mw) {
    Fn<void(unsigned, unsigned)>("fake_nvml_set_power_limit_mw")(i, mw);
  }
  void SetUtilization(unsigned i, unsigned gpu, unsigned memory) {
    Fn<void(unsigned, unsigned, unsigned)>("fake_nvml_set_utilization")(i, gpu, memory);
  }
  void SetMemory(unsigned i, unsigned long long total, unsigned long long used) {
    Fn<void(unsigned, unsigned long long, unsigned long long)>("fake_nvml_set_memory")(i, total,
                                                                                       used);
  }
  void SetMemoryReserved(unsigned i, unsigned long long reserved) {
    Fn<void(unsigned, unsigned long long)>("fake_nvml_set_memory_reserved")(i, reserved);
  }
  void SetName(unsigned i, const char* name) {
    Fn<void(unsigned, const char*)>("fake_nvml_set_name")(i, name);
  }
  void SetNotSupported(unsigned i, const char* fn) {
    Fn<void(unsigned, const char*)>("fake_nvml_set_not_supported")(i, fn);
  }
  void SetLost(unsigned i, bool lost) { Fn<void(unsigned, int)>("fake_nvml_set_lost")(i, lost); }
  void SetMig(unsigned i, bool enabled, unsigned count) {
    Fn<void(unsigned, int, unsigned)>("fake_nvml_set_mig")(i, enabled, count);
  }
  void SetMigMemory(unsigned i, unsigned j, unsigned long long total, unsigned long long used) {
    Fn<void(unsigned, unsigned, unsigned long long, unsigned long long)>(
        "fake_nvml_set_mig_memory")(i, j, total, used);
  }
  int InitRefs() { return Fn<int()>("fake_nvml_init_refs")(); }
  int InitCalls() { return Fn<int()>("fake_nvml_init_calls")(); }
  int HandleLookups() { return Fn<int()>("fake_nvml_handle_lookups")(); }
  int MigPowerCalls() { return Fn<int()>("fake_nvml_mig_power_calls")(); }
  int EnergyCalls() { return Fn<int()>("fake_nvml_energy_calls")(); }
  int MigModeCalls() { return Fn<int()>("fake_nvml_mig_mode_calls")(); }

  // Two GPUs with every figure distinct.
  void TwoGpus() {
    SetGpuCount(2);
    SetName(0, "NVIDIA H100 80GB HBM3");
    SetName(1, "NVIDIA A100-SXM4-40GB");
    SetPowerMw(0, 312'500);
    SetPowerMw(1, 61'250);
    SetEnergyMj(0, 123'456'789'012ull);
    SetEnergyMj(1, 5'000);
    SetPowerLimitMw(0, 700'000);
    SetPowerLimitMw(1, 400'000);
    SetUtilization(0, 87, 45);
    SetUtilization(1, 0, 3);
    SetMemory(0, 85'520'809'984ull, 1'073'741'824ull);
    SetMemory(1, 42'949'672'960ull, 524'288'000ull);
    SetMemoryReserved(0, 644'939'776ull);  // what an H200 with driver 580 reserves
    SetMemoryReserved(1, 0);
  }

  void* lib_ = nullptr;
};

const std::string kUuid0 = "GPU-00000000-0000-0000-0000-000000000000";
const std::string kUuid1 = "GPU-00000000-0000-0000-0000-000000000001";

std::vector<Label> Gpu(int i) {
  return {{"gpu", std::to_string(i)}, {"uuid", i ? kUuid1 : kUuid0}};
}

size_t Points(const Sweep& sweep, std::string_view family) {
  const Family* f = FindFamily(sweep, family);
  return f == nullptr ? 0 : f->points.size();
}

TEST_F(NvmlGpuTest, TwoGpusExportExactValues) {
  TwoGpus();
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;

  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_watts", Gpu(0)), 312.5);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_watts", Gpu(1)), 61.25);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_energy_joules_total", Gpu(0)), 123'456'789.012);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_energy_joules_total", Gpu(1)), 5.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_limit_watts", Gpu(0)), 700.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_limit_watts", Gpu(1)), 400.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_utilization_ratio", Gpu(0)), 0.87);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_utilization_ratio", Gpu(1)), 0.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_utilization_ratio", Gpu(0)), 0.45);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_utilization_ratio", Gpu(1)), 0.03);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_used_bytes", Gpu(0)), 1'073'741'824.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_used_bytes", Gpu(1)), 524'288'000.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_total_bytes", Gpu(0)), 85'520'809'984.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_total_bytes", Gpu(1)), 42'949'672'960.0);
  // Used is v2's, as nvidia-smi shows it; the reserved memory is its own family.
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_reserved_bytes", Gpu(0)), 644'939'776.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_reserved_bytes", Gpu(1)), 0.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_info",
                    {{"gpu", "0"},
                     {"uuid", kUuid0},
                     {"model", "NVIDIA H100 80GB HBM3"},
                     {"driver_version", "550.54.15"}}),
            1.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_info",
                    {{"gpu", "1"},
                     {"uuid", kUuid1},
                     {"model", "NVIDIA A100-SXM4-40GB"},
                     {"driver_version", "550.54.15"}}),
            1.0);

  std::vector<std::string> names;
  for (const Family& f : sweep.families()) {
    names.push_back(f.name);
    EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_EQ(f.points.size(), 2u) << f.name;
    EXPECT_EQ(f.type, f.name == "suanli_gpu_energy_joules_total" ? MetricType::kCounter
                                                                 : MetricType::kGauge)
        << f.name;
    for (const Point& p : f.points) {
      Labels labels(p.labels);
      labels.Set("__name__", f.name);
      EXPECT_TRUE(labels.Validate().ok()) << labels.ToString();
    }
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "suanli_gpu_info", "suanli_gpu_power_watts", "suanli_gpu_energy_joules_total",
                "suanli_gpu_power_limit_watts", "suanli_gpu_utilization_ratio",
                "suanli_gpu_memory_utilization_ratio", "suanli_gpu_memory_used_bytes",
                "suanli_gpu_memory_total_bytes", "suanli_gpu_memory_reserved_bytes"}));
}

TEST_F(NvmlGpuTest, DriverWithoutMemoryV2FallsBackToV1) {
  TwoGpus();
  SetNotSupported(0, "nvmlDeviceGetMemoryInfo_v2");
  SetNotSupported(1, "v2_version_mismatch");  // a driver that knows the entry point, not v2
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  // v1's "used" includes the reserved memory, and v1 has no reserved figure.
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_used_bytes", Gpu(0)),
            1'073'741'824.0 + 644'939'776.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_used_bytes", Gpu(1)), 524'288'000.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_total_bytes", Gpu(0)), 85'520'809'984.0);
  EXPECT_EQ(FindFamily(sweep, "suanli_gpu_memory_reserved_bytes"), nullptr);
}

TEST_F(NvmlGpuTest, UnsupportedEnergyCounterLeavesOutThatGpusFamilyOnly) {
  TwoGpus();
  SetNotSupported(0, "nvmlDeviceGetTotalEnergyConsumption");  // pre-Volta boards lack it
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Points(sweep, "suanli_gpu_energy_joules_total"), 1u);
  EXPECT_TRUE(std::isnan(ValueOf(sweep, "suanli_gpu_energy_joules_total", Gpu(0))));
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_energy_joules_total", Gpu(1)), 5.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_watts", Gpu(0)), 312.5);
  EXPECT_EQ(Points(sweep, "suanli_gpu_power_watts"), 2u);
  EXPECT_EQ(Points(sweep, "suanli_gpu_memory_total_bytes"), 2u);
}

TEST_F(NvmlGpuTest, EveryUnsupportedCallLeavesOnlyTheInfo) {
  SetGpuCount(1);
  for (const char* fn :
       {"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetMigMode"}) {
    SetNotSupported(0, fn);
  }
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ASSERT_EQ(sweep.families().size(), 1u);
  EXPECT_EQ(sweep.families()[0].name, "suanli_gpu_info");
}

TEST_F(NvmlGpuTest, MigInstancesExportMemoryAndNeverPower) {
  TwoGpus();
  SetMig(0, true, 2);
  SetMigMemory(0, 0, 10'200'547'328ull, 13'107'200ull);
  SetMigMemory(0, 1, 20'401'094'656ull, 2'147'483'648ull);
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;

  const std::string mig0 = "MIG-00000000-0000-0000-0000-000000000000";
  const std::string mig1 = "MIG-00000000-0001-0000-0000-000000000000";
  auto mig = [](const std::string& j, const std::string& uuid) {
    return std::vector<Label>{{"gpu", "0"}, {"mig_instance", j}, {"uuid", uuid}};
  };
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_mig_memory_used_bytes", mig("0", mig0)), 13'107'200.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_mig_memory_used_bytes", mig("1", mig1)), 2'147'483'648.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_mig_memory_total_bytes", mig("0", mig0)), 10'200'547'328.0);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_mig_memory_total_bytes", mig("1", mig1)), 20'401'094'656.0);
  EXPECT_EQ(Points(sweep, "suanli_gpu_mig_memory_used_bytes"), 2u);  // the 5 empty slots: none
  // Drivers answer NOT_SUPPORTED for utilization of an instance and of a GPU in MIG mode.
  EXPECT_EQ(FindFamily(sweep, "suanli_gpu_mig_utilization_ratio"), nullptr);
  EXPECT_EQ(Points(sweep, "suanli_gpu_utilization_ratio"), 1u);

  // Power and energy once per physical board, the parent's, and never asked of an instance.
  EXPECT_EQ(Points(sweep, "suanli_gpu_power_watts"), 2u);
  EXPECT_EQ(Points(sweep, "suanli_gpu_energy_joules_total"), 2u);
  EXPECT_EQ(Points(sweep, "suanli_gpu_power_limit_watts"), 2u);
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_power_watts", Gpu(0)), 312.5);
  EXPECT_EQ(MigPowerCalls(), 0);
  for (const Family& f : sweep.families()) {
    if (f.name.rfind("suanli_gpu_mig_", 0) == 0) continue;
    for (const Point& p : f.points) {
      for (const Label& l : p.labels) EXPECT_NE(l.name, "mig_instance") << f.name;
    }
  }
  // The parent's memory stays whole in its own family: no instance adds to it.
  EXPECT_EQ(ValueOf(sweep, "suanli_gpu_memory_total_bytes", Gpu(0)), 85'520'809'984.0);
}

TEST_F(NvmlGpuTest, MigModeWithoutInstancesExportsNoInstances) {
  SetGpuCount(1);
  SetMig(0, true, 0);
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(FindFamily(sweep, "suanli_gpu_mig_memory_used_bytes"), nullptr);
  EXPECT_EQ(Points(sweep, "suanli_gpu_power_watts"), 1u);
}

TEST_F(NvmlGpuTest, MissingLibraryIsNoData) {
  for (const std::string lib : {"/nonexistent/libnvidia-ml.so.1", "libsuanli-no-such-nvml.so.1"}) {
    NvmlGpuCollector c(lib);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kNoData) << r.message;
    EXPECT_NE(r.message.find(lib), std::string::npos) << r.message;
    EXPECT_EQ(sweep.PointCount(), 0u);
  }
}

TEST_F(NvmlGpuTest, LibraryFileThatDoesNotLoadFails) {
  TempTree tree;
  tree.Write("libnvidia-ml.so.1", "not an ELF file");
  NvmlGpuCollector c(tree.Path("libnvidia-ml.so.1"));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed) << r.message;
  EXPECT_NE(r.message.find(tree.Path("libnvidia-ml.so.1")), std::string::npos) << r.message;
}

TEST_F(NvmlGpuTest, NoDriverIsNoDataAndIsRetried) {
  SetGpuCount(1);
  for (int code : {9 /* DRIVER_NOT_LOADED */, 12 /* LIBRARY_NOT_FOUND */}) {
    SetInitResult(code);
    NvmlGpuCollector c(FAKE_NVML_PATH);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kNoData) << r.message;
    EXPECT_NE(r.message.find("nvmlInit_v2"), std::string::npos) << r.message;
    EXPECT_EQ(sweep.PointCount(), 0u);
    EXPECT_EQ(InitRefs(), 0);

    // The driver loads later: the next sweep picks it up, without a restart.
    SetInitResult(0);
    Sweep later;
    ASSERT_EQ(c.Collect(later).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(Points(later, "suanli_gpu_info"), 1u);
  }
  EXPECT_EQ(InitRefs(), 0);
}

TEST_F(NvmlGpuTest, OtherInitErrorFails) {
  SetInitResult(4);  // NO_PERMISSION
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message,
            "nvmlInit_v2: Insufficient Permissions (4): the agent's user cannot open "
            "/dev/nvidiactl");
}

TEST_F(NvmlGpuTest, NoGpuIsNoData) {
  SetGpuCount(0);
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_EQ(r.message, "NVML (driver 550.54.15) sees no NVIDIA GPU");
}

TEST_F(NvmlGpuTest, StaysInitialisedAcrossSweepsAndShutsDownOnDestruction) {
  TwoGpus();
  {
    NvmlGpuCollector c(FAKE_NVML_PATH);
    EXPECT_EQ(InitRefs(), 0);  // construction touches nothing
    for (int i = 0; i < 3; ++i) {
      Sweep sweep;
      ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    }
    EXPECT_EQ(InitCalls(), 1);
    EXPECT_EQ(InitRefs(), 1);
    EXPECT_EQ(HandleLookups(), 2);  // enumerated once
  }
  EXPECT_EQ(InitRefs(), 0);
}

TEST_F(NvmlGpuTest, CountChangeReenumerates) {
  TwoGpus();
  SetGpuCount(1);
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Points(first, "suanli_gpu_power_watts"), 1u);
  SetGpuCount(2);
  Sweep second;
  ASSERT_EQ(c.Collect(second).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(second, "suanli_gpu_power_watts", Gpu(1)), 61.25);
  EXPECT_EQ(HandleLookups(), 1 + 2);
}

TEST_F(NvmlGpuTest, LostGpuFailsKeepsTheOthersAndIsReenumerated) {
  TwoGpus();
  NvmlGpuCollector c(FAKE_NVML_PATH);
  Sweep before;
  ASSERT_EQ(c.Collect(before).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(HandleLookups(), 2);

  SetLost(1, true);
  Sweep lost;
  CollectResult r = c.Collect(lost);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, "GPU 1 (" + kUuid1 +
                           ") is lost (NVML_ERROR_GPU_IS_LOST): off the bus or needs a reset");
  EXPECT_EQ(ValueOf(lost, "suanli_gpu_power_watts", Gpu(0)), 312.5);
  for (const Family& f : lost.families()) EXPECT_EQ(f.points.size(), 1u) << f.name;

  SetLost(1, false);  // reset by the operator
  Sweep after;
  r = c.Collect(after);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(after, "suanli_gpu_power_watts", Gpu(1)), 61.25);
  EXPECT_EQ(HandleLookups(), 2 + 2);  // handles taken afresh
}

TEST_F(NvmlGpuTest, EnergyIntervalReadsTheCounterAtMostThatOften) {
  TwoGpus();
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  NvmlGpuCollector c(FAKE_NVML_PATH, std::chrono::seconds(10), [&] { return now; });
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(EnergyCalls(), 2);  // one per GPU
  EXPECT_EQ(ValueOf(first, "suanli_gpu_energy_joules_total", Gpu(1)), 5.0);

  // 9 s later: the last reading again, without asking NVML; power is read every sweep.
  SetEnergyMj(1, 9'000);
  SetPowerMw(1, 80'000);
  now += std::chrono::seconds(9);
  Sweep second;
  ASSERT_EQ(c.Collect(second).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(EnergyCalls(), 2);
  EXPECT_EQ(ValueOf(second, "suanli_gpu_energy_joules_total", Gpu(1)), 5.0);
  EXPECT_EQ(ValueOf(second, "suanli_gpu_power_watts", Gpu(1)), 80.0);

  // 10 s after the reading: read again.
  now += std::chrono::seconds(1);
  Sweep third;
  ASSERT_EQ(c.Collect(third).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(EnergyCalls(), 4);
  EXPECT_EQ(ValueOf(third, "suanli_gpu_energy_joules_total", Gpu(1)), 9.0);
}

TEST_F(NvmlGpuTest, MigModeIsReadAgainAtMostEveryMinute) {
  TwoGpus();
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  NvmlGpuCollector c(FAKE_NVML_PATH, {}, [&] { return now; });
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(MigModeCalls(), 2);
  EXPECT_EQ(FindFamily(first, "suanli_gpu_mig_memory_used_bytes"), nullptr);

  // MIG mode turned on (a GPU reset): seen at the first read after a minute, not before.
  SetMig(0, true, 1);
  SetMigMemory(0, 0, 10'200'547'328ull, 13'107'200ull);
  now += std::chrono::seconds(59);
  Sweep before;
  ASSERT_EQ(c.Collect(before).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(MigModeCalls(), 2);
  now += std::chrono::seconds(1);
  Sweep after;
  ASSERT_EQ(c.Collect(after).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(MigModeCalls(), 4);
  EXPECT_EQ(Points(after, "suanli_gpu_mig_memory_used_bytes"), 1u);

  // Instances are listed every sweep while the mode is on; the mode itself is not asked again.
  SetMig(0, true, 2);
  now += std::chrono::seconds(1);
  Sweep more;
  ASSERT_EQ(c.Collect(more).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(MigModeCalls(), 4);
  EXPECT_EQ(Points(more, "suanli_gpu_mig_memory_used_bytes"), 2u);
}

TEST_F(NvmlGpuTest, EverySweepReadsTheEnergyByDefault) {
  TwoGpus();
  NvmlGpuCollector c(FAKE_NVML_PATH);
  for (int i = 1; i <= 3; ++i) {
    SetEnergyMj(0, 1'000 * i);
    Sweep sweep;
    ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueOf(sweep, "suanli_gpu_energy_joules_total", Gpu(0)), 1.0 * i);
  }
  EXPECT_EQ(EnergyCalls(), 6);
}

TEST_F(NvmlGpuTest, MakeReadsTheLibraryOption) {
  TwoGpus();
  auto config = ConfigMap::Parse("agent.yml", std::string("library: ") + FAKE_NVML_PATH + "\n");
  ASSERT_TRUE(config.ok()) << config.status().message();
  CollectorContext ctx{HostPaths{}, config.value()};
  auto made = NvmlGpuCollector::Make(ctx);
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_TRUE(config->Finish().ok());
  EXPECT_EQ(InitCalls(), 0);  // the factory touches nothing (it runs for --config.check too)
  Sweep sweep;
  ASSERT_EQ((*made)->Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Points(sweep, "suanli_gpu_info"), 2u);

  auto negative = ConfigMap::Parse("agent.yml", "energy_interval: -5s\n");
  ASSERT_TRUE(negative.ok());
  CollectorContext neg{HostPaths{}, negative.value()};
  auto no = NvmlGpuCollector::Make(neg);
  ASSERT_FALSE(no.ok());
  EXPECT_NE(no.status().message().find("energy_interval"), std::string::npos)
      << no.status().message();

  auto empty = ConfigMap::Parse("agent.yml", "library: ''\n");
  ASSERT_TRUE(empty.ok());
  CollectorContext bad{HostPaths{}, empty.value()};
  auto refused = NvmlGpuCollector::Make(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("agent.yml:1"), std::string::npos)
      << refused.status().message();
}

TEST(NvmlGpuCollectorTest, ReadsThisHostOrSaysWhyNot) {
  NvmlGpuCollector c;
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_NE(r.kind, CollectResult::Kind::kFailed) << r.message;
  if (r.kind == CollectResult::Kind::kOk) {
    EXPECT_GE(sweep.PointCount(), 1u);
  } else {
    EXPECT_FALSE(r.message.empty());
  }
}

}  // namespace
}  // namespace suanli::agent
