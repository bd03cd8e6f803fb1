// What the store acknowledges: an Append returns only once everything it relies on is durable.
// A request whose samples all duplicate a batch still being committed waits for that commit
// and shares its outcome; the commit is held and failed through RocksDbStoreOptions'
// before_sync seam.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/store.h"

namespace suanli::storage {
namespace {

// Holds the commit leader before its WAL sync while armed, until released; then lets the
// sync go on or fails it.
class SyncGate {
 public:
  Status Hook() {
    std::unique_lock lock(mu_);
    if (!armed_) return Status::Ok();
    held_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    armed_ = false;
    if (no_space_) return ResourceExhausted("injected ENOSPC");
    return fail_ ? IoError("injected WAL sync failure") : Status::Ok();
  }
  void Arm(bool fail) {
    std::lock_guard lock(mu_);
    armed_ = true;
    fail_ = fail;
  }
  // The next sync fails as on a full disk, at once.
  void ArmNoSpace() {
    std::lock_guard lock(mu_);
    armed_ = true;
    no_space_ = true;
    released_ = true;
  }
  void WaitHeld() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool released() {
    std::lock_guard lock(mu_);
    return released_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, fail_ = false, no_space_ = false, held_ = false, released_ = false;
};

class StoreCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/store_commit_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    Open();
  }
  void Open() {
    store_.reset();
    RocksDbStoreOptions o;
    o.path = dir_ + "/db";
    o.checkpoint_interval_ms = 0;
    o.retention_interval_ms = 0;
    o.before_sync = [this] { return gate_.Hook(); };
    o.on_write_failed = [this](const Status& st) {
      ++write_failed_calls_;
      write_failed_message_ = st.message();
    };
    auto s = RocksDbStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::vector<TimeSeries> Batch() {
    return {TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d1"}}, {{60'000, 523.0}}}};
  }

  // The first Append's commit is held; a second Append of the same samples runs meanwhile.
  // Returns both results and whether the gate was released when the second one returned.
  struct Outcome {
    Result<AppendStats> first = AppendStats{};
    Result<AppendStats> second = AppendStats{};
    bool second_returned_after_release = false;
  };
  Outcome RunDuplicateDuringCommit(bool fail) {
    // A known series, so that the first batch's only news is its sample (no index write
    // that the duplicate would have to repeat).
    EXPECT_TRUE(
        store_->Append({TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d1"}}, {{0, 1.0}}}})
            .ok());
    Outcome out;
    gate_.Arm(fail);
    std::thread first([&] { out.first = store_->Append(Batch()); });
    gate_.WaitHeld();
    auto second = std::async(std::launch::async, [&] {
      Result<AppendStats> r = store_->Append(Batch());
      out.second_returned_after_release = gate_.released();
      return r;
    });
    // Long enough for the second Append to reach its wait; it must still be waiting.
    EXPECT_EQ(second.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
        << "a duplicate of a batch not yet durable was acknowledged";
    gate_.Release();
    first.join();
    out.second = second.get();
    return out;
  }

  std::string dir_;
  SyncGate gate_;
  std::atomic<int> write_failed_calls_{0};
  std::string write_failed_message_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(StoreCommitTest, DuplicateOfABatchBeingCommittedWaitsUntilItIsDurable) {
  Outcome out = RunDuplicateDuringCommit(/*fail=*/false);
  ASSERT_TRUE(out.first.ok()) << out.first.status().ToString();
  EXPECT_EQ(out.first->samples_stored, 1u);
  ASSERT_TRUE(out.second.ok()) << out.second.status().ToString();
  EXPECT_EQ(out.second->samples_stored, 0u);
  EXPECT_EQ(out.second->duplicates, 1u);
  EXPECT_TRUE(out.second_returned_after_release);
  // A duplicate of what is already durable returns at once, with nothing to wait for.
  auto again = store_->Append(Batch());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->duplicates, 1u);
}

TEST_F(StoreCommitTest, DuplicateOfAFailedCommitGetsItsError) {
  Outcome out = RunDuplicateDuringCommit(/*fail=*/true);
  ASSERT_FALSE(out.first.ok());
  EXPECT_EQ(out.first.status().code(), StatusCode::kIoError);
  ASSERT_FALSE(out.second.ok()) << "a duplicate of a batch whose commit failed was acknowledged";
  EXPECT_EQ(out.second.status().code(), StatusCode::kIoError);
  EXPECT_NE(out.second.status().message().find("injected WAL sync failure"), std::string::npos)
      << out.second.status().message();
  EXPECT_TRUE(out.second_returned_after_release);
  EXPECT_FALSE(store_->Healthy());
  // The daemon is told once (it exits so that it is restarted), not once per refused write.
  EXPECT_EQ(store_->Append(Batch()).status().code(), StatusCode::kIoError);
  EXPECT_EQ(write_failed_calls_.load(), 1);
  EXPECT_NE(write_failed_message_.find("injected WAL sync failure"), std::string::npos);
}

// A full disk is not fatal: the batch is refused as retryable (kUnavailable), so is everything
// else until RocksDB resumes (the background thread tries every second), then the retry is
// stored and durable; nothing is lost and the daemon is not told to exit.
TEST_F(StoreCommitTest, FullDiskRefusesUntilItResumesThenTheRetryIsDurable) {
  ASSERT_TRUE(
      store_->Append({TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d1"}}, {{0, 1.0}}}})
          .ok());
  gate_.ArmNoSpace();
  auto refused = store_->Append(Batch());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("out of disk space"), std::string::npos);
  EXPECT_TRUE(store_->Healthy());
  EXPECT_EQ(write_failed_calls_.load(), 0);
  // The retry of the refused batch succeeds once the store has resumed: as a duplicate of the
  // kept batch, written again in the meantime.
  Result<AppendStats> retry = AppendStats{};
  for (int i = 0; i < 100; ++i) {
    retry = store_->Append(Batch());
    if (retry.ok()) break;
    EXPECT_EQ(retry.status().code(), StatusCode::kUnavailable) << retry.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(retry.ok()) << "never resumed: " << retry.status().ToString();
  EXPECT_EQ(retry->duplicates, 1u);
  auto more = store_->Append(
      {TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d1"}}, {{120'000, 3.0}}}});
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  Open();  // everything acknowledged is on disk
  auto read = store_->Select({{MatcherSpec::kEqual, "__name__", "power_watts"}}, 0, 1'000'000);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].samples, (std::vector<Sample>{{0, 1.0}, {60'000, 523.0}, {120'000, 3.0}}));
  EXPECT_EQ(write_failed_calls_.load(), 0);
}

// A query never holds ingest up. A batch that closed an hour (its series' previous window waits
// to be written) is held before its WAL sync, a query over both hours waits for it, and
// meanwhile a new series is still applied to the heads: the query waits outside the lock that
// appends take. Once the sync goes on, the query answers both hours.
TEST_F(StoreCommitTest, AQueryWaitingForACommitLeavesAppendsRunning) {
  const Labels s1{{"__name__", "power_watts"}, {"dc", "d1"}};
  ASSERT_TRUE(store_->Append({TimeSeries{s1, {{60'000, 1.0}}}}).ok());
  ASSERT_EQ(store_->Stats().head_series, 1u);
  gate_.Arm(/*fail=*/false);
  std::thread closes_the_hour([&] {
    EXPECT_TRUE(store_->Append({TimeSeries{s1, {{3'660'000, 2.0}}}}).ok());
  });
  gate_.WaitHeld();
  auto query = std::async(std::launch::async, [&] {
    return store_->Select({{MatcherSpec::kEqual, "__name__", "power_watts"}}, 0, 7'200'000);
  });
  // Long enough for the query to reach its wait (were it to hold the head lock there, the
  // append below could not be applied until the gate opens).
  EXPECT_EQ(query.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  std::thread new_series([&] {
    EXPECT_TRUE(
        store_->Append({TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d2"}}, {{0, 5.0}}}})
            .ok());
  });
  bool applied = false;
  for (int i = 0; i < 1000 && !applied; ++i) {
    applied = store_->Stats().head_series == 2;
    if (!applied) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(applied) << "an append waited for a query";
  gate_.Release();
  closes_the_hour.join();
  new_series.join();
  auto read = query.get();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_GE(read->size(), 1u);
  const SeriesSamples& got = read->front();
  EXPECT_EQ(got.labels, s1);
  ASSERT_EQ(got.samples.size(), 2u);
  EXPECT_EQ(got.samples[0].timestamp_ms, 60'000);
  EXPECT_EQ(got.samples[0].value, 1.0);
  EXPECT_EQ(got.samples[1].timestamp_ms, 3'660'000);
  EXPECT_EQ(got.samples[1].value, 2.0);
}

// A sample for a closed window (an agent's spool after an outage) reads that window's chunk.
// It waits for the batches queued before it (their WAL sync) and reads outside the head lock,
// so that other appends are applied meanwhile.
TEST_F(StoreCommitTest, AnAppendReadingAClosedWindowLeavesAppendsRunning) {
  const Labels late{{"__name__", "power_watts"}, {"dc", "d1"}};
  ASSERT_TRUE(store_->Append({TimeSeries{late, {{60'000, 1.0}}}}).ok());
  ASSERT_TRUE(store_->Checkpoint().ok());  // closes its window (idle by the wall clock)
  ASSERT_EQ(store_->Stats().head_series, 0u);
  gate_.Arm(/*fail=*/false);
  std::thread held([&] {
    EXPECT_TRUE(
        store_->Append({TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d2"}}, {{0, 2.0}}}})
            .ok());
  });
  gate_.WaitHeld();
  auto into_closed = std::async(std::launch::async, [&] {
    return store_->Append({TimeSeries{late, {{120'000, 3.0}}}});
  });
  // It cannot finish while the commit before it is held.
  EXPECT_EQ(into_closed.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  std::thread new_series([&] {
    EXPECT_TRUE(
        store_->Append({TimeSeries{Labels{{"__name__", "power_watts"}, {"dc", "d3"}}, {{0, 4.0}}}})
            .ok());
  });
  bool applied = false;
  for (int i = 0; i < 1000 && !applied; ++i) {
    applied = store_->Stats().head_series == 2;  // d2 and d3
    if (!applied) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(applied) << "an append waited for another one's read of a closed window";
  gate_.Release();
  held.join();
  new_series.join();
  auto st = into_closed.get();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto read = store_->Select({{MatcherSpec::kEqual, "dc", "d1"}}, 0, 7'200'000);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 1u);
  const std::vector<Sample>& got = read->front().samples;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].timestamp_ms, 60'000);
  EXPECT_EQ(got[0].value, 1.0);
  EXPECT_EQ(got[1].timestamp_ms, 120'000);
  EXPECT_EQ(got[1].value, 3.0);
}

}  // namespace
}  // namespace suanli::storage
