#include "exporters/prometheus/capacity_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/text_exposition.h"
#include "tests/integration/harness.h"
#include "tests/unit/exporters/capacity_fixture.h"

namespace suanli::exporters {
namespace {

using testing::SmallAlliance;

it::MetricsMap Parse(const std::string& text) {
  auto m = it::ParseMetricsText(text);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : it::MetricsMap{};
}

std::string Text(const capacity::CapacitySnapshot& s) {
  std::string out;
  AppendCapacityText(s, &out);
  return out;
}

TEST(CapacityMetricsTest, DcRegionAllianceAndLinkFigures) {
  it::MetricsMap m = Parse(Text(SmallAlliance()));
  auto v = [&](const std::string& name, std::map<std::string, std::string> labels) {
    auto x = it::FindSample(m, name, labels);
    EXPECT_TRUE(x.has_value()) << name;
    return x.value_or(NAN);
  };
  EXPECT_EQ(v("suanli_dc_nodes", {{"region", "gansu"}, {"dc", "lz-1"}, {"state", "up"}}), 2);
  EXPECT_EQ(v("suanli_region_nodes", {{"region", "gansu"}, {"state", "up"}}), 3);
  EXPECT_EQ(v("suanli_alliance_nodes", {{"state", "up"}}), 4);
  EXPECT_EQ(v("suanli_alliance_nodes", {{"state", "stale"}}), 0);
  // lz-1: GPU node at 25 % (1e12 x .75 + 20e12 x .75) + CPU node at 50 % (1e12 x .5).
  EXPECT_DOUBLE_EQ(v("suanli_dc_compute_free_flops",
                     {{"region", "gansu"}, {"dc", "lz-1"}, {"precision", "fp32"}}),
                   15.75e12 + 0.5e12);
  EXPECT_DOUBLE_EQ(v("suanli_dc_compute_capacity_flops",
                     {{"region", "gansu"}, {"dc", "lz-1"}, {"precision", "fp32"}}),
                   22e12);
  EXPECT_DOUBLE_EQ(
      v("suanli_dc_compute_free_by_source_flops",
        {{"region", "gansu"}, {"dc", "lz-1"}, {"precision", "fp32"}, {"source", "gpu"}}),
      15e12);
  EXPECT_DOUBLE_EQ(v("suanli_alliance_compute_capacity_flops", {{"precision", "fp16"}}), 600e12);
  EXPECT_DOUBLE_EQ(v("suanli_dc_cpu_utilization_ratio", {{"region", "gansu"}, {"dc", "lz-1"}}),
                   0.375);
  EXPECT_DOUBLE_EQ(v("suanli_dc_gpus", {{"region", "gansu"}, {"dc", "qy-1"}}), 1);
  EXPECT_DOUBLE_EQ(v("suanli_dc_power_watts", {{"region", "gansu"}, {"dc", "lz-1"}}), 1000);
  EXPECT_DOUBLE_EQ(v("suanli_dc_power_source_nodes",
                     {{"region", "gansu"}, {"dc", "lz-1"}, {"source", "redfish"}}),
                   1);
  EXPECT_DOUBLE_EQ(v("suanli_dc_energy_joules_total", {{"region", "gansu"}, {"dc", "lz-1"}}),
                   2 * 10 * 500);
  EXPECT_DOUBLE_EQ(
      v("suanli_dc_power_usage_effectiveness_ratio", {{"region", "gansu"}, {"dc", "lz-1"}}), 1.3);
  EXPECT_DOUBLE_EQ(
      v("suanli_dc_power_usage_effectiveness_ratio", {{"region", "ningxia"}, {"dc", "zw-1"}}),
      2.5);  // configured 500 W over 200 W
  EXPECT_DOUBLE_EQ(v("suanli_dc_newest_sample_age_seconds", {{"region", "gansu"}, {"dc", "lz-1"}}),
                   2);
  // Energy per operation: 1000 W over the fp32 compute in use (22e12 - 16.25e12).
  EXPECT_DOUBLE_EQ(v("suanli_dc_energy_per_operation_joules",
                     {{"region", "gansu"}, {"dc", "lz-1"}, {"precision", "fp32"}}),
                   1000 / 5.75e12);
  std::map<std::string, std::string> link = {
      {"region", "gansu"}, {"dc", "lz-1"}, {"link", "passage \"east\""}, {"peer_dc", "sh-1"}};
  EXPECT_DOUBLE_EQ(v("suanli_link_capacity_bytes_per_second", link), 10e9);
  link["direction"] = "transmit";
  EXPECT_DOUBLE_EQ(v("suanli_link_throughput_bytes_per_second", link), 2e9);
  EXPECT_DOUBLE_EQ(v("suanli_link_utilization_ratio", link), 0.2);
  // No facility figure, no PUE sample.
  EXPECT_TRUE(
      it::FindSamples(m, "suanli_dc_power_usage_effectiveness_ratio", {{"dc", "qy-1"}}).empty());
}

TEST(CapacityMetricsTest, TextAndFamiliesCarryTheSameSamples) {
  auto snap = SmallAlliance();
  it::MetricsMap text = Parse(Text(snap)), families = Parse(RenderText(CapacityFamilies(snap)));
  ASSERT_EQ(text.size(), families.size());
  for (const auto& [key, value] : text) {
    ASSERT_TRUE(families.count(key)) << key;
    // TextSerializer prints 16 significant digits; we print the shortest exact form.
    EXPECT_TRUE(it::NearlyEqual(value, families.at(key), 1e-14)) << key;
  }
}

TEST(CapacityMetricsTest, PromtoolFindsNothingToLint) {
  it::TempDir tmp("capacity-metrics");
  std::string text = Text(SmallAlliance());
  it::PromtoolResult r = it::PromtoolCheckMetrics(text, tmp.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "") << r.output;
}

TEST(CapacityMetricsTest, NothingWithoutDcs) {
  capacity::CapacitySnapshot empty;
  EXPECT_EQ(Text(empty), "");
  EXPECT_TRUE(CapacityFamilies(empty).empty());
}

TEST(CapacityMetricsTest, EveryFamilyHasHelpAndType) {
  std::string text = Text(SmallAlliance());
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE suanli_dc_energy_joules_total counter\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE suanli_alliance_compute_free_flops gauge\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("link=\"passage \\\"east\\\"\""));
}

}  // namespace
}  // namespace suanli::exporters
