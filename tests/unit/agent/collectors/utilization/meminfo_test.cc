#include "agent/collectors/utilization/meminfo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
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

// node_memory_numa_* comes from node_exporter's meminfo_numa collector (sysfs), not this one.
bool IsMeminfoFamily(std::string_view f) {
  return f.substr(0, 12) == "node_memory_" && f.substr(0, 17) != "node_memory_numa_";
}

SUANLI_CONFORMANCE_TEST(MeminfoCollectorTest, MatchesNodeExporter112OnItsFixture) {
  MeminfoCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsMeminfoFamily)));
  // This fixture has no MemAvailable: absent, not zero.
  EXPECT_EQ(FindFamily(sweep, "node_memory_MemAvailable_bytes"), nullptr);
}

SUANLI_CONFORMANCE_TEST(MeminfoCollectorTest, MatchesNodeExporter15OnProcfsFixture) {
  MeminfoCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("procfs/expected_node_exporter_1.5.0_subset.txt"));
  // That subset keeps only MemTotal and MemFree.
  EXPECT_TRUE(SweepMatches(sweep, want, Covering([](std::string_view f) {
                             return f == "node_memory_MemTotal_bytes" ||
                                    f == "node_memory_MemFree_bytes";
                           })));
  // Keys node_exporter >= 1.9 dropped are kept (1.5.0 exported every key).
  EXPECT_EQ(ValueOf(sweep, "node_memory_Zswap_bytes"), 22414.0 * 1024);
  EXPECT_EQ(ValueOf(sweep, "node_memory_Zswapped_bytes"), 10502.0 * 1024);
  EXPECT_EQ(ValueOf(sweep, "node_memory_Percpu_bytes"), 26176.0 * 1024);
  EXPECT_EQ(ValueOf(sweep, "node_memory_VmallocTotal_bytes"), 34359738367.0 * 1024);
  EXPECT_EQ(ValueOf(sweep, "node_memory_HugePages_Total"), 0);
  EXPECT_EQ(sweep.families().size(), 45u);  // one per line of the fixture
  const Family* f = FindFamily(sweep, "node_memory_Inactive_file_bytes");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->help, "Memory information field Inactive_file_bytes.");
  EXPECT_EQ(f->type, MetricType::kGauge);
}

TEST(MeminfoCollectorTest, ManglesNamesAsNodeExporter) {
  TempTree tree;
  tree.Write("meminfo",
             "Active(anon):      10 kB\n"
             "HugePages_Rsvd:     3\n"
             "Weird(x)y:          1 kB\n"
             "Dots.and-dash:      2\n");
  MeminfoCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "node_memory_Active_anon_bytes"), 10240);
  EXPECT_EQ(ValueOf(sweep, "node_memory_HugePages_Rsvd"), 3);
  EXPECT_EQ(ValueOf(sweep, "node_memory_Weird_xy_bytes"), 1024);
  EXPECT_EQ(ValueOf(sweep, "node_memory_Dots_and_dash"), 2);
  for (const Family& f : sweep.families()) EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
}

TEST(MeminfoCollectorTest, MissingFileFails) {
  TempTree tree;
  MeminfoCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("meminfo") + ": No such file or directory");
}

TEST(MeminfoCollectorTest, SkipsMalformedLines) {
  TempTree tree;
  tree.Write("meminfo",
             "MemTotal:  100 kB\n"
             "NoColon 5 kB\n"
             "MemFree:  lots kB\n"
             "Buffers:  7 MB\n"
             ": 5 kB\n"
             "Cached:   3 kB extra\n"
             "MemTotal: 200 kB\n"
             "Shmem:    4 kB\n");
  MeminfoCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_NE(r.message.find("skipped 6 malformed line(s); first: " + tree.Path("meminfo") + ":2: "),
            std::string::npos)
      << r.message;
  EXPECT_EQ(ValueOf(sweep, "node_memory_MemTotal_bytes"), 102400);  // the first one wins
  EXPECT_EQ(ValueOf(sweep, "node_memory_Shmem_bytes"), 4096);
  EXPECT_EQ(sweep.PointCount(), 2u);
}

TEST(MeminfoCollectorTest, NothingValidFails) {
  TempTree tree;
  tree.Write("meminfo", "garbage\n");
  MeminfoCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(r.message, tree.Path("meminfo") + ":1: want \"Key: value [kB]\"");
}

TEST(MeminfoCollectorTest, TruncatedFileNeverYieldsAWrongNameOrValue) {
  // A last line cut before " kB" would turn MemFree_bytes into a unitless MemFree.
  std::string full = testing::Slurp(FixturePath("node_exporter/proc/meminfo"));
  Sweep reference;
  {
    MeminfoCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
    ASSERT_EQ(c.Collect(reference).kind, CollectResult::Kind::kOk);
  }
  std::map<std::string, double> want = testing::SeriesValues(reference);
  TempTree tree;
  MeminfoCollector c({tree.root(), tree.root()});
  for (size_t len = 0; len <= full.size(); ++len) {
    tree.Write("meminfo", std::string_view(full).substr(0, len));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_NE(r.kind, CollectResult::Kind::kNoData);
    for (const auto& [key, value] : testing::SeriesValues(sweep)) {
      ASSERT_TRUE(want.count(key)) << key << ", cut at " << len;
      EXPECT_EQ(value, want[key]) << key << ", cut at " << len;
    }
  }
}

TEST(MeminfoCollectorTest, FollowsKeysThatComeAndGo) {
  TempTree tree;
  MeminfoCollector c({tree.root(), tree.root()});
  Sweep sweep;
  tree.Write("meminfo", "MemTotal: 1 kB\nMemFree: 2 kB\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  sweep.Clear();
  tree.Write("meminfo", "MemTotal: 1 kB\nMemAvailable: 3 kB\nMemFree: 2 kB\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  ASSERT_EQ(sweep.families().size(), 3u);
  EXPECT_EQ(sweep.families()[1].name, "node_memory_MemAvailable_bytes");
  EXPECT_EQ(ValueOf(sweep, "node_memory_MemFree_bytes"), 2048);
  sweep.Clear();
  tree.Write("meminfo", "MemFree: 5 kB\nMemTotal: 1 kB\n");
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(sweep.PointCount(), 2u);
  EXPECT_EQ(ValueOf(sweep, "node_memory_MemFree_bytes"), 5120);
}

TEST(MeminfoCollectorTest, ReadsThisHost) {
  MeminfoCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_TRUE(r.message.empty()) << r.message;
  EXPECT_GT(ValueOf(sweep, "node_memory_MemTotal_bytes"), 0);
}

}  // namespace
}  // namespace suanli::agent
