// The whole pipeline with real processes: suanli-agent (over node_exporter's fixture tree, and
// over this host's live /proc and /sys) -> remote_write -> suanli-aggregator -> /metrics ->
// a real Prometheus scraping it with honor_labels: true. Values are checked through
// Prometheus's HTTP API against what the fixture (or the live host) says they must be.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

using ::testing::HasSubstr;

constexpr auto kDeadline = seconds(60);

std::string NodeExporterDir() { return FixturesDir() + "/node_exporter"; }

// What node_exporter printed for the fixture tree.
MetricsMap FixtureExpectations() {
  std::string text = ReadFileOrEmpty(NodeExporterDir() + "/e2e-output.agent-subset.txt");
  EXPECT_FALSE(text.empty()) << "fixture e2e-output.agent-subset.txt missing";
  auto parsed = ParseMetricsText(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : MetricsMap{};
}

size_t DistinctCpus(const MetricsMap& m) {
  std::set<std::string> cpus;
  for (const auto& s : FindSamples(m, "node_cpu_seconds_total")) cpus.insert(s.labels.at("cpu"));
  return cpus.size();
}

// The live host: logical CPUs as /proc/stat lists them (cpuN lines), MemTotal in bytes.
size_t LiveCpuCount() {
  std::ifstream f("/proc/stat");
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) {
    if (line.size() > 3 && line.compare(0, 3, "cpu") == 0 && std::isdigit(line[3])) ++n;
  }
  return n;
}

double LiveMemTotalBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemTotal:") return kb * 1024;
  }
  return NAN;
}

std::string AgentConfig(const std::string& region, const std::string& dc,
                        const std::string& instance, const std::string& write_url) {
  return "labels: {region: " + region + ", dc: " + dc + ", instance: " + instance +
         "}\n"
         "sample_interval: 1s\n"
         "remote_write:\n"
         "  - url: " +
         write_url + "\n";
}

// promtool's findings, one per line ("NAME message").
std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto agg = StartAggregator(tmp_.path(), {});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();
  }

  // Starts an agent labelled (region, dc, instance) over the given trees, writing to the
  // aggregator every second.
  Daemon StartAgentOver(const std::string& procfs, const std::string& sysfs, const std::string& dc,
                        const std::string& instance) {
    std::string config = tmp_.Sub(instance + ".yml");
    EXPECT_TRUE(
        WriteFile(config, AgentConfig("gansu", dc, instance, aggregator_.Url("/api/v1/write")))
            .ok());
    auto agent =
        StartAgent(tmp_.path(),
                   {"--config.file=" + config, "--path.procfs=" + procfs, "--path.sysfs=" + sysfs},
                   instance + ".log");
    EXPECT_TRUE(agent.ok()) << agent.status().ToString();
    return agent.ok() ? std::move(agent).value() : Daemon{};
  }

  // Waits until the aggregator's own /metrics shows the node of `dc` as up.
  bool WaitForNodeUp(const std::string& dc) {
    return WaitFor(
        [&] {
          auto m = ScrapeMetrics(aggregator_.Url("/metrics"));
          if (!m.ok()) return false;
          auto up =
              FindSample(*m, "suanli_dc_nodes", {{"region", "gansu"}, {"dc", dc}, {"state", "up"}});
          return up.has_value() && *up == 1;
        },
        kDeadline, milliseconds(100));
  }

  // Agents first, then the aggregator: each must stop cleanly on SIGTERM.
  void TearDown() override {
    for (Daemon* d : {&fixture_agent_, &live_agent_, &aggregator_}) {
      if (!d->process || !d->process->Running()) continue;
      d->process->Signal(SIGTERM);
      auto exit = d->process->Wait(seconds(30));
      ASSERT_TRUE(exit.has_value()) << d->process->log_path() << ": no exit within 30 s of SIGTERM";
      EXPECT_TRUE(exit->ok()) << d->process->log_path() << ": " << exit->ToString() << "\n"
                              << d->process->LogTail();
    }
  }

  std::string AllLogs() {
    std::string out;
    for (const Daemon* d : {&aggregator_, &fixture_agent_, &live_agent_}) {
      if (!d->process) continue;
      out += "\n--- " + d->process->log_path();
      if (!d->process->Running()) out += " (" + d->process->Wait(seconds(0))->ToString() + ")";
      out += ":\n" + d->process->LogTail();
    }
    return out;
  }

  TempDir tmp_{"suanli-it-pipeline"};
  Daemon aggregator_;
  Daemon fixture_agent_;
  Daemon live_agent_;
};

TEST_F(PipelineTest, AgentSweepsAndBothMetricsPagesPassPromtool) {
  fixture_agent_ = StartAgentOver(NodeExporterDir() + "/proc", NodeExporterDir() + "/sys",
                                  "lanzhou-1", "fixture-node");
  ASSERT_TRUE(fixture_agent_.process);

  // suanli_agent_sweeps_total counts up, one per second.
  auto first = ScrapeMetrics(fixture_agent_.Url("/metrics"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto sweeps0 = FindSample(*first, "suanli_agent_sweeps_total");
  ASSERT_TRUE(sweeps0.has_value()) << "no suanli_agent_sweeps_total" << AllLogs();
  double sweeps1 = *sweeps0;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto m = ScrapeMetrics(fixture_agent_.Url("/metrics"));
        if (!m.ok()) return false;
        sweeps1 = FindSample(*m, "suanli_agent_sweeps_total").value_or(-1);
        return sweeps1 >= *sweeps0 + 2;
      },
      kDeadline))
      << "sweeps stayed at " << sweeps1 << AllLogs();

  auto healthy = HttpGet(fixture_agent_.Url("/-/healthy"));
  ASSERT_TRUE(healthy.ok()) << healthy.status().ToString();
  EXPECT_EQ(healthy->status, 200);

  // What the agent exports for the fixture tree matches node_exporter's values, series by
  // series (node_exporter's `path` label ignored), and includes the families the capacity model
  // needs.
  MetricsMap expected = FixtureExpectations();
  auto agent_metrics = ScrapeMetrics(fixture_agent_.Url("/metrics"));
  ASSERT_TRUE(agent_metrics.ok()) << agent_metrics.status().ToString();
  ASSERT_FALSE(FindSamples(*agent_metrics, "node_cpu_seconds_total").empty());
  ASSERT_TRUE(FindSample(*agent_metrics, "node_memory_MemTotal_bytes").has_value());
  size_t compared = 0;
  for (const auto& [key, want] : expected) {
    auto parsed = ParseSeriesKey(key);
    ASSERT_TRUE(parsed.ok());
    parsed->labels.erase("path");
    auto it = agent_metrics->find(SeriesKey(parsed->name, parsed->labels));
    if (it == agent_metrics->end()) continue;
    ++compared;
    EXPECT_TRUE(NearlyEqual(it->second, want, 1e-9))
        << key << ": agent " << it->second << ", node_exporter " << want;
  }
  EXPECT_GE(compared, 64u) << "agent exports too few of node_exporter's series";

  // The aggregator's page, once it has figures for the node, is promtool-clean.
  ASSERT_TRUE(WaitForNodeUp("lanzhou-1")) << AllLogs();
  auto agg_page = HttpGet(aggregator_.Url("/metrics"));
  ASSERT_TRUE(agg_page.ok());
  ASSERT_EQ(agg_page->status, 200);
  EXPECT_THAT(agg_page->body, HasSubstr("suanli_dc_cpu_cores"));
  PromtoolResult agg_check = PromtoolCheckMetrics(agg_page->body, tmp_.path());
  EXPECT_EQ(agg_check.exit_code, 0) << agg_check.output;

  // The agent's page: promtool-clean except for what node_exporter's own names carry (the
  // contract makes the agent use them, e.g. node_memory_MemTotal_bytes is "camelCase" to
  // promtool): every finding must be one that node_exporter's output for the same metric
  // name also gets; a parse error (exit 1) or any other finding fails.
  auto agent_page = HttpGet(fixture_agent_.Url("/metrics"));
  ASSERT_TRUE(agent_page.ok());
  PromtoolResult agent_check = PromtoolCheckMetrics(agent_page->body, tmp_.path());
  if (agent_check.exit_code != 0) {
    EXPECT_EQ(agent_check.exit_code, 3) << "not a lint finding:\n" << agent_check.output;
    PromtoolResult ne_check =
        PromtoolCheckMetrics(ReadFileOrEmpty(NodeExporterDir() + "/e2e-output.txt"), tmp_.path());
    std::set<std::string> inherited = Lines(ne_check.output);
    for (const std::string& finding : Lines(agent_check.output)) {
      EXPECT_TRUE(inherited.count(finding) != 0)
          << "promtool finding not inherited from node_exporter's names: " << finding;
    }
  }
}

TEST_F(PipelineTest, CapacityOfFixtureAndLiveNodesThroughPrometheus) {
  fixture_agent_ = StartAgentOver(NodeExporterDir() + "/proc", NodeExporterDir() + "/sys",
                                  "lanzhou-1", "fixture-node");
  live_agent_ = StartAgentOver("/proc", "/sys", "lanzhou-2", "live-node");
  ASSERT_TRUE(fixture_agent_.process && live_agent_.process);

  PrometheusServer prometheus(tmp_.path());
  Status st = prometheus.Start(
      {{"aggregator", aggregator_.address, true}, {"agent", fixture_agent_.address, false}});
  ASSERT_TRUE(st.ok()) << st.ToString();

  // Expected figures of the fixture node, from node_exporter's output for the same tree.
  MetricsMap fx = FixtureExpectations();
  const size_t fx_cores = DistinctCpus(fx);
  ASSERT_GT(fx_cores, 0u);
  const auto fx_total = FindSample(fx, "node_memory_MemTotal_bytes");
  ASSERT_TRUE(fx_total.has_value());
  double fx_available;
  if (auto a = FindSample(fx, "node_memory_MemAvailable_bytes"); a.has_value()) {
    fx_available = *a;
  } else {
    auto free = FindSample(fx, "node_memory_MemFree_bytes");
    auto buffers = FindSample(fx, "node_memory_Buffers_bytes");
    auto cached = FindSample(fx, "node_memory_Cached_bytes");
    ASSERT_TRUE(free && buffers && cached);
    fx_available = *free + *buffers + *cached;
  }
  const size_t live_cores = LiveCpuCount();
  const double live_total = LiveMemTotalBytes();
  ASSERT_GT(live_cores, 0u);
  ASSERT_GT(live_total, 0);

  // Polls `promql` until its single sample satisfies `accept`; reports the last value seen.
  auto expect_eventually = [&](const std::string& promql, const std::function<bool(double)>& ok,
                               const std::string& want, milliseconds timeout = seconds(20)) {
    bool accepted = false;
    std::string error;
    auto last = prometheus.QueryUntil(promql, ok, timeout, &accepted, &error);
    EXPECT_TRUE(accepted) << promql << ": want " << want << ", last value "
                          << (last ? std::to_string(*last) : "none") << " " << error;
    return accepted;
  };
  auto eq = [](double want) { return [want](double v) { return NearlyEqual(v, want); }; };
  auto in_unit = [](double v) { return v >= 0 && v <= 1; };
  const std::string fx_sel = R"(region="gansu",dc="lanzhou-1")";
  const std::string live_sel = R"(region="gansu",dc="lanzhou-2")";

  // Fixture data center. The first figure waits for the whole chain (agent sweep, write,
  // Prometheus start and scrape); the rest are there by then.
  ASSERT_TRUE(
      expect_eventually("suanli_dc_nodes{" + fx_sel + R"(,state="up"})", eq(1), "1", kDeadline))
      << AllLogs() << "\n--- prometheus:\n"
      << prometheus.process()->LogTail();
  expect_eventually("suanli_dc_nodes{" + fx_sel + R"(,state="stale"})", eq(0), "0");
  expect_eventually("suanli_dc_cpu_cores{" + fx_sel + "}", eq(fx_cores), std::to_string(fx_cores));
  expect_eventually("suanli_dc_memory_total_bytes{" + fx_sel + "}", eq(*fx_total),
                    std::to_string(*fx_total));
  expect_eventually("suanli_dc_memory_available_bytes{" + fx_sel + "}", eq(fx_available),
                    std::to_string(fx_available));
  expect_eventually("suanli_dc_cpu_utilization_ratio{" + fx_sel + "}", in_unit, "in [0,1]");
  // The fixture's counters never move: no traffic.
  expect_eventually("suanli_dc_network_receive_bytes_per_second{" + fx_sel + "}", eq(0), "0");
  expect_eventually("suanli_dc_network_transmit_bytes_per_second{" + fx_sel + "}", eq(0), "0");

  // Live data center: this host.
  expect_eventually("suanli_dc_nodes{" + live_sel + R"(,state="up"})", eq(1), "1");
  expect_eventually("suanli_dc_cpu_cores{" + live_sel + "}", eq(live_cores),
                    std::to_string(live_cores));
  expect_eventually("suanli_dc_memory_total_bytes{" + live_sel + "}", eq(live_total),
                    std::to_string(live_total));
  expect_eventually(
      "suanli_dc_memory_available_bytes{" + live_sel + "}",
      [&](double v) { return v > 0 && v <= live_total; }, "in (0, MemTotal]");
  // Utilization needs two sweeps; this host is never perfectly idle while the test runs.
  expect_eventually(
      "suanli_dc_cpu_utilization_ratio{" + live_sel + "}", [](double v) { return v > 0 && v <= 1; },
      "in (0,1]");
  // Every value Prometheus holds for the live utilization so far is within [0,1].
  auto over_time =
      prometheus.Query("max_over_time(suanli_dc_cpu_utilization_ratio{" + live_sel + "}[5m])");
  ASSERT_TRUE(over_time.ok()) << over_time.status().ToString();
  ASSERT_EQ(over_time->size(), 1u);
  EXPECT_LE((*over_time)[0].value, 1.0);
  auto min_time =
      prometheus.Query("min_over_time(suanli_dc_cpu_utilization_ratio{" + live_sel + "}[5m])");
  ASSERT_TRUE(min_time.ok() && min_time->size() == 1u);
  EXPECT_GE((*min_time)[0].value, 0.0);
  expect_eventually(
      "suanli_dc_network_receive_bytes_per_second{" + live_sel + "}",
      [](double v) { return std::isfinite(v) && v >= 0; }, ">= 0");

  // The region adds both data centers up.
  expect_eventually(R"(suanli_region_nodes{region="gansu",state="up"})", eq(2), "2");
  expect_eventually(R"(suanli_region_cpu_cores{region="gansu"})", eq(fx_cores + live_cores),
                    std::to_string(fx_cores + live_cores));
  expect_eventually(R"(suanli_region_memory_total_bytes{region="gansu"})",
                    eq(*fx_total + live_total), std::to_string(*fx_total + live_total));

  // honor_labels: the aggregator's region/dc labels arrive as they are, not as exported_*.
  auto labels = prometheus.Query(R"(suanli_dc_cpu_cores{job="aggregator"})");
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(labels->size(), 2u);
  for (const auto& s : *labels) {
    EXPECT_EQ(s.labels.count("exported_region"), 0u);
    EXPECT_EQ(s.labels.count("exported_dc"), 0u);
    EXPECT_EQ(s.labels.at("region"), "gansu");
  }

  // Prometheus scraping the agent directly reads the same value node_exporter gives.
  expect_eventually(R"(node_memory_MemTotal_bytes{job="agent"})", eq(*fx_total),
                    std::to_string(*fx_total));
  expect_eventually(R"(up{job="aggregator"})", eq(1), "1");
  expect_eventually(R"(up{job="agent"})", eq(1), "1");

  prometheus.Stop();
}

}  // namespace
}  // namespace suanli::it
