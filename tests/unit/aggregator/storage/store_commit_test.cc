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
    return fail_ ? IoError("injected WAL sync failure") : Status::Ok();
  }
  void Arm(bool fail) {
    std::lock_guard lock(mu_);
    armed_ = true;
    fail_ = fail;
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
  bool armed_ = false, fail_ = false, held_ = false, released_ = false;
};

class StoreCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/store_commit_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    RocksDbStoreOptions o;
    o.path = dir_ + "/db";
    o.checkpoint_interval_ms = 0;
    o.retention_interval_ms = 0;
    o.before_sync = [this] { return gate_.Hook(); };
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
}

}  // namespace
}  // namespace suanli::storage
