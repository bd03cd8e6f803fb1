// An acknowledged write survives SIGKILL. Load generators push remote_write batches to the
// aggregator and record every batch answered 204; the aggregator is killed with SIGKILL while
// writes are in flight, restarted on the same storage path (it must come back ready), stopped
// with SIGTERM (exit 0), and then the store is opened directly: every acknowledged sample must
// be there with its exact value. Three kill/restart cycles on one store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/store.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr int kSeriesPerBatch = 20;
constexpr int kSamplesPerSeries = 10;
constexpr int kWriters = 2;
constexpr int kCycles = 3;
// Batches acknowledged in a cycle before the kill (the writers keep going until it lands).
constexpr int kAckedBeforeKill = 600;
// The start of the previous UTC hour: inside the aggregator's raw retention (15d), so that a
// restart's checkpoint closes the chunks into raw partitions instead of expiring them.
const int64_t kBaseMs = [] {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return now / 3'600'000 * 3'600'000 - 3'600'000;
}();
constexpr const char* kMetric = "durability_test_value";

// Batch `batch` of writer `writer`: series {writer, series=j}, samples at consecutive
// milliseconds from kBaseMs + batch * kSamplesPerSeries, each with a value unique to
// (writer, batch, series, sample) and exactly representable.
int64_t TimestampOf(int64_t batch, int sample) {
  return kBaseMs + batch * kSamplesPerSeries + sample;
}
double ValueOf(int writer, int64_t batch, int series, int sample) {
  int64_t n = ((batch * kWriters + writer) * kSeriesPerBatch + series) * kSamplesPerSeries + sample;
  return static_cast<double>(n) + 0.25;
}

std::string BatchBody(int writer, int64_t batch) {
  remote::WriteRequest req;
  for (int j = 0; j < kSeriesPerBatch; ++j) {
    TimeSeries ts;
    ts.labels = Labels{
        {"__name__", kMetric}, {"writer", std::to_string(writer)}, {"series", std::to_string(j)}};
    for (int k = 0; k < kSamplesPerSeries; ++k) {
      ts.samples.push_back({TimestampOf(batch, k), ValueOf(writer, batch, j, k)});
    }
    req.series.push_back(std::move(ts));
  }
  return remote::EncodeWriteRequest(req);
}

// What the load generators did, shared with the test thread.
struct Ledger {
  std::mutex mu;
  std::vector<std::pair<int, int64_t>> acked;  // (writer, batch) answered 204
  std::vector<std::string> unexpected;         // any other HTTP answer
  std::atomic<int> acked_this_cycle{0};
  std::atomic<int> failed_in_flight{0};  // network errors (the kill)
};

// Writes batches until the aggregator stops answering (it was killed) or `stop` is set.
void Writer(int writer, const std::string& url, std::atomic<int64_t>* next_batch,
            const std::atomic<bool>* stop, Ledger* ledger) {
  HttpClient client;
  const std::map<std::string, std::string> headers = {
      {"Content-Type", remote::kWriteContentType},
      {"Content-Encoding", remote::kContentEncoding},
      {remote::kWriteVersionHeader, remote::kWriteVersion}};
  while (!stop->load()) {
    int64_t batch = next_batch->fetch_add(1);  // never reused, acknowledged or not
    auto r = client.Post(url, BatchBody(writer, batch), headers);
    if (!r.ok()) {
      ledger->failed_in_flight++;
      return;  // refused or reset: the aggregator is gone
    }
    std::lock_guard lock(ledger->mu);
    if (r->status == 204) {
      ledger->acked.emplace_back(writer, batch);
      ledger->acked_this_cycle++;
    } else {
      ledger->unexpected.push_back("writer " + std::to_string(writer) + " batch " +
                                   std::to_string(batch) + ": " + std::to_string(r->status) + " " +
                                   r->body);
    }
  }
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(DurabilityTest, EveryAcknowledgedSampleSurvivesSigkill) {
  TempDir tmp("suanli-it-durability");
  const std::string store_path = tmp.Sub("store");
  std::atomic<int64_t> next_batch[kWriters];
  for (int w = 0; w < kWriters; ++w) next_batch[w] = 0;
  Ledger ledger;

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    auto agg = StartAggregator(tmp.path(), {"--storage.path=" + store_path},
                               "aggregator-" + std::to_string(cycle) + ".log");
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();

    ledger.acked_this_cycle = 0;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(Writer, w, agg->Url("/api/v1/write"), &next_batch[w], &stop, &ledger);
    }
    // Kill once enough has been acknowledged, with the writers still going.
    bool enough = WaitFor([&] { return ledger.acked_this_cycle >= kAckedBeforeKill; }, seconds(60),
                          milliseconds(5));
    agg->process->Signal(SIGKILL);
    auto killed = agg->process->Wait(seconds(30));
    stop = true;
    for (auto& t : writers) t.join();
    std::cout << "cycle " << cycle << ": " << ledger.acked_this_cycle
              << " batches acknowledged, writers cut off by the kill: "
              << ledger.failed_in_flight.exchange(0) << "\n";
    ASSERT_TRUE(enough) << "only " << ledger.acked_this_cycle << " batches acknowledged\n"
                        << agg->process->LogTail();
    ASSERT_TRUE(killed.has_value());
    EXPECT_EQ(killed->signal, SIGKILL) << killed->ToString();
    {
      std::lock_guard lock(ledger.mu);
      EXPECT_TRUE(ledger.unexpected.empty()) << ledger.unexpected.front();
    }

    // Restart on the same store: it must recover and serve.
    auto again = StartAggregator(tmp.path(), {"--storage.path=" + store_path},
                                 "aggregator-" + std::to_string(cycle) + "-restart.log");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    bool ready = WaitFor(
        [&] {
          auto r = HttpGet(again->Url("/-/ready"));
          return r.ok() && r->status == 200;
        },
        seconds(30));
    ASSERT_TRUE(ready) << again->process->LogTail();
    auto metrics = ScrapeMetrics(again->Url("/metrics"));
    ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
    EXPECT_GE(FindSample(*metrics, "suanli_aggregator_series").value_or(-1),
              kWriters * kSeriesPerBatch);

    again->process->Signal(SIGTERM);
    auto stopped = again->process->Wait(seconds(30));
    ASSERT_TRUE(stopped.has_value()) << "no exit within 30 s of SIGTERM\n"
                                     << again->process->LogTail();
    EXPECT_TRUE(stopped->ok()) << stopped->ToString() << "\n" << again->process->LogTail();

    // Read the store directly, the aggregator being gone.
    storage::RocksDbStoreOptions opts;
    opts.path = store_path;
    auto store = storage::OpenRocksDbStore(opts);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto selected = (*store)->Select({{storage::MatcherSpec::kEqual, "__name__", kMetric}},
                                     INT64_MIN, INT64_MAX);
    ASSERT_TRUE(selected.ok()) << selected.status().ToString();
    // (writer, series) -> timestamp -> value
    std::map<std::pair<std::string, std::string>, std::map<int64_t, double>> stored;
    for (const auto& s : *selected) {
      auto& m = stored[{std::string(s.labels.Get("writer")), std::string(s.labels.Get("series"))}];
      for (const auto& p : s.samples) m[p.timestamp_ms] = p.value;
    }

    std::lock_guard lock(ledger.mu);
    size_t checked = 0, missing = 0, wrong = 0;
    std::string first_problem;
    for (const auto& [writer, batch] : ledger.acked) {
      for (int j = 0; j < kSeriesPerBatch; ++j) {
        const auto& series = stored[{std::to_string(writer), std::to_string(j)}];
        for (int k = 0; k < kSamplesPerSeries; ++k) {
          ++checked;
          const int64_t ts = TimestampOf(batch, k);
          const double want = ValueOf(writer, batch, j, k);
          auto it = series.find(ts);
          if (it == series.end()) {
            ++missing;
          } else if (!SameBits(it->second, want)) {
            ++wrong;
          } else {
            continue;
          }
          if (first_problem.empty()) {
            first_problem =
                "writer " + std::to_string(writer) + " batch " + std::to_string(batch) +
                " series " + std::to_string(j) + " ts " + std::to_string(ts) + ": want " +
                std::to_string(want) +
                (it == series.end() ? ", missing" : ", got " + std::to_string(it->second));
          }
        }
      }
    }
    EXPECT_GE(checked, static_cast<size_t>((cycle + 1) * kAckedBeforeKill * kSeriesPerBatch *
                                           kSamplesPerSeries));
    EXPECT_EQ(missing, 0u) << "of " << checked << " acknowledged samples; first: " << first_problem;
    EXPECT_EQ(wrong, 0u) << "of " << checked << " acknowledged samples; first: " << first_problem;
    // Stored series carry exactly the labels written.
    for (const auto& s : *selected) {
      EXPECT_EQ(s.labels.size(), 3u) << s.labels.ToString();
    }
    if (HasFailure()) return;
  }  // the store closes here, before the next cycle's aggregator opens it
}

}  // namespace
}  // namespace suanli::it
