// Forwarding to a real Prometheus 2.42 (its remote_write receiver): raw samples arrive exactly
// as the aggregator accepted them; each closed 1m rollup equals what the same Prometheus
// computes from the raw data over the same window; and an outage of the target while writes go
// on, with the aggregator SIGKILLed during the catch-up, loses nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "aggregator/storage/rocksdb_store.h"
#include "core/file_util.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

// A Prometheus that only receives remote_write (no scrapes), with a fixed address and TSDB so
// that it can be stopped (the target's outage) and started again with its data.
class ReceivingPrometheus {
 public:
  explicit ReceivingPrometheus(std::string dir) : dir_(std::move(dir)) {}

  Status Start() {
    RETURN_IF_ERROR(WriteFile(dir_ + "/prometheus.yml", "global:\n  scrape_interval: 1m\n"));
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (address_.empty() || attempt > 0) address_ = "127.0.0.1:" + std::to_string(PickFreePort());
      ASSIGN_OR_RETURN(process_,
                       Process::Start(kPrometheusBinary,
                                      {"--config.file=" + dir_ + "/prometheus.yml",
                                       "--storage.tsdb.path=" + dir_ + "/tsdb",
                                       "--web.listen-address=" + address_,
                                       "--web.enable-remote-write-receiver", "--log.level=warn"},
                                      dir_ + "/prometheus.log"));
      if (WaitReady()) return Status::Ok();
      if (process_->Log().find("address already in use") == std::string::npos) break;
    }
    return Unavailable("Prometheus did not become ready:\n" + process_->LogTail());
  }
  // Starts again on the same address with the same TSDB.
  Status Restart() {
    ASSIGN_OR_RETURN(
        process_,
        Process::Start(kPrometheusBinary,
                       {"--config.file=" + dir_ + "/prometheus.yml",
                        "--storage.tsdb.path=" + dir_ + "/tsdb", "--web.listen-address=" + address_,
                        "--web.enable-remote-write-receiver", "--log.level=warn"},
                       dir_ + "/prometheus-restarted.log"));
    return WaitReady() ? Status::Ok() : Unavailable("Prometheus did not come back");
  }
  void Stop() {
    process_->Signal(SIGTERM);
    process_->Wait(seconds(30));
  }
  std::string WriteUrl() const { return "http://" + address_ + "/api/v1/write"; }

  // /api/v1/query (at `time_s`) or /api/v1/query_range; the "result" array.
  Result<JsonValue> Api(const std::string& path_and_query) {
    ASSIGN_OR_RETURN(HttpClientResponse r, HttpGet("http://" + address_ + path_and_query));
    if (r.status != 200) return Internal("HTTP " + std::to_string(r.status) + ": " + r.body);
    ASSIGN_OR_RETURN(JsonValue v, ParseJson(r.body));
    return v["data"]["result"];
  }
  // Every sample of every series a range selector (e.g. `x[2h]`) gives at `time_s`, keyed by
  // the value of label `key`.
  Result<std::map<std::string, std::vector<Sample>>> Samples(const std::string& selector,
                                                             double time_s,
                                                             const std::string& key) {
    ASSIGN_OR_RETURN(JsonValue result, Api("/api/v1/query?query=" + UrlEncode(selector) +
                                           "&time=" + std::to_string(time_s)));
    return Matrix(result, key);
  }
  // query_range from..to at `step_s`, keyed by label `key`.
  Result<std::map<std::string, std::vector<Sample>>> Range(const std::string& promql,
                                                           int64_t from_ms, int64_t to_ms,
                                                           int step_s, const std::string& key) {
    ASSIGN_OR_RETURN(JsonValue result, Api("/api/v1/query_range?query=" + UrlEncode(promql) +
                                           "&start=" + std::to_string(from_ms / 1000) +
                                           "&end=" + std::to_string(to_ms / 1000) +
                                           "&step=" + std::to_string(step_s)));
    return Matrix(result, key);
  }

 private:
  static Result<std::map<std::string, std::vector<Sample>>> Matrix(const JsonValue& result,
                                                                   const std::string& key) {
    std::map<std::string, std::vector<Sample>> out;
    for (const JsonValue& s : result.array) {
      auto& samples = out[s["metric"][key].string];
      for (const JsonValue& v : s["values"].array) {
        if (v.array.size() != 2) return Internal("malformed matrix value");
        samples.push_back({static_cast<int64_t>(std::llround(v.array[0].number * 1000)),
                           std::stod(v.array[1].string)});
      }
    }
    return out;
  }
  bool WaitReady() {
    return WaitFor(
               [&] {
                 if (!process_->Running()) return true;
                 auto r = HttpGet("http://" + address_ + "/-/ready");
                 return r.ok() && r->status == 200;
               },
               seconds(60), milliseconds(100)) &&
           process_->Running();
  }

  std::string dir_;
  std::string address_;
  std::unique_ptr<Process> process_;
};

// Seeds a target's cursor in a store before the aggregator opens it: as if the target had been
// configured `back_ms` ago and its data were the backlog of an outage.
Status SeedCursor(const std::string& path, const std::string& target, storage::Cursor c) {
  storage::RocksDbStoreOptions o;
  o.path = path;
  ASSIGN_OR_RETURN(std::unique_ptr<storage::RocksDbStore> store, storage::RocksDbStore::Open(o));
  return store->SetCursor("forward/" + target, c);
}

constexpr int64_t kMinute = 60'000;

TEST(ForwardTest, RawAndRollupsEqualWhatARealPrometheusHoldsAndComputes) {
  TempDir tmp("suanli-forward");
  ReceivingPrometheus prom(tmp.Sub("prom"));
  ASSERT_TRUE(MakeDirectories(tmp.Sub("prom")).ok());
  ASSERT_TRUE(prom.Start().ok());

  const int64_t now = UnixNowMs();
  const int64_t begin = rollup::IntervalStart(now - 25 * kMinute, kMinute);
  const int64_t end = rollup::IntervalStart(now - kMinute, kMinute);  // every interval closed
  // The raw target from the first write on; the rollup target added later, with the written
  // history as its backlog (its cursor seeded at `begin` while the aggregator is stopped).
  ASSERT_TRUE(SeedCursor(tmp.Sub("data"), "raw", {storage::CursorKind::kLog, 1}).ok());
  const std::string raw_target =
      "  - name: raw\n"
      "    url: " +
      prom.WriteUrl() +
      "\n"
      "    select: raw\n"
      "    match: ['{__name__=~\"fw_.*\"}']\n";
  const std::string config = tmp.Sub("aggregator.yml");
  ASSERT_TRUE(WriteFile(config, "forward:\n" + raw_target).ok());
  auto agg = StartAggregator(tmp.path(), {"--config.file=" + config});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();

  // Three gauges and three counters: irregular intervals (12-18 s, never on a minute boundary),
  // a four-minute gap, and a counter reset.
  std::map<std::string, std::vector<Sample>> gauges, counters;
  uint32_t rnd = 42;
  auto next_rand = [&] { return rnd = rnd * 1664525u + 1013904223u; };
  for (int s = 0; s < 3; ++s) {
    const std::string i = std::to_string(s);
    double c = 1000 * s;
    for (int64_t t = begin + 7'000; t < end; t += 12'000 + (next_rand() >> 8) % 6'000) {
      if (t % kMinute < 1'000 || t % kMinute > 59'000) continue;           // off the boundaries
      if (t > begin + 10 * kMinute && t < begin + 14 * kMinute) continue;  // the gap
      gauges[i].push_back({t, static_cast<double>((next_rand() >> 8) % 1000) / 8.0});
      c += (next_rand() >> 8) % 50;
      if (s == 1 && t > begin + 17 * kMinute &&
          counters[i].back().timestamp_ms <= begin + 17 * kMinute) {
        c = 5;  // restart of the exporting process
      }
      counters[i].push_back({t, c});
    }
  }
  // Written as agents would: a request per two minutes of data, in time order.
  for (int64_t from = begin; from < end; from += 2 * kMinute) {
    std::vector<TimeSeries> batch;
    for (auto* family : {&gauges, &counters}) {
      for (const auto& [i, samples] : *family) {
        TimeSeries ts{Labels{{"__name__", family == &gauges ? "fw_gauge" : "fw_c_total"}, {"i", i}},
                      {}};
        for (const Sample& x : samples) {
          if (x.timestamp_ms >= from && x.timestamp_ms < from + 2 * kMinute)
            ts.samples.push_back(x);
        }
        if (!ts.samples.empty()) batch.push_back(std::move(ts));
      }
    }
    ASSERT_TRUE(PostRemoteWrite(agg->Url("/api/v1/write"), batch).ok());
  }

  agg->process->Signal(SIGTERM);
  ASSERT_TRUE(agg->process->Wait(seconds(30)).has_value());
  ASSERT_TRUE(SeedCursor(tmp.Sub("data"), "rollups", {storage::CursorKind::kTime, begin}).ok());
  ASSERT_TRUE(WriteFile(config, "forward:\n" + raw_target +
                                    "  - name: rollups\n"
                                    "    url: " +
                                    prom.WriteUrl() +
                                    "\n"
                                    "    select: rollups\n"
                                    "    resolution: 1m\n"
                                    "    rollup_delay: 0s\n"
                                    "    match: ['{__name__=~\"fw_.*\"}']\n")
                  .ok());
  agg = StartAggregator(tmp.path(), {"--config.file=" + config}, "aggregator-2.log");
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();

  // Raw: every sample, exactly.
  const double at = static_cast<double>(now) / 1000.0;
  std::map<std::string, std::vector<Sample>> raw;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = prom.Samples("fw_gauge[1h]", at, "i");
        if (r.ok()) raw = *r;
        return raw == gauges;
      },
      seconds(60)))
      << "Prometheus has " << raw["0"].size() << " of " << gauges["0"].size() << " samples\n"
      << agg->process->LogTail();
  auto raw_counters = prom.Samples("fw_c_total[1h]", at, "i");
  ASSERT_TRUE(raw_counters.ok());
  EXPECT_EQ(*raw_counters, counters);

  // Rollups: wait for the last interval, then compare every output at every interval end.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = prom.Samples("fw_gauge:1m_last[1h]", at, "i");
        return r.ok() && r->count("2") > 0 && r->at("2").back().timestamp_ms == end;
      },
      seconds(60)))
      << agg->process->LogTail();
  // Prometheus evaluates `f(x[1m])` at the interval's end over [end - 1m, end]; no sample lies
  // on a boundary, so that is the rollup's interval [end - 1m, end). `last_over_time(r[30s])`
  // reads the rollup sample stamped at that end without Prometheus' 5m lookback.
  struct Pair {
    std::string ours, promql;
  };
  const Pair pairs[] = {
      {"fw_gauge:1m_min", "min_over_time(fw_gauge[1m])"},
      {"fw_gauge:1m_max", "max_over_time(fw_gauge[1m])"},
      {"fw_gauge:1m_avg", "avg_over_time(fw_gauge[1m])"},
      {"fw_gauge:1m_count_samples", "count_over_time(fw_gauge[1m])"},
      {"fw_gauge:1m_last", "last_over_time(fw_gauge[1m])"},
      {"fw_c_total:1m_last", "last_over_time(fw_c_total[1m])"},
      {"fw_c_total:1m_max", "max_over_time(fw_c_total[1m])"},
      // Exact increase (no extrapolation, unlike PromQL's increase()) where both this and the
      // previous interval hold samples and no reset happened; checked for the reset below.
      {"fw_c_total:1m_increase",
       "(last_over_time(fw_c_total[1m]) - last_over_time(fw_c_total[1m] offset 1m)) >= 0"},
  };
  size_t compared = 0;
  for (const Pair& p : pairs) {
    auto ours = prom.Range("last_over_time(" + p.ours + "[30s])", begin + kMinute, end, 60, "i");
    auto theirs = prom.Range(p.promql, begin + kMinute, end, 60, "i");
    ASSERT_TRUE(ours.ok() && theirs.ok()) << p.ours;
    for (const auto& [i, want] : *theirs) {
      const auto& got = (*ours)[i];
      std::map<int64_t, double> by_time;
      for (const Sample& s : got) by_time[s.timestamp_ms] = s.value;
      for (const Sample& w : want) {
        ASSERT_EQ(by_time.count(w.timestamp_ms), 1u)
            << p.ours << " i=" << i << " at " << w.timestamp_ms;
        EXPECT_TRUE(NearlyEqual(by_time[w.timestamp_ms], w.value, 1e-12))
            << p.ours << " i=" << i << " at " << w.timestamp_ms << ": " << by_time[w.timestamp_ms]
            << " vs " << w.value;
        ++compared;
      }
      if (p.promql.find("offset") == std::string::npos) {
        EXPECT_EQ(got.size(), want.size()) << p.ours << " i=" << i;  // no interval more or less
      }
    }
  }
  EXPECT_GT(compared, 8u * 3 * 15);
  // The interval with the reset: the increments after it count from zero.
  auto inc =
      prom.Range("last_over_time(fw_c_total:1m_increase[30s])", begin + kMinute, end, 60, "i");
  ASSERT_TRUE(inc.ok());
  for (const Sample& s : (*inc)["1"]) {
    double want = 0, prev = NAN;
    for (const Sample& c : counters["1"]) {
      if (c.timestamp_ms >= s.timestamp_ms) break;
      if (c.timestamp_ms >= s.timestamp_ms - 2 * kMinute &&
          c.timestamp_ms < s.timestamp_ms - kMinute) {
        prev = c.value;  // the previous interval's last value
      } else if (c.timestamp_ms >= s.timestamp_ms - kMinute) {
        if (!std::isnan(prev)) want += c.value >= prev ? c.value - prev : c.value;
        prev = c.value;
      }
    }
    EXPECT_DOUBLE_EQ(s.value, want) << "interval ending " << s.timestamp_ms;
  }
  auto dropped = ScrapeMetrics(agg->Url("/metrics"));
  ASSERT_TRUE(dropped.ok());
  EXPECT_TRUE(FindSamples(*dropped, "suanli_aggregator_forward_samples_dropped_total").empty());
  EXPECT_EQ(FindSample(*dropped, "suanli_aggregator_forward_backlog_seconds", {{"target", "raw"}}),
            0);
}

TEST(ForwardTest, AnOutageOfTheTargetAndASigkillDuringCatchUpLoseNothing) {
  TempDir tmp("suanli-forward");
  ASSERT_TRUE(MakeDirectories(tmp.Sub("prom")).ok());
  ReceivingPrometheus prom(tmp.Sub("prom"));
  ASSERT_TRUE(prom.Start().ok());
  const std::string config = tmp.Sub("aggregator.yml");
  ASSERT_TRUE(WriteFile(config,
                        "forward:\n"
                        "  - name: up\n"
                        "    url: " +
                            prom.WriteUrl() +
                            "\n"
                            "    select: raw\n"
                            "    queue_config: {shards: 2, max_samples_per_send: 500, "
                            "max_backoff: 500ms}\n")
                  .ok());
  auto agg = StartAggregator(tmp.path(), {"--config.file=" + config});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  ASSERT_TRUE(
      agg->process->WaitForLog("forward target=up select=raw starts from now", seconds(30)));

  // A writer as 200 agents' worth of series, 10 samples per second each, until told to stop;
  // it pauses (as an agent's spool would) while the aggregator is down.
  std::atomic<bool> stop{false}, paused{false};
  std::mutex url_mu;
  std::string url = agg->Url("/api/v1/write");
  std::map<int, std::vector<Sample>> written;
  std::thread writer([&] {
    int64_t t = UnixNowMs();
    for (int step = 0; !stop; ++step, t += 100) {
      std::vector<TimeSeries> batch;
      for (int s = 0; s < 200; ++s) {
        batch.push_back(
            {Labels{{"__name__", "fw_out"}, {"s", std::to_string(s)}}, {{t, 1.0 * step + s}}});
      }
      while (!stop) {
        std::string target;
        {
          std::lock_guard lock(url_mu);
          target = url;
        }
        if (!paused && PostRemoteWrite(target, batch).ok()) break;
        std::this_thread::sleep_for(milliseconds(50));
      }
      for (int s = 0; s < 200; ++s) written[s].push_back({t, 1.0 * step + s});
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  auto stop_writer = [&] {
    stop = true;
    if (writer.joinable()) writer.join();
  };

  std::this_thread::sleep_for(seconds(3));
  prom.Stop();  // the target is down for a minute; writes go on
  std::this_thread::sleep_for(seconds(60));
  auto m = ScrapeMetrics(agg->Url("/metrics"));
  ASSERT_TRUE(m.ok());
  EXPECT_GT(
      FindSample(*m, "suanli_aggregator_forward_backlog_seconds", {{"target", "up"}}).value_or(0),
      30);
  EXPECT_GT(FindSample(*m, "suanli_aggregator_forward_samples_retried_total", {{"target", "up"}})
                .value_or(0),
            0);
  ASSERT_TRUE(prom.Restart().ok());
  // The catch-up starts; SIGKILL the aggregator in the middle of it, then start it again.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto mm = ScrapeMetrics(agg->Url("/metrics"));
        return mm.ok() && FindSample(*mm, "suanli_aggregator_forward_requests_total",
                                     {{"target", "up"}, {"status_class", "2xx"}})
                                  .value_or(0) > 2;
      },
      seconds(30)));
  paused = true;
  agg->process->Signal(SIGKILL);
  agg->process->Wait(seconds(10));
  std::string address = agg->address;
  auto again = StartAggregator(tmp.path(), {"--config.file=" + config}, "aggregator-2.log");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  {
    std::lock_guard lock(url_mu);
    url = again->Url("/api/v1/write");
  }
  paused = false;
  std::this_thread::sleep_for(seconds(3));
  stop_writer();

  // Everything the aggregator acknowledged is in Prometheus, in order, nothing missing.
  const double at = static_cast<double>(written[0].back().timestamp_ms) / 1000.0 + 1;
  std::map<std::string, std::vector<Sample>> got;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = prom.Samples("fw_out[10m]", at, "s");
        if (r.ok()) got = *r;
        return got.size() == 200 && got["199"].size() == written[199].size();
      },
      seconds(120)))
      << got["199"].size() << " of " << written[199].size() << "\n"
      << again->process->LogTail();
  for (int s = 0; s < 200; ++s) {
    ASSERT_EQ(got[std::to_string(s)], written[s]) << "series " << s;
  }
  auto after = ScrapeMetrics(again->Url("/metrics"));
  ASSERT_TRUE(after.ok());
  // Only a resend of the unit in flight at the SIGKILL may be refused (as already stored).
  for (const MetricSample& d :
       FindSamples(*after, "suanli_aggregator_forward_samples_dropped_total")) {
    EXPECT_EQ(d.labels.at("reason"), "bad_request") << d.value;
  }
}

}  // namespace
}  // namespace suanli::it
