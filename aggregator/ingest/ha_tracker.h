// HaTracker: deduplication of HA pairs (the configuration's `ha:` section), as Cortex and
// Mimir do it. Both replicas of a pair forward the same figures with an external label naming
// the replica (`replica_label`, e.g. __replica__); per (region, dc, shard) one replica is
// elected: the first one heard. Its writes are stored, without the replica label; the other's
// are answered 202 and nothing of them is stored. When the elected replica has been silent for
// `failover_after`, the next write of the other replica elects it (a failover).
// Exported: suanli_aggregator_ha_elected{region,dc,shard,replica} (1 for the elected replica),
// suanli_aggregator_ha_failovers_total{region,dc,shard} and
// suanli_aggregator_ha_samples_deduplicated_total.
// Units: Unix ms (the receiver's clock). Thread-safety: Check may be called concurrently.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace suanli::aggregator {

// The replica elected for one pair, as the status page shows it.
struct HaElection {
  std::string region;
  std::string dc;
  std::string shard;
  std::string replica;
  int64_t last_heard_ms = 0;  // newest write from the elected replica
};

struct HaConfig {
  std::string replica_label;  // empty: no HA deduplication
  std::chrono::milliseconds failover_after{30000};
  bool operator==(const HaConfig&) const = default;
};

class HaTracker {
 public:
  explicit HaTracker(prometheus::Registry& registry);

  void set_config(const HaConfig& config);
  HaConfig config() const;
  // The replica label, or "" when HA is off (read on every write: no lock when off).
  std::string replica_label() const;
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }

  // Whether a write from `replica` of the pair (region, dc, shard), carrying `samples`
  // samples, is stored (true) or answered 202 and dropped (false).
  bool Accept(std::string_view region, std::string_view dc, std::string_view shard,
              std::string_view replica, size_t samples, int64_t now_ms);
  // Every pair heard so far, ordered by (region, dc, shard).
  std::vector<HaElection> Elections() const;

 private:
  struct Pair {
    std::string elected;
    int64_t last_heard_ms = 0;  // from the elected replica
    prometheus::Gauge* elected_gauge = nullptr;
  };
  using Key = std::tuple<std::string, std::string, std::string>;

  mutable std::mutex mu_;
  HaConfig config_;
  std::atomic<bool> enabled_{false};
  std::map<Key, Pair> pairs_;
  prometheus::Family<prometheus::Gauge>& elected_;
  prometheus::Family<prometheus::Counter>& failovers_;
  prometheus::Counter& deduplicated_;
};

}  // namespace suanli::aggregator
