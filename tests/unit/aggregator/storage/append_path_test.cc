// The in-order append path (ApplyInOrderLocked) and the deferred closing of windows it leaves
// behind: data of a window whose chunk waits to be written must stay readable, rewritable by
// an out-of-order sample, and survive a reopen, exactly as if it had been written at once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"

namespace suanli::storage {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kT0 = 1'700'002'800'000;  // an hour boundary (UTC)

class AppendPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("append-path-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    RocksDbStoreOptions options;
    options.path = dir_.string();
    options.checkpoint_interval_ms = 0;  // no background checkpoint during the test
    options.retention_interval_ms = 0;
    auto opened = RocksDbStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  std::vector<Sample> Raw(const std::string& name) {
    auto r = store_->Select({{MatcherSpec::kEqual, "__name__", name}}, INT64_MIN, INT64_MAX);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->size() == 1 ? (*r)[0].samples : std::vector<Sample>{};
  }
  void Append(const std::vector<TimeSeries>& batch) {
    auto r = store_->Append(batch);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::filesystem::path dir_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(AppendPathTest, WindowLeftBehindStaysReadableRewritableAndDurable) {
  const Labels a{{"__name__", "a"}, {"dc", "d1"}}, b{{"__name__", "b"}, {"dc", "d1"}};
  // Window 1: two samples each; then window 2 (every head moves on at once).
  Append({{a, {{kT0 + 15'000, 1}}}, {b, {{kT0 + 15'000, 10}}}});
  Append({{a, {{kT0 + 30'000, 2}}}, {b, {{kT0 + 30'000, 20}}}});
  Append({{a, {{kT0 + kHour, 3}}}, {b, {{kT0 + kHour, 30}}}});
  // Reads see the window left behind (written first if it still waits).
  EXPECT_EQ(Raw("a"),
            (std::vector<Sample>{{kT0 + 15'000, 1}, {kT0 + 30'000, 2}, {kT0 + kHour, 3}}));
  auto max_1h = store_->SelectRollup({{MatcherSpec::kEqual, "__name__", "b"}}, kT0, kT0 + 2 * kHour,
                                     rollup::Resolution::k1h, rollup::Aggregate::kMax);
  ASSERT_TRUE(max_1h.ok());
  ASSERT_EQ(max_1h->size(), 1u);
  EXPECT_EQ((*max_1h)[0].samples.front().value, 20);
  // Window 3 right away, then an out-of-order sample into window 2 and a duplicate of window 1.
  Append({{a, {{kT0 + 2 * kHour, 4}}}});
  Append({{a, {{kT0 + kHour + 60'000, 3.5}, {kT0 + 15'000, 1}}}});
  const std::vector<Sample> want = {{kT0 + 15'000, 1},
                                    {kT0 + 30'000, 2},
                                    {kT0 + kHour, 3},
                                    {kT0 + kHour + 60'000, 3.5},
                                    {kT0 + 2 * kHour, 4}};
  EXPECT_EQ(Raw("a"), want);
  // A conflicting value for a sample of a window left behind is still refused.
  auto conflict = store_->Append({{b, {{kT0 + 30'000, 99}}}});
  EXPECT_EQ(conflict.status().code(), StatusCode::kInvalidArgument);
  Open();  // reopen: checkpoint at close, replay at open
  EXPECT_EQ(Raw("a"), want);
  EXPECT_EQ(Raw("b"),
            (std::vector<Sample>{{kT0 + 15'000, 10}, {kT0 + 30'000, 20}, {kT0 + kHour, 30}}));
}

TEST_F(AppendPathTest, ManySeriesCrossingTheHourAreAllKept) {
  std::vector<TimeSeries> first, second;
  for (int i = 0; i < 5000; ++i) {
    Labels l{{"__name__", "m"}, {"i", std::to_string(i)}};
    first.push_back({l, {{kT0 + kHour - 15'000, double(i)}}});
    second.push_back({l, {{kT0 + kHour, double(i + 1)}}});
  }
  Append(first);
  Append(second);
  store_->Checkpoint().IgnoreError();  // writes any window still waiting first
  Open();
  auto r = store_->Select({{MatcherSpec::kEqual, "__name__", "m"}}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 5000u);
  for (const SeriesSamples& s : *r) {
    ASSERT_EQ(s.samples.size(), 2u) << s.labels.ToString();
    EXPECT_EQ(s.samples[1].value, s.samples[0].value + 1);
  }
}

}  // namespace
}  // namespace suanli::storage
