// A partition of the passage between a dc aggregator and the region aggregator above it,
// through a fault-injecting proxy (latency, connections cut mid-request, a 60 s blackhole):
// during the blackhole the region shows the dc as stale, never as zero supply, and a real
// Prometheus with the project's alerting rules fires SuanliDcNotReporting; after it, the dc
// aggregator's backlog fills the region's history of the dc's figures without a gap.
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <string>
#include <thread>

#include "core/file_util.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/fault_proxy.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

// Two servers of lz-1, 4 CPUs each, half busy.
std::vector<TimeSeries> Sweep(int64_t ts) {
  std::vector<TimeSeries> out;
  for (const char* instance : {"lz-1-a", "lz-1-b"}) {
    for (const char* cpu : {"0", "1", "2", "3"}) {
      for (const char* mode : {"idle", "user"}) {
        out.push_back({Labels{{"__name__", "node_cpu_seconds_total"},
                              {"region", "gansu"},
                              {"dc", "lz-1"},
                              {"instance", instance},
                              {"cpu", cpu},
                              {"mode", mode}},
                       {{ts, ts / 2000.0}}});
      }
    }
    out.push_back({Labels{{"__name__", "suanli_node_compute_capacity_flops"},
                          {"region", "gansu"},
                          {"dc", "lz-1"},
                          {"instance", instance},
                          {"precision", "fp32"}},
                   {{ts, 1e12}}});
  }
  return out;
}

TEST(PartitionTest, TheRegionShowsTheDcStaleAlertsAndFillsItsHistoryAfterwards) {
  TempDir tmp("suanli-partition");
  for (const char* d : {"region", "dc", "prom"}) ASSERT_TRUE(MakeDirectories(tmp.Sub(d)).ok());
  ASSERT_TRUE(WriteFile(tmp.Sub("region.yml"), "capacity:\n  stale_after: 5s\n").ok());
  auto region =
      StartAggregator(tmp.Sub("region"), {"--config.file=" + tmp.Sub("region.yml")}, "region.log");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  FaultProxy passage(region->address);
  ASSERT_TRUE(passage.Start().ok());
  ASSERT_TRUE(WriteFile(tmp.Sub("dc.yml"),
                        "capacity:\n  evaluation_interval: 1s\nforward:\n  - name: region\n"
                        "    url: http://" +
                            passage.address() +
                            "/api/v1/write\n"
                            "    select: capacity\n    remote_timeout: 2s\n"
                            "    queue_config: {max_backoff: 1s}\n")
                  .ok());
  auto dc = StartAggregator(tmp.Sub("dc"), {"--config.file=" + tmp.Sub("dc.yml")}, "dc.log");
  ASSERT_TRUE(dc.ok()) << dc.status().ToString();

  // Prometheus scrapes the region aggregator with the project's rules, `for:` shortened.
  const std::string rules_dir = std::string(SUANLI_SOURCE_DIR) + "/dashboards/rules/";
  static const std::regex kFor(R"(^(\s+)for: \S+$)", std::regex::multiline);
  ASSERT_TRUE(WriteFile(tmp.Sub("prom/alerts.yml"),
                        std::regex_replace(ReadFileOrEmpty(rules_dir + "suanli_alerts.yml"), kFor,
                                           "$1for: 2s"))
                  .ok());
  ASSERT_TRUE(
      WriteFile(tmp.Sub("prom/recording.yml"), ReadFileOrEmpty(rules_dir + "suanli_recording.yml"))
          .ok());
  const std::string prom_address = "127.0.0.1:" + std::to_string(PickFreePort());
  ASSERT_TRUE(WriteFile(tmp.Sub("prom/prometheus.yml"),
                        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                        "rule_files: ['" +
                            tmp.Sub("prom/alerts.yml") + "', '" + tmp.Sub("prom/recording.yml") +
                            "']\n"
                            "scrape_configs:\n  - job_name: suanli-aggregator\n"
                            "    honor_labels: true\n    static_configs:\n"
                            "      - targets: ['" +
                            region->address + "']\n")
                  .ok());
  auto prom = Process::Start(
      kPrometheusBinary,
      {"--config.file=" + tmp.Sub("prom/prometheus.yml"),
       "--storage.tsdb.path=" + tmp.Sub("prom/tsdb"), "--web.listen-address=" + prom_address},
      tmp.Sub("prom/prometheus.log"));
  ASSERT_TRUE(prom.ok());
  auto firing = [&] {
    auto r = HttpGet("http://" + prom_address + "/api/v1/query?query=" +
                     UrlEncode("ALERTS{alertname=\"SuanliDcNotReporting\",alertstate=\"firing\","
                               "dc=\"lz-1\"}"));
    if (!r.ok() || r->status != 200) return false;
    auto j = ParseJson(r->body);
    return j.ok() && (*j)["data"]["result"].array.size() == 1;
  };

  std::atomic<bool> stop{false};
  std::thread agents([&] {
    HttpClient client;
    while (!stop) {
      remote::WriteRequest req;
      req.series = Sweep(UnixNowMs());
      client.Post(dc->Url("/api/v1/write"), remote::EncodeWriteRequest(req), RemoteWriteHeaders())
          .IgnoreError();
      std::this_thread::sleep_for(milliseconds(1000));
    }
  });
  auto stop_agents = [&] {
    stop = true;
    if (agents.joinable()) agents.join();
  };
  MetricsMap m;
  auto scrape = [&] {
    auto r = ScrapeMetrics(region->Url("/metrics"));
    if (r.ok()) m = *r;
    return r.ok();
  };
  const std::map<std::string, std::string> lz = {{"region", "gansu"}, {"dc", "lz-1"}};

  // A slow, unreliable passage: 150 ms per chunk, connections cut every few seconds.
  passage.set_latency(milliseconds(150));
  const int64_t started = UnixNowMs();
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(seconds(3));
    passage.ResetConnections();
  }
  ASSERT_TRUE(WaitFor([&] { return scrape() && FindSample(m, "suanli_dc_cpu_cores", lz) == 8.0; },
                      seconds(30)))
      << dc->process->LogTail();
  EXPECT_EQ(FindSample(m, "suanli_dc_dcs", {{"dc", "lz-1"}, {"state", "reporting"}}), 1.0);

  // The route disappears for 60 s.
  passage.set_blackhole(true);
  passage.ResetConnections();
  const int64_t cut = UnixNowMs();
  ASSERT_TRUE(WaitFor(
      [&] {
        return scrape() &&
               FindSample(m, "suanli_dc_dcs", {{"dc", "lz-1"}, {"state", "stale"}}) == 1.0;
      },
      seconds(30)));
  // Stale, never zero: the last figures stay, and their age grows.
  EXPECT_EQ(FindSample(m, "suanli_dc_cpu_cores", lz), 8.0);
  EXPECT_EQ(FindSample(m, "suanli_region_cpu_cores", {{"region", "gansu"}}), 8.0);
  EXPECT_GT(FindSample(m, "suanli_dc_newest_sample_age_seconds", lz).value_or(0), 5.0);
  EXPECT_TRUE(WaitFor(firing, seconds(40))) << "SuanliDcNotReporting did not fire";
  std::this_thread::sleep_for(milliseconds(std::max<int64_t>(0, 60'000 - (UnixNowMs() - cut))));
  auto dm = ScrapeMetrics(dc->Url("/metrics"));
  ASSERT_TRUE(dm.ok());
  EXPECT_GT(FindSample(*dm, "suanli_aggregator_forward_backlog_seconds", {{"target", "region"}})
                .value_or(0),
            30.0);

  // The route comes back: the backlog goes out and the region's history has no gap.
  passage.set_blackhole(false);
  passage.set_latency(milliseconds(0));
  passage.ResetConnections();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto d = ScrapeMetrics(dc->Url("/metrics"));
        return d.ok() && scrape() &&
               FindSample(*d, "suanli_aggregator_forward_backlog_seconds",
                          {{"target", "region"}}) == 0.0 &&
               FindSample(m, "suanli_dc_dcs", {{"dc", "lz-1"}, {"state", "reporting"}}) == 1.0;
      },
      seconds(60)))
      << dc->process->LogTail();
  const int64_t healed = UnixNowMs();
  stop_agents();
  EXPECT_TRUE(WaitFor([&] { return !firing(); }, seconds(30))) << "the alert did not resolve";
  std::vector<Sample> history = RemoteReadSamples(
      region->Url("/api/v1/read"), "suanli_dc_cpu_cores", "lz-1", started + 5'000, healed - 2'000);
  ASSERT_GT(history.size(), 60u);
  for (size_t i = 1; i < history.size(); ++i) {
    EXPECT_LE(history[i].timestamp_ms - history[i - 1].timestamp_ms, 1'000)
        << "gap before " << history[i].timestamp_ms;
    EXPECT_EQ(history[i].value, 8.0);
  }
  EXPECT_LT(history.front().timestamp_ms, cut);
  // It spans the blackhole (the read ends 2 s before the backlog was found delivered).
  EXPECT_GT(history.back().timestamp_ms, cut + 55'000);
  (*prom)->Signal(SIGTERM);
}

}  // namespace
}  // namespace suanli::it
