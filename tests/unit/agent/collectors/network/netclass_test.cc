#include "agent/collectors/network/netclass.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

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

bool IsNetclassFamily(std::string_view f) {
  return f == "node_network_up" || f == "node_network_info" || f == "node_network_carrier" ||
         f == "node_network_mtu_bytes" || f == "node_network_speed_bytes" ||
         f == "node_network_transmit_queue_length";
}

// The copy of node_exporter's sysfs fixture stores each symlink as a regular file holding its
// target ("../../devices/pci.../net/eth0/"), so class/net/eth0 is a file there. Rebuild
// class/net as the kernel shows it: directories and link-files become symlinks to their
// (absolute) directories, other files (bonding_masters) are copied as files.
void RebuildClassNet(const TempTree& tree, const std::string& fixture_sys) {
  fs::path src = fs::path(fixture_sys) / "class/net";
  tree.MakeDir("class/net");
  for (const fs::directory_entry& e : fs::directory_iterator(src)) {
    std::string name = e.path().filename();
    std::string dst = tree.Path("class/net/" + name);
    if (e.is_directory()) {
      fs::create_directory_symlink(e.path(), dst);
      continue;
    }
    std::string text = testing::Slurp(e.path());
    while (!text.empty() && (text.back() == '\n' || text.back() == '/')) text.pop_back();
    fs::path target = src / text;
    if (!text.empty() && text[0] == '.' && fs::is_directory(target)) {
      fs::create_directory_symlink(fs::canonical(target), dst);
    } else {
      fs::copy_file(e.path(), dst);
    }
  }
}

// The devices of every point of `family`.
std::set<std::string> Devices(const Sweep& sweep, std::string_view family) {
  std::set<std::string> out;
  const Family* f = FindFamily(sweep, family);
  if (f == nullptr) return out;
  for (const Point& p : f->points) {
    for (const Label& l : p.labels) {
      if (l.name == "device") out.insert(l.value);
    }
  }
  return out;
}

// A netclass collector over node_exporter's fixture (class/net rebuilt in `tree`), from a
// collector_config.netclass section given as YAML.
std::unique_ptr<Collector> FilteredOnNodeExporterFixture(const TempTree& tree,
                                                         const std::string& section_yaml) {
  RebuildClassNet(tree, FixturePath("node_exporter/sys"));
  auto root = ConfigMap::Parse("agent.yml", "collector_config:\n  netclass:\n" + section_yaml);
  EXPECT_TRUE(root.ok()) << root.status().message();
  auto section = root->Map("collector_config")->Map("netclass");
  CollectorContext ctx{{FixturePath("node_exporter/proc"), tree.root()}, *section};
  auto c = NetclassCollector::Make(ctx);
  EXPECT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(section->Finish().ok());
  return c.ok() ? std::move(c).value() : nullptr;
}

double Prop(const Sweep& s, const std::string& family, const std::string& dev) {
  return ValueOf(s, family, {{"device", dev}});
}

SUANLI_CONFORMANCE_TEST(NetclassCollectorTest, MatchesNodeExporter112OnItsFixture) {
  TempTree tree;
  RebuildClassNet(tree, FixturePath("node_exporter/sys"));
  NetclassCollector c({FixturePath("node_exporter/proc"), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  testing::CompareOptions opt = Covering(IsNetclassFamily);
  // node_exporter's e2e run passes --collector.netclass.ignored-devices=(dmz|int).
  opt.not_in_expected = [](std::string_view, const std::vector<Label>& labels) {
    for (const Label& l : labels) {
      if (l.name == "device") return l.value == "dmz" || l.value == "int";
    }
    return false;
  };
  EXPECT_TRUE(SweepMatches(sweep, want, opt));
  // bond0's speed is -1 (unknown): left out, as with --collector.netclass.ignore-invalid-speed.
  EXPECT_TRUE(std::isnan(Prop(sweep, "node_network_speed_bytes", "bond0")));
  EXPECT_EQ(Prop(sweep, "node_network_speed_bytes", "dmz"), 125000000);
  EXPECT_EQ(Prop(sweep, "node_network_up", "int"), 1);
  // bonding_masters is a file, not a device.
  EXPECT_EQ(FindFamily(sweep, "node_network_up")->points.size(), 4u);
}

SUANLI_CONFORMANCE_TEST(NetclassCollectorTest, MatchesNodeExporter15OnProcfsFixture) {
  NetclassCollector c({FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want =
      ExpectedMetrics::Load(FixturePath("procfs/expected_node_exporter_1.5.0_subset.txt"));
  testing::CompareOptions opt = Covering(IsNetclassFamily);
  opt.ignored_labels = {"adminstate"};  // added to node_network_info after 1.5.0
  EXPECT_TRUE(SweepMatches(sweep, want, opt));
  EXPECT_EQ(ValueOf(sweep, "node_network_info",
                    {{"address", "01:01:01:01:01:01"},
                     {"adminstate", "up"},
                     {"broadcast", "ff:ff:ff:ff:ff:ff"},
                     {"device", "eth0"},
                     {"duplex", "full"},
                     {"ifalias", ""},
                     {"operstate", "up"}}),
            1);
}

TEST(NetclassCollectorTest, DeviceExcludeAsNodeExportersEndToEndRun) {
  // node_exporter's e2e run passes --collector.netclass.ignored-devices=(dmz|int); its fixture
  // has bond0, dmz, eth0 and int.
  TempTree tree;
  std::unique_ptr<Collector> c =
      FilteredOnNodeExporterFixture(tree, "    device_exclude: (dmz|int)\n");
  ASSERT_NE(c, nullptr);
  Sweep sweep;
  ASSERT_EQ(c->Collect(sweep).kind, CollectResult::Kind::kOk);
  std::set<std::string> want = {"bond0", "eth0"};
  EXPECT_EQ(Devices(sweep, "node_network_up"), want);
  EXPECT_EQ(Devices(sweep, "node_network_info"), want);
  EXPECT_EQ(Devices(sweep, "node_network_mtu_bytes"), want);
  for (const Family& f : sweep.families()) {
    for (const std::string& d : Devices(sweep, f.name)) EXPECT_TRUE(want.count(d)) << f.name;
  }
  // And the values are node_exporter's, with no series to leave out by hand.
  ExpectedMetrics expected = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  EXPECT_TRUE(SweepMatches(sweep, expected, Covering(IsNetclassFamily)));
}

TEST(NetclassCollectorTest, DeviceIncludeEth0) {
  TempTree tree;
  std::unique_ptr<Collector> c =
      FilteredOnNodeExporterFixture(tree, "    device_include: ^eth0$\n");
  ASSERT_NE(c, nullptr);
  Sweep sweep;
  ASSERT_EQ(c->Collect(sweep).kind, CollectResult::Kind::kOk);
  for (const Family& f : sweep.families()) {
    EXPECT_EQ(Devices(sweep, f.name), std::set<std::string>{"eth0"}) << f.name;
  }
  EXPECT_EQ(ValueOf(sweep, "node_network_up", {{"device", "eth0"}}), 1);
}

TEST(NetclassCollectorTest, NoClassNetIsNoData) {
  TempTree tree;
  NetclassCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find(tree.Path("class/net")), std::string::npos) << r.message;
}

TEST(NetclassCollectorTest, LeavesOutWhatTheKernelRefusesOrGarbles) {
  TempTree tree;
  // A down link: operstate down, IFF_UP clear, no carrier/speed/duplex (EINVAL in real sysfs).
  tree.Write("devices/virtual/net/veth0/operstate", "down\n");
  tree.Write("devices/virtual/net/veth0/flags", "0x1002\n");
  tree.Write("devices/virtual/net/veth0/mtu", "9000\n");
  tree.Write("devices/virtual/net/veth0/tx_queue_len", "abc\n");
  tree.Write("devices/virtual/net/veth0/address", "aa:bb:cc:dd:ee:ff\n");
  tree.Write("devices/virtual/net/veth0/ifalias", "uplink to \"core\"\n");
  tree.Symlink(tree.Path("devices/virtual/net/veth0"), "class/net/veth0");
  // A speed the kernel reports as unknown, and a device without any attribute files.
  tree.Write("class/net/eth1/speed", "-1\n");
  tree.Write("class/net/eth1/operstate", "unknown\n");
  tree.MakeDir("class/net/bare");
  // Not devices: a regular file and a symlink to one.
  tree.Write("class/net/bonding_masters", "bond0\n");
  fs::create_symlink(tree.Path("class/net/bonding_masters"), tree.Path("class/net/filelink"));

  NetclassCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(FindFamily(sweep, "node_network_up")->points.size(), 3u);
  EXPECT_EQ(Prop(sweep, "node_network_up", "veth0"), 0);
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "veth0"), 9000);
  EXPECT_TRUE(std::isnan(Prop(sweep, "node_network_carrier", "veth0")));
  EXPECT_TRUE(std::isnan(Prop(sweep, "node_network_transmit_queue_length", "veth0")));
  EXPECT_EQ(ValueOf(sweep, "node_network_info",
                    {{"address", "aa:bb:cc:dd:ee:ff"},
                     {"adminstate", "down"},
                     {"device", "veth0"},
                     {"ifalias", "uplink to \"core\""},
                     {"operstate", "down"}}),
            1);
  EXPECT_EQ(FindFamily(sweep, "node_network_speed_bytes"), nullptr);
  EXPECT_EQ(Prop(sweep, "node_network_up", "eth1"), 0);
  // No flags file: adminstate unknown, as node_exporter.
  EXPECT_EQ(ValueOf(sweep, "node_network_info", {{"adminstate", "unknown"}, {"device", "bare"}}),
            1);
  EXPECT_EQ(ValueOf(sweep, "node_network_info",
                    {{"adminstate", "unknown"}, {"device", "eth1"}, {"operstate", "unknown"}}),
            1);
}

TEST(NetclassCollectorTest, FollowsDevicesThatComeAndGo) {
  TempTree tree;
  tree.Write("class/net/eth0/mtu", "1500\n");
  NetclassCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "eth0"), 1500);

  tree.Write("class/net/eth1/mtu", "9000\n");
  tree.Write("class/net/eth0/mtu", "1400\n");
  sweep.Clear();
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "eth0"), 1400);
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "eth1"), 9000);

  fs::remove_all(tree.Path("class/net/eth0"));
  sweep.Clear();
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(sweep.PointCount(), 3u);  // up, info, mtu for eth1
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "eth1"), 9000);
}

// Descriptors this process holds.
int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(NetclassCollectorTest, ReadsThisHostThroughDescriptorsItKeeps) {
  int before = OpenDescriptors();
  NetclassCollector c(HostPaths{});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_FALSE(std::isnan(Prop(sweep, "node_network_up", "lo")));
  int kept = OpenDescriptors() - before;
  // Ten attribute files per device, lo's among them (a refused read keeps its descriptor too).
  EXPECT_GE(kept, 10);
  EXPECT_EQ(kept % 10, 0);

  // A later sweep reads through the same descriptors, and reads what the kernel says now.
  sweep.Clear();
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(OpenDescriptors() - before, kept);
  std::ifstream mtu("/sys/class/net/lo/mtu");
  double want = 0;
  ASSERT_TRUE(mtu >> want);
  EXPECT_EQ(Prop(sweep, "node_network_mtu_bytes", "lo"), want);
}

}  // namespace
}  // namespace suanli::agent
