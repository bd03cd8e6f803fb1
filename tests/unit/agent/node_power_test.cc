#include "agent/node_power.h"

#include <gtest/gtest.h>

#include <string>

#include "agent/collectors/inventory/inventory.h"
#include "agent/collectors/utilization/cpu.h"
#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using std::chrono::seconds;
using testing::ValueOf;

const Point& PowerPoint(const Sweep& s) {
  const Family* f = s.Find("suanli_node_power_watts");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(f->points.size(), 1u);
  return f->points[0];
}

void AddRapl(Sweep& s, const char* zone, const char* index, double joules) {
  s.Add("suanli_rapl_energy_joules_total", "", MetricType::kCounter,
        {{"index", index}, {"zone", zone}}, joules);
}

TEST(NodePowerTest, PrecedenceNeverSumsOverlappingSources) {
  NodePower np(seconds(1));
  // First sweep: RAPL has no rate yet, but the BMC answers: the BMC wins and nothing is added.
  Sweep s1;
  AddRapl(s1, "package", "0", 1000);
  s1.Add("suanli_gpu_power_watts", "", MetricType::kGauge, {{"gpu", "0"}}, 300);
  s1.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge, {}, 450);
  s1.Add("suanli_ipmi_dcmi_power_measurement_active", "", MetricType::kGauge, {}, 1);
  s1.Add("suanli_ipmi_dcmi_reading_age_seconds", "", MetricType::kGauge, {}, 2);
  s1.Add("suanli_acpi_power_meter_watts", "", MetricType::kGauge, {{"chip", "acpi"}}, 440);
  np.Derive(s1, 10'000);
  EXPECT_EQ(PowerPoint(s1).labels, (std::vector<Label>{{"source", "ipmi_dcmi"}}));
  EXPECT_EQ(PowerPoint(s1).value, 450);

  // Redfish beats IPMI; of two chassis, the one the collector chose as this server's is the
  // figure, never the larger enclosure's.
  Sweep s2;
  s2.Add("suanli_redfish_power_watts", "", MetricType::kGauge, {{"chassis", "1U"}}, 344);
  s2.Add("suanli_redfish_power_watts", "", MetricType::kGauge, {{"chassis", "enc"}}, 926);
  s2.Add("suanli_redfish_server_power_watts", "", MetricType::kGauge,
         {{"chassis", "1U"}, {"scope", "server"}, {"systems", "1"}}, 344);
  s2.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge, {}, 450);
  np.Derive(s2, 11'000);
  EXPECT_EQ(PowerPoint(s2).labels, (std::vector<Label>{{"source", "redfish"}}));
  EXPECT_EQ(PowerPoint(s2).value, 344);

  // A stale IPMI reading and an inactive measurement fall through to the ACPI meter.
  Sweep s3;
  s3.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge, {}, 450);
  s3.Add("suanli_ipmi_dcmi_reading_age_seconds", "", MetricType::kGauge, {}, 600);
  s3.Add("suanli_acpi_power_meter_watts", "", MetricType::kGauge, {{"chip", "acpi"}}, 440);
  np.Derive(s3, 12'000);
  EXPECT_EQ(PowerPoint(s3).labels[0].value, "acpi_power_meter");
}

TEST(NodePowerTest, SharedReadingsSaySoWithTheChassisIdentity) {
  NodePower np(seconds(1));
  // Redfish: the chassis of a 2U four-node server, fresh.
  Sweep a;
  a.Add("suanli_redfish_power_watts", "", MetricType::kGauge,
        {{"chassis", "2U4N"}, {"chassis_identity", "2U4N-S7J00482"}, {"systems", "4"}}, 1648);
  a.Add("suanli_redfish_server_power_watts", "", MetricType::kGauge,
        {{"chassis", "2U4N"},
         {"chassis_identity", "2U4N-S7J00482"},
         {"systems", "4"},
         {"scope", "shared"}},
        1648);
  a.Add("suanli_redfish_reading_age_seconds", "", MetricType::kGauge, {{"chassis", "2U4N"}}, 3);
  np.Derive(a, 1000);
  EXPECT_EQ(PowerPoint(a).labels, (std::vector<Label>{{"source", "redfish_shared"},
                                                      {"chassis_identity", "2U4N-S7J00482"},
                                                      {"systems", "4"}}));
  EXPECT_EQ(PowerPoint(a).value, 1648);

  // Only the server's own chassis' age counts: a stale enclosure beside it does not matter,
  // a stale own reading does.
  Sweep b;
  b.Add("suanli_redfish_server_power_watts", "", MetricType::kGauge,
        {{"chassis", "Blade3"}, {"scope", "server"}, {"systems", "1"}}, 412);
  b.Add("suanli_redfish_reading_age_seconds", "", MetricType::kGauge, {{"chassis", "Enclosure"}},
        600);
  b.Add("suanli_redfish_reading_age_seconds", "", MetricType::kGauge, {{"chassis", "Blade3"}}, 2);
  np.Derive(b, 2000);
  EXPECT_EQ(PowerPoint(b).labels, (std::vector<Label>{{"source", "redfish"}}));
  EXPECT_EQ(PowerPoint(b).value, 412);
  Sweep c;
  c.Add("suanli_redfish_server_power_watts", "", MetricType::kGauge,
        {{"chassis", "Blade3"}, {"scope", "server"}, {"systems", "1"}}, 412);
  c.Add("suanli_redfish_reading_age_seconds", "", MetricType::kGauge, {{"chassis", "Blade3"}}, 600);
  c.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge,
        {{"scope", "shared"}, {"chassis_identity", "SD530-J300XYZ"}, {"systems", "4"}}, 1510);
  np.Derive(c, 3000);
  // IPMI DCMI under a platform rule that says its reading covers the chassis.
  EXPECT_EQ(PowerPoint(c).labels, (std::vector<Label>{{"source", "ipmi_dcmi_shared"},
                                                      {"chassis_identity", "SD530-J300XYZ"},
                                                      {"systems", "4"}}));
  EXPECT_EQ(PowerPoint(c).value, 1510);
}

TEST(NodePowerTest, RaplRatesPlusGpusAndEnergyIntegral) {
  NodePower np(seconds(1));
  Sweep a;
  AddRapl(a, "package", "0", 100);
  AddRapl(a, "package", "1", 200);
  AddRapl(a, "dram", "0", 10);
  np.Derive(a, 0);
  EXPECT_EQ(a.Find("suanli_node_power_watts"), nullptr);  // no rate from one reading

  Sweep b;  // 2 s later: packages used 150 J + 250 J, dram 20 J -> 210 W; GPU 300 W
  AddRapl(b, "package", "0", 250);
  AddRapl(b, "package", "1", 450);
  AddRapl(b, "dram", "0", 30);
  b.Add("suanli_gpu_power_watts", "", MetricType::kGauge, {{"gpu", "0"}}, 300);
  np.Derive(b, 2000);
  EXPECT_EQ(PowerPoint(b).labels[0].value, "rapl");
  EXPECT_DOUBLE_EQ(PowerPoint(b).value, 510);
  EXPECT_EQ(b.Find("suanli_node_energy_joules_total")->points[0].value, 0);

  Sweep c;  // psys appears: it wins over package+dram. 1 s later, 90 J -> 90 W + 300 W GPU.
  AddRapl(c, "package", "0", 300);
  AddRapl(c, "package", "1", 500);
  AddRapl(c, "dram", "0", 35);
  AddRapl(c, "psys", "0", 1000);
  c.Add("suanli_gpu_power_watts", "", MetricType::kGauge, {{"gpu", "0"}}, 300);
  np.Derive(c, 3000);
  EXPECT_EQ(PowerPoint(c).labels[0].value, "rapl");  // psys has no rate yet
  Sweep d;
  AddRapl(d, "psys", "0", 1090);
  d.Add("suanli_gpu_power_watts", "", MetricType::kGauge, {{"gpu", "0"}}, 300);
  np.Derive(d, 4000);
  EXPECT_EQ(PowerPoint(d).labels[0].value, "rapl_psys");
  EXPECT_DOUBLE_EQ(PowerPoint(d).value, 390);
  // Energy: trapezoids (510+ c's watts)/2 x 1 s + (c + 390)/2 x 1 s.
  double c_watts = PowerPoint(c).value;
  EXPECT_DOUBLE_EQ(d.Find("suanli_node_energy_joules_total")->points[0].value,
                   (510 + c_watts) / 2 + (c_watts + 390) / 2);
}

TEST(NodePowerTest, NothingWithoutAnySource) {
  NodePower np(seconds(15));
  Sweep s;
  s.Add("node_load1", "", MetricType::kGauge, {}, 1);
  np.Derive(s, 1000);
  EXPECT_EQ(s.Find("suanli_node_power_watts"), nullptr);
  EXPECT_EQ(s.Find("suanli_node_energy_joules_total"), nullptr);
}

// A sweep as the agent makes it on a host: the cpu and inventory collectors over `paths`.
Sweep CollectHost(const HostPaths& paths, InventoryCollector& inventory) {
  Sweep s;
  CpuCollector cpu(paths);
  EXPECT_EQ(cpu.Collect(s).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(inventory.Collect(s).kind, CollectResult::Kind::kOk);
  return s;
}

// tests/fixtures/suanli/vm-amd-epyc: a VM with nothing that measures power. Its CPU power
// model (2 cores, per-core default) is 2.5 W idle and 10 W at full load.
TEST(NodePowerTest, EstimatedOnABareVmFromUtilizationAndThePowerModel) {
  using testing::FixturePath;
  testing::TempTree t;
  t.Write("proc/cpuinfo", testing::Slurp(FixturePath("suanli/vm-amd-epyc/proc/cpuinfo")));
  t.Write("proc/meminfo", testing::Slurp(FixturePath("suanli/vm-amd-epyc/proc/meminfo")));
  t.Write("proc/stat", testing::Slurp(FixturePath("suanli/vm-amd-epyc/proc/stat")));
  HostPaths paths{t.Path("proc"), t.Path("sys")};
  auto table = ComputeModelTable::Shipped();
  ASSERT_TRUE(table.ok());
  InventoryCollector inventory(paths, ComputeModelTable(*table), {});
  NodePower np(seconds(15));

  // First sweep: no interval yet, so no utilization and no figure.
  Sweep s1 = CollectHost(paths, inventory);
  EXPECT_EQ(ValueOf(s1, "suanli_node_cpu_power_model_idle_watts"), 2.5);
  EXPECT_EQ(ValueOf(s1, "suanli_node_cpu_power_model_max_watts"), 10);
  np.Derive(s1, 100'000);
  EXPECT_EQ(s1.Find("suanli_node_power_watts"), nullptr);

  // 10 s later each CPU ran 5 s: cpu0 300 user, 100 idle, 100 iowait (ticks of 10 ms x 100);
  // cpu1 100 user, 100 system, 300 idle. Idle + iowait = 500 of 1000 s: utilization 0.5.
  t.Write("proc/stat",
          "cpu  240000 0 110000 1640000 30000 0 0 0 0 0\n"
          "cpu0 130000 0 50000 810000 20000 0 0 0 0 0\n"
          "cpu1 110000 0 60000 830000 10000 0 0 0 0 0\n"
          "intr 0\nctxt 123456\nbtime 1764892800\nprocesses 4321\nprocs_running 1\n"
          "procs_blocked 0\n");
  Sweep s2 = CollectHost(paths, inventory);
  np.Derive(s2, 110'000);
  EXPECT_EQ(PowerPoint(s2).labels, (std::vector<Label>{{"source", "estimated"}}));
  EXPECT_EQ(PowerPoint(s2).value, 2.5 + (10 - 2.5) * 0.5);  // 6.25 W

  // All idle for the next 10 s: the idle figure; the energy counter integrates the estimate.
  t.Write("proc/stat",
          "cpu  240000 0 110000 1740000 30000 0 0 0 0 0\n"
          "cpu0 130000 0 50000 860000 20000 0 0 0 0 0\n"
          "cpu1 110000 0 60000 880000 10000 0 0 0 0 0\n");
  Sweep s3 = CollectHost(paths, inventory);
  np.Derive(s3, 120'000);
  EXPECT_EQ(PowerPoint(s3).value, 2.5);
  const Family* energy = s3.Find("suanli_node_energy_joules_total");
  ASSERT_NE(energy, nullptr);
  ASSERT_EQ(energy->points.size(), 1u);
  EXPECT_EQ(energy->points[0].labels, (std::vector<Label>{{"source", "estimated"}}));
  EXPECT_EQ(energy->points[0].value, (6.25 + 2.5) / 2 * 10);
}

// Measured and estimated power integrate into two counters, each only between sweeps of its
// own kind: a meter that comes and goes never has its time counted again as an estimate.
TEST(NodePowerTest, EstimatedEnergyIsItsOwnCounterApartFromMeasuredEnergy) {
  auto sweep = [](double idle_seconds, double busy_seconds) {
    Sweep s;
    s.Add("node_cpu_seconds_total", "", MetricType::kCounter, {{"cpu", "0"}, {"mode", "idle"}},
          idle_seconds);
    s.Add("node_cpu_seconds_total", "", MetricType::kCounter, {{"cpu", "0"}, {"mode", "user"}},
          busy_seconds);
    s.Add("suanli_node_cpu_power_model_idle_watts", "", MetricType::kGauge, {}, 100);
    s.Add("suanli_node_cpu_power_model_max_watts", "", MetricType::kGauge, {}, 300);
    return s;
  };
  auto with_meter = [&](double idle_seconds, double busy_seconds, double watts) {
    Sweep s = sweep(idle_seconds, busy_seconds);
    s.Add("suanli_acpi_power_meter_watts", "", MetricType::kGauge, {{"chip", "acpi"}}, watts);
    return s;
  };
  auto energy_of = [](const Sweep& s) -> std::pair<std::string, double> {
    const Family* f = s.Find("suanli_node_energy_joules_total");
    EXPECT_NE(f, nullptr);
    if (f == nullptr || f->points.size() != 1) return {"missing", -1};
    const Point& p = f->points[0];
    return {p.labels.empty() ? "" : p.labels[0].name + "=" + p.labels[0].value, p.value};
  };
  NodePower np(seconds(1));
  Sweep a = sweep(10, 10);  // first sweep: no utilization yet, no figure
  np.Derive(a, 0);
  Sweep b = sweep(15, 15);  // utilization 0.5: 200 W estimated
  np.Derive(b, 1'000);
  EXPECT_EQ(energy_of(b), (std::pair<std::string, double>{"source=estimated", 0}));
  Sweep c = sweep(20, 20);  // 200 W over 1 s
  np.Derive(c, 2'000);
  EXPECT_EQ(energy_of(c), (std::pair<std::string, double>{"source=estimated", 200}));
  // A meter appears: measured energy starts its own counter, without a label.
  Sweep d = with_meter(25, 25, 400);
  np.Derive(d, 3'000);
  EXPECT_EQ(PowerPoint(d).labels[0].value, "acpi_power_meter");
  EXPECT_EQ(energy_of(d), (std::pair<std::string, double>{"", 0}));
  Sweep e = with_meter(30, 30, 600);  // (400 + 600) / 2 W over 2 s
  np.Derive(e, 5'000);
  EXPECT_EQ(energy_of(e), (std::pair<std::string, double>{"", 1000}));
  // The meter goes: the estimate resumes from its own total; the 3 s the meter covered are not
  // integrated again.
  Sweep f = sweep(35, 35);
  np.Derive(f, 6'000);
  EXPECT_EQ(energy_of(f), (std::pair<std::string, double>{"source=estimated", 200}));
  Sweep g = sweep(40, 40);
  np.Derive(g, 7'000);
  EXPECT_EQ(energy_of(g), (std::pair<std::string, double>{"source=estimated", 400}));
  // And back to the meter: measured energy resumes from its own total, the same way.
  Sweep h = with_meter(45, 45, 500);
  np.Derive(h, 8'000);
  EXPECT_EQ(energy_of(h), (std::pair<std::string, double>{"", 1000}));
}

TEST(NodePowerTest, NeverEstimatedWhereAnythingMeasuresPower) {
  auto sweep = [](double idle_seconds, double busy_seconds) {
    Sweep s;
    s.Add("node_cpu_seconds_total", "", MetricType::kCounter, {{"cpu", "0"}, {"mode", "idle"}},
          idle_seconds);
    s.Add("node_cpu_seconds_total", "", MetricType::kCounter, {{"cpu", "0"}, {"mode", "user"}},
          busy_seconds);
    s.Add("suanli_node_cpu_power_model_idle_watts", "", MetricType::kGauge, {}, 100);
    s.Add("suanli_node_cpu_power_model_max_watts", "", MetricType::kGauge, {}, 300);
    return s;
  };
  {
    // RAPL present: its first sweep has no rate yet, and still no estimate stands in for it.
    NodePower np(seconds(1));
    Sweep a = sweep(10, 10);
    AddRapl(a, "package", "0", 100);
    np.Derive(a, 0);
    Sweep b = sweep(15, 15);
    AddRapl(b, "package", "0", 100);  // first rate would need a later sweep: 0 J over 1 s
    np.Derive(b, 1'000);
    EXPECT_EQ(PowerPoint(b).labels[0].value, "rapl");
  }
  for (const char* family : {"suanli_hwmon_power_watts", "suanli_ipmi_dcmi_power_watts",
                             "suanli_redfish_power_watts", "suanli_acpi_power_meter_watts",
                             "suanli_gpu_power_watts", "suanli_rapl_energy_joules_total"}) {
    NodePower np(seconds(1));
    Sweep a = sweep(10, 10);
    np.Derive(a, 0);
    Sweep b = sweep(15, 15);
    // A meter whose reading is unusable this sweep (stale BMC, inactive measurement, first
    // RAPL reading): no figure at all rather than an estimate.
    b.Add(family, "", MetricType::kGauge, {{"chip", "x"}}, 1);
    b.Add("suanli_ipmi_dcmi_reading_age_seconds", "", MetricType::kGauge, {}, 3600);
    b.Add("suanli_redfish_reading_age_seconds", "", MetricType::kGauge, {{"chassis", "x"}}, 3600);
    np.Derive(b, 1'000);
    const Family* f = b.Find("suanli_node_power_watts");
    if (f != nullptr) {
      for (const Point& p : f->points) EXPECT_NE(p.labels[0].value, "estimated") << family;
    }
  }
  {
    // Nothing measured: the estimate at utilization 0.5 (5 s idle, 5 s user).
    NodePower np(seconds(1));
    Sweep a = sweep(10, 10);
    np.Derive(a, 0);
    Sweep b = sweep(15, 15);
    np.Derive(b, 1'000);
    EXPECT_EQ(PowerPoint(b).labels[0].value, "estimated");
    EXPECT_EQ(PowerPoint(b).value, 200);
    // A counter that went back (CPU hotplug): no figure for that sweep.
    Sweep c = sweep(1, 1);
    np.Derive(c, 2'000);
    EXPECT_EQ(c.Find("suanli_node_power_watts"), nullptr);
  }
}

}  // namespace
}  // namespace suanli::agent
