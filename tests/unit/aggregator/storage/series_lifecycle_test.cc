// Series lifecycle: a series with no sample inside any retention is forgotten (memory, index,
// postings), its id is never handed out again, a log cursor that still reads its samples keeps
// it, and appends racing with the forgetting lose nothing they acknowledged.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/store.h"
#include "aggregator/storage/store_reader.h"

namespace suanli::storage {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

class SeriesLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/series_lifecycle_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Open() {
    store_.reset();
    RocksDbStoreOptions o;
    o.path = dir_ + "/db";
    for (int64_t& r : o.retention_ms) r = 2 * kDay;  // every resolution: two days
    o.checkpoint_interval_ms = 0;                    // maintenance only when a test asks
    o.retention_interval_ms = 0;
    o.now_ms = [this] { return now_.load(); };
    auto s = RocksDbStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  static Labels Churned(int i) {
    return Labels{
        {"__name__", "veth_bytes_total"}, {"dc", "d1"}, {"if", "veth" + std::to_string(i)}};
  }
  static Labels Steady() { return Labels{{"__name__", "steady"}, {"dc", "d1"}}; }
  void Write(const Labels& l, int64_t ts, double v) {
    auto r = store_->Append({TimeSeries{l, {{ts, v}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  size_t Selected(const std::vector<MatcherSpec>& m) {
    auto r = store_->Select(m, 0, now_.load());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->size() : 0;
  }
  // Chunk and rollup keys on disk of series with ids >= first_id, read as the tools do.
  size_t KeysOfSeriesAtLeast(uint64_t first_id) {
    auto reader = StoreReader::Open(dir_ + "/db");
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return 0;
    size_t n = 0;
    for (const FamilyInfo& f : (*reader)->families()) {
      if (f.kind != FamilyKind::kPartition) continue;
      Status st = (*reader)->ForEach(f, [&](std::string_view key, std::string_view) {
        uint64_t id;
        int64_t window;
        if (ParsePartitionKey(key, &id, &window) && id >= first_id) ++n;
        return true;
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    return n;
  }
  // Checkpoint (closes idle open chunks) and the retention pass (drops partitions, forgets).
  void Maintain() {
    ASSERT_TRUE(store_->Checkpoint().ok());
    ASSERT_TRUE(store_->EnforceRetention().ok());
  }

  std::string dir_;
  std::atomic<int64_t> now_{100 * kDay};
  std::unique_ptr<RocksDbStore> store_;
};

const MatcherSpec kChurned{MatcherSpec::kEqual, "__name__", "veth_bytes_total"};
const MatcherSpec kSteady{MatcherSpec::kEqual, "__name__", "steady"};
const MatcherSpec kDc{MatcherSpec::kEqual, "dc", "d1"};

TEST_F(SeriesLifecycleTest, ASeriesWithNoSampleInsideAnyRetentionIsForgottenAndItsIdNeverReused) {
  const int64_t t0 = now_.load();
  Write(Steady(), t0 - kHour, 1);
  for (int i = 0; i < 500; ++i) Write(Churned(i), t0 - kDay, i);
  Maintain();  // inside retention: nothing goes
  EXPECT_EQ(store_->Stats().series, 501u);
  EXPECT_EQ(store_->Stats().series_forgotten, 0u);
  EXPECT_EQ(Selected({kChurned}), 500u);
  auto last_churned = store_->SeriesId(Churned(499));
  ASSERT_TRUE(last_churned.ok());
  EXPECT_EQ(KeysOfSeriesAtLeast(*last_churned - 499), 500u * 4);  // raw, 1m, 5m, 1h

  // A day and two hours later the churned samples (t0 - 1d) are older than every cutoff
  // (now - 2d); the steady one (t0 - 1h) is not.
  now_ = t0 + kDay + 2 * kHour;
  Maintain();
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.series, 1u);
  EXPECT_EQ(stats.series_forgotten, 500u);
  EXPECT_FALSE(store_->SeriesId(Churned(7)).ok());
  EXPECT_EQ(Selected({kChurned}), 0u);
  EXPECT_EQ(Selected({kDc}), 1u);  // the postings of `dc` lost the churned ids, not the steady one
  EXPECT_EQ(Selected({kSteady}), 1u);
  // Their chunks and rollup blocks are deleted too (not left until retention drops the
  // partitions).
  EXPECT_EQ(KeysOfSeriesAtLeast(*last_churned - 499), 0u);

  // Start-up reads only the live series, and never hands out a forgotten id again: the
  // forgotten chunks stay on disk until their partitions are dropped.
  Open();
  EXPECT_EQ(store_->Stats().series, 1u);
  Write(Churned(3), now_.load() - 1000, 42);
  auto again = store_->SeriesId(Churned(3));
  ASSERT_TRUE(again.ok());
  EXPECT_GT(*again, *last_churned);
  auto read = store_->Select({kChurned}, 0, now_.load());
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  ASSERT_EQ((*read)[0].samples.size(), 1u) << "nothing of the forgotten series comes back";
  EXPECT_EQ((*read)[0].samples[0].value, 42);
}

// Series loaded at start-up and idle since: their newest sample is found on disk.
TEST_F(SeriesLifecycleTest, IdleSeriesLoadedAtStartUpAreForgottenToo) {
  const int64_t t0 = now_.load();
  for (int i = 0; i < 20; ++i) Write(Churned(i), t0 - 3 * kHour, i);
  Write(Steady(), t0 - 3 * kHour, 1);
  Maintain();
  Open();                              // max timestamps unknown now
  now_ = t0 + 2 * kDay - 30 * 60'000;  // cutoff t0 - 30m: the 3h-old samples are out
  Write(Steady(), t0 + 2 * kDay - kHour, 2);
  Maintain();
  EXPECT_EQ(store_->Stats().series, 1u);
  EXPECT_EQ(store_->Stats().series_forgotten, 20u);
  auto steady = store_->Select({kSteady}, 0, now_.load());
  ASSERT_TRUE(steady.ok());
  ASSERT_EQ(steady->size(), 1u);
  EXPECT_EQ((*steady)[0].samples.back().value, 2);
}

// A forwarder whose log cursor still has to send a series' samples needs its labels.
TEST_F(SeriesLifecycleTest, ALogCursorThatStillReadsItsSamplesKeepsTheSeries) {
  const int64_t t0 = now_.load();
  ASSERT_TRUE(store_->SetCursor("forward/slow", Cursor{CursorKind::kLog, 1}).ok());
  Write(Churned(1), t0 - kDay, 1);
  Write(Steady(), t0 - kHour, 1);
  now_ = t0 + kDay + 2 * kHour;
  Maintain();
  EXPECT_EQ(store_->Stats().series_forgotten, 0u);
  auto log = store_->ReadLog(1, 100);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->samples.size(), 2u);
  EXPECT_TRUE(store_->SeriesLabels(log->samples[0].series_id).ok());

  // The cursor moves past it: the next pass forgets it.
  ASSERT_TRUE(
      store_
          ->SetCursor("forward/slow", Cursor{CursorKind::kLog, static_cast<int64_t>(log->next_seq)})
          .ok());
  Maintain();
  EXPECT_EQ(store_->Stats().series_forgotten, 1u);
  EXPECT_EQ(store_->Stats().series, 1u);
}

// Writers revive churned series while retention passes forget the expired ones: each series
// is written every third round (a round is a day, retention two), so the pass of a round finds
// a third of them expired just as that round's writers write them again. An append whose
// series was forgotten between its lookup and its apply starts over: every acknowledged sample
// is readable and the index stays consistent.
TEST_F(SeriesLifecycleTest, AppendsRacingWithForgettingLoseNothingAcknowledged) {
  constexpr int kSeries = 60, kRounds = 30;
  const int64_t t0 = now_.load();
  auto written_in = [](int i, int r) { return (i + r) % 3 == 0; };
  std::atomic<int> round{0}, done{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 1; r <= kRounds; ++r) {
        while (round.load() < r) std::this_thread::yield();
        for (int i = w; i < kSeries; i += 2) {
          if (!written_in(i, r)) continue;
          auto st = store_->Append({TimeSeries{Churned(i), {{t0 + r * kDay, double(r)}}}});
          if (!st.ok()) failed = true;
        }
        done.fetch_add(1);
      }
    });
  }
  for (int r = 1; r <= kRounds; ++r) {
    now_ = t0 + r * kDay + 1000;
    round = r;
    ASSERT_TRUE(store_->Checkpoint().ok());
    ASSERT_TRUE(store_->EnforceRetention().ok());  // while the round's appends run
    while (done.load() < 2 * r) std::this_thread::yield();
  }
  for (auto& t : writers) t.join();
  ASSERT_FALSE(failed.load());
  Maintain();
  // Kept: series written in the last two rounds; forgotten: those last written before.
  std::map<std::string, double> want;
  for (int i = 0; i < kSeries; ++i) {
    int last = kRounds;
    while (!written_in(i, last)) --last;
    if (last >= kRounds - 1) want[Churned(i).ToString()] = last;
  }
  auto read = store_->Select({kChurned}, 0, now_.load());
  ASSERT_TRUE(read.ok());
  std::map<std::string, double> got;
  for (const SeriesSamples& s : *read) {
    ASSERT_EQ(s.samples.size(), 1u) << s.labels.ToString();
    got[s.labels.ToString()] = s.samples.back().value;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(store_->Stats().series, want.size());
  EXPECT_GT(store_->Stats().series_forgotten, static_cast<uint64_t>(kSeries));
}

}  // namespace
}  // namespace suanli::storage
