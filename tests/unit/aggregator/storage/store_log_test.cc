// The store as the forwarding queue: the log of acknowledged batches (ReadLog, LogEnd), named
// cursors, and the log kept from the lowest log cursor across checkpoints and reopening.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/store.h"

namespace suanli::storage {
namespace {

class StoreLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/store_log_test.XXXXXX";
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
    o.checkpoint_interval_ms = 0;  // checkpoints only when a test asks
    auto s = RocksDbStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Write(const std::string& name, int64_t ts, double v) {
    auto r = store_->Append({TimeSeries{Labels{{"__name__", name}, {"dc", "d1"}}, {{ts, v}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // Every sample from `from` on as "name@ts=value", and where the read ended.
  std::vector<std::string> ReadAll(uint64_t from, uint64_t* next = nullptr, size_t max = 1000) {
    std::vector<std::string> out;
    auto r = store_->ReadLog(from, max);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    for (const LogSample& s : r->samples) {
      auto labels = store_->SeriesLabels(s.series_id);
      EXPECT_TRUE(labels.ok());
      out.push_back(std::string(labels->MetricName()) + "@" + std::to_string(s.timestamp_ms) + "=" +
                    std::to_string(static_cast<int>(s.value)));
    }
    if (next != nullptr) *next = r->next_seq;
    return out;
  }

  std::string dir_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(StoreLogTest, ReadsAcknowledgedBatchesInCommitOrder) {
  const uint64_t start = store_->LogEnd();
  Write("a", 1000, 1);
  Write("b", 1000, 2);
  Write("a", 2000, 3);
  uint64_t next = 0;
  EXPECT_EQ(ReadAll(start, &next), (std::vector<std::string>{"a@1000=1", "b@1000=2", "a@2000=3"}));
  EXPECT_EQ(next, store_->LogEnd());
  EXPECT_TRUE(ReadAll(next).empty());  // caught up
  Write("b", 2000, 4);
  EXPECT_EQ(ReadAll(next), (std::vector<std::string>{"b@2000=4"}));
}

TEST_F(StoreLogTest, DuplicatesAreNotLoggedTwice) {
  const uint64_t start = store_->LogEnd();
  Write("a", 1000, 1);
  Write("a", 1000, 1);  // a retried batch: duplicate, skipped
  EXPECT_EQ(ReadAll(start), (std::vector<std::string>{"a@1000=1"}));
}

TEST_F(StoreLogTest, ReadStopsAfterWholeBatchesPastTheLimit) {
  const uint64_t start = store_->LogEnd();
  for (int i = 0; i < 5; ++i) Write("a", 1000 * (i + 1), i);
  uint64_t next = 0;
  auto first = ReadAll(start, &next, 2);
  EXPECT_EQ(first, (std::vector<std::string>{"a@1000=0", "a@2000=1"}));
  auto r = store_->ReadLog(next, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->caught_up);
  EXPECT_EQ(r->samples.size(), 2u);
  EXPECT_EQ(ReadAll(r->next_seq), (std::vector<std::string>{"a@5000=4"}));
}

TEST_F(StoreLogTest, CursorsAreDurableAndKeepTheLogAcrossCheckpointsAndReopen) {
  const uint64_t start = store_->LogEnd();
  ASSERT_TRUE(
      store_->SetCursor("forward/raw", {CursorKind::kLog, static_cast<int64_t>(start)}).ok());
  ASSERT_TRUE(store_->SetCursor("forward/cap", {CursorKind::kTime, 123456}).ok());
  Write("a", 1000, 1);
  Write("a", 2000, 2);
  ASSERT_TRUE(store_->Checkpoint().ok());  // would truncate the log without the cursor
  Write("a", 3000, 3);
  Open();
  auto raw = store_->GetCursor("forward/raw");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ(**raw, (Cursor{CursorKind::kLog, static_cast<int64_t>(start)}));
  auto cap = store_->GetCursor("forward/cap");
  ASSERT_TRUE(cap.ok() && cap->has_value());
  EXPECT_EQ(**cap, (Cursor{CursorKind::kTime, 123456}));
  EXPECT_EQ(store_->CursorNames(), (std::vector<std::string>{"forward/cap", "forward/raw"}));
  uint64_t next = 0;
  EXPECT_EQ(ReadAll(start, &next), (std::vector<std::string>{"a@1000=1", "a@2000=2", "a@3000=3"}));
  // Reopening replays only what the checkpoint did not cover: no sample came back twice.
  auto sel = store_->Select({{MatcherSpec::kEqual, "__name__", "a"}}, 0, 10000);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 1u);
  EXPECT_EQ((*sel)[0].samples.size(), 3u);
  // New batches after the reopen come after the cursor's position.
  Write("a", 4000, 4);
  EXPECT_EQ(ReadAll(next), (std::vector<std::string>{"a@4000=4"}));

  // Moving the cursor on releases the log at the next checkpoint; deleting it, all of it.
  ASSERT_TRUE(
      store_->SetCursor("forward/raw", {CursorKind::kLog, static_cast<int64_t>(next)}).ok());
  ASSERT_TRUE(store_->Checkpoint().ok());
  EXPECT_EQ(ReadAll(start), (std::vector<std::string>{"a@4000=4"}));
  ASSERT_TRUE(store_->DeleteCursor("forward/raw").ok());
  ASSERT_TRUE(store_->Checkpoint().ok());
  EXPECT_TRUE(ReadAll(start).empty());
  EXPECT_EQ(store_->CursorNames(), (std::vector<std::string>{"forward/cap"}));
}

TEST_F(StoreLogTest, WithoutCursorsTheCheckpointTruncatesAsBefore) {
  const uint64_t start = store_->LogEnd();
  Write("a", 1000, 1);
  ASSERT_TRUE(store_->Checkpoint().ok());
  EXPECT_TRUE(ReadAll(start).empty());
}

TEST_F(StoreLogTest, SelectRecordsGivesRollupRecordsOfTheOpenHour) {
  const int64_t t0 = 1'700'000'000'000 / 3'600'000 * 3'600'000;  // an hour boundary
  std::vector<Sample> samples;
  for (int i = 0; i < 20; ++i) samples.push_back({t0 + 15'000 * i + 7'000, 10.0 + i});
  ASSERT_TRUE(store_->Append({TimeSeries{Labels{{"__name__", "x_total"}}, samples}}).ok());
  auto r = store_->SelectRecords({{MatcherSpec::kEqual, "__name__", "x_total"}}, t0,
                                 t0 + 300'000 - 1, rollup::Resolution::k1m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const auto& recs = (*r)[0].records;
  ASSERT_EQ(recs.size(), 5u);  // 4 samples a minute, 20 samples
  EXPECT_EQ(recs[0].start, t0);
  EXPECT_EQ(recs[0].count, 4u);
  EXPECT_EQ(recs[0].min, 10);
  EXPECT_EQ(recs[0].max, 13);
  EXPECT_EQ(recs[0].last, 13);
  EXPECT_EQ(recs[0].increase, 3);
  EXPECT_EQ(recs[4].start, t0 + 240'000);
  EXPECT_EQ(recs[4].first, 26);
}

}  // namespace
}  // namespace suanli::storage
