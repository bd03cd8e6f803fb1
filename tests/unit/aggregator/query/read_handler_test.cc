// Tests of POST /api/v1/read: resolution and aggregate from the hints, responses decoded with
// the codec, and errors as 400 with a reason.
#include "aggregator/query/read_handler.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace suanli::aggregator {
namespace {

using rollup::Aggregate;
using rollup::Resolution;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kDay = 86'400'000;
const std::array<int64_t, 4> kForever = {kMin, kMin, kMin, kMin};

remote::ReadQuery Query(std::string func, int64_t step_ms, int64_t range_ms, int64_t start = 0) {
  remote::ReadQuery q;
  q.start_ms = start;
  q.end_ms = start + kDay;
  q.has_hints = true;
  q.hints.func = std::move(func);
  q.hints.step_ms = step_ms;
  q.hints.range_ms = range_ms;
  q.hints.start_ms = q.start_ms;  // as Prometheus sets them: the selection's range
  q.hints.end_ms = q.end_ms;
  return q;
}

TEST(ChooseResolutionTest, NoCoarserThanStepOver5AndRangeOver2) {
  EXPECT_EQ(ChooseResolution(Query("max_over_time", 3'600'000, 3'600'000), kForever),
            (ReadChoice{Resolution::k5m, Aggregate::kMax}));  // min(12m, 30m) -> 5m
  EXPECT_EQ(ChooseResolution(Query("min_over_time", 86'400'000, 86'400'000), kForever),
            (ReadChoice{Resolution::k1h, Aggregate::kMin}));
  EXPECT_EQ(ChooseResolution(Query("avg_over_time", 600'000, 600'000), kForever),
            (ReadChoice{Resolution::k1m, Aggregate::kAvg}));
  EXPECT_EQ(ChooseResolution(Query("rate", 3'600'000, 7'200'000), kForever),
            (ReadChoice{Resolution::k5m, Aggregate::kCounter}));
  // Fine steps or short ranges stay raw.
  EXPECT_EQ(ChooseResolution(Query("rate", 15'000, 300'000), kForever), ReadChoice{});
  EXPECT_EQ(ChooseResolution(Query("max_over_time", 0, 60'000), kForever), ReadChoice{});
  // Other functions read raw samples.
  EXPECT_EQ(ChooseResolution(Query("", 3'600'000, 0), kForever), ReadChoice{});
  EXPECT_EQ(ChooseResolution(Query("quantile_over_time", 3'600'000, 3'600'000), kForever),
            ReadChoice{});
}

// count_over_time counts samples and irate takes the last two: a rollup's one sample per
// interval would answer 12 where Prometheus answers 240 (an hour at 15 s, 5m rollups).
TEST(ChooseResolutionTest, FunctionsOfEachSampleReadRawOrAreRefused) {
  EXPECT_EQ(ChooseResolution(Query("count_over_time", 3'600'000, 3'600'000), kForever),
            ReadChoice{});
  EXPECT_EQ(ChooseResolution(Query("irate", 3'600'000, 7'200'000), kForever), ReadChoice{});
  std::array<int64_t, 4> cutoffs = {100 * kDay, 10 * kDay, 0, kMin};
  ReadChoice past =
      ChooseResolution(Query("count_over_time", 3'600'000, 3'600'000, 50 * kDay), cutoffs);
  EXPECT_NE(past.refusal.find("count_over_time needs raw samples"), std::string::npos)
      << past.refusal;
}

TEST(ChooseResolutionTest, RetentionMovesToARollupThatStillHoldsTheStart) {
  std::array<int64_t, 4> cutoffs = {100 * kDay, 10 * kDay, 0, kMin};
  // Raw expired at the start: the finest rollup reaching back, averaged.
  EXPECT_EQ(ChooseResolution(Query("", 60'000, 0, 50 * kDay), cutoffs),
            (ReadChoice{Resolution::k1m, Aggregate::kAvg}));
  // 1m allowed by the hints but expired: 5m holds it.
  EXPECT_EQ(ChooseResolution(Query("max_over_time", 600'000, 600'000, 5 * kDay), cutoffs),
            (ReadChoice{Resolution::k5m, Aggregate::kMax}));
}

TEST(ReadHandlerTest, AnswersSamplesAndRejectsGarbage) {
  std::string dir = ::testing::TempDir() + "/read_handler_test";
  std::filesystem::remove_all(dir);
  storage::RocksDbStoreOptions opts;
  opts.path = dir;
  auto store = storage::OpenRocksDbStore(opts);
  ASSERT_TRUE(store.ok());
  Labels l{{"__name__", "g"}, {"dc", "x"}};
  std::vector<Sample> samples;
  for (int i = 0; i < 600; ++i) samples.push_back({i * 15'000 + 1000, double(i % 50)});
  ASSERT_TRUE((*store)->Append({TimeSeries{l, samples}}).ok());
  prometheus::Registry registry;
  ReadHandler handler(**store, registry);

  remote::ReadRequest req;
  // max_over_time(g[1h]) every 5 minutes: windows on the 5m grid, so 5m rollups answer exactly.
  remote::ReadQuery q = Query("max_over_time", 300'000, 3'600'000, 0);
  q.end_ms = q.hints.end_ms = 600 * 15'000;
  q.matchers.push_back({remote::LabelMatcher::Type::kEqual, "__name__", "g"});
  req.queries.push_back(q);
  HttpRequest http;
  http.body = remote::EncodeReadRequest(req);
  HttpResponse resp = handler.Handle(http);
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto decoded = remote::DecodeReadResponse(resp.body, 64 << 20);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 1u);
  ASSERT_EQ((*decoded)[0].size(), 1u);
  ASSERT_EQ((*decoded)[0][0].samples.size(), 30u);  // 150 minutes at 5m
  // Each 5m interval holds samples 20k..20k+19: its max is that of i % 50 over them.
  for (size_t k = 0; k < 30; ++k) {
    double want = 0;
    for (int i = int(k) * 20; i < int(k) * 20 + 20; ++i) want = std::max(want, double(i % 50));
    EXPECT_EQ((*decoded)[0][0].samples[k].value, want) << k;
  }
  // Every hour: the hour's rollups are exact too, and fewer.
  req.queries[0].hints.step_ms = 3'600'000;
  http.body = remote::EncodeReadRequest(req);
  resp = handler.Handle(http);
  ASSERT_EQ(resp.status, 200) << resp.body;
  decoded = remote::DecodeReadResponse(resp.body, 64 << 20);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ((*decoded)[0][0].samples.size(), 3u);  // hours 0, 1 and the half hour 2
  for (const Sample& s : (*decoded)[0][0].samples) EXPECT_EQ(s.value, 49) << s.timestamp_ms;

  http.body = "not snappy";
  EXPECT_EQ(handler.Handle(http).status, 400);
  req.queries[0].matchers[0].value = "";  // matches everything: refused like Prometheus
  http.body = remote::EncodeReadRequest(req);
  resp = handler.Handle(http);
  EXPECT_EQ(resp.status, 400);
  EXPECT_NE(resp.body.find("query 0"), std::string::npos);
}

}  // namespace
}  // namespace suanli::aggregator
