#include "agent/collectors/network/device_filter.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "agent/collectors/network/netclass.h"
#include "agent/collectors/network/netdev.h"
#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using testing::FixturePath;
using testing::TempTree;

// The devices of every point of `family`.
std::set<std::string> Devices(const Sweep& sweep, std::string_view family) {
  std::set<std::string> out;
  const Family* f = testing::FindFamily(sweep, family);
  if (f == nullptr) return out;
  for (const Point& p : f->points) {
    for (const Label& l : p.labels) {
      if (l.name == "device") out.insert(l.value);
    }
  }
  return out;
}

// Builds a collector with `make` from a collector_config section given as YAML (the lines under
// "collector_config:\n  NAME:\n").
struct Built {
  Result<std::unique_ptr<Collector>> collector = InvalidArgument("unset");
};
Built BuildFrom(const std::string& name,
                Result<std::unique_ptr<Collector>> (*make)(CollectorContext&),
                const std::string& section_yaml, const HostPaths& paths) {
  auto root = ConfigMap::Parse("agent.yml", "collector_config:\n  " + name + ":\n" + section_yaml);
  EXPECT_TRUE(root.ok()) << root.status().message();
  auto sections = root->Map("collector_config");
  auto section = sections->Map(name);
  CollectorContext ctx{paths, *section};
  Built b;
  b.collector = make(ctx);
  if (b.collector.ok()) {
    Status st = section->Finish();
    if (!st.ok()) b.collector = st;
  }
  return b;
}

HostPaths ProcfsFixture() {
  return {FixturePath("procfs/fixtures/proc"), FixturePath("procfs/fixtures/sys")};
}

TEST(DeviceFilterTest, SearchesLikeNodeExporterNotAnchored) {
  auto f = DeviceFilter::Make("eth0", "");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->Accepts("eth0"));
  EXPECT_TRUE(f->Accepts("veth0a"));  // node_exporter's MatchString finds it too
  EXPECT_FALSE(f->Accepts("eth1"));
  auto exact = DeviceFilter::Make("^eth0$", "");
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->Accepts("eth0"));
  EXPECT_FALSE(exact->Accepts("veth0a"));
  auto ex = DeviceFilter::Make("", "^(veth.*|cali.*|[a-f0-9]{15})$");
  ASSERT_TRUE(ex.ok());
  EXPECT_FALSE(ex->Accepts("vethf345468"));
  EXPECT_FALSE(ex->Accepts("0123456789abcde"));
  EXPECT_TRUE(ex->Accepts("eth0"));
  EXPECT_TRUE(ex->Accepts("0123456789abcdef"));  // 16 characters
  DeviceFilter all;
  EXPECT_TRUE(all.Accepts("anything"));
  EXPECT_FALSE(all.active());
  EXPECT_FALSE(DeviceFilter::Make("a", "b").ok());
}

TEST(DeviceFilterTest, NetdevExcludeVeth) {
  Built b =
      BuildFrom("netdev", NetdevCollector::Make, "    device_exclude: ^veth.*\n", ProcfsFixture());
  ASSERT_TRUE(b.collector.ok()) << b.collector.status().message();
  Sweep sweep;
  ASSERT_EQ((*b.collector)->Collect(sweep).kind, CollectResult::Kind::kOk);
  // /proc/net/dev of the fixture: vethf345468, lo, docker0, eth0.
  std::set<std::string> want = {"lo", "docker0", "eth0"};
  for (const Family& f : sweep.families()) EXPECT_EQ(Devices(sweep, f.name), want) << f.name;
  EXPECT_EQ(sweep.families().size(), 16u);
  EXPECT_EQ(sweep.PointCount(), 16u * 3);
  EXPECT_EQ(testing::ValueOf(sweep, "node_network_receive_bytes_total", {{"device", "docker0"}}),
            2568);
}

TEST(DeviceFilterTest, NetdevIncludeEth0) {
  Built b =
      BuildFrom("netdev", NetdevCollector::Make, "    device_include: ^eth0$\n", ProcfsFixture());
  ASSERT_TRUE(b.collector.ok()) << b.collector.status().message();
  Sweep sweep;
  for (int i = 0; i < 2; ++i) {  // the verdicts kept in the device slots hold on the next read
    sweep.Recycle();
    ASSERT_EQ((*b.collector)->Collect(sweep).kind, CollectResult::Kind::kOk);
    sweep.Finish();
    EXPECT_EQ(Devices(sweep, "node_network_receive_bytes_total"), std::set<std::string>{"eth0"});
    EXPECT_EQ(sweep.PointCount(), 16u);
    EXPECT_EQ(testing::ValueOf(sweep, "node_network_receive_bytes_total", {{"device", "eth0"}}),
              874354587);
  }
}

TEST(DeviceFilterTest, NetdevFollowsDevicesThatComeAndGo) {
  constexpr const char* kHeader =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n";
  TempTree tree;
  auto filter = DeviceFilter::Make("", "^veth");
  ASSERT_TRUE(filter.ok());
  NetdevCollector c({tree.root(), tree.root()}, *filter);
  tree.Write("net/dev", std::string(kHeader) +
                            "vethaaaa: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                            "  eth0: 2 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Devices(sweep, "node_network_receive_bytes_total"), std::set<std::string>{"eth0"});
  tree.Write("net/dev", std::string(kHeader) +
                            "  eth0: 3 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                            "vethbbbb: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                            "   eth1: 4 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
  Sweep next;
  ASSERT_EQ(c.Collect(next).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Devices(next, "node_network_receive_bytes_total"),
            (std::set<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(testing::ValueOf(next, "node_network_receive_bytes_total", {{"device", "eth1"}}), 4);
  // Every device filtered out: nothing exported, and not a failure.
  tree.Write("net/dev",
             std::string(kHeader) + "vethcccc: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
  Sweep none;
  EXPECT_EQ(c.Collect(none).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(none.PointCount(), 0u);
}

TEST(DeviceFilterTest, ConfigErrorsNameFileLineAndKey) {
  HostPaths paths = ProcfsFixture();
  Built both = BuildFrom("netdev", NetdevCollector::Make,
                         "    device_include: ^eth0$\n"
                         "    device_exclude: ^veth\n",
                         paths);
  ASSERT_FALSE(both.collector.ok());
  EXPECT_EQ(both.collector.status().message(),
            "agent.yml:4: collector_config.netdev.device_exclude: mutually exclusive with "
            "device_include (set one of them)");
  Built bad =
      BuildFrom("netclass", NetclassCollector::Make, "    device_exclude: \"(veth\"\n", paths);
  ASSERT_FALSE(bad.collector.ok());
  EXPECT_EQ(bad.collector.status().message().rfind(
                "agent.yml:3: collector_config.netclass.device_exclude: invalid regular "
                "expression \"(veth\": ",
                0),
            0u)
      << bad.collector.status().message();
  Built typo = BuildFrom("netdev", NetdevCollector::Make, "    device-include: eth0\n", paths);
  ASSERT_FALSE(typo.collector.ok());
  EXPECT_EQ(typo.collector.status().message(),
            "agent.yml:3: collector_config.netdev.device-include: unknown key");
}

}  // namespace
}  // namespace suanli::agent
