#include "agent/collectors/power/rapl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "agent/collectors/proc_file.h"
#include "core/file_util.h"
#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using testing::Covering;
using testing::ExpectedMetrics;
using testing::FindFamily;
using testing::FixturePath;
using testing::SweepMatches;
using testing::TempTree;
using testing::ValueOf;

bool IsNodeRaplFamily(std::string_view f) { return f.substr(0, 10) == "node_rapl_"; }

double Energy(const Sweep& s, const std::string& zone, const std::string& index) {
  return ValueOf(s, "suanli_rapl_energy_joules_total", {{"index", index}, {"zone", zone}});
}
double Readable(const Sweep& s, const std::string& zone, const std::string& index) {
  return ValueOf(s, "suanli_rapl_zone_readable", {{"index", index}, {"zone", zone}});
}

// Copies one fixture zone directory into tree/class/powercap/<as>, writable (the fixture is
// read-only) so that a test can rewrite energy_uj.
void CopyZone(const TempTree& tree, const std::string& fixture_zone, const std::string& as) {
  fs::path dst = tree.Path("class/powercap/" + as);
  fs::create_directories(dst);
  for (const fs::directory_entry& e : fs::directory_iterator(fixture_zone)) {
    fs::path file = dst / e.path().filename();
    fs::copy_file(e.path(), file);
    fs::permissions(file, fs::perms::owner_write | fs::perms::owner_read, fs::perm_options::add);
  }
}

void WriteZone(const TempTree& tree, const std::string& dir, const std::string& name,
               const std::string& energy_uj, const std::string& max_uj) {
  tree.Write("class/powercap/" + dir + "/name", name + "\n");
  tree.Write("class/powercap/" + dir + "/energy_uj", energy_uj + "\n");
  if (!max_uj.empty()) tree.Write("class/powercap/" + dir + "/max_energy_range_uj", max_uj + "\n");
}

SUANLI_CONFORMANCE_TEST(RaplCollectorTest, MatchesNodeExporter112OnItsFixture) {
  RaplCollector c({FixturePath("node_exporter/proc"), FixturePath("node_exporter/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsNodeRaplFamily)));
  // Until the first wrap the corrected counter is the raw one.
  EXPECT_EQ(Energy(sweep, "package", "0"), 240422.366267);
  EXPECT_EQ(Energy(sweep, "core", "0"), 118821.284256);
  EXPECT_EQ(ValueOf(sweep, "suanli_rapl_max_energy_joules", {{"index", "0"}, {"zone", "core"}}),
            262143.32885);
  EXPECT_EQ(Readable(sweep, "package", "0"), 1);
  EXPECT_EQ(Readable(sweep, "core", "0"), 1);
}

SUANLI_CONFORMANCE_TEST(RaplCollectorTest, MatchesNodeExporter15OnProcfsFixtureWithTwoDigitIndex) {
  // intel-rapl:a is named package-10: the index comes from the name, not the directory.
  RaplCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("procfs/expected_node_exporter_1.5.0_subset.txt"));
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsNodeRaplFamily)));
  EXPECT_EQ(ValueOf(sweep, "node_rapl_package_joules_total", {{"index", "10"}}), 240422.366267);
  EXPECT_EQ(Energy(sweep, "package", "10"), 240422.366267);
  EXPECT_EQ(FindFamily(sweep, "suanli_rapl_energy_joules_total")->points.size(), 3u);
}

SUANLI_CONFORMANCE_TEST(RaplCollectorTest, ExportsTheMmioCopyOfAPackageOnce) {
  const std::string sys = FixturePath("kepler/internal/device/testdata/sys");
  RaplCollector c({sys, sys});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  // node_exporter 1.5.0 prints package index 0 twice, once per path (intel-rapl:0 and
  // intel-rapl-mmio:0): without `path` they are one series, and summing both would count the
  // package twice. We export it once, from the MSR zone.
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("kepler/expected_node_exporter_1.5.0.txt"));
  EXPECT_EQ(want.families().at("node_rapl_package_joules_total").series.size(), 3u);
  EXPECT_TRUE(SweepMatches(sweep, want, Covering(IsNodeRaplFamily)));
  const Family* package = FindFamily(sweep, "node_rapl_package_joules_total");
  ASSERT_NE(package, nullptr);
  int package0 = 0;
  for (const Point& p : package->points) package0 += p.labels[0].value == "0";
  EXPECT_EQ(package0, 1);
  EXPECT_EQ(package->points.size(), 2u);  // package-0 and package-10
  EXPECT_EQ(FindFamily(sweep, "suanli_rapl_energy_joules_total")->points.size(), 3u);
  EXPECT_EQ(FindFamily(sweep, "suanli_rapl_zone_readable")->points.size(), 3u);
}

TEST(RaplCollectorTest, MmioZoneAloneIsExported) {
  // A part that exposes its package only through MMIO still reports it.
  TempTree tree;
  WriteZone(tree, "intel-rapl-mmio:0", "package-0", "5000000", "262143328850");
  RaplCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "node_rapl_package_joules_total", {{"index", "0"}}), 5);
}

TEST(RaplCollectorTest, CounterIsMonotonicAcrossAWrap) {
  TempTree tree;
  CopyZone(tree, FixturePath("procfs/fixtures/sys/class/powercap/intel-rapl:0"), "intel-rapl:0");
  const uint64_t max_uj = 262143328850;  // the fixture's max_energy_range_uj
  ASSERT_EQ(testing::Slurp(tree.Path("class/powercap/intel-rapl:0/max_energy_range_uj")),
            std::to_string(max_uj) + "\n");
  RaplCollector c({tree.root(), tree.root()});

  // Sweep 1: just below the top of the range.
  const uint64_t e1 = max_uj - 1000000;  // 1 J before the wrap
  tree.Write("class/powercap/intel-rapl:0/energy_uj", std::to_string(e1) + "\n");
  Sweep s1;
  ASSERT_EQ(c.Collect(s1).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Energy(s1, "package", "0"), static_cast<double>(e1) / 1e6);

  // Sweep 2: wrapped; 1 J to the top, 1 µJ to reach 0, then 2.5 J.
  const uint64_t e2 = 2500000;
  tree.Write("class/powercap/intel-rapl:0/energy_uj", std::to_string(e2) + "\n");
  Sweep s2;
  ASSERT_EQ(c.Collect(s2).kind, CollectResult::Kind::kOk);
  const uint64_t total2 = e1 + (max_uj - e1) + 1 + e2;  // (e2 - e1) mod (max + 1), added
  EXPECT_EQ(Energy(s2, "package", "0"), static_cast<double>(total2) / 1e6);
  EXPECT_NEAR(Energy(s2, "package", "0") - Energy(s1, "package", "0"), 3.500001, 1e-6);
  // node_exporter's raw value falls back to 2.5 J: Prometheus sees a counter reset and
  // increase() loses the 1 J before the wrap.
  EXPECT_EQ(ValueOf(s2, "node_rapl_package_joules_total", {{"index", "0"}}), 2.5);

  // Sweep 3: no wrap, 4 J more.
  tree.Write("class/powercap/intel-rapl:0/energy_uj", std::to_string(e2 + 4000000) + "\n");
  Sweep s3;
  ASSERT_EQ(c.Collect(s3).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Energy(s3, "package", "0"), static_cast<double>(total2 + 4000000) / 1e6);
  EXPECT_GT(Energy(s3, "package", "0"), Energy(s2, "package", "0"));
  EXPECT_EQ(ValueOf(s3, "suanli_rapl_max_energy_joules", {{"index", "0"}, {"zone", "package"}}),
            262143.32885);
}

TEST(RaplCollectorTest, DecreaseWithUnknownRangeIsAReset) {
  TempTree tree;
  WriteZone(tree, "intel-rapl:0", "package-0", "7000000", "");  // no max_energy_range_uj
  RaplCollector c({tree.root(), tree.root()});
  Sweep s1;
  ASSERT_EQ(c.Collect(s1).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(FindFamily(s1, "suanli_rapl_max_energy_joules"), nullptr);
  tree.Write("class/powercap/intel-rapl:0/energy_uj", "3000000\n");
  Sweep s2;
  ASSERT_EQ(c.Collect(s2).kind, CollectResult::Kind::kOk);
  // Without the range the wrap point is unknown: count from 0, never backwards.
  EXPECT_EQ(Energy(s2, "package", "0"), 10);
}

// Root reads any file whatever its mode, and the tests run as root, so a kernel that refuses
// energy_uj (0400 root since CVE-2020-8694) is simulated: this reader fails exactly as
// ReadWholeFile fails when open(2) returns EACCES.
RaplCollector::FileReader RefusingReader(std::string refused_suffix) {
  return [refused_suffix](const std::string& path, std::string& buf, size_t& size, int* err) {
    if (path.size() >= refused_suffix.size() &&
        path.compare(path.size() - refused_suffix.size(), refused_suffix.size(), refused_suffix) ==
            0) {
      size = 0;
      if (err) *err = EACCES;
      return ErrnoStatus(EACCES, path);
    }
    return ReadWholeFile(path, buf, size, err);
  };
}

TEST(RaplCollectorTest, RefusedEnergyIsAFailureNotNoData) {
  const std::string sys = FixturePath("node_exporter/sys");
  RaplCollector c({sys, sys}, RefusingReader("intel-rapl:0:0/energy_uj"));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(sys + "/class/powercap/intel-rapl:0:0/energy_uj not readable "
                                 "(root-only since CVE-2020-8694): run the agent with "
                                 "CAP_DAC_READ_SEARCH or as root"),
            std::string::npos)
      << r.message;
  // The refused zone is visible as such; the readable one is still exported.
  EXPECT_EQ(Readable(sweep, "core", "0"), 0);
  EXPECT_EQ(Readable(sweep, "package", "0"), 1);
  EXPECT_EQ(FindFamily(sweep, "node_rapl_core_joules_total"), nullptr);
  EXPECT_TRUE(std::isnan(Energy(sweep, "core", "0")));
  EXPECT_EQ(ValueOf(sweep, "node_rapl_package_joules_total", {{"index", "0"}}), 240422.366267);
  EXPECT_EQ(ValueOf(sweep, "suanli_rapl_max_energy_joules", {{"index", "0"}, {"zone", "core"}}),
            262143.32885);
  // The same message every sweep, so the framework logs it once.
  Sweep again;
  EXPECT_EQ(c.Collect(again).message, r.message);
}

TEST(RaplCollectorTest, AllZonesRefusedIsStillAFailure) {
  const std::string sys = FixturePath("procfs/fixtures/sys");
  RaplCollector c({sys, sys}, RefusingReader("/energy_uj"));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("CVE-2020-8694"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("(2 more zones refused)"), std::string::npos) << r.message;
  const Family* readable = FindFamily(sweep, "suanli_rapl_zone_readable");
  ASSERT_NE(readable, nullptr);
  ASSERT_EQ(readable->points.size(), 3u);
  for (const Point& p : readable->points) EXPECT_EQ(p.value, 0);
  EXPECT_EQ(FindFamily(sweep, "suanli_rapl_energy_joules_total"), nullptr);
}

TEST(RaplCollectorTest, RefusedByFileModeWhenNotRoot) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root bypasses file modes; RefusedEnergyIsAFailureNotNoData covers EACCES";
  }
  TempTree tree;
  WriteZone(tree, "intel-rapl:0", "package-0", "1000000", "262143328850");
  ASSERT_EQ(::chmod(tree.Path("class/powercap/intel-rapl:0/energy_uj").c_str(), 0), 0);
  RaplCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("CVE-2020-8694"), std::string::npos) << r.message;
  EXPECT_EQ(Readable(sweep, "package", "0"), 0);
}

TEST(RaplCollectorTest, NoPowercapIsNoData) {
  TempTree tree;
  RaplCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("no RAPL zones under " + tree.Path("class/powercap")), std::string::npos)
      << r.message;
}

TEST(RaplCollectorTest, PowercapWithoutRaplZonesIsNoData) {
  TempTree tree;
  tree.Write("class/powercap/intel-rapl/enabled", "1\n");  // the control type, not a zone
  tree.Write("class/powercap/dtpm/enabled", "1\n");        // another powercap user
  auto now = std::chrono::steady_clock::now();
  RaplCollector c({tree.root(), tree.root()}, &ReadWholeFile, [&now] { return now; });
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("no RAPL zones under " + tree.Path("class/powercap")), std::string::npos)
      << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);

  // Zones that appear later (driver loaded) are found at the next scan, at most a rescan
  // interval later: an empty list is not scanned again every sweep.
  WriteZone(tree, "intel-rapl:0", "package-0", "1000000", "262143328850");
  now += RescanTimer::kInterval - std::chrono::seconds(1);
  Sweep early;
  r = c.Collect(early);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("no RAPL zones under "), std::string::npos) << r.message;
  EXPECT_EQ(early.PointCount(), 0u);
  now += std::chrono::seconds(1);
  Sweep later;
  EXPECT_EQ(c.Collect(later).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Energy(later, "package", "0"), 1);
}

TEST(RaplCollectorTest, UnindexedNamesAreCountedInDirectoryOrder) {
  TempTree tree;
  WriteZone(tree, "intel-rapl:0", "package-0", "1000000", "262143328850");
  WriteZone(tree, "intel-rapl:0:0", "core", "2000000", "262143328850");
  WriteZone(tree, "intel-rapl:0:1", "dram", "3000000", "65532610987");
  WriteZone(tree, "intel-rapl:1", "package-1", "4000000", "262143328850");
  WriteZone(tree, "intel-rapl:1:0", "core", "5000000", "262143328850");
  WriteZone(tree, "intel-rapl:2", "psys", "6000000", "262143328850");
  RaplCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "node_rapl_core_joules_total", {{"index", "0"}}), 2);
  EXPECT_EQ(ValueOf(sweep, "node_rapl_core_joules_total", {{"index", "1"}}), 5);
  EXPECT_EQ(ValueOf(sweep, "node_rapl_dram_joules_total", {{"index", "0"}}), 3);
  EXPECT_EQ(ValueOf(sweep, "node_rapl_psys_joules_total", {{"index", "0"}}), 6);
  EXPECT_EQ(FindFamily(sweep, "node_rapl_psys_joules_total")->help,
            "Current RAPL psys value in joules");
  EXPECT_EQ(ValueOf(sweep, "suanli_rapl_max_energy_joules", {{"index", "0"}, {"zone", "dram"}}),
            65532.610987);
}

TEST(RaplCollectorTest, RescansWhenAZoneVanishesAndKeepsTheCounters) {
  TempTree tree;
  WriteZone(tree, "intel-rapl:0", "package-0", "1000000", "10000000");
  WriteZone(tree, "intel-rapl:1", "package-1", "2000000", "10000000");
  RaplCollector c({tree.root(), tree.root()});
  Sweep s1;
  ASSERT_EQ(c.Collect(s1).kind, CollectResult::Kind::kOk);

  // package-1 goes away and a psys zone appears (driver reloaded); package-0 wraps meanwhile.
  fs::remove_all(tree.Path("class/powercap/intel-rapl:1"));
  WriteZone(tree, "intel-rapl:2", "psys", "3000000", "10000000");
  tree.Write("class/powercap/intel-rapl:0/energy_uj", "500000\n");
  Sweep s2;
  CollectResult r = c.Collect(s2);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_TRUE(std::isnan(Energy(s2, "package", "1")));
  EXPECT_EQ(Energy(s2, "psys", "0"), 3);
  // 1 J, then 9 J to the top, 1 µJ to 0 and 0.5 J.
  EXPECT_EQ(Energy(s2, "package", "0"), 10.500001);
}

TEST(RaplCollectorTest, GarbledEnergyIsAFailureAfterExportingTheRest) {
  TempTree tree;
  WriteZone(tree, "intel-rapl:0", "package-0", "1000000", "10000000");
  WriteZone(tree, "intel-rapl:0:0", "core", "12 joules", "10000000");
  RaplCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(tree.Path("class/powercap/intel-rapl:0:0/energy_uj")), std::string::npos)
      << r.message;
  EXPECT_EQ(Energy(sweep, "package", "0"), 1);
  EXPECT_EQ(Readable(sweep, "core", "0"), 0);
}

TEST(RaplCollectorTest, ReadsThisHost) {
  RaplCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  // Containers and VMs rarely expose RAPL; where they do, every zone says whether it was read.
  if (r.kind == CollectResult::Kind::kNoData) {
    EXPECT_NE(r.message.find("no RAPL zones under /sys/class/powercap"), std::string::npos);
    return;
  }
  EXPECT_NE(FindFamily(sweep, "suanli_rapl_zone_readable"), nullptr) << r.message;
}

}  // namespace
}  // namespace suanli::agent
