// `suanlictl capacity`: the aggregator's capacity view (GET /api/v1/capacity) as an aligned
// table: the alliance, each region and each dc, one row each, with nodes, CPU, memory, GPUs,
// the free and total compute of one precision, power and the age of the newest sample.
// --watch redraws it every --interval seconds (on a terminal, in place, as watch(1) does).
// Thread-safety: one call at a time.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "core/status.h"
#include "ctl/aggregator_client.h"

namespace suanli::ctl {

struct CapacityOptions {
  std::string region, dc;
  std::string precision = "fp16";  // fp64, fp32, fp16, int8
  bool watch = false;
  double interval_seconds = 5;
};

// The path and query of the request for these options.
std::string CapacityPath(const CapacityOptions& options);
// The table for one /api/v1/capacity answer (its "data" object checked); InvalidArgument when
// the answer does not have the documented shape.
Result<std::string> RenderCapacityTable(const nlohmann::json& answer, const std::string& precision);

// Prints the table (once, or until interrupted with --watch); the exit code.
int RunCapacity(AggregatorClient& client, const CapacityOptions& options, std::ostream& out,
                std::ostream& err);

}  // namespace suanli::ctl
