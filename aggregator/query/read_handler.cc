#include "aggregator/query/read_handler.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "aggregator/query/rollup_exactness.h"

namespace suanli::aggregator {

using rollup::Aggregate;
using rollup::Resolution;

ReadChoice ChooseResolution(const remote::ReadQuery& query, const std::array<int64_t, 4>& cutoffs) {
  const remote::ReadHints& h = query.hints;
  const std::string& f = query.has_hints ? h.func : std::string();
  Aggregate agg = Aggregate::kRaw;
  if (f == "max_over_time") {
    agg = Aggregate::kMax;
  } else if (f == "min_over_time") {
    agg = Aggregate::kMin;
  } else if (f == "avg_over_time") {
    agg = Aggregate::kAvg;
  } else if (f == "sum_over_time") {
    agg = Aggregate::kSum;
  } else if (f == "rate" || f == "increase") {
    agg = Aggregate::kCounter;
  }
  const int64_t start = query.start_ms;
  auto covers = [&](Resolution r) { return cutoffs[static_cast<int>(r)] <= start; };
  if (f == "count_over_time" || f == "irate") {
    // One sample per interval would answer another question: only raw samples will do.
    if (covers(Resolution::kRaw)) return {};
    ReadChoice refused;
    refused.refusal = f + " needs raw samples, and the query starts before the raw retention (" +
                      std::to_string(cutoffs[0]) +
                      " ms); rollups would count intervals, not samples";
    return refused;
  }
  const Resolution rollups[] = {Resolution::k1m, Resolution::k5m, Resolution::k1h};
  if (agg == Aggregate::kRaw) {
    if (covers(Resolution::kRaw)) return {};
    // Past the raw retention: the finest rollup that reaches back, as averages.
    for (Resolution r : rollups) {
      if (covers(r)) return {r, Aggregate::kAvg};
    }
    return {};
  }
  // No coarser than step/5 and range/2 (each only when given).
  int64_t limit = std::numeric_limits<int64_t>::max();
  if (h.step_ms > 0) limit = std::min(limit, h.step_ms / 5);
  if (h.range_ms > 0) limit = std::min(limit, h.range_ms / 2);
  if (limit == std::numeric_limits<int64_t>::max()) limit = 0;  // no hint: stay raw
  ReadChoice best;                                              // raw
  for (Resolution r : rollups) {
    if (rollup::ResolutionMs(r) <= limit && (covers(r) || !covers(best.resolution))) {
      best = {r, agg};
    }
  }
  if (!covers(best.resolution)) {
    // The allowed resolutions no longer hold the start: a coarser rollup beats no data.
    for (Resolution r : rollups) {
      if (rollup::ResolutionMs(r) > rollup::ResolutionMs(best.resolution) && covers(r)) {
        return {r, agg};
      }
    }
  }
  if (best.resolution == Resolution::kRaw) best.aggregate = Aggregate::kRaw;
  return best;
}

ReadHandler::ReadHandler(storage::Store& store, prometheus::Registry& registry)
    : store_(store),
      max_queries_(ReadLimits{}.max_queries),
      max_decoded_bytes_(ReadLimits{}.max_decoded_bytes),
      max_samples_(ReadLimits{}.max_samples),
      queries_(prometheus::BuildCounter()
                   .Name("suanli_aggregator_read_queries_total")
                   .Help("remote_read queries answered, by the resolution chosen.")
                   .Register(registry)),
      rejected_(prometheus::BuildCounter()
                    .Name("suanli_aggregator_read_requests_rejected_total")
                    .Help("remote_read requests answered with an error.")
                    .Register(registry)
                    .Add({})),
      inexact_(prometheus::BuildCounter()
                   .Name("suanli_aggregator_read_rollup_inexact_total")
                   .Help("remote_read queries whose rollup would not have answered exactly what "
                         "Prometheus answers from raw samples: read raw instead, or refused "
                         "past the raw retention.")
                   .Register(registry)) {
  inexact_raw_ = &inexact_.Add({{"outcome", "raw"}});
  inexact_refused_ = &inexact_.Add({{"outcome", "refused"}});
  for (int r = 0; r < 4; ++r) {
    queries_by_resolution_[r] =
        &queries_.Add({{"resolution", rollup::ResolutionName(static_cast<Resolution>(r))}});
  }
}

void ReadHandler::set_limits(const ReadLimits& limits) {
  max_queries_ = limits.max_queries;
  max_decoded_bytes_ = limits.max_decoded_bytes;
  max_samples_ = limits.max_samples;
}

HttpResponse ReadHandler::Reject(int status, const std::string& message) {
  rejected_.Increment();
  spdlog::debug("remote_read rejected status={} detail=\"{}\"", status, message);
  return HttpResponse::Text(status, message + "\n");
}

// A function over a range that a rollup answers: read the records, and emit them only when
// they give exactly Prometheus' answer over the raw samples; otherwise read raw, or refuse past
// the raw retention (sets choice->refusal). Where the windows align with a coarser rollup than
// the hints' rule picked (no coarser than the range or the step), that one is tried first: an
// exact answer from fewer records. Anything else is read as chosen.
Result<std::vector<storage::SeriesSamples>> ReadHandler::SelectExactly(
    const remote::ReadQuery& q, const std::vector<storage::MatcherSpec>& matchers,
    const std::array<int64_t, 4>& cutoffs, ReadChoice* choice) {
  const bool function_over_rollup = choice->resolution != Resolution::kRaw && q.has_hints &&
                                    q.hints.range_ms > 0 && choice->aggregate != Aggregate::kRaw;
  if (!function_over_rollup) {
    return store_.SelectRollup(matchers, q.start_ms, q.end_ms, choice->resolution,
                               choice->aggregate);
  }
  std::vector<Resolution> candidates;
  for (Resolution r : {Resolution::k1h, Resolution::k5m, Resolution::k1m}) {
    const int64_t len = rollup::ResolutionMs(r);
    const bool coarser = len > rollup::ResolutionMs(choice->resolution);
    if (coarser && (len > q.hints.range_ms || (q.hints.step_ms > 0 && len > q.hints.step_ms) ||
                    cutoffs[static_cast<int>(r)] > q.start_ms)) {
      continue;
    }
    if (coarser || r == choice->resolution) candidates.push_back(r);
  }
  // The selection's range, where a client sent hints without it (Prometheus always sets it).
  remote::ReadHints hints = q.hints;
  if (hints.start_ms == 0 && hints.end_ms == 0) {
    hints.start_ms = q.start_ms;
    hints.end_ms = q.end_ms;
  }
  std::string why;
  for (Resolution r : candidates) {
    ASSIGN_OR_RETURN(std::vector<storage::SeriesRecords> records,
                     store_.SelectRecords(matchers, q.start_ms, q.end_ms, r));
    bool exact = true;
    for (const storage::SeriesRecords& s : records) {
      if (!RollupAnswersExactly(s.records, choice->aggregate, hints, &why)) {
        why = s.labels.ToString() + ": " + why;
        exact = false;
        break;
      }
    }
    if (!exact) continue;
    choice->resolution = r;
    std::vector<storage::SeriesSamples> out;
    out.reserve(records.size());
    for (storage::SeriesRecords& s : records) {
      storage::SeriesSamples series;
      rollup::Emit(s.records, choice->aggregate, q.start_ms, q.end_ms, &series.samples);
      if (series.samples.empty()) continue;
      series.labels = std::move(s.labels);
      out.push_back(std::move(series));
    }
    return out;
  }
  if (cutoffs[0] <= q.start_ms) {
    inexact_raw_->Increment();
    spdlog::debug("remote_read: {} read raw, a {} rollup would not be exact: {}", q.hints.func,
                  rollup::ResolutionName(choice->resolution), why);
    *choice = ReadChoice{};
    return store_.SelectRollup(matchers, q.start_ms, q.end_ms, Resolution::kRaw, Aggregate::kRaw);
  }
  inexact_refused_->Increment();
  choice->refusal = q.hints.func + " over " + rollup::ResolutionName(choice->resolution) +
                    " rollups would not answer what Prometheus answers from raw samples (" + why +
                    "), and the query starts before the raw retention (" +
                    std::to_string(cutoffs[0]) + " ms); align the step and range to the " +
                    rollup::ResolutionName(choice->resolution) + " resolution";
  return std::vector<storage::SeriesSamples>{};
}

HttpResponse ReadHandler::Handle(const HttpRequest& request) {
  auto decoded = remote::DecodeReadRequest(request.body, max_decoded_bytes_.load());
  if (!decoded.ok()) return Reject(400, "remote_read: " + decoded.status().message());
  if (static_cast<int64_t>(decoded->queries.size()) > max_queries_.load()) {
    return Reject(400, "remote_read: " + std::to_string(decoded->queries.size()) +
                           " queries in one request; the limit is " +
                           std::to_string(max_queries_.load()));
  }
  std::array<int64_t, 4> cutoffs;
  for (int r = 0; r < 4; ++r) cutoffs[r] = store_.RetentionCutoff(static_cast<Resolution>(r));
  std::vector<std::vector<TimeSeries>> results;
  int64_t samples = 0;
  for (size_t qi = 0; qi < decoded->queries.size(); ++qi) {
    const remote::ReadQuery& q = decoded->queries[qi];
    std::vector<storage::MatcherSpec> matchers;
    for (const remote::LabelMatcher& m : q.matchers) {
      storage::MatcherSpec spec;
      spec.type = static_cast<storage::MatcherSpec::Type>(static_cast<int>(m.type));
      spec.name = m.name;
      spec.value = m.value;
      matchers.push_back(std::move(spec));
    }
    ReadChoice choice = ChooseResolution(q, cutoffs);
    if (!choice.refusal.empty())
      return Reject(400, "query " + std::to_string(qi) + ": " + choice.refusal);
    auto selected = SelectExactly(q, matchers, cutoffs, &choice);
    if (!choice.refusal.empty()) {
      return Reject(400, "query " + std::to_string(qi) + ": " + choice.refusal);
    }
    if (!selected.ok()) {
      StatusCode code = selected.status().code();
      int status = code == StatusCode::kInvalidArgument || code == StatusCode::kResourceExhausted
                       ? 400
                       : 500;
      return Reject(status, "query " + std::to_string(qi) + ": " + selected.status().message());
    }
    queries_by_resolution_[static_cast<int>(choice.resolution)]->Increment();
    std::vector<TimeSeries> series;
    series.reserve(selected->size());
    for (storage::SeriesSamples& s : *selected) {
      samples += static_cast<int64_t>(s.samples.size());
      series.push_back(TimeSeries{std::move(s.labels), std::move(s.samples)});
    }
    if (samples > max_samples_.load()) {
      return Reject(400, "remote_read: more than " + std::to_string(max_samples_.load()) +
                             " samples in one response");
    }
    results.push_back(std::move(series));
  }
  HttpResponse r;
  r.status = 200;
  r.content_type = "application/x-protobuf";
  r.headers["Content-Encoding"] = "snappy";
  r.body = remote::EncodeReadResponse(results);
  return r;
}

}  // namespace suanli::aggregator
