// Snapshots of a store that keeps taking appends: every batch acknowledged before CreateSnapshot
// was called is in the snapshot, which opens as a store of its own.
#include "aggregator/storage/snapshot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <regex>
#include <thread>

#include "aggregator/storage/rocksdb_store.h"

namespace suanli::storage {
namespace {

constexpr int64_t kBaseMs = int64_t{499'000} * 3'600'000;  // an hour boundary

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/snapshot-test-" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  RocksDbStoreOptions Options(const std::string& path) {
    RocksDbStoreOptions o;
    o.path = path;
    o.now_ms = [] { return kBaseMs + 10 * int64_t{3'600'000}; };
    return o;
  }
  std::string dir_;
};

TEST(SnapshotNameTest, PrometheusForm) {
  const std::string a = NewSnapshotName(kBaseMs), b = NewSnapshotName(kBaseMs);
  EXPECT_TRUE(std::regex_match(a, std::regex(R"(20261204T160000Z-[0-9a-f]{16})"))) << a;
  EXPECT_NE(a, b);
}

TEST_F(SnapshotTest, HoldsEveryBatchAcknowledgedBeforeIt) {
  auto store = RocksDbStore::Open(Options(dir_ + "/store"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // One writer, a batch of 10 series x 30 samples at a time, over several hours so that
  // chunks close and rollups are written while the snapshot is taken.
  std::atomic<int64_t> acked{0};
  std::atomic<bool> stop{false}, done{false};
  std::thread writer([&] {
    for (int64_t b = 0; !stop && b < 4000; ++b) {
      std::vector<TimeSeries> batch;
      for (int s = 0; s < 10; ++s) {
        TimeSeries ts;
        ts.labels = Labels{{"__name__", "snap"}, {"s", std::to_string(s)}};
        for (int k = 0; k < 30; ++k) {
          ts.samples.push_back({kBaseMs + (b * 30 + k) * 1000, double(b * 300 + s * 30 + k)});
        }
        batch.push_back(std::move(ts));
      }
      auto r = (*store)->Append(batch);
      if (!r.ok()) {
        ADD_FAILURE() << r.status().ToString();
        break;
      }
      acked = b + 1;
    }
    done = true;
  });
  while (acked < 500 && !done) std::this_thread::yield();
  if (acked < 500) {
    writer.join();
    FAIL() << "the writer stopped early";
  }
  const int64_t before = acked;
  Status st = CreateSnapshot(**store, dir_ + "/store/snapshots", "one");
  stop = true;
  writer.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Names are never reused; bad names are refused.
  EXPECT_EQ(CreateSnapshot(**store, dir_ + "/store/snapshots", "one").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateSnapshot(**store, dir_ + "/store/snapshots", "../x").code(),
            StatusCode::kInvalidArgument);
  store->reset();

  auto snap = RocksDbStore::Open(Options(dir_ + "/store/snapshots/one"));
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  auto got = (*snap)->Select({{MatcherSpec::kEqual, "__name__", "snap"}}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 10u);
  for (const SeriesSamples& s : *got) {
    const int series = std::stoi(std::string(s.labels.Get("s")));
    ASSERT_GE(s.samples.size(), size_t(before * 30)) << s.labels.ToString();
    for (size_t i = 0; i < s.samples.size(); ++i) {
      const int64_t b = int64_t(i) / 30, k = int64_t(i) % 30;
      ASSERT_EQ(s.samples[i].timestamp_ms, kBaseMs + (b * 30 + k) * 1000);
      ASSERT_EQ(s.samples[i].value, double(b * 300 + series * 30 + k));
    }
  }
}

}  // namespace
}  // namespace suanli::storage
