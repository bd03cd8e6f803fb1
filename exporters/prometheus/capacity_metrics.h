// The alliance capacity view as Prometheus metrics, rendered from a CapacitySnapshot at scrape
// time: suanli_dc_* {region, dc}, suanli_region_* {region}, suanli_alliance_* (no labels) and
// suanli_link_* {region, dc, link, peer_dc}. One table of figures drives every level, so a dc
// figure never lacks its region and alliance twins. Base units: bytes, bytes/s, FLOPS, watts,
// joules, seconds; ratios 0-1.
//
// AppendCapacityText writes the text format directly (no intermediate MetricFamily objects): a
// scrape covering 1,000 dcs must stay well under 100 ms. CapacityFamilies gives the same samples
// as prometheus-cpp families.
// Thread-safety: free functions over a value.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "aggregator/capacity/capacity_model.h"
#include "core/sample.h"

namespace suanli::exporters {

// Appends HELP, TYPE and sample lines (text format 0.0.4) to *out; nothing without dcs.
void AppendCapacityText(const capacity::CapacitySnapshot& snap, std::string* out);

std::vector<prometheus::MetricFamily> CapacityFamilies(const capacity::CapacitySnapshot& snap);

// The dc's own figures, suanli_dc_* {region, dc} and suanli_link_* (as on /metrics, without the
// region and alliance sums), as series with one sample at `timestamp_ms`.
std::vector<TimeSeries> DcCapacitySeries(const capacity::CapacitySnapshot& snap,
                                         int64_t timestamp_ms);

}  // namespace suanli::exporters
