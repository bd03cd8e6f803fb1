// Rollups: per fixed interval (1m, 5m, 1h) of one series, the count, sum, min, max, first and
// last value (with their timestamps) and the reset-adjusted increase within the interval, as
// Thanos downsampling keeps them. NaN values (the stale marker included) are left out; an
// interval without a number gets no record (no zero-fill). Counters are never averaged: the
// read side rebuilds a monotonic counter from first/last/increase, detecting resets inside an
// interval (increase) and at interval boundaries (first < previous last).
//
// Header-only so that aggregator/storage (which persists these records) and the read handler
// share it without a link-order cycle.
// Units: timestamps and intervals in Unix ms. Thread-safety: plain values and pure functions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/sample.h"

namespace suanli::rollup {

enum class Resolution { kRaw = 0, k1m = 1, k5m = 2, k1h = 3 };
inline constexpr int kNumRollupResolutions = 3;  // 1m, 5m, 1h

inline int64_t ResolutionMs(Resolution r) {
  switch (r) {
    case Resolution::kRaw:
      return 0;
    case Resolution::k1m:
      return 60'000;
    case Resolution::k5m:
      return 300'000;
    case Resolution::k1h:
      return 3'600'000;
  }
  return 0;
}

inline const char* ResolutionName(Resolution r) {
  switch (r) {
    case Resolution::kRaw:
      return "raw";
    case Resolution::k1m:
      return "1m";
    case Resolution::k5m:
      return "5m";
    case Resolution::k1h:
      return "1h";
  }
  return "?";
}

// Floor division, and the start of the interval of length `len` holding `ts`, clamped at
// INT64_MIN (the lowest interval would otherwise start below the int64 range).
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
inline int64_t IntervalStart(int64_t ts, int64_t len) {
  int64_t q = FloorDiv(ts, len);
  if (q < std::numeric_limits<int64_t>::min() / len) return std::numeric_limits<int64_t>::min();
  return q * len;
}

// What one interval's record says.
struct Record {
  int64_t start = 0;  // interval start (aligned to the resolution)
  int64_t first_ts = 0, last_ts = 0;
  uint64_t count = 0;  // samples that are numbers (NaN and stale markers left out)
  double sum = 0, min = 0, max = 0, first = 0, last = 0;
  double increase = 0;  // sum of the increases between consecutive samples; after a drop
                        // (counter reset) the new value counts as the increase
  bool operator==(const Record&) const = default;
};

class Accumulator {
 public:
  // Samples must come in increasing time order; NaN values are ignored.
  void Add(int64_t ts, double v) {
    if (std::isnan(v)) return;
    if (r_.count == 0) {
      r_.first = r_.min = r_.max = v;
      r_.first_ts = ts;
    } else {
      r_.increase += v >= r_.last ? v - r_.last : v;
      r_.min = std::min(r_.min, v);
      r_.max = std::max(r_.max, v);
    }
    r_.last = v;
    r_.last_ts = ts;
    r_.sum += v;
    ++r_.count;
  }
  bool empty() const { return r_.count == 0; }
  Record Take(int64_t start) {
    Record out = r_;
    out.start = start;
    r_ = Record{};
    return out;
  }

 private:
  Record r_;
};

// Records of sorted samples at interval length `len_ms`.
inline std::vector<Record> Compute(const std::vector<Sample>& samples, int64_t len_ms) {
  std::vector<Record> out;
  Accumulator acc;
  int64_t cur = 0;
  bool have = false;
  for (const Sample& s : samples) {
    int64_t start = IntervalStart(s.timestamp_ms, len_ms);
    if (have && start != cur && !acc.empty()) out.push_back(acc.Take(cur));
    cur = start;
    have = true;
    acc.Add(s.timestamp_ms, s.value);
  }
  if (have && !acc.empty()) out.push_back(acc.Take(cur));
  return out;
}

// How a rollup is turned back into samples for PromQL.
enum class Aggregate {
  kRaw,      // raw samples (no rollup)
  kMin,      // min at the interval's last sample time
  kMax,      // max
  kSum,      // sum
  kCount,    // count
  kAvg,      // sum / count
  kCounter,  // the rebuilt counter at each interval's first and last sample time
};

inline const char* AggregateName(Aggregate a) {
  switch (a) {
    case Aggregate::kRaw:
      return "raw";
    case Aggregate::kMin:
      return "min";
    case Aggregate::kMax:
      return "max";
    case Aggregate::kSum:
      return "sum";
    case Aggregate::kCount:
      return "count";
    case Aggregate::kAvg:
      return "avg";
    case Aggregate::kCounter:
      return "counter";
  }
  return "?";
}

// Samples of `records` (sorted by start) for `agg`. Only sample timestamps in [min_ms, max_ms]
// are emitted; the counter is rebuilt from the first record on, so it starts at the first
// interval's raw first value and never decreases.
inline void Emit(const std::vector<Record>& records, Aggregate agg, int64_t min_ms, int64_t max_ms,
                 std::vector<Sample>* out) {
  auto put = [&](int64_t ts, double v) {
    if (ts >= min_ms && ts <= max_ms) out->push_back({ts, v});
  };
  double counter = 0, prev_last = 0;
  bool have_prev = false;
  for (const Record& r : records) {
    switch (agg) {
      case Aggregate::kMin:
        put(r.last_ts, r.min);
        break;
      case Aggregate::kMax:
        put(r.last_ts, r.max);
        break;
      case Aggregate::kSum:
        put(r.last_ts, r.sum);
        break;
      case Aggregate::kCount:
        put(r.last_ts, static_cast<double>(r.count));
        break;
      case Aggregate::kAvg:
      case Aggregate::kRaw:
        put(r.last_ts, r.sum / static_cast<double>(r.count));
        break;
      case Aggregate::kCounter: {
        if (!have_prev) {
          counter = r.first;
        } else {
          counter += r.first >= prev_last ? r.first - prev_last : r.first;  // reset at boundary
        }
        put(r.first_ts, counter);
        counter += r.increase;
        if (r.last_ts != r.first_ts) put(r.last_ts, counter);
        prev_last = r.last;
        have_prev = true;
        break;
      }
    }
  }
}

}  // namespace suanli::rollup
