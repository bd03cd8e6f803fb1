// Tests for agent/collectors/registry.h. (It lives here because the collector test target
// takes tests/unit/agent/collectors/*/*_test.cc only.)
#include "agent/collectors/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

TEST(RegistryTest, ListsTheCollectorsOnceAndEnabled) {
  std::vector<std::string> names;
  for (const CollectorSpec& spec : AllCollectors()) {
    names.push_back(spec.name);
    // Redfish needs a BMC address to be useful, so it is the one collector off by default.
    EXPECT_EQ(spec.enabled_by_default, spec.name != "redfish") << spec.name;
    EXPECT_FALSE(spec.help.empty()) << spec.name;
    EXPECT_TRUE(spec.make) << spec.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cpu", "stat", "meminfo", "loadavg", "pressure",
                                             "netdev", "netclass", "rapl", "hwmon", "gpu",
                                             "ipmi_dcmi", "redfish", "inventory"}));
}

SUANLI_CONFORMANCE_TEST(RegistryTest, EveryCollectorRunsOnBothFixturesWithValidNames) {
  for (const HostPaths& paths : {HostPaths{testing::FixturePath("node_exporter/proc"),
                                           testing::FixturePath("node_exporter/sys")},
                                 HostPaths{testing::FixturePath("procfs/fixtures/proc"),
                                           testing::FixturePath("procfs/fixtures/sys")}}) {
    std::set<std::string> families;
    // An empty /dev: a host with a real BMC must not be queried by a unit test.
    HostPaths host = paths;
    host.devfs = ::testing::TempDir();
    for (const CollectorSpec& spec : AllCollectors()) {
      if (!spec.enabled_by_default) continue;  // redfish: tested against DMTF mockups instead
      ConfigMap options("test", YAML::Node(YAML::NodeType::Map), "collector_config." + spec.name);
      CollectorContext ctx{host, options};
      auto made = spec.make(ctx);
      ASSERT_TRUE(made.ok()) << spec.name << ": " << made.status().message();
      std::unique_ptr<Collector> c = std::move(made).value();
      ASSERT_NE(c, nullptr) << spec.name;
      Sweep sweep;
      CollectResult r = c->Collect(sweep);
      // Sources a fixture tree lacks: node_exporter's has no /proc/net/dev, procfs' no hwmon.
      bool absent =
          (spec.name == "netdev" && paths.procfs.find("node_exporter") != std::string::npos) ||
          (spec.name == "hwmon" && paths.sysfs.find("procfs") != std::string::npos) ||
          spec.name == "gpu" ||      // no NVIDIA driver where the tests run
          spec.name == "ipmi_dcmi";  // no /dev/ipmi0 in the empty devfs
      if (absent) {
        EXPECT_EQ(r.kind, CollectResult::Kind::kNoData) << r.message;
      } else {
        EXPECT_EQ(r.kind, CollectResult::Kind::kOk) << spec.name << ": " << r.message;
      }
      for (const Family& f : sweep.families()) {
        EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
        EXPECT_TRUE(families.insert(f.name).second) << f.name << " from two collectors";
        EXPECT_FALSE(f.help.empty()) << f.name;
        EXPECT_FALSE(f.points.empty()) << f.name;
        for (const Point& p : f.points) {
          Labels labels(p.labels);
          labels.Set("__name__", f.name);
          EXPECT_TRUE(labels.Validate().ok()) << labels.ToString();
        }
      }
    }
  }
}

}  // namespace
}  // namespace suanli::agent
