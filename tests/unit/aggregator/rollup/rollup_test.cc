// Tests of the rollup accumulators and the counter rebuild (aggregator/rollup/rollup.h).
#include "aggregator/rollup/rollup.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace suanli::rollup {
namespace {

TEST(RollupTest, AccumulatorKeepsEveryField) {
  std::vector<Sample> s = {{1000, 5}, {16000, 7}, {31000, 2}, {46000, 4}};
  auto r = Compute(s, 60'000);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].start, 0);
  EXPECT_EQ(r[0].count, 4u);
  EXPECT_EQ(r[0].sum, 18);
  EXPECT_EQ(r[0].min, 2);
  EXPECT_EQ(r[0].max, 7);
  EXPECT_EQ(r[0].first, 5);
  EXPECT_EQ(r[0].last, 4);
  EXPECT_EQ(r[0].first_ts, 1000);
  EXPECT_EQ(r[0].last_ts, 46000);
  EXPECT_EQ(r[0].increase, 2 + 2 + 2);  // 5->7, reset to 2, 2->4
}

TEST(RollupTest, NaNAndStaleAreLeftOutAndNoZeroFill) {
  std::vector<Sample> s = {{1000, 1},
                           {61000, std::numeric_limits<double>::quiet_NaN()},
                           {121000, StaleNaN()},
                           {181000, 3}};
  auto r = Compute(s, 60'000);
  ASSERT_EQ(r.size(), 2u);  // minutes 1 and 2 hold no number: no record
  EXPECT_EQ(r[0].start, 0);
  EXPECT_EQ(r[1].start, 180'000);
}

TEST(RollupTest, CounterIsRebuiltAcrossBoundaryResets) {
  // Interval 1: 10 -> 20; interval 2 starts at 3 (a reset at the boundary) -> 8.
  std::vector<Sample> s = {{0, 10}, {30000, 20}, {60000, 3}, {90000, 8}};
  std::vector<Sample> out;
  Emit(Compute(s, 60'000), Aggregate::kCounter, INT64_MIN, INT64_MAX, &out);
  EXPECT_EQ(out, (std::vector<Sample>{{0, 10}, {30000, 20}, {60000, 23}, {90000, 28}}));
  out.clear();
  Emit(Compute(s, 60'000), Aggregate::kAvg, INT64_MIN, INT64_MAX, &out);
  EXPECT_EQ(out, (std::vector<Sample>{{30000, 15}, {90000, 5.5}}));
}

TEST(RollupTest, IntervalStartClampsAtTheBottomOfInt64) {
  EXPECT_EQ(IntervalStart(-1, 60'000), -60'000);
  EXPECT_EQ(IntervalStart(59'999, 60'000), 0);
  EXPECT_EQ(IntervalStart(std::numeric_limits<int64_t>::min(), 3'600'000),
            std::numeric_limits<int64_t>::min());
}

}  // namespace
}  // namespace suanli::rollup
