// RollupAnswersExactly against a reference: PromQL's range functions (as Prometheus 2.42
// computes them) evaluated over the raw samples and over what rollup::Emit makes of their
// records. Whenever the check says "exact", both answers must agree at every evaluation time;
// on regular, aligned data it must say "exact" (else the rollups would never be used).
#include "aggregator/query/rollup_exactness.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>

namespace suanli::aggregator {
namespace {

using rollup::Aggregate;

constexpr int64_t kMinute = 60'000, kHour = 60 * kMinute;

// PromQL's function over the samples in (t - range, t]; nullopt where it gives no value.
std::optional<double> Evaluate(const std::vector<Sample>& samples, Aggregate f, int64_t t,
                               int64_t range) {
  std::vector<Sample> w;
  for (const Sample& s : samples) {
    if (s.timestamp_ms > t - range && s.timestamp_ms <= t) w.push_back(s);
  }
  if (w.empty()) return std::nullopt;
  double acc = f == Aggregate::kMin || f == Aggregate::kMax ? w[0].value : 0;
  for (const Sample& s : w) {
    if (f == Aggregate::kMin) acc = std::min(acc, s.value);
    if (f == Aggregate::kMax) acc = std::max(acc, s.value);
    if (f == Aggregate::kSum || f == Aggregate::kAvg) acc += s.value;
  }
  if (f == Aggregate::kAvg) return acc / static_cast<double>(w.size());
  if (f != Aggregate::kCounter) return acc;
  // extrapolatedRate (promql/functions.go), as increase().
  if (w.size() < 2) return std::nullopt;
  double result = w.back().value - w.front().value, prev = w.front().value;
  for (const Sample& s : w) {
    if (s.value < prev) result += prev;
    prev = s.value;
  }
  double to_start = static_cast<double>(w.front().timestamp_ms - (t - range)) / 1000;
  double to_end = static_cast<double>(t - w.back().timestamp_ms) / 1000;
  double sampled = static_cast<double>(w.back().timestamp_ms - w.front().timestamp_ms) / 1000;
  double average = sampled / static_cast<double>(w.size() - 1);
  if (result > 0 && w.front().value >= 0) {
    double to_zero = sampled * (w.front().value / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = average * 1.1, extrapolate_to = sampled;
  extrapolate_to += to_start < threshold ? to_start : average / 2;
  extrapolate_to += to_end < threshold ? to_end : average / 2;
  return result * (extrapolate_to / sampled);
}

remote::ReadHints Hints(int64_t first_eval, int64_t last_eval, int64_t step, int64_t range) {
  remote::ReadHints h;
  h.start_ms = first_eval - range;
  h.end_ms = last_eval;
  h.step_ms = step;
  h.range_ms = range;
  return h;
}

// Compares raw and emitted answers at every evaluation time; returns the number compared.
int ExpectSameAnswers(const std::vector<Sample>& raw, Aggregate f, const remote::ReadHints& h,
                      int64_t resolution) {
  std::vector<rollup::Record> records = rollup::Compute(raw, resolution);
  std::vector<Sample> emitted;
  rollup::Emit(records, f, h.start_ms, h.end_ms, &emitted);
  int compared = 0;
  for (int64_t t = h.start_ms + h.range_ms; t <= h.end_ms; t += h.step_ms) {
    auto want = Evaluate(raw, f, t, h.range_ms);
    auto got = Evaluate(emitted, f, t, h.range_ms);
    EXPECT_EQ(want.has_value(), got.has_value()) << "at " << t;
    if (want && got) {
      EXPECT_NEAR(*got, *want, 1e-9 * std::max(1.0, std::fabs(*want)))
          << rollup::AggregateName(f) << " at " << t;
      ++compared;
    }
  }
  return compared;
}

const Aggregate kFunctions[] = {Aggregate::kMin, Aggregate::kMax, Aggregate::kSum, Aggregate::kAvg,
                                Aggregate::kCounter};

// Every 15 s, 3 s past the interval grid, a counter and a gauge: every window is a union of
// whole 5m intervals, so every function is exact at 1h steps.
TEST(RollupExactnessTest, RegularAlignedDataIsExactForEveryFunction) {
  std::vector<Sample> gauge, counter;
  double c = 0;
  for (int64_t t = 3'000; t < 12 * kHour; t += 15'000) {
    gauge.push_back({t, 40 + std::sin(double(t) / 1e6) * 10});
    counter.push_back({t, c += 1.5 * 15});
  }
  const auto h = Hints(2 * kHour, 12 * kHour, kHour, kHour);
  for (Aggregate f : kFunctions) {
    const auto& raw = f == Aggregate::kCounter ? counter : gauge;
    std::string why;
    EXPECT_TRUE(RollupAnswersExactly(rollup::Compute(raw, 5 * kMinute), f, h, &why))
        << rollup::AggregateName(f) << ": " << why;
    EXPECT_EQ(ExpectSameAnswers(raw, f, h, 5 * kMinute), 11) << rollup::AggregateName(f);
  }
}

TEST(RollupExactnessTest, EachReasonIsNamed) {
  std::vector<Sample> raw;
  for (int64_t t = 3'000; t < 4 * kHour; t += 15'000) raw.push_back({t, double(t % 7)});
  std::string why;
  // A step off the 5m grid: windows cut intervals.
  EXPECT_FALSE(RollupAnswersExactly(rollup::Compute(raw, 5 * kMinute), Aggregate::kMax,
                                    Hints(kHour + kMinute, 3 * kHour + kMinute, kHour, kHour),
                                    &why));
  EXPECT_NE(why.find("cuts the rollup interval"), std::string::npos) << why;
  // A sample exactly on a window's open start.
  raw.insert(raw.begin() + 240, Sample{kHour, 100});  // after 3,588,000
  EXPECT_FALSE(RollupAnswersExactly(rollup::Compute(raw, 5 * kMinute), Aggregate::kMax,
                                    Hints(2 * kHour, 3 * kHour, kHour, kHour), &why));
  EXPECT_NE(why.find("cuts the rollup interval starting at 3600000"), std::string::npos) << why;
  // Unequal counts for avg_over_time: a gap of 2 minutes.
  std::vector<Sample> gap;
  for (int64_t t = 3'000; t < 4 * kHour; t += 15'000) {
    if (t < 90 * kMinute || t > 92 * kMinute) gap.push_back({t, 1.0 + double(t % 5)});
  }
  EXPECT_FALSE(RollupAnswersExactly(rollup::Compute(gap, 5 * kMinute), Aggregate::kAvg,
                                    Hints(2 * kHour, 3 * kHour, kHour, kHour), &why));
  EXPECT_NE(why.find("different numbers of samples"), std::string::npos) << why;
  EXPECT_TRUE(RollupAnswersExactly(rollup::Compute(gap, 5 * kMinute), Aggregate::kMax,
                                   Hints(2 * kHour, 3 * kHour, kHour, kHour), &why));
  // A counter that starts in the window: rate would extrapolate towards its zero.
  std::vector<Sample> young;
  for (int64_t t = 70 * kMinute + 3'000; t < 4 * kHour; t += 15'000) {
    young.push_back({t, double(t - 70 * kMinute) / 1000});
  }
  EXPECT_FALSE(RollupAnswersExactly(rollup::Compute(young, 5 * kMinute), Aggregate::kCounter,
                                    Hints(2 * kHour, 3 * kHour, kHour, kHour), &why));
  EXPECT_NE(why.find("a gap at an edge"), std::string::npos) << why;
}

// Random data with gaps, counter resets, irregular spacing and samples on interval boundaries,
// at steps and ranges on and off the grid: where the check says exact, the answers agree, and
// it says so often enough to matter.
TEST(RollupExactnessTest, WhereItSaysExactTheAnswersAgree) {
  std::mt19937_64 rng(20261205);
  int exact = 0, checked = 0, compared = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<Sample> raw;
    double v = 100;
    int64_t t = static_cast<int64_t>(rng() % 60'000);
    const int64_t spacing = rng() % 2 ? 15'000 : 60'000;
    while (t < 8 * kHour) {
      const uint64_t dice = rng() % 1000;
      if (dice < 3) t += static_cast<int64_t>(rng() % (40 * kMinute));       // a gap
      if (dice >= 3 && dice < 6) t = (t / (5 * kMinute) + 1) * 5 * kMinute;  // on the grid
      const bool counter = round % 2 == 0;
      if (counter) {
        v = rng() % 500 == 0 ? double(rng() % 10) : v + double(rng() % 1000) / 10;  // resets
      } else {
        v = 50 + double(rng() % 10'000) / 100;
      }
      raw.push_back({t, v});
      t += spacing + static_cast<int64_t>(rng() % 2000) - 1000;  // irregular
    }
    const int64_t resolution = rng() % 2 ? 5 * kMinute : kMinute;
    const int64_t step = (rng() % 3 == 0) ? 7 * kMinute : kHour;
    const int64_t range = (rng() % 4 == 0) ? 10 * kMinute : kHour;
    const auto h = Hints(2 * kHour, 8 * kHour, step, range);
    for (Aggregate f : kFunctions) {
      if ((f == Aggregate::kCounter) != (round % 2 == 0)) continue;
      ++checked;
      if (!RollupAnswersExactly(rollup::Compute(raw, resolution), f, h)) continue;
      ++exact;
      compared += ExpectSameAnswers(raw, f, h, resolution);
    }
  }
  EXPECT_GT(exact, checked / 4) << exact << " of " << checked;
  EXPECT_LT(exact, checked) << "the random data never hit a case that is not exact";
  EXPECT_GT(compared, 1000);
}

}  // namespace
}  // namespace suanli::aggregator
