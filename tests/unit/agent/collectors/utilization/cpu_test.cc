#include "agent/collectors/utilization/cpu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
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

bool IsCpuFamily(std::string_view f) {
  return f == "node_cpu_seconds_total" || f == "node_cpu_guest_seconds_total";
}

HostPaths NodeExporterFixture() {
  return {FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")};
}

double Seconds(const Sweep& s, const std::string& cpu, const std::string& mode) {
  return ValueOf(s, "node_cpu_seconds_total", {{"cpu", cpu}, {"mode", mode}});
}

SUANLI_CONFORMANCE_TEST(CpuCollectorTest, MatchesNodeExporter112OnItsFixture) {
  CpuCollector c(NodeExporterFixture());
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_TRUE(r.message.empty()) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsCpuFamily)));
  EXPECT_EQ(sweep.PointCount(), 8u * 8 + 8u * 2);
}

TEST(CpuCollectorTest, GuestTimeStaysInsideUserAndNice) {
  // cpu0: user 44490, nice 19, guest 2, guest_nice 1 ticks. node_exporter does not subtract.
  CpuCollector c(NodeExporterFixture());
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "user"), 444.90);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "nice"), 0.19);
  EXPECT_DOUBLE_EQ(ValueOf(sweep, "node_cpu_guest_seconds_total", {{"cpu", "0"}, {"mode", "user"}}),
                   0.02);
  EXPECT_DOUBLE_EQ(ValueOf(sweep, "node_cpu_guest_seconds_total", {{"cpu", "0"}, {"mode", "nice"}}),
                   0.01);
}

TEST(CpuCollectorTest, ReadsProcfsFixtureWithItsLongIntrLine) {
  CpuCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_DOUBLE_EQ(Seconds(sweep, "7", "nice"), 2.68);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "3", "idle"), 11132.30);
  EXPECT_EQ(sweep.PointCount(), 8u * 10);
}

TEST(CpuCollectorTest, MissingProcStatFails) {
  TempTree tree;
  CpuCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(tree.Path("stat") + ": No such file or directory"), std::string::npos)
      << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(CpuCollectorTest, SkipsMalformedLinesAndKeepsTheRest) {
  TempTree tree;
  tree.Write("stat",
             "cpu  1 2 3 4 5 6 7 8 9 10\n"
             "cpu0 100 200 300 400 500 600 700 800 900 1000\n"
             "cpu1 12 x 3 4\n"
             "cpu2 100 0 0 50\n"  // a 2.6.0 kernel: user nice system idle only
             "cpuX 1 2 3 4\n"
             "cpu3 1 2\n"
             "intr 5\n");
  CpuCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_NE(r.message.find("skipped 2 malformed line(s)"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(tree.Path("stat") + ":3: "), std::string::npos) << r.message;
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "steal"), 8.0);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "2", "user"), 1.0);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "2", "idle"), 0.5);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "2", "iowait"), 0.0);
  EXPECT_TRUE(std::isnan(Seconds(sweep, "1", "user")));
  EXPECT_TRUE(std::isnan(Seconds(sweep, "3", "user")));
  EXPECT_EQ(sweep.PointCount(), 2u * 10);
}

TEST(CpuCollectorTest, NothingValidFailsWithFileAndLine) {
  TempTree tree;
  tree.Write("stat", "cpu  1 2 3 4\ncpu0 a b c d\n");
  CpuCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("stat") + ":2: non-numeric CPU time");

  tree.Write("stat", "");
  r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("no per-CPU"), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(CpuCollectorTest, TruncatedFileNeverYieldsAWrongValue) {
  // Cut the fixture at every length: a cut-off line must be dropped, never read as smaller
  // numbers, and everything before it must come out exactly.
  std::string full = testing::Slurp(FixturePath("node_exporter/proc/stat"));
  Sweep reference;
  {
    CpuCollector c(NodeExporterFixture());
    ASSERT_EQ(c.Collect(reference).kind, CollectResult::Kind::kOk);
  }
  std::map<std::string, double> want = testing::SeriesValues(reference);
  TempTree tree;
  for (size_t len = 0; len < full.size(); ++len) {
    tree.Write("stat", std::string_view(full).substr(0, len));
    CpuCollector c({tree.root(), tree.root()});
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_NE(r.kind, CollectResult::Kind::kNoData);
    for (const auto& [key, value] : testing::SeriesValues(sweep)) {
      ASSERT_TRUE(want.count(key)) << key << ", cut at " << len;
      EXPECT_EQ(value, want[key]) << key << ", cut at " << len;
    }
  }
}

TEST(CpuCollectorTest, CountersNeverGoBackwardsExceptOnHotplug) {
  TempTree tree;
  CpuCollector c({tree.root(), tree.root()});
  Sweep sweep;
  tree.Write("stat", "cpu0 100 0 0 100000 500 0 0 0 0 0\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "iowait"), 5.0);

  // iowait dips (a known kernel artefact): the exported counter holds.
  sweep.Clear();
  tree.Write("stat", "cpu0 150 0 0 100100 400 0 0 0 0 0\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "iowait"), 5.0);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "user"), 1.5);
  // A small idle dip (< 3 s) is held too.
  sweep.Clear();
  tree.Write("stat", "cpu0 150 0 0 99900 400 0 0 0 0 0\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "idle"), 1001.0);

  // Idle falls by 3 s or more: the CPU was unplugged and replugged, start again.
  sweep.Clear();
  tree.Write("stat", "cpu0 10 0 0 200 1 0 0 0 0 0\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "idle"), 2.0);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "iowait"), 0.01);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "0", "user"), 0.1);
}

TEST(CpuCollectorTest, OfflineCpusDisappearAndComeBackFresh) {
  TempTree tree;
  CpuCollector c({tree.root(), tree.root()});
  Sweep sweep;
  tree.Write("stat", "cpu0 1 1 1 1000\ncpu1 500 1 1 1000\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(sweep.PointCount(), 20u);

  sweep.Clear();
  tree.Write("stat", "cpu0 2 1 1 1001\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(sweep.PointCount(), 10u);
  EXPECT_TRUE(std::isnan(Seconds(sweep, "1", "user")));

  // Back online with smaller counters: not held at the old values.
  sweep.Clear();
  tree.Write("stat", "cpu0 3 1 1 1002\ncpu1 7 1 1 10\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Seconds(sweep, "1", "user"), 0.07);
}

TEST(CpuCollectorTest, ReadsThisHost) {
  CpuCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_GE(sweep.PointCount(), 10u);
  EXPECT_GT(Seconds(sweep, "0", "idle") + Seconds(sweep, "0", "user"), 0);
}

}  // namespace
}  // namespace suanli::agent
