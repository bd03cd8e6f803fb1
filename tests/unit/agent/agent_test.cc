#include "agent/agent.h"

#include <gtest/gtest.h>

namespace suanli::agent {
namespace {

TEST(SweepToWriteRequestTest, AddsNameAndStaticLabelsAndMetadata) {
  Sweep sweep;
  sweep.Add("node_load1", "1m load average.", MetricType::kGauge, {}, 0.5);
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"cpu", "0"}, {"mode", "idle"}}, 100);
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"cpu", "0"}, {"mode", "user"}, {"instance", "from-collector"}}, 7);
  std::map<std::string, std::string> static_labels = {
      {"region", "gansu"}, {"dc", "lanzhou-1"}, {"instance", "n1"}};
  remote::WriteRequest req = SweepToWriteRequest(sweep, static_labels, 1234);
  ASSERT_EQ(req.series.size(), 3u);
  EXPECT_EQ(req.series[0].labels.ToString(),
            R"(node_load1{dc="lanzhou-1",instance="n1",region="gansu"})");
  EXPECT_EQ(
      req.series[1].labels.ToString(),
      R"(node_cpu_seconds_total{cpu="0",dc="lanzhou-1",instance="n1",mode="idle",region="gansu"})");
  // The static instance wins over a collector's label of the same name.
  EXPECT_EQ(req.series[2].labels.Get("instance"), "n1");
  EXPECT_EQ(req.series[1].samples[0].timestamp_ms, 1234);
  EXPECT_EQ(req.series[1].samples[0].value, 100);
  ASSERT_EQ(req.metadata.size(), 2u);
  EXPECT_EQ(req.metadata[1].metric_family_name, "node_cpu_seconds_total");
  EXPECT_EQ(req.metadata[1].type, MetricType::kCounter);
  for (const auto& ts : req.series) EXPECT_TRUE(ts.labels.Validate().ok());
}

}  // namespace
}  // namespace suanli::agent
