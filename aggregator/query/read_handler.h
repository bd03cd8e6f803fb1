// ReadHandler: POST /api/v1/read, the Prometheus remote_read endpoint (SAMPLES responses).
// Each query's hints pick the resolution and the aggregate, as Thanos does: the resolution is
// the coarsest rollup no coarser than step/5 and range/2 that retention still covers, the
// aggregate follows the PromQL function (max for max_over_time, min for min_over_time,
// sum/count for avg_over_time, the rebuilt counter for rate/increase); everything else reads
// raw samples (or, past the raw retention, the finest rollup's average). Functions whose answer
// depends on each raw sample (count_over_time counts samples, irate takes the last two) are
// always read raw: a rollup would give another answer (one sample per interval). Past the raw
// retention such a query is refused (400) with the retention named. A function answered from a
// rollup is checked window by window (rollup_exactness.h): where the rollup would not give
// exactly Prometheus' answer over the raw samples (a window cutting an interval, unequal
// counts for avg_over_time, a gap at a window's edge for rate), the query reads raw, or past
// the raw retention is refused with the reason. Since exactness is checked, a coarser rollup
// (up to the range and the step) is tried first: where the windows align with it, it answers
// the same from fewer records.
// Errors are 400 with a one-line reason (bad body, bad matcher, too many samples or queries);
// 500 only for a store failure.
// Thread-safety: Handle() is called concurrently from HTTP worker threads.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "aggregator/rollup/rollup.h"
#include "aggregator/storage/store.h"
#include "core/http_server.h"
#include "core/remote_codec.h"

namespace suanli::aggregator {

struct ReadLimits {
  int64_t max_queries = 64;              // per request
  int64_t max_decoded_bytes = 16 << 20;  // request after snappy
  int64_t max_samples = 50'000'000;      // per request, all queries together
};

struct ReadChoice {
  rollup::Resolution resolution = rollup::Resolution::kRaw;
  rollup::Aggregate aggregate = rollup::Aggregate::kRaw;
  // Set when no resolution can answer exactly: the query is refused with this reason.
  std::string refusal;
  bool operator==(const ReadChoice&) const = default;
};

// The choice for one query; cutoffs[r] is the store's RetentionCutoff for resolution r.
ReadChoice ChooseResolution(const remote::ReadQuery& query, const std::array<int64_t, 4>& cutoffs);

class ReadHandler {
 public:
  ReadHandler(storage::Store& store, prometheus::Registry& registry);

  HttpResponse Handle(const HttpRequest& request);
  void set_limits(const ReadLimits& limits);

 private:
  HttpResponse Reject(int status, const std::string& message);
  Result<std::vector<storage::SeriesSamples>> SelectExactly(
      const remote::ReadQuery& query, const std::vector<storage::MatcherSpec>& matchers,
      const std::array<int64_t, 4>& cutoffs, ReadChoice* choice);

  storage::Store& store_;
  std::atomic<int64_t> max_queries_, max_decoded_bytes_, max_samples_;
  prometheus::Family<prometheus::Counter>& queries_;
  std::array<prometheus::Counter*, 4> queries_by_resolution_;
  prometheus::Counter& rejected_;
  prometheus::Family<prometheus::Counter>& inexact_;
  prometheus::Counter* inexact_raw_;
  prometheus::Counter* inexact_refused_;
};

}  // namespace suanli::aggregator
