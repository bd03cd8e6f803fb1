// remote_read end to end: data spanning 100 days goes into a real suanli-aggregator by
// remote_write; a real Prometheus 2.42 with `remote_read` (read_recent: true) against it answers
// min/max/avg_over_time and rate over raw and over rolled-up ranges, compared with values this
// test computes from the data it wrote.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>

#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr int64_t kMinute = 60'000, kHour = 60 * kMinute, kDay = 24 * kHour;

// The data: one sample per minute, 7 s past the minute, so no sample sits on an interval
// boundary. The gauge wanders; the counter grows 1.5/s and resets once a day at 03:00.
double Gauge(int64_t ts) {
  return 50 + 40 * std::sin(double(ts) / 3.7e6) + double(ts / kMinute % 7);
}
double Counter(int64_t ts) {
  int64_t since_reset = (ts - 3 * kHour) % kDay;
  if (since_reset < 0) since_reset += kDay;
  return 1.5 * double(since_reset) / 1000.0;
}

class RemoteReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    end_ = now / kHour * kHour - kHour;  // data ends an hour before now, on an hour
    start_ = end_ - 100 * kDay;
    for (int64_t t = start_ + 7'000; t < end_; t += kMinute) ts_.push_back(t);

    auto agg = StartAggregator(tmp_.path(), {});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();
    HttpClient client;
    std::map<std::string, std::string> headers = {
        {"Content-Type", remote::kWriteContentType},
        {"Content-Encoding", remote::kContentEncoding},
        {remote::kWriteVersionHeader, remote::kWriteVersion}};
    for (size_t i = 0; i < ts_.size(); i += 10'000) {
      remote::WriteRequest req;
      TimeSeries g, c;
      g.labels = Labels{{"__name__", "rr_gauge"}, {"dc", "t"}};
      c.labels = Labels{{"__name__", "rr_counter_total"}, {"dc", "t"}};
      for (size_t j = i; j < std::min(ts_.size(), i + 10'000); ++j) {
        g.samples.push_back({ts_[j], Gauge(ts_[j])});
        c.samples.push_back({ts_[j], Counter(ts_[j])});
      }
      req.series = {g, c};
      auto r =
          client.Post(aggregator_.Url("/api/v1/write"), remote::EncodeWriteRequest(req), headers);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->status, 204) << r->body;
    }

    int port = PickFreePort();
    prom_address_ = "127.0.0.1:" + std::to_string(port);
    std::string config = tmp_.Sub("prometheus.yml");
    ASSERT_TRUE(WriteFile(config, "global: {}\nremote_read:\n  - url: " +
                                      aggregator_.Url("/api/v1/read") + "\n    read_recent: true\n")
                    .ok());
    auto prom =
        Process::Start(kPrometheusBinary,
                       {"--config.file=" + config, "--storage.tsdb.path=" + tmp_.Sub("tsdb"),
                        "--web.listen-address=" + prom_address_},
                       tmp_.Sub("prometheus.log"));
    ASSERT_TRUE(prom.ok()) << prom.status().ToString();
    prometheus_ = std::move(prom).value();
    ASSERT_TRUE(WaitFor(
        [&] {
          auto r = HttpGet("http://" + prom_address_ + "/-/ready");
          return r.ok() && r->status == 200;
        },
        seconds(60)))
        << prometheus_->LogTail();
  }

  // One instant query at `at_ms`; the single value, or NaN with a failure.
  double Query(const std::string& promql, int64_t at_ms) {
    char time_text[64];
    std::snprintf(time_text, sizeof time_text, "%.3f", double(at_ms) / 1000.0);
    auto r = HttpGet("http://" + prom_address_ + "/api/v1/query?query=" + UrlEncode(promql) +
                     "&time=" + time_text);
    EXPECT_TRUE(r.ok() && r->status == 200)
        << promql << ": " << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok()) return NAN;
    auto json = ParseJson(r->body);
    if (!json.ok()) return NAN;
    const JsonValue& result = (*json)["data"]["result"];
    EXPECT_EQ(result.array.size(), 1u) << promql << ": " << r->body;
    if (result.array.size() != 1) return NAN;
    return std::stod(result.array[0]["value"].array[1].string);
  }

  // Samples of f in [from, to].
  std::vector<double> Raw(const std::function<double(int64_t)>& f, int64_t from, int64_t to) {
    std::vector<double> out;
    for (int64_t t : ts_) {
      if (t >= from && t <= to) out.push_back(f(t));
    }
    return out;
  }

  TempDir tmp_{"remote-read"};
  Daemon aggregator_;
  std::unique_ptr<Process> prometheus_;
  std::string prom_address_;
  int64_t start_ = 0, end_ = 0;
  std::vector<int64_t> ts_;
};

double Max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Avg(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

TEST_F(RemoteReadTest, RolledUpRangesMonthsAgo) {
  // 60 days back: raw (15 d) is gone; ranges of a day and of an hour, evaluated on the hour,
  // are answered exactly by the 1h rollups.
  for (int64_t at : {end_ - 60 * kDay, end_ - 30 * kDay + 5 * kHour, end_ - 95 * kDay}) {
    for (int64_t range : {kDay, kHour}) {
      std::string r = range == kDay ? "[1d]" : "[1h]";
      std::vector<double> g = Raw(Gauge, at - range, at);
      EXPECT_DOUBLE_EQ(Query("max_over_time(rr_gauge" + r + ")", at), Max(g)) << at;
      EXPECT_DOUBLE_EQ(Query("min_over_time(rr_gauge" + r + ")", at), Min(g)) << at;
      EXPECT_NEAR(Query("avg_over_time(rr_gauge" + r + ")", at), Avg(g), 1e-9 * Avg(g)) << at;
      // The counter grows 1.5/s; a daily reset costs at most one minute of increase.
      EXPECT_NEAR(Query("rate(rr_counter_total" + r + ")", at), 1.5, 0.015) << at;
    }
  }
  // The answers came from the rollups (the raw data of those days is past retention).
  auto metrics = ScrapeMetrics(aggregator_.Url("/metrics"));
  ASSERT_TRUE(metrics.ok());
  EXPECT_GT(FindSample(*metrics, "suanli_aggregator_read_queries_total", {{"resolution", "1h"}})
                .value_or(0),
            0);
  EXPECT_EQ(FindSample(*metrics, "suanli_aggregator_read_queries_total", {{"resolution", "raw"}})
                .value_or(0),
            0);
}

TEST_F(RemoteReadTest, RawRangesRecently) {
  int64_t at = end_ - 2 * kDay + 17 * kMinute + 30'000;
  std::vector<double> g = Raw(Gauge, at - 150'000, at);  // 90 s range -> raw samples
  EXPECT_DOUBLE_EQ(Query("max_over_time(rr_gauge[150s])", at), Max(g));
  EXPECT_DOUBLE_EQ(Query("min_over_time(rr_gauge[150s])", at), Min(g));
  EXPECT_NEAR(Query("avg_over_time(rr_gauge[150s])", at), Avg(g), 1e-9 * Avg(g));
  EXPECT_DOUBLE_EQ(Query("rr_gauge", at), g.back());
  // An hour's range would pick 5m rollups for max_over_time; count_over_time reads raw
  // samples, so it counts samples, not intervals.
  EXPECT_EQ(Query("count_over_time(rr_gauge[1h])", at),
            static_cast<double>(Raw(Gauge, at - kHour, at).size()));
  EXPECT_NEAR(Query("rate(rr_counter_total[5m])", at), 1.5, 1e-9);
  // A 2 h range two days back reads 5m rollups while raw still exists: same answers.
  std::vector<double> g2 = Raw(Gauge, end_ - 2 * kDay - 2 * kHour, end_ - 2 * kDay);
  EXPECT_DOUBLE_EQ(Query("max_over_time(rr_gauge[2h])", end_ - 2 * kDay), Max(g2));
  // The head (the last, open hour) answers too.
  std::vector<double> g3 = Raw(Gauge, end_ - 30 * kMinute, end_);
  EXPECT_DOUBLE_EQ(Query("max_over_time(rr_gauge[30m])", end_), Max(g3));
}

}  // namespace
}  // namespace suanli::it
