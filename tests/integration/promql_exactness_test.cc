// Rollups answer exactly what Prometheus answers from raw samples. The same 30 hours of
// samples (a gauge and a counter, every 15 s give or take a second, with gaps, counter resets
// and samples on the rollups' interval boundaries) go into a real Prometheus' own TSDB
// (promtool tsdb create-blocks-from openmetrics) and, by remote_write, into a real
// suanli-aggregator, read by a second Prometheus through remote_read. Every range function
// that remote_read hints map to a rollup, and those that need raw samples, must give the same
// answer through both at every step, for steps and ranges on and off the rollup grid; the
// aggregator must have used its rollups for some queries and read raw for others.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <random>

#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr int64_t kMinute = 60'000, kHour = 60 * kMinute;

class PromqlExactnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    end_ = UnixNowMs() / kHour * kHour - 2 * kHour;
    start_ = end_ - 30 * kHour;
    std::mt19937_64 rng(20261205);
    double counter = 1000;
    for (int64_t t = start_ + 7'000; t < end_;) {
      const uint64_t dice = rng() % 1000;
      gauge_.push_back({t, double(rng() % 100'000) / 100});
      counter = dice < 2 ? double(rng() % 50) : counter + double(rng() % 100'000) / 100;
      counter_.push_back({t, counter});
      int64_t next = t + 15'000 + static_cast<int64_t>(rng() % 2001) - 1000;
      if (dice >= 2 && dice < 4) next += static_cast<int64_t>(rng() % (50 * kMinute));  // a gap
      if (dice >= 4 && dice < 10) next = (t / (5 * kMinute) + 1) * 5 * kMinute;  // on the grid
      t = next;
    }
    // And a steady pair: every 15 s, a second either way, never on the 1m grid, no gaps, so
    // that the rollups answer the windows that the grids align.
    double steady = 0;
    for (int64_t k = 0; start_ + 7'000 + k * 15'000 < end_; ++k) {
      const int64_t t = start_ + 7'000 + k * 15'000 + static_cast<int64_t>(rng() % 1001) - 500;
      steady_gauge_.push_back({t, double(rng() % 100'000) / 100});
      steady_counter_.push_back({t, steady += double(rng() % 100'000) / 100});
    }

    // Prometheus' own blocks, from the samples as OpenMetrics (values written exactly).
    std::string om;
    char line[160];
    for (const auto& [name, type, samples] :
         {std::tuple{"px_gauge", "gauge", &gauge_}, std::tuple{"px_bytes", "counter", &counter_},
          std::tuple{"px_steady_gauge", "gauge", &steady_gauge_},
          std::tuple{"px_steady_bytes", "counter", &steady_counter_}}) {
      om += std::string("# TYPE ") + name + " " + type + "\n";
      const std::string metric =
          std::string(name) + (std::string(type) == "counter" ? "_total" : "");
      for (const Sample& s : *samples) {
        std::snprintf(line, sizeof line, "%s{dc=\"t\"} %.17g %" PRId64 ".%03" PRId64 "\n",
                      metric.c_str(), s.value, s.timestamp_ms / 1000, s.timestamp_ms % 1000);
        om += line;
      }
    }
    om += "# EOF\n";
    ASSERT_TRUE(WriteFile(tmp_.Sub("samples.om"), om).ok());
    auto blocks = RunCommand(
        "/usr/bin/promtool",
        {"tsdb", "create-blocks-from", "openmetrics", tmp_.Sub("samples.om"), tmp_.Sub("own")},
        tmp_.path(), seconds(300));
    ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
    ASSERT_TRUE(blocks->status.exited && blocks->status.code == 0) << blocks->err;

    auto agg = StartAggregator(tmp_.path(), {});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();
    for (const auto& [name, samples] :
         {std::pair{"px_gauge", &gauge_}, std::pair{"px_bytes_total", &counter_},
          std::pair{"px_steady_gauge", &steady_gauge_},
          std::pair{"px_steady_bytes_total", &steady_counter_}}) {
      for (size_t i = 0; i < samples->size(); i += 2000) {
        TimeSeries series{
            Labels{{"__name__", name}, {"dc", "t"}},
            std::vector<Sample>(samples->begin() + i,
                                samples->begin() + std::min(samples->size(), i + 2000))};
        ASSERT_TRUE(PostRemoteWrite(aggregator_.Url("/api/v1/write"), {series}).ok());
      }
    }

    own_ = StartPrometheus("own", tmp_.Sub("own"), "");
    via_ = StartPrometheus(
        "via", tmp_.Sub("via"),
        "remote_read:\n  - url: " + aggregator_.Url("/api/v1/read") + "\n    read_recent: true\n");
  }

  std::string StartPrometheus(const std::string& name, const std::string& tsdb,
                              const std::string& config_tail) {
    std::string config = tmp_.Sub(name + ".yml");
    EXPECT_TRUE(WriteFile(config, "global: {}\n" + config_tail).ok());
    std::string address = "127.0.0.1:" + std::to_string(PickFreePort());
    auto p =
        Process::Start(kPrometheusBinary,
                       {"--config.file=" + config, "--storage.tsdb.path=" + tsdb,
                        "--storage.tsdb.retention.time=30d", "--web.listen-address=" + address},
                       tmp_.Sub(name + ".log"));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return address;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto r = HttpGet("http://" + address + "/-/ready");
          return r.ok() && r->status == 200;
        },
        seconds(60)))
        << (*p)->LogTail();
    procs_.push_back(std::move(p).value());
    return address;
  }

  // query_range through one Prometheus: (timestamp, value text) of the one series, or the
  // error text.
  Result<std::vector<std::pair<double, std::string>>> Range(const std::string& address,
                                                            const std::string& promql, int64_t from,
                                                            int64_t to, int64_t step) {
    auto r = HttpGet("http://" + address + "/api/v1/query_range?query=" + UrlEncode(promql) +
                     "&start=" + std::to_string(from / 1000) + "&end=" + std::to_string(to / 1000) +
                     "&step=" + std::to_string(step / 1000));
    if (!r.ok()) return r.status();
    if (r->status != 200) return Internal("HTTP " + std::to_string(r->status) + ": " + r->body);
    ASSIGN_OR_RETURN(JsonValue json, ParseJson(r->body));
    std::vector<std::pair<double, std::string>> out;
    const JsonValue& result = json["data"]["result"];
    if (result.array.size() > 1) return Internal("more than one series: " + r->body);
    if (result.array.empty()) return out;
    for (const JsonValue& v : result.array[0]["values"].array) {
      out.emplace_back(v.array[0].number, v.array[1].string);
    }
    return out;
  }

  TempDir tmp_{"promql-exactness"};
  Daemon aggregator_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::string own_, via_;
  int64_t start_ = 0, end_ = 0;
  std::vector<Sample> gauge_, counter_, steady_gauge_, steady_counter_;
};

TEST_F(PromqlExactnessTest, EveryFunctionAnswersWhatPrometheusAnswersFromItsOwnTsdb) {
  const std::vector<std::string> functions = {
      "max_over_time(px_gauge[R])",   "min_over_time(px_gauge[R])",
      "sum_over_time(px_gauge[R])",   "avg_over_time(px_gauge[R])",
      "count_over_time(px_gauge[R])", "last_over_time(px_gauge[R])",
      "rate(px_bytes_total[R])",      "increase(px_bytes_total[R])",
      "irate(px_bytes_total[R])",     "max_over_time(px_bytes_total[R])"};
  std::vector<std::string> all = functions;
  for (std::string f : functions) {
    f.replace(f.find("px_"), 3, "px_steady_");
    all.push_back(f);
  }
  // (step, range): on the 1m/5m/1h grids and off them.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{kHour, kHour},
                                                           {kHour, 3 * kHour},
                                                           {30 * kMinute, kHour},
                                                           {5 * kMinute, 10 * kMinute},
                                                           {7 * kMinute, 10 * kMinute},
                                                           {kHour + 30'000, kHour}};
  int compared = 0;
  for (const std::string& f : all) {
    for (auto [step, range] : shapes) {
      std::string promql = f;
      promql.replace(promql.find('R'), 1, std::to_string(range / 1000) + "s");
      const int64_t from = start_ + 3 * kHour, to = end_;
      auto own = Range(own_, promql, from, to, step);
      auto via = Range(via_, promql, from, to, step);
      ASSERT_TRUE(own.ok()) << promql << ": " << own.status().ToString();
      ASSERT_TRUE(via.ok()) << promql << ": " << via.status().ToString();
      ASSERT_FALSE(own->empty()) << promql;
      ASSERT_EQ(via->size(), own->size()) << promql << " step " << step;
      for (size_t i = 0; i < own->size(); ++i) {
        ASSERT_EQ((*via)[i].first, (*own)[i].first) << promql << " step " << step;
        double a = std::stod((*own)[i].second), b = std::stod((*via)[i].second);
        EXPECT_TRUE(NearlyEqual(a, b, 1e-9))
            << promql << " step " << step << " at " << (*own)[i].first << ": Prometheus " << a
            << ", through suanli " << b;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 4000);
  // Both paths were taken: rollups where they are exact, raw where they would not be.
  auto metrics = ScrapeMetrics(aggregator_.Url("/metrics"));
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  double rollups = 0;
  for (const char* r : {"1m", "5m", "1h"}) {
    rollups += FindSample(*metrics, "suanli_aggregator_read_queries_total", {{"resolution", r}})
                   .value_or(0);
  }
  EXPECT_GT(rollups, 0);
  EXPECT_GT(
      FindSample(*metrics, "suanli_aggregator_read_rollup_inexact_total", {{"outcome", "raw"}})
          .value_or(0),
      0);
}

}  // namespace
}  // namespace suanli::it
