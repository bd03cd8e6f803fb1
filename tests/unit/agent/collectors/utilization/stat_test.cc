#include "agent/collectors/utilization/stat.h"

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

bool IsStatFamily(std::string_view f) {
  return f == "node_boot_time_seconds" || f == "node_context_switches_total" ||
         f == "node_forks_total" || f == "node_intr_total" || f == "node_procs_running" ||
         f == "node_procs_blocked";
}

SUANLI_CONFORMANCE_TEST(StatCollectorTest, MatchesNodeExporter112OnItsFixture) {
  StatCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsStatFamily)));
  EXPECT_EQ(sweep.families().size(), 6u);
}

TEST(StatCollectorTest, Reads132KilobyteIntrLine) {
  std::string path = FixturePath("procfs/fixtures/proc/stat");
  ASSERT_GT(testing::Slurp(path).size(), 128u * 1024) << "the fixture's point is its size";
  StatCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(sweep, "node_intr_total"), 73777505);
  // The lines after the long one are read too.
  EXPECT_EQ(ValueOf(sweep, "node_context_switches_total"), 38014093);
  EXPECT_EQ(ValueOf(sweep, "node_boot_time_seconds"), 1418183276);
  EXPECT_EQ(ValueOf(sweep, "node_forks_total"), 26442);
  EXPECT_EQ(ValueOf(sweep, "node_procs_running"), 2);
  EXPECT_EQ(ValueOf(sweep, "node_procs_blocked"), 1);
}

TEST(StatCollectorTest, ReadsAMegabyteLineAndKeepsReadingAfterItShrinks) {
  std::string intr = "intr 123456789012";
  while (intr.size() < (1u << 20)) intr += " 0 17 4294967295";
  TempTree tree;
  tree.Write("stat", "cpu  1 2 3 4\n" + intr + "\nctxt 5\nbtime 6\n");
  StatCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "node_intr_total"), 123456789012.0);
  EXPECT_EQ(ValueOf(sweep, "node_context_switches_total"), 5);

  // The buffer kept from the big read must not leak old bytes into a smaller file.
  sweep.Clear();
  tree.Write("stat", "intr 7\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "node_intr_total"), 7);
  EXPECT_EQ(sweep.PointCount(), 1u);
}

TEST(StatCollectorTest, MissingProcStatFails) {
  TempTree tree;
  StatCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("stat") + ": No such file or directory");
}

TEST(StatCollectorTest, MalformedLineIsSkippedAndReported) {
  TempTree tree;
  tree.Write("stat", "cpu0 1 2 3 4\nintr many\nctxt 10\nprocesses -3\nprocs_running 4\n");
  StatCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_NE(r.message.find("skipped 2 malformed line(s); first: " + tree.Path("stat") +
                           ":2: intr: not a number"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(ValueOf(sweep, "node_context_switches_total"), 10);
  EXPECT_EQ(ValueOf(sweep, "node_procs_running"), 4);
  EXPECT_TRUE(std::isnan(ValueOf(sweep, "node_intr_total")));
  EXPECT_TRUE(std::isnan(ValueOf(sweep, "node_forks_total")));
  // Lines the file lacks are left out, not exported as 0.
  EXPECT_EQ(testing::FindFamily(sweep, "node_boot_time_seconds"), nullptr);
}

TEST(StatCollectorTest, NothingValidFails) {
  TempTree tree;
  tree.Write("stat", "cpu0 1 2 3 4\nctxt\n");
  StatCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("stat") + ":2: ctxt: not a number");
}

TEST(StatCollectorTest, TruncatedFileNeverYieldsAWrongValue) {
  std::string full = testing::Slurp(FixturePath("procfs/fixtures/proc/stat"));
  Sweep reference;
  {
    StatCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
    ASSERT_EQ(c.Collect(reference).kind, CollectResult::Kind::kOk);
  }
  std::map<std::string, double> want = testing::SeriesValues(reference);
  TempTree tree;
  // Cut inside the intr line (in big steps) and, byte by byte, in the lines after it.
  size_t tail = full.rfind("ctxt") - 2;
  StatCollector c({tree.root(), tree.root()});
  for (size_t len = 0; len <= full.size(); len += (len < tail ? 4093 : 1)) {
    tree.Write("stat", std::string_view(full).substr(0, len));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_NE(r.kind, CollectResult::Kind::kNoData);
    for (const auto& [key, value] : testing::SeriesValues(sweep)) {
      EXPECT_EQ(value, want[key]) << key << ", cut at " << len;
    }
  }
}

TEST(StatCollectorTest, ReadsThisHost) {
  StatCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(sweep.families().size(), 6u);
  EXPECT_GT(ValueOf(sweep, "node_boot_time_seconds"), 1.0e9);
}

}  // namespace
}  // namespace suanli::agent
