// A shared chassis end to end, with real processes: four suanli-agents on the four nodes of one
// 2U four-node chassis read power from its chassis manager (the project's Redfish tree
// tests/fixtures/suanli/redfish/multi-node-2u4n-manager, served over HTTP on 127.0.0.1), each
// selecting its own system with redfish.system; a fifth agent on an ordinary server reads DMTF's
// public-rackmount1. All five write to one suanli-aggregator, whose dc, region and alliance power
// must hold the chassis' reading once, not once per node.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/redfish_mockup_server.h"

namespace suanli::it {
namespace {

using test_support::RedfishMockupServer;

constexpr auto kDeadline = seconds(60);

constexpr char kRegion[] = "gansu";
constexpr char kDc[] = "lanzhou-1";
// The chassis manager's tree: chassis "Chassis" has no serial number, so its UUID identifies it;
// its Power resource reads 1720 W for the four nodes Node1..Node4 it links.
constexpr char kChassisIdentity[] = "7e9b3c10-5a21-11ee-8c99-0242ac120002";
constexpr double kChassisWatts = 1720;
// DMTF's public-rackmount1: one system in chassis "1U", PowerControl 344 W.
constexpr double kRackmountWatts = 344;

struct AgentSpec {
  std::string instance;
  std::string bmc_url;
  std::string system;  // redfish.system; empty: the BMC's only system
};

// An agent of the dc writing to `write_url` every second, with power from its BMC's Redfish
// service only: the collectors that read this host's power hardware (RAPL, hwmon, GPUs, IPMI)
// are off, so the only power source is the BMC.
std::string AgentConfig(const AgentSpec& spec, const std::string& write_url,
                        const std::string& spool_dir) {
  std::string yml = std::string("labels: {region: ") + kRegion + ", dc: " + kDc +
                    ", instance: " + spec.instance +
                    "}\n"
                    "sample_interval: 1s\n"
                    "remote_write:\n"
                    "  - url: " +
                    write_url +
                    "\n"
                    "spool:\n"
                    "  directory: " +
                    spool_dir +
                    "\n"
                    "collectors: {rapl: false, hwmon: false, gpu: false, ipmi_dcmi: false, "
                    "redfish: true}\n"
                    "collector_config:\n"
                    "  redfish:\n"
                    "    url: " +
                    spec.bmc_url +
                    "\n"
                    "    timeout: 2s\n";
  if (!spec.system.empty()) yml += "    system: " + spec.system + "\n";
  return yml;
}

// The one suanli_node_power_watts sample an agent exports, or nullopt while it has none (the
// Redfish collector's first reading is not in the first sweeps) or several.
std::optional<MetricSample> NodePower(const Daemon& agent) {
  auto m = ScrapeMetrics(agent.Url("/metrics"));
  if (!m.ok()) return std::nullopt;
  auto samples = FindSamples(*m, "suanli_node_power_watts");
  if (samples.size() != 1) return std::nullopt;
  return samples[0];
}

std::string Describe(const std::optional<MetricSample>& s) {
  if (!s.has_value()) return "no single suanli_node_power_watts sample";
  std::string out = s->name + "{";
  for (const auto& [k, v] : s->labels) out += k + "=\"" + v + "\",";
  return out + "} " + std::to_string(s->value);
}

TEST(SharedChassisTest, FourAgentsOfOne2U4NChassisGiveTheDcTheChassisPowerOnce) {
  TempDir tmp("suanli-it-shared-chassis");
  RedfishMockupServer chassis_manager(FixturesDir() + "/suanli/redfish/multi-node-2u4n-manager");
  RedfishMockupServer rackmount_bmc(FixturesDir() + "/redfish/public-rackmount1");
  ASSERT_TRUE(chassis_manager.started() && rackmount_bmc.started());

  auto aggregator = StartAggregator(tmp.path(), {});
  ASSERT_TRUE(aggregator.ok()) << aggregator.status().ToString();
  std::string write_url = aggregator->Url("/api/v1/write");

  std::vector<AgentSpec> specs;
  for (int node = 1; node <= 4; ++node) {
    std::string n = std::to_string(node);
    specs.push_back({"2u4n-node" + n, chassis_manager.url(), "Node" + n});
  }
  specs.push_back({"rackmount", rackmount_bmc.url(), ""});

  std::string fixture = FixturesDir() + "/node_exporter";
  std::vector<Daemon> agents;
  for (const AgentSpec& spec : specs) {
    std::string config = tmp.Sub(spec.instance + ".yml");
    ASSERT_TRUE(
        WriteFile(config, AgentConfig(spec, write_url, tmp.Sub("spool-" + spec.instance))).ok());
    // Over node_exporter's fixture tree: nothing read from this host.
    auto agent = StartAgent(tmp.path(),
                            {"--config.file=" + config, "--path.procfs=" + fixture + "/proc",
                             "--path.sysfs=" + fixture + "/sys"},
                            spec.instance + ".log");
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agents.push_back(std::move(agent).value());
  }

  // Each node of the chassis exports the chassis' whole reading, marked shared, with the same
  // identity; the ordinary server its own reading.
  for (size_t i = 0; i < agents.size(); ++i) {
    const bool shared = i < 4;
    std::optional<MetricSample> power;
    bool ok = WaitFor(
        [&] {
          power = NodePower(agents[i]);
          return power.has_value() &&
                 power->labels["source"] == (shared ? "redfish_shared" : "redfish");
        },
        kDeadline);
    ASSERT_TRUE(ok) << specs[i].instance << ": " << Describe(power) << "\n"
                    << agents[i].process->LogTail();
    if (shared) {
      EXPECT_EQ(power->labels["chassis_identity"], kChassisIdentity) << specs[i].instance;
      EXPECT_EQ(power->labels["systems"], "4") << specs[i].instance;
      EXPECT_EQ(power->value, kChassisWatts) << specs[i].instance;
    } else {
      EXPECT_EQ(power->labels.count("chassis_identity"), 0u) << Describe(power);
      EXPECT_EQ(power->value, kRackmountWatts);
    }
  }

  // The aggregator: five nodes up, the chassis counted once.
  const double want_watts = kChassisWatts + kRackmountWatts;
  const std::map<std::string, std::string> dc = {{"region", kRegion}, {"dc", kDc}};
  MetricsMap m;
  bool settled = WaitFor(
      [&] {
        auto scraped = ScrapeMetrics(aggregator->Url("/metrics"));
        if (!scraped.ok()) return false;
        m = *scraped;
        std::map<std::string, std::string> up = dc;
        up["state"] = "up";
        return FindSample(m, "suanli_dc_nodes", up) == 5.0 &&
               FindSample(m, "suanli_dc_power_shared_chassis", dc) == 1.0 &&
               FindSample(m, "suanli_dc_power_watts", dc) == want_watts;
      },
      kDeadline);
  EXPECT_TRUE(settled) << "the aggregator's dc figures did not settle";
  EXPECT_EQ(FindSample(m, "suanli_dc_power_watts", dc), want_watts)
      << "4 x the chassis would be " << 4 * kChassisWatts + kRackmountWatts;
  EXPECT_EQ(FindSample(m, "suanli_dc_power_shared_watts", dc), kChassisWatts);
  EXPECT_EQ(FindSample(m, "suanli_dc_power_shared_chassis", dc), 1.0);
  EXPECT_EQ(FindSample(m, "suanli_region_power_watts", {{"region", kRegion}}), want_watts);
  EXPECT_EQ(FindSample(m, "suanli_region_power_shared_watts", {{"region", kRegion}}),
            kChassisWatts);
  EXPECT_EQ(FindSample(m, "suanli_alliance_power_watts"), want_watts);
  EXPECT_EQ(FindSample(m, "suanli_alliance_power_shared_chassis"), 1.0);
  if (!settled) ADD_FAILURE() << aggregator->process->LogTail();
}

}  // namespace
}  // namespace suanli::it
