#include "aggregator/query/rollup_exactness.h"

#include <algorithm>
#include <cmath>

namespace suanli::aggregator {

using rollup::Aggregate;
using rollup::Record;

namespace {

bool Fail(std::string* why, std::string reason) {
  if (why != nullptr) *why = std::move(reason);
  return false;
}

// Checks the window (t - range, t] over records[first, last) (those that reach into it).
bool WindowExact(const std::vector<Record>& records, size_t first, size_t last, int64_t t,
                 int64_t range, Aggregate aggregate, std::string* why) {
  const int64_t open_start = t - range;
  uint64_t samples = 0;
  bool equal_counts = true;
  // The window's first and last inside records hold its first and last raw samples; the
  // increase between them is rebuilt as PromQL counts it (a drop restarts from zero).
  const Record* a = nullptr;
  const Record* b = nullptr;
  double increase = 0;
  for (size_t i = first; i < last; ++i) {
    const Record& r = records[i];
    const bool inside = r.first_ts > open_start && r.last_ts <= t;
    const bool outside = r.last_ts <= open_start || r.first_ts > t;
    if (!inside && !outside) {
      return Fail(why, "the window ending at " + std::to_string(t) +
                           " cuts the rollup interval starting at " + std::to_string(r.start));
    }
    if (!inside) continue;
    if (b != nullptr) {
      if (r.count != b->count) equal_counts = false;
      increase += r.first >= b->last ? r.first - b->last : r.first;
    }
    if (a == nullptr) a = &r;
    b = &r;
    samples += r.count;
    increase += r.increase;
  }
  if (aggregate == Aggregate::kAvg && !equal_counts) {
    return Fail(why, "intervals of the window ending at " + std::to_string(t) +
                         " hold different numbers of samples (avg_over_time would be unweighted)");
  }
  if (aggregate != Aggregate::kCounter || samples < 2) return true;
  const double sampled = static_cast<double>(b->last_ts - a->first_ts);
  const double average = sampled / static_cast<double>(samples - 1);
  const double to_start = static_cast<double>(a->first_ts - open_start);
  const double to_end = static_cast<double>(t - b->last_ts);
  if (to_start >= average * 1.1 || to_end >= average * 1.1) {
    return Fail(why, "the window ending at " + std::to_string(t) +
                         " has a gap at an edge: rate would extrapolate by the raw spacing");
  }
  if (increase > 0 && a->first >= 0 && sampled * (a->first / increase) < to_start) {
    return Fail(why, "the window ending at " + std::to_string(t) +
                         " starts near the counter's zero: rate would extrapolate to it");
  }
  return true;
}

}  // namespace

bool RollupAnswersExactly(const std::vector<Record>& records, Aggregate aggregate,
                          const remote::ReadHints& hints, std::string* why) {
  if (records.empty()) return true;
  const int64_t range = hints.range_ms;
  if (range <= 0) return Fail(why, "no range in the query's hints");
  // Evaluation times: end only for an instant query, else from start + range by step.
  std::vector<int64_t> times;
  if (hints.step_ms <= 0) {
    times.push_back(hints.end_ms);
  } else {
    const int64_t steps = (hints.end_ms - hints.start_ms - range) / hints.step_ms;
    if (steps < 0) return true;  // no evaluation inside the range
    if (steps > 1'000'000) return Fail(why, "more than a million evaluation times");
    for (int64_t k = 0; k <= steps; ++k)
      times.push_back(hints.start_ms + range + k * hints.step_ms);
  }
  // Records that reach into each window: a sliding [first, last) over records sorted by start
  // (their spans do not overlap).
  size_t first = 0, last = 0;
  for (int64_t t : times) {
    while (first < records.size() && records[first].last_ts <= t - range) ++first;
    last = std::max(last, first);
    while (last < records.size() && records[last].first_ts <= t) ++last;
    if (!WindowExact(records, first, last, t, range, aggregate, why)) return false;
  }
  return true;
}

}  // namespace suanli::aggregator
