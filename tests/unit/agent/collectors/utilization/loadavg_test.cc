#include "agent/collectors/utilization/loadavg.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using testing::Covering;
using testing::ExpectedMetrics;
using testing::FixturePath;
using testing::SweepMatches;
using testing::TempTree;
using testing::ValueOf;

bool IsLoadFamily(std::string_view f) {
  return f == "node_load1" || f == "node_load5" || f == "node_load15";
}

SUANLI_CONFORMANCE_TEST(LoadavgCollectorTest, MatchesNodeExporter112OnItsFixture) {
  LoadavgCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsLoadFamily)));
}

SUANLI_CONFORMANCE_TEST(LoadavgCollectorTest, MatchesNodeExporter15OnProcfsFixture) {
  LoadavgCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("procfs/expected_node_exporter_1.5.0_subset.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsLoadFamily)));
}

// The comparison helper itself must catch a wrong value, a missing series, an extra series and a
// wrong type, or every "matches node_exporter" test above proves nothing.
TEST(LoadavgCollectorTest, ComparisonCatchesEveryKindOfMismatch) {
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  Sweep sweep;
  sweep.Add("node_load1", "1m load average.", MetricType::kGauge, {}, 0.2100001);
  sweep.Add("node_load5", "5m load average.", MetricType::kCounter, {}, 0.37);
  sweep.Add("node_load5", "5m load average.", MetricType::kCounter, {{"cpu", "0"}}, 0.37);
  ::testing::AssertionResult r = SweepMatches(sweep, want, Covering(IsLoadFamily));
  ASSERT_FALSE(r);
  std::string m = r.message();
  EXPECT_NE(m.find("node_load1{} = 0.21"), std::string::npos) << m;
  EXPECT_NE(m.find("node_load5: type counter, want gauge"), std::string::npos) << m;
  EXPECT_NE(m.find("unexpected series node_load5{cpu=\"0\"}"), std::string::npos) << m;
  EXPECT_NE(m.find("missing series node_load15{} = 0.39"), std::string::npos) << m;
}

TEST(LoadavgCollectorTest, MissingFileFails) {
  TempTree tree;
  LoadavgCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("loadavg") + ": No such file or directory");
}

TEST(LoadavgCollectorTest, MalformedOrTruncatedLineFails) {
  TempTree tree;
  LoadavgCollector c({tree.root(), tree.root()});
  for (const char* text : {"", "0.21 abc 0.39 1/719 19737\n", "0.21 0.37 0.3", "0.21 0.37 0.39\n",
                           "\n0.21 0.37 0.39 1/719 19737\n"}) {
    tree.Write("loadavg", text);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kFailed) << '"' << text << '"';
    EXPECT_EQ(r.message.rfind(tree.Path("loadavg") + ":1: ", 0), 0u) << r.message;
    EXPECT_EQ(sweep.PointCount(), 0u) << text;
  }
}

TEST(LoadavgCollectorTest, ReadsThisHost) {
  LoadavgCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_GE(ValueOf(sweep, "node_load15"), 0);
}

}  // namespace
}  // namespace suanli::agent
