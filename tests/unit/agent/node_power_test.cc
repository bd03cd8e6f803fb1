#include "agent/node_power.h"

#include <gtest/gtest.h>

namespace suanli::agent {
namespace {

using std::chrono::seconds;

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

  // Redfish beats IPMI; of two chassis, the enclosing (largest) one is the figure.
  Sweep s2;
  s2.Add("suanli_redfish_power_watts", "", MetricType::kGauge, {{"chassis", "1U"}}, 344);
  s2.Add("suanli_redfish_power_watts", "", MetricType::kGauge, {{"chassis", "enc"}}, 926);
  s2.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge, {}, 450);
  np.Derive(s2, 11'000);
  EXPECT_EQ(PowerPoint(s2).labels[0].value, "redfish");
  EXPECT_EQ(PowerPoint(s2).value, 926);

  // A stale IPMI reading and an inactive measurement fall through to the ACPI meter.
  Sweep s3;
  s3.Add("suanli_ipmi_dcmi_power_watts", "", MetricType::kGauge, {}, 450);
  s3.Add("suanli_ipmi_dcmi_reading_age_seconds", "", MetricType::kGauge, {}, 600);
  s3.Add("suanli_acpi_power_meter_watts", "", MetricType::kGauge, {{"chip", "acpi"}}, 440);
  np.Derive(s3, 12'000);
  EXPECT_EQ(PowerPoint(s3).labels[0].value, "acpi_power_meter");
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

}  // namespace
}  // namespace suanli::agent
