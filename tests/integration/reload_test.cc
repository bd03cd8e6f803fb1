// SIGHUP reloads the configuration file: a broken file keeps the running configuration (and the
// process) and says why; a good one takes effect. capacity.record, on by default, starts and
// stops the recording of the dc's capacity figures in the store on reload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
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

// A standalone aggregator (no forward target) fed by an agent: with capacity.record off nothing
// of the dc's figures is in the store; reloaded with the default, every evaluation is recorded,
// one series for each dc and link sample of /metrics (the recording's whole cost); off again,
// the recorder stops.
TEST(ReloadTest, AggregatorRecordsTheCapacityHistoryByDefaultAndStopsWhenTurnedOff) {
  TempDir tmp("suanli-it-reload-record");
  const std::string config = tmp.Sub("aggregator.yml");
  auto aggregator_yaml = [](const std::string& record) {
    return "capacity:\n  stale_after: 1h\n  forget_after: 2h\n  evaluation_interval: 1s\n" + record;
  };
  ASSERT_TRUE(WriteFile(config, aggregator_yaml("  record: false\n")).ok());
  auto agg = StartAggregator(tmp.path(), {"--config.file=" + config});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  Process& p = *agg->process;
  auto metrics = [&] {
    auto m = ScrapeMetrics(agg->Url("/metrics"));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : MetricsMap{};
  };

  // One agent over the fixture tree, with an inter-dc link, until its node is up; then it stops,
  // so that the store holds all it will get from it and the figures hold still (stale_after 1h).
  const std::string fixtures = FixturesDir() + "/node_exporter";
  const std::string agent_config = tmp.Sub("agent.yml");
  ASSERT_TRUE(WriteFile(agent_config,
                        "labels: {region: gansu, dc: lanzhou-1, instance: record-node}\n"
                        "sample_interval: 1s\nremote_write:\n  - url: " +
                            agg->Url("/api/v1/write") +
                            "\nspool:\n  directory: " + tmp.Sub("spool") +
                            "\nlinks:\n  - {device: eth0, name: lz-zw, peer_dc: zhongwei-1, "
                            "capacity: 10G}\n")
                  .ok());
  auto agent = StartAgent(tmp.path(),
                          {"--config.file=" + agent_config, "--path.procfs=" + fixtures + "/proc",
                           "--path.sysfs=" + fixtures + "/sys"});
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  const std::map<std::string, std::string> up = {{"dc", "lanzhou-1"}, {"state", "up"}};
  ASSERT_TRUE(
      WaitFor([&] { return FindSample(metrics(), "suanli_dc_nodes", up) == 1.0; }, kDeadline))
      << p.LogTail();
  // Two sweeps at least: the rates of the second are in the figures too.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto m = ScrapeMetrics(agent->Url("/metrics"));
        return m.ok() && FindSample(*m, "suanli_agent_sweeps_total").value_or(0) >= 3;
      },
      kDeadline));
  agent->process->Signal(SIGTERM);
  ASSERT_TRUE(agent->process->Wait(kDeadline).has_value());

  MetricsMap before = metrics();
  const double series_before = FindSample(before, "suanli_aggregator_series").value_or(-1);
  ASSERT_GT(series_before, 0);
  size_t dc_series = 0;  // what the recorder writes: the dc's and its links' figures
  for (const auto& [key, value] : before) {
    if (key.starts_with("suanli_dc_") || key.starts_with("suanli_link_")) ++dc_series;
  }
  ASSERT_GT(dc_series, 20u);
  const double cores = FindSample(before, "suanli_dc_cpu_cores", {{"dc", "lanzhou-1"}}).value_or(0);
  ASSERT_GT(cores, 0);
  EXPECT_TRUE(RemoteReadSamples(agg->Url("/api/v1/read"), "suanli_dc_cpu_cores", "lanzhou-1", 0,
                                UnixNowMs())
                  .empty())
      << "recorded with capacity.record: false";
  EXPECT_EQ(p.Log().find("capacity evaluations recorded"), std::string::npos);

  // The default: recorded from the reload on, exactly those series.
  ASSERT_TRUE(WriteFile(config, aggregator_yaml("")).ok());
  size_t offset = p.LogSize();
  p.Signal(SIGHUP);
  EXPECT_TRUE(p.WaitForLog("configuration reloaded", kDeadline, offset).has_value()) << p.LogTail();
  EXPECT_TRUE(
      p.WaitForLog("capacity evaluations recorded every 1000ms", kDeadline, offset).has_value())
      << p.LogTail();
  std::vector<Sample> recorded;
  ASSERT_TRUE(WaitFor(
      [&] {
        recorded = RemoteReadSamples(agg->Url("/api/v1/read"), "suanli_dc_cpu_cores", "lanzhou-1",
                                     0, UnixNowMs());
        return recorded.size() >= 2;
      },
      kDeadline))
      << p.LogTail();
  for (const Sample& s : recorded) {
    EXPECT_EQ(s.timestamp_ms % 1000, 0) << "evaluations at multiples of the interval";
    EXPECT_EQ(s.value, cores);
  }
  EXPECT_EQ(FindSample(metrics(), "suanli_aggregator_series").value_or(-1),
            series_before + static_cast<double>(dc_series));
  std::cout << "capacity recording: " << dc_series
            << " series for a dc of one agent node with one link\n";

  // Off again: the recorder stops.
  ASSERT_TRUE(WriteFile(config, aggregator_yaml("  record: false\n")).ok());
  offset = p.LogSize();
  p.Signal(SIGHUP);
  EXPECT_TRUE(
      p.WaitForLog("capacity evaluations no longer recorded", kDeadline, offset).has_value())
      << p.LogTail();

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
