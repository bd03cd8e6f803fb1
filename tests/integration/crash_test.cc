// Crash safety: a writer keeps sending remote_write batches while suanli-aggregator is
// SIGKILLed at random moments, many times. After every restart each acknowledged sample is
// readable (remote_read, raw) and the 5m rollups (remote_read with max_over_time /
// avg_over_time hints) agree with rollups computed from the raw samples.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "aggregator/rollup/rollup.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr int kSeries = 20;
constexpr int kPerBatch = 4;  // samples per series per batch
constexpr int64_t kStep = 15'000;

double ValueOf(int s, int64_t ts) { return double(s * 1000) + double(ts / kStep % 997); }

std::string Batch(int64_t base, int b) {
  remote::WriteRequest req;
  for (int s = 0; s < kSeries; ++s) {
    TimeSeries t;
    t.labels = Labels{{"__name__", "crash_test"}, {"s", std::to_string(s)}};
    for (int j = 0; j < kPerBatch; ++j) {
      int64_t ts = base + (int64_t{b} * kPerBatch + j) * kStep;
      t.samples.push_back({ts, ValueOf(s, ts)});
    }
    req.series.push_back(std::move(t));
  }
  return remote::EncodeWriteRequest(req);
}

Result<std::vector<TimeSeries>> Read(const Daemon& agg, const std::string& func, int64_t lo,
                                     int64_t hi) {
  remote::ReadRequest req;
  remote::ReadQuery q;
  q.start_ms = lo;
  q.end_ms = hi;
  q.matchers.push_back({remote::LabelMatcher::Type::kEqual, "__name__", "crash_test"});
  if (!func.empty()) {
    // func(x[5m]) every 5 minutes from a start on the 5m grid: every window is one 5m
    // interval, so the 5m rollups answer it exactly (and are what the handler reads).
    q.start_ms = lo / 300'000 * 300'000;
    q.has_hints = true;
    q.hints.func = func;
    q.hints.step_ms = 300'000;
    q.hints.range_ms = 300'000;
    q.hints.start_ms = q.start_ms;
    q.hints.end_ms = q.end_ms;
  }
  req.queries.push_back(q);
  HttpClient client;
  auto r =
      client.Post(agg.Url("/api/v1/read"), remote::EncodeReadRequest(req),
                  {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "snappy"}});
  if (!r.ok()) return r.status();
  if (r->status != 200) return Internal("status " + std::to_string(r->status) + ": " + r->body);
  ASSIGN_OR_RETURN(auto results, remote::DecodeReadResponse(r->body, 256 << 20));
  if (results.size() != 1) return Internal("one result expected");
  return results[0];
}

TEST(CrashTest, AcknowledgedSamplesAndRollupsSurviveRandomSigkills) {
  TempDir tmp("crash");
  std::string data = tmp.Sub("data");
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t base = now / 3'600'000 * 3'600'000 - 5 * 86'400'000LL + 7'000;
  std::mt19937 rng(12345);
  int next_batch = 0;  // every batch below it was acknowledged
  const int kRounds = 8;
  for (int round = 0; round <= kRounds; ++round) {
    auto agg = StartAggregator(tmp.path(), {"--storage.path=" + data},
                               "aggregator-" + std::to_string(round) + ".log");
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();

    // Every acknowledged sample is there, with its value.
    auto raw = Read(*agg, "", base, base + 86'400'000LL * 30);
    ASSERT_TRUE(raw.ok()) << raw.status().ToString();
    int64_t acked_until = base + int64_t{next_batch} * kPerBatch * kStep;  // exclusive
    size_t seen = 0;
    for (const TimeSeries& t : *raw) {
      int s = std::stoi(std::string(t.labels.Get("s")));
      std::vector<Sample> acked;
      for (const Sample& x : t.samples) {
        ASSERT_EQ(x.value, ValueOf(s, x.timestamp_ms));
        if (x.timestamp_ms < acked_until) acked.push_back(x);
      }
      ASSERT_EQ(acked.size(), size_t(next_batch) * kPerBatch) << "round " << round;
      ++seen;
      // Rollups agree with the raw samples.
      for (auto [func, agg_kind] : {std::pair{"max_over_time", rollup::Aggregate::kMax},
                                    std::pair{"avg_over_time", rollup::Aggregate::kAvg}}) {
        auto rolled = Read(*agg, func, base, base + 86'400'000LL * 30);
        ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
        std::vector<Sample> want;
        rollup::Emit(rollup::Compute(t.samples, 300'000), agg_kind, INT64_MIN, INT64_MAX, &want);
        bool found = false;
        for (const TimeSeries& r : *rolled) {
          if (r.labels != t.labels) continue;
          found = true;
          EXPECT_EQ(r.samples, want) << func << " round " << round;
        }
        EXPECT_TRUE(found);
      }
    }
    if (next_batch > 0) {
      EXPECT_EQ(seen, size_t(kSeries));
    }
    if (round == kRounds) break;

    // Write until killed at a random moment.
    std::atomic<bool> stop{false};
    std::atomic<int> acked{next_batch};
    std::thread writer([&, url = agg->Url("/api/v1/write")] {
      HttpClient client;
      std::map<std::string, std::string> h = {{"Content-Type", remote::kWriteContentType},
                                              {"Content-Encoding", remote::kContentEncoding}};
      for (int b = acked.load(); !stop.load(); ++b) {
        auto r = client.Post(url, Batch(base, b), h);
        if (!r.ok() || r->status != 204) return;  // killed
        acked = b + 1;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 1200));
    agg->process->Signal(SIGKILL);
    stop = true;
    writer.join();
    ASSERT_TRUE(agg->process->Wait(seconds(10)).has_value());
    // The batch in flight at the kill may or may not be stored; it is resent (idempotent).
    next_batch = acked.load();
  }
  EXPECT_GT(next_batch, 100) << "the writer made too little progress to mean much";
}

}  // namespace
}  // namespace suanli::it
