// GET /api/v1/capacity: the capacity view as JSON for schedulers, in the Prometheus API's
// envelope ({"status":"success","data":{...}} or {"status":"error","errorType","error"}).
// Filterable by ?region=, ?dc= (exact names), ?precision= (keeps that precision's compute
// only, and only entries that have it) and ?min_free_flops= (keeps entries whose free compute
// reaches it in some kept precision). Every dc, region and alliance entry carries its freshness:
// the age in seconds of the newest sample behind it. Units: FLOPS, bytes, watts, joules,
// seconds; ratios 0-1. See README.md for an example.
// Thread-safety: free functions over values.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "aggregator/capacity/capacity_model.h"
#include "core/status.h"

namespace suanli::exporters {

struct CapacityQuery {
  std::string region;  // empty: all
  std::string dc;
  std::string precision;
  std::optional<double> min_free_flops;
};

// Reads the query parameters; a malformed min_free_flops is an error naming it. Unknown
// parameters are ignored, as the Prometheus API does.
Result<CapacityQuery> ParseCapacityQuery(const std::map<std::string, std::string>& params);

// The answer body for a successful query.
std::string CapacityJson(const capacity::CapacitySnapshot& snap, const CapacityQuery& query);

// {"status":"error","errorType":type,"error":message}, the Prometheus API's error shape.
std::string JsonError(std::string_view type, std::string_view message);

inline constexpr const char* kJsonContentType = "application/json";

}  // namespace suanli::exporters
