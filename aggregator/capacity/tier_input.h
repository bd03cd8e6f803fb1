// TierInput: a data center's figures as a lower tier forwards them (`select: capacity` of a dc
// aggregator: suanli_dc_* {region, dc[, shard]} and suanli_link_* per direction), read back
// into the same GroupFigures and LinkFigures the capacity model derives from nodes. A region or
// alliance aggregator needs no node-level data: it sums the shards of a dc (external label
// `shard`) and derives region and alliance figures from the dcs.
//
// Each shard's newest evaluation is what counts: every family of it is read at that one
// timestamp (a family absent from it is absent). Ratios are turned back into the sums they
// came from (cpu_utilization_ratio x cpu_cores = busy cores), so sums over shards and dcs are
// the sums a single aggregator would compute. The age of a dc's newest underlying sample
// carries through: evaluation time minus the forwarded newest_sample_age_seconds.
// Units: Unix ms. Thread-safety: none; CapacityModel calls it under its mutex.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "aggregator/capacity/capacity_model.h"

namespace suanli::capacity {

class TierInput {
 public:
  // True for the names a lower tier forwards (suanli_dc_*, suanli_link_* per direction).
  static bool Uses(std::string_view metric_name);

  void Observe(const TimeSeries& ts);

  struct DcFigures {
    GroupFigures figures;
    std::map<std::pair<std::string, std::string>, LinkFigures> links;  // (link, peer_dc)
    int64_t newest_evaluation_ms = INT64_MIN;  // newest evaluation of any shard
    int shards = 0;
    int shards_fresh = 0;  // shards whose newest evaluation is within stale_after
  };
  // Every dc with tier input at `now_ms`: shards silent since `forget_before` are dropped.
  std::map<Location, DcFigures> Figures(int64_t stale_before, int64_t forget_before);
  bool Has(const Location& loc) const;

 private:
  struct ShardKey {
    std::string region, dc, shard;
    auto operator<=>(const ShardKey&) const = default;
  };
  struct Shard {
    int64_t newest_ms = INT64_MIN;
    // family (name without the level prefix) + "\0" + the other labels as name=value\0 ...
    std::map<std::string, Sample> values;
  };
  std::map<ShardKey, Shard> shards_;
};

}  // namespace suanli::capacity
