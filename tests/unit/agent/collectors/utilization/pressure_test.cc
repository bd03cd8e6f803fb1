#include "agent/collectors/utilization/pressure.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using testing::Covering;
using testing::ExpectedMetrics;
using testing::FindFamily;
using testing::FixturePath;
using testing::SweepMatches;
using testing::TempTree;
using testing::ValueOf;

bool IsPressureFamily(std::string_view f) { return f.substr(0, 14) == "node_pressure_"; }

SUANLI_CONFORMANCE_TEST(PressureCollectorTest, MatchesNodeExporter112OnItsFixture) {
  // Its irq file has no trailing newline; node_exporter reads it, so do we.
  PressureCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsPressureFamily)));
  EXPECT_EQ(sweep.families().size(), 6u);
  // Same arithmetic as node_exporter (µs / 1000 / 1000), so the same bits.
  EXPECT_EQ(ValueOf(sweep, "node_pressure_cpu_waiting_seconds_total"), 14.036781000000001);
}

SUANLI_CONFORMANCE_TEST(PressureCollectorTest, MatchesNodeExporter15OnProcfsFixtureWithoutIrq) {
  PressureCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("procfs/expected_node_exporter_1.5.0_subset.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsPressureFamily)));
  EXPECT_EQ(FindFamily(sweep, "node_pressure_irq_stalled_seconds_total"), nullptr);
}

TEST(PressureCollectorTest, NoPressureDirectoryIsNoData) {
  TempTree tree;
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("kernel without PSI"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(tree.Path("pressure")), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(PressureCollectorTest, ExportsWhatExists) {
  TempTree tree;
  tree.Write("pressure/memory",
             "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n"
             "full avg10=0.00 avg60=0.00 avg300=0.00 total=1250000\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(sweep, "node_pressure_memory_waiting_seconds_total"), 2.5);
  EXPECT_EQ(ValueOf(sweep, "node_pressure_memory_stalled_seconds_total"), 1.25);
  EXPECT_EQ(sweep.PointCount(), 2u);
}

TEST(PressureCollectorTest, CpuFullAndIrqSomeAreNotExported) {
  // The kernel prints cpu "full" since 5.13 (always 0 system-wide); node_exporter ignores it.
  TempTree tree;
  tree.Write("pressure/cpu", "some total=1\nfull total=2\n");
  tree.Write("pressure/irq", "some total=3\nfull total=4\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  ASSERT_EQ(sweep.families().size(), 2u);
  EXPECT_EQ(ValueOf(sweep, "node_pressure_cpu_waiting_seconds_total"), 1e-6);
  EXPECT_EQ(ValueOf(sweep, "node_pressure_irq_stalled_seconds_total"), 4e-6);
}

TEST(PressureCollectorTest, MalformedFileFailsButOthersAreKept) {
  TempTree tree;
  tree.Write("pressure/cpu", "some avg10=0.00 total=1000000\n");
  tree.Write("pressure/io", "some avg10=0.00 total=abc\nsideways\n");
  tree.Write("pressure/memory", "some total=1\nsome total=2\nfull total=3\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("pressure/io") + ":1: want \"some|full ... total=MICROSECONDS\"");
  EXPECT_EQ(ValueOf(sweep, "node_pressure_cpu_waiting_seconds_total"), 1.0);
  // A repeated line is not a second series.
  EXPECT_EQ(ValueOf(sweep, "node_pressure_memory_waiting_seconds_total"), 1e-6);
  EXPECT_EQ(FindFamily(sweep, "node_pressure_io_waiting_seconds_total"), nullptr);
  EXPECT_EQ(sweep.PointCount(), 3u);
}

TEST(PressureCollectorTest, MalformedLineBesideValidOnesIsSkipped) {
  TempTree tree;
  tree.Write("pressure/io", "some total=5\nsome avg10=x\nfull total=7\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_EQ(r.message, "skipped 1 malformed line(s); first: " + tree.Path("pressure/io") +
                           ":2: want \"some|full ... total=MICROSECONDS\"");
  EXPECT_EQ(ValueOf(sweep, "node_pressure_io_stalled_seconds_total"), 7e-6);
}

TEST(PressureCollectorTest, UnreadableFileFails) {
  TempTree tree;
  tree.MakeDir("pressure/cpu");  // read() gives EISDIR
  tree.Write("pressure/io", "some total=1\nfull total=2\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("pressure/cpu") + ": Is a directory");
  EXPECT_EQ(sweep.PointCount(), 2u);
}

TEST(PressureCollectorTest, ReadsThisHostOrSaysWhyNot) {
  PressureCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_NE(r.kind, CollectResult::Kind::kFailed) << r.message;
  if (r.kind == CollectResult::Kind::kOk) {
    EXPECT_GE(sweep.PointCount(), 1u);
  } else {
    EXPECT_FALSE(r.message.empty());
  }
  // The next sweep skips the files found absent (irq before Linux 6.1) and reads the same set.
  Sweep again;
  CollectResult r2 = c.Collect(again);
  EXPECT_EQ(r2.kind, r.kind) << r2.message;
  EXPECT_EQ(again.PointCount(), sweep.PointCount());
}

TEST(PressureCollectorTest, FileThatAppearsOutsideProcfsIsRead) {
  // Absent files are remembered only on procfs; a fixture tree may gain one.
  TempTree tree;
  tree.Write("pressure/cpu", "some total=1000000\n");
  PressureCollector c({tree.root(), tree.root()});
  Sweep s1;
  ASSERT_EQ(c.Collect(s1).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(s1.PointCount(), 1u);
  tree.Write("pressure/irq", "full total=2000000\n");
  Sweep s2;
  ASSERT_EQ(c.Collect(s2).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(s2.PointCount(), 2u);
}

}  // namespace
}  // namespace suanli::agent
