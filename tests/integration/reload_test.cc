// SIGHUP reloads the configuration file: a broken file keeps the running configuration (and the
// process) and says why; a good one takes effect.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kDeadline = seconds(30);

bool Healthy(const Daemon& d) {
  auto r = HttpGet(d.Url("/-/healthy"));
  return r.ok() && r->status == 200;
}

TEST(ReloadTest, AggregatorKeepsRunningOnABrokenFileAndAppliesAGoodOne) {
  TempDir tmp("suanli-it-reload-aggregator");
  const std::string config = tmp.Sub("aggregator.yml");
  ASSERT_TRUE(WriteFile(config, "capacity:\n  stale_after: 5m\n").ok());
  auto agg = StartAggregator(tmp.path(), {"--config.file=" + config});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  Process& p = *agg->process;

  // Broken: an unknown key on line 3.
  ASSERT_TRUE(WriteFile(config, "capacity:\n  stale_after: 5m\nstorge:\n  path: x\n").ok());
  size_t offset = p.LogSize();
  p.Signal(SIGHUP);
  auto reason =
      p.WaitForLog("reload failed, keeping the old configuration:? ?([^\n]*)", kDeadline, offset);
  ASSERT_TRUE(reason.has_value()) << p.LogTail();
  EXPECT_THAT(*reason, HasSubstr(config + ":3"));
  EXPECT_THAT(*reason, HasSubstr("storge"));
  EXPECT_TRUE(p.Running());
  EXPECT_TRUE(Healthy(*agg)) << p.LogTail();
  auto ready = HttpGet(agg->Url("/-/ready"));
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);

  // Broken differently: not YAML at all.
  ASSERT_TRUE(WriteFile(config, "capacity: [unclosed\n").ok());
  offset = p.LogSize();
  p.Signal(SIGHUP);
  EXPECT_TRUE(
      p.WaitForLog("reload failed, keeping the old configuration", kDeadline, offset).has_value())
      << p.LogTail();
  EXPECT_TRUE(Healthy(*agg));

  // Good again, with a change: reloaded.
  ASSERT_TRUE(WriteFile(config, "capacity:\n  stale_after: 10m\n").ok());
  offset = p.LogSize();
  p.Signal(SIGHUP);
  EXPECT_TRUE(p.WaitForLog("configuration reloaded", kDeadline, offset).has_value()) << p.LogTail();
  EXPECT_THAT(p.Log().substr(offset), Not(HasSubstr("reload failed")));
  EXPECT_TRUE(Healthy(*agg));

  p.Signal(SIGTERM);
  auto exit = p.Wait(kDeadline);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->ok()) << exit->ToString() << "\n" << p.LogTail();
}

TEST(ReloadTest, AgentAppliesANewSampleIntervalAndKeepsTheOldOneOnABrokenFile) {
  TempDir tmp("suanli-it-reload-agent");
  const std::string fixtures = FixturesDir() + "/node_exporter";
  const std::string config = tmp.Sub("agent.yml");
  auto agent_yaml = [&](const std::string& interval) {
    return "labels: {region: gansu, dc: lanzhou-1, instance: reload-node}\n"
           "sample_interval: " +
           interval +
           "\n"
           "path:\n"
           "  procfs: " +
           fixtures + "/proc\n" + "  sysfs: " + fixtures + "/sys\n";
  };
  ASSERT_TRUE(WriteFile(config, agent_yaml("1s")).ok());
  auto agent = StartAgent(tmp.path(), {"--config.file=" + config});
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  Process& p = *agent->process;
  EXPECT_TRUE(p.WaitForLog("sampling every 1000ms", kDeadline).has_value()) << p.LogTail();

  // A changed sample_interval.
  ASSERT_TRUE(WriteFile(config, agent_yaml("2s")).ok());
  size_t offset = p.LogSize();
  p.Signal(SIGHUP);
  EXPECT_TRUE(p.WaitForLog("configuration reloaded", kDeadline, offset).has_value()) << p.LogTail();
  EXPECT_TRUE(p.WaitForLog("sampling every 2000ms", kDeadline, offset).has_value()) << p.LogTail();
  EXPECT_TRUE(Healthy(*agent));

  // It still samples after the reload.
  auto sweeps = [&]() -> double {
    auto m = ScrapeMetrics(agent->Url("/metrics"));
    return m.ok() ? FindSample(*m, "suanli_agent_sweeps_total").value_or(-1) : -1;
  };
  double s0 = sweeps();
  EXPECT_GE(s0, 1);
  EXPECT_TRUE(WaitFor([&] { return sweeps() > s0; }, kDeadline)) << p.LogTail();

  // A bad duration: the old configuration stays.
  ASSERT_TRUE(WriteFile(config, agent_yaml("15x")).ok());
  offset = p.LogSize();
  p.Signal(SIGHUP);
  auto reason =
      p.WaitForLog("reload failed, keeping the old configuration:? ?([^\n]*)", kDeadline, offset);
  ASSERT_TRUE(reason.has_value()) << p.LogTail();
  EXPECT_THAT(*reason, HasSubstr(config + ":2"));
  EXPECT_THAT(*reason, HasSubstr("sample_interval"));
  EXPECT_TRUE(p.Running());
  EXPECT_TRUE(Healthy(*agent));
  EXPECT_THAT(p.Log().substr(offset), Not(HasSubstr("configuration reloaded")));
  double s1 = sweeps();
  EXPECT_TRUE(WaitFor([&] { return sweeps() > s1; }, kDeadline)) << p.LogTail();

  p.Signal(SIGTERM);
  auto exit = p.Wait(kDeadline);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->ok()) << exit->ToString() << "\n" << p.LogTail();
}

}  // namespace
}  // namespace suanli::it
