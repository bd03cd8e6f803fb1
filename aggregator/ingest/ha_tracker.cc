#include "aggregator/ingest/ha_tracker.h"

#include <spdlog/spdlog.h>

namespace suanli::aggregator {

HaTracker::HaTracker(prometheus::Registry& registry)
    : elected_(prometheus::BuildGauge()
                   .Name("suanli_aggregator_ha_elected")
                   .Help("1 for the replica of an HA pair whose writes are stored, per region, "
                         "dc and shard.")
                   .Register(registry)),
      failovers_(prometheus::BuildCounter()
                     .Name("suanli_aggregator_ha_failovers_total")
                     .Help("Elections of another replica after the elected one was silent for "
                           "ha.failover_after.")
                     .Register(registry)),
      deduplicated_(prometheus::BuildCounter()
                        .Name("suanli_aggregator_ha_samples_deduplicated_total")
                        .Help("Samples from a non-elected HA replica: answered 202, not stored.")
                        .Register(registry)
                        .Add({})) {}

void HaTracker::set_config(const HaConfig& config) {
  std::lock_guard lock(mu_);
  config_ = config;
  enabled_.store(!config.replica_label.empty(), std::memory_order_release);
}

std::string HaTracker::replica_label() const {
  std::lock_guard lock(mu_);
  return config_.replica_label;
}

HaConfig HaTracker::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

bool HaTracker::Accept(std::string_view region, std::string_view dc, std::string_view shard,
                       std::string_view replica, size_t samples, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Key key{std::string(region), std::string(dc), std::string(shard)};
  auto it = pairs_.find(key);
  const prometheus::Labels where = {
      {"region", std::get<0>(key)}, {"dc", std::get<1>(key)}, {"shard", std::get<2>(key)}};
  auto elect = [&](Pair& p) {
    if (p.elected_gauge != nullptr) p.elected_gauge->Set(0);
    p.elected = std::string(replica);
    prometheus::Labels l = where;
    l["replica"] = p.elected;
    p.elected_gauge = &elected_.Add(l);
    p.elected_gauge->Set(1);
  };
  if (it == pairs_.end()) {
    Pair& p = pairs_[key];
    elect(p);
    p.last_heard_ms = now_ms;
    spdlog::info("ha: replica {} elected region={} dc={} shard={}", replica, region, dc, shard);
    return true;
  }
  Pair& p = it->second;
  if (p.elected == replica) {
    p.last_heard_ms = std::max(p.last_heard_ms, now_ms);
    return true;
  }
  if (now_ms - p.last_heard_ms > config_.failover_after.count()) {
    spdlog::warn("ha: replica {} silent for {} ms, failing over to {} region={} dc={} shard={}",
                 p.elected, now_ms - p.last_heard_ms, replica, region, dc, shard);
    elect(p);
    p.last_heard_ms = now_ms;
    failovers_.Add(where).Increment();
    return true;
  }
  deduplicated_.Increment(static_cast<double>(samples));
  return false;
}

std::vector<HaElection> HaTracker::Elections() const {
  std::lock_guard lock(mu_);
  std::vector<HaElection> out;
  out.reserve(pairs_.size());
  for (const auto& [key, p] : pairs_) {
    const auto& [region, dc, shard] = key;
    out.push_back({region, dc, shard, p.elected, p.last_heard_ms});
  }
  return out;
}

}  // namespace suanli::aggregator
