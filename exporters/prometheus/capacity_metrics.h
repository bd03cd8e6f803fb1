// The alliance capacity view as Prometheus families: suanli_dc_* per (region, dc) and
// suanli_region_* per region, rendered from a CapacitySnapshot at scrape time.
// Thread-safety: a free function over a value.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "aggregator/capacity/capacity_model.h"

namespace suanli::exporters {

std::vector<prometheus::MetricFamily> CapacityFamilies(const capacity::CapacitySnapshot& snap);

}  // namespace suanli::exporters
