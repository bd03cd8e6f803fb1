// GET /watcher and GET /watcher/health as paypal/load-watcher serves them, so that the
// Trimaran scheduler plugins of Kubernetes (TargetLoadPacking, LoadVariationRiskBalancing) can
// use the aggregator as their `watcherAddress`:
//   {"timestamp": <unix s>, "window": {"duration": "15m", "start": <unix s>, "end": <unix s>},
//    "source": "Suanli",
//    "data": {"NodeMetricsMap": {"<node>": {
//        "metrics": [{"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG",
//                     "rollup": "15m", "value": 42.5}, ...],
//        "tags": {}, "metadata": {"dataCenter": "<dc>"}}}}}
// Per node: CPU and Memory, each as Latest, AVG and STD (population) over the window, in
// percent; node names are the agents' `instance` labels. Latest comes before AVG, because
// TargetLoadPacking keeps the last CPU metric that is AVG or Latest, and load-watcher's own
// providers give it the window average. Stale nodes are left out (Trimaran then scores them
// lowest, as it does for a node load-watcher has no metrics for). ?host=NAME answers that node
// only, or 404 when it is unknown, as load-watcher does.
// Thread-safety: free functions over values.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "aggregator/capacity/capacity_model.h"

namespace suanli::exporters {

struct WatcherAnswer {
  int status = 200;
  std::string body;  // JSON (empty for a 404, as load-watcher's)
};

inline constexpr const char* kWatcherSource = "Suanli";

WatcherAnswer WatcherMetricsJson(const std::vector<capacity::NodeLoad>& loads, int64_t now_ms,
                                 std::chrono::milliseconds window,
                                 const std::map<std::string, std::string>& query);

}  // namespace suanli::exporters
