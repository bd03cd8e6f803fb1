#include "aggregator/query/read_handler.h"

#include <spdlog/spdlog.h>

#include <limits>

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
                    .Add({})) {
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
    auto selected =
        store_.SelectRollup(matchers, q.start_ms, q.end_ms, choice.resolution, choice.aggregate);
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
