// Snapshots under load: writers push remote_write batches to an aggregator started with
// --web.enable-admin-api while `suanlictl snapshot` takes a snapshot, and keep writing after it.
// A second aggregator started on the snapshot folder must serve every sample acknowledged before
// the snapshot request was sent (remote_read, exact values), and once both are stopped the two
// stores' 1m, 5m and 1h rollups must agree over every hour that only such samples fill.
// `suanlictl store analyze` runs beside the first aggregator while it writes, and `store verify`
// on the snapshot.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
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

constexpr int kWriters = 3;
constexpr int kSeriesPerBatch = 20;
constexpr int kSamplesPerSeries = 10;
constexpr int64_t kStepMs = 1000;  // a batch covers 10 s of each of its series
// Batches each writer has acknowledged before the snapshot, and after it: ~1.4 h and then
// ~0.8 h more of data, so hours close (chunks and rollups) on both sides of the snapshot.
constexpr int64_t kBatchesBefore = 500;
constexpr int64_t kBatchesAfter = 300;
constexpr const char* kMetric = "snapshot_test_value";
constexpr int64_t kHourMs = 3'600'000;
// Three hours back, on the hour: the newest sample stays hours behind now + future grace.
const int64_t kBaseMs = UnixNowMs() / kHourMs * kHourMs - 3 * kHourMs;

int64_t TimestampOf(int64_t batch, int k) {
  return kBaseMs + (batch * kSamplesPerSeries + k) * kStepMs;
}
double ValueOf(int writer, int64_t batch, int series, int k) {
  return double(((batch * kWriters + writer) * kSeriesPerBatch + series) * kSamplesPerSeries + k) +
         0.125;
}

std::string BatchBody(int writer, int64_t batch) {
  remote::WriteRequest req;
  for (int j = 0; j < kSeriesPerBatch; ++j) {
    TimeSeries ts;
    ts.labels = Labels{{"__name__", kMetric},
                       {"dc", "lanzhou-1"},
                       {"writer", std::to_string(writer)},
                       {"series", std::to_string(j)}};
    for (int k = 0; k < kSamplesPerSeries; ++k) {
      ts.samples.push_back({TimestampOf(batch, k), ValueOf(writer, batch, j, k)});
    }
    req.series.push_back(std::move(ts));
  }
  return remote::EncodeWriteRequest(req);
}

// Per writer: how many batches (0..n-1, sent one after another) were acknowledged.
struct Ledger {
  std::atomic<int64_t> acked[kWriters] = {};
  std::mutex mu;
  std::vector<std::string> unexpected;
};

void Writer(int writer, const std::string& url, int64_t until, Ledger* ledger) {
  HttpClient client;
  const std::map<std::string, std::string> headers = {
      {"Content-Type", remote::kWriteContentType},
      {"Content-Encoding", remote::kContentEncoding},
      {remote::kWriteVersionHeader, remote::kWriteVersion}};
  for (int64_t batch = 0; batch < until; ++batch) {
    auto r = client.Post(url, BatchBody(writer, batch), headers);
    if (!r.ok() || r->status != 204) {
      std::lock_guard lock(ledger->mu);
      ledger->unexpected.push_back(r.ok() ? std::to_string(r->status) + " " + r->body
                                          : r.status().ToString());
      return;
    }
    ledger->acked[writer] = batch + 1;
  }
}

// Every series of kMetric by remote_read: (writer, series) -> timestamp -> value.
using Stored = std::map<std::pair<std::string, std::string>, std::map<int64_t, double>>;
Result<Stored> ReadAll(const std::string& url) {
  remote::ReadRequest req;
  remote::ReadQuery q;
  q.start_ms = kBaseMs;
  q.end_ms = kBaseMs + 24 * kHourMs;
  q.matchers = {{remote::LabelMatcher::Type::kEqual, "__name__", kMetric}};
  req.queries.push_back(q);
  HttpClient client;
  ASSIGN_OR_RETURN(auto r, client.Post(url, remote::EncodeReadRequest(req),
                                       {{"Content-Type", "application/x-protobuf"},
                                        {"Content-Encoding", "snappy"},
                                        {remote::kReadVersionHeader, remote::kReadVersion}}));
  if (r.status != 200) return Internal("remote_read: " + std::to_string(r.status) + " " + r.body);
  ASSIGN_OR_RETURN(auto results, remote::DecodeReadResponse(r.body, size_t{256} << 20));
  Stored out;
  for (const TimeSeries& ts : results.at(0)) {
    auto& m = out[{std::string(ts.labels.Get("writer")), std::string(ts.labels.Get("series"))}];
    for (const Sample& s : ts.samples) m[s.timestamp_ms] = s.value;
  }
  return out;
}

std::string Suanlictl() { return BinDir() + "/suanlictl"; }

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(SnapshotTest, SnapshotUnderLoadRestoresEveryAcknowledgedSample) {
  TempDir tmp("suanli-it-snapshot");
  const std::string store_path = tmp.Sub("store");
  auto agg =
      StartAggregator(tmp.path(), {"--storage.path=" + store_path, "--web.enable-admin-api"});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();

  Ledger ledger;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back(Writer, w, agg->Url("/api/v1/write"), kBatchesBefore + kBatchesAfter,
                         &ledger);
  }
  auto acked_min = [&] {
    int64_t m = INT64_MAX;
    for (const auto& a : ledger.acked) m = std::min<int64_t>(m, a.load());
    return m;
  };
  ASSERT_TRUE(WaitFor([&] { return acked_min() >= kBatchesBefore; }, seconds(120), milliseconds(5)))
      << agg->process->LogTail();

  // What was acknowledged before the request is sent; writers keep going meanwhile.
  int64_t acked_before[kWriters];
  for (int w = 0; w < kWriters; ++w) acked_before[w] = ledger.acked[w].load();
  auto snap = RunCommand(Suanlictl(), {"snapshot", "--aggregator.url=http://" + agg->address},
                         tmp.path(), seconds(120));
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  ASSERT_TRUE(snap->status.ok()) << snap->status.ToString() << "\n" << snap->err;
  std::string name = snap->out;
  while (!name.empty() && name.back() == '\n') name.pop_back();
  ASSERT_FALSE(name.empty());
  EXPECT_TRUE(std::regex_match(name, std::regex(R"(\d{8}T\d{6}Z-[0-9a-f]{16})"))) << name;
  const std::string snapshot_path = store_path + "/snapshots/" + name;
  ASSERT_TRUE(std::filesystem::is_directory(snapshot_path)) << snapshot_path;
  // Writing went on during the snapshot, and goes on after it.
  int64_t acked_after_request = 0;
  for (int w = 0; w < kWriters; ++w) acked_after_request += ledger.acked[w] - acked_before[w];
  std::cout << "batches acknowledged while the snapshot was taken: " << acked_after_request << "\n";

  // analyze reads the live store beside the running aggregator.
  auto analyze = RunCommand(Suanlictl(), {"store", "analyze", "--storage.path=" + store_path},
                            tmp.path(), seconds(120));
  ASSERT_TRUE(analyze.ok());
  EXPECT_TRUE(analyze->status.ok()) << analyze->status.ToString() << analyze->err;
  EXPECT_NE(analyze->out.find("Series: " + std::to_string(kWriters * kSeriesPerBatch) + "\n"),
            std::string::npos)
      << analyze->out;

  for (auto& t : writers) t.join();
  {
    std::lock_guard lock(ledger.mu);
    ASSERT_TRUE(ledger.unexpected.empty()) << ledger.unexpected.front();
  }
  agg->process->Signal(SIGTERM);
  auto stopped = agg->process->Wait(seconds(60));
  ASSERT_TRUE(stopped.has_value() && stopped->ok()) << agg->process->LogTail();

  // The snapshot is whole: every checksum and value, before anything opens it for writing.
  auto verify = RunCommand(Suanlictl(), {"store", "verify", "--storage.path=" + snapshot_path},
                           tmp.path(), seconds(120));
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->status.ok()) << verify->out << verify->err;

  // Restore: an aggregator on the snapshot folder.
  auto restored =
      StartAggregator(tmp.path(), {"--storage.path=" + snapshot_path}, "aggregator-restored.log");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto stored = ReadAll(restored->Url("/api/v1/read"));
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  size_t checked = 0, missing = 0, wrong = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (int64_t b = 0; b < acked_before[w]; ++b) {
      for (int j = 0; j < kSeriesPerBatch; ++j) {
        const auto& series = (*stored)[{std::to_string(w), std::to_string(j)}];
        for (int k = 0; k < kSamplesPerSeries; ++k) {
          ++checked;
          auto it = series.find(TimestampOf(b, k));
          if (it == series.end()) {
            ++missing;
          } else if (!SameBits(it->second, ValueOf(w, b, j, k))) {
            ++wrong;
          }
        }
      }
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << checked;
  EXPECT_EQ(wrong, 0u) << "of " << checked;
  EXPECT_GE(checked, size_t{kWriters} * kBatchesBefore * kSeriesPerBatch * kSamplesPerSeries);
  restored->process->Signal(SIGTERM);
  auto restored_stopped = restored->process->Wait(seconds(60));
  ASSERT_TRUE(restored_stopped.has_value() && restored_stopped->ok())
      << restored->process->LogTail();

  // Rollups agree over the whole hours that only samples acknowledged before the snapshot
  // fill: up to the hour of the oldest batch any writer had not yet had acknowledged.
  int64_t first_unacked_ms = INT64_MAX;
  for (int w = 0; w < kWriters; ++w) {
    first_unacked_ms = std::min(first_unacked_ms, TimestampOf(acked_before[w], 0));
  }
  const int64_t covered_end = first_unacked_ms / kHourMs * kHourMs;
  ASSERT_GT(covered_end, kBaseMs) << "no whole hour before the snapshot";
  auto open = [](const std::string& path) {
    storage::RocksDbStoreOptions o;
    o.path = path;
    return storage::OpenRocksDbStore(o);
  };
  auto original = open(store_path);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  auto copy = open(snapshot_path);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  const std::vector<storage::MatcherSpec> matchers = {
      {storage::MatcherSpec::kEqual, "__name__", kMetric}};
  for (auto res : {rollup::Resolution::k1m, rollup::Resolution::k5m, rollup::Resolution::k1h}) {
    SCOPED_TRACE(rollup::ResolutionName(res));
    auto a = (*original)->SelectRecords(matchers, kBaseMs, covered_end - 1, res);
    auto b = (*copy)->SelectRecords(matchers, kBaseMs, covered_end - 1, res);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), size_t{kWriters * kSeriesPerBatch});
    ASSERT_EQ(a->size(), b->size());
    size_t records = 0;
    for (size_t i = 0; i < a->size(); ++i) {
      ASSERT_EQ((*a)[i].labels, (*b)[i].labels);
      std::vector<rollup::Record> ra, rb;
      for (const auto& r : (*a)[i].records) {
        if (r.start < covered_end) ra.push_back(r);
      }
      for (const auto& r : (*b)[i].records) {
        if (r.start < covered_end) rb.push_back(r);
      }
      EXPECT_EQ(ra, rb) << (*a)[i].labels.ToString();
      records += ra.size();
    }
    EXPECT_GT(records, 0u);
  }
}

}  // namespace
}  // namespace suanli::it
