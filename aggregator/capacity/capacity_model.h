// CapacityModel: the latest state of every node that writes to this aggregator, and from it the
// alliance capacity view per data center, region and for the whole alliance: nodes (up, stale,
// gone), CPU cores and utilization, GPUs and utilization, memory, compute capacity and free
// compute in FLOPS per precision (capacity x (1 - utilization), per source), whole-server power,
// energy counters re-accumulated across server restarts, inter-dc links against their capacity,
// PUE, and a short per-node history of CPU and memory utilization (for /watcher).
//
// It keeps the two newest points of the counters it needs and the newest point of each gauge, so
// every figure comes from the samples' own timestamps, never from arrival times. A node's
// figures are derived when its samples arrive (Observe), so a snapshot only sums them.
// Units: bytes, bytes/s, FLOPS, watts, joules, seconds; ratios in [0, 1]; timestamps Unix ms.
// Thread-safety: every public method may be called concurrently (one mutex).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/sample.h"

namespace suanli::capacity {

struct Location {
  std::string region;
  std::string dc;
  auto operator<=>(const Location&) const = default;
};

struct CapacityOptions {
  // A node whose newest sample is older than this is stale: counted, but no longer supply.
  std::chrono::milliseconds stale_after{std::chrono::minutes(5)};
  // A node silent this long is gone: removed from memory (its energy stays in its dc's counter).
  std::chrono::milliseconds forget_after{std::chrono::hours(1)};
  // Span of the per-node utilization history behind /watcher (AVG and STD).
  std::chrono::milliseconds watcher_window{std::chrono::minutes(15)};
  // Facility power per dc (W) for PUE where no suanli_facility_power_watts is ingested.
  std::map<Location, double> facility_power_watts;
};

// Compute of one precision (FLOPS). Free = capacity x (1 - utilization), per source.
struct ComputeFigures {
  double capacity_flops = 0;
  double free_flops = 0;
  double cpu_capacity_flops = 0;
  double cpu_free_flops = 0;
  double gpu_capacity_flops = 0;
  double gpu_free_flops = 0;
  void Add(const ComputeFigures& o);
  double in_use_flops() const { return capacity_flops - free_flops; }
};

// Figures of one node, or summed over a group of nodes (a dc, a region, the alliance).
// Rates are per second; ratios come from the accessors.
struct GroupFigures {
  int64_t nodes_up = 0;
  int64_t nodes_stale = 0;
  int64_t nodes_gone = 0;  // cumulative: nodes forgotten after forget_after
  int64_t newest_sample_ms = INT64_MIN;
  double cpu_cores = 0;
  double cpu_busy_cores = 0;  // sum over nodes of utilization x cores
  int64_t nodes_with_cpu_rate = 0;
  double memory_total_bytes = 0;
  double memory_available_bytes = 0;
  double network_receive_bytes_per_second = 0;
  double network_transmit_bytes_per_second = 0;
  double gpus = 0;
  double gpu_busy = 0;  // sum of utilization over GPUs that report it
  double gpus_with_utilization = 0;
  double gpu_memory_total_bytes = 0;
  double gpu_memory_used_bytes = 0;  // allocated plus what the driver reserves: not free
  double gpu_power_watts = 0;
  std::map<std::string, ComputeFigures> compute;  // by precision ("fp64", "fp32", ...)
  double power_watts = 0;                         // whole-server power, nodes that report it
  int64_t nodes_with_power = 0;
  // The part of power_watts read from chassis shared by several servers (a multi-node chassis,
  // a blade enclosure: source redfish_shared or ipmi_dcmi_shared), each chassis counted once
  // per dc by its identity; a reading without identity counts 1/systems per node.
  double shared_power_watts = 0;
  int64_t shared_power_chassis = 0;  // distinct shared chassis (with an identity) in it
  // Power of the nodes with no meter, from the agents' utilization model: apart, never summed
  // into power_watts.
  double estimated_power_watts = 0;
  int64_t nodes_with_estimated_power = 0;
  std::map<std::string, int64_t> power_sources;  // nodes by the source of their power figure
  double energy_joules_total = 0;                // monotonic while the aggregator runs
  // Energy integrated from estimated power (suanli_node_energy_joules_total{source=
  // "estimated"}): apart, never summed into energy_joules_total.
  double estimated_energy_joules_total = 0;
  // PUE inputs: facility power and the IT power of the same dcs.
  double facility_power_watts = 0;
  double pue_it_power_watts = 0;
  int64_t dcs_with_facility_power = 0;
  // Data centers whose figures are fresh (reporting) or only last known (stale: no node up,
  // or a lower tier's evaluations older than capacity.stale_after).
  int64_t dcs_reporting = 0;
  int64_t dcs_stale = 0;

  double cpu_utilization() const { return cpu_cores > 0 ? cpu_busy_cores / cpu_cores : 0; }
  double gpu_utilization() const {
    return gpus_with_utilization > 0 ? gpu_busy / gpus_with_utilization : 0;
  }
  double memory_utilization() const {
    return memory_total_bytes > 0 ? 1 - memory_available_bytes / memory_total_bytes : 0;
  }
  bool has_pue() const { return dcs_with_facility_power > 0 && pue_it_power_watts > 0; }
  double pue() const { return has_pue() ? facility_power_watts / pue_it_power_watts : 0; }
  void Add(const GroupFigures& o);
};

// An inter-dc link as the agents of one dc declare it.
struct LinkKey {
  std::string region;
  std::string dc;
  std::string link;
  std::string peer_dc;
  auto operator<=>(const LinkKey&) const = default;
};

struct LinkFigures {
  double capacity_bytes_per_second = 0;  // the largest declared by any node (one link)
  double receive_bytes_per_second = 0;   // summed over nodes and devices
  double transmit_bytes_per_second = 0;
  double receive_utilization() const {
    return capacity_bytes_per_second > 0 ? receive_bytes_per_second / capacity_bytes_per_second : 0;
  }
  double transmit_utilization() const {
    return capacity_bytes_per_second > 0 ? transmit_bytes_per_second / capacity_bytes_per_second
                                         : 0;
  }
};

struct CapacitySnapshot {
  int64_t at_ms = 0;
  int64_t stale_after_ms = 0;
  std::map<Location, GroupFigures> dcs;
  std::map<std::string, GroupFigures> regions;
  GroupFigures alliance;
  std::map<LinkKey, LinkFigures> links;
  // Where each dc's facility power comes from: "meter" (ingested) or "config".
  std::map<Location, std::string> facility_power_source;
  // Dcs whose figures come from a lower tier (tier_input.h) rather than from nodes.
  std::set<Location> from_tier;
  // Dcs with both node-level and tier input: the tier's figures are used, the nodes' left out.
  std::set<Location> conflicts;
};

// Mean and (population) standard deviation of a node's utilization over the watcher window.
struct WindowStats {
  int64_t samples = 0;
  double mean = 0;
  double stddev = 0;
  double latest = 0;
};

struct NodeLoad {
  Location location;
  std::string instance;
  int64_t newest_sample_ms = 0;
  WindowStats cpu;     // ratio 0-1
  WindowStats memory;  // ratio 0-1
};

class TierInput;

class CapacityModel {
 public:
  explicit CapacityModel(std::chrono::milliseconds stale_after);
  explicit CapacityModel(CapacityOptions options);
  ~CapacityModel();

  // Takes what it needs from accepted samples (call after they are durable).
  void Observe(const std::vector<TimeSeries>& batch);
  // True for the metric names Observe uses; callers may pass only those series. The prefix
  // test is inline and byte by byte: it is on the ingest path and fails for most series.
  static bool Uses(std::string_view metric_name) {
    return HasModelPrefix(metric_name) && IsModelMetric(metric_name);
  }
  // Node-level input ignored because a lower tier reports the same dc, since start.
  uint64_t conflicting_samples() const;
  // The figures at `now_ms`; forgets nodes silent longer than forget_after first.
  CapacitySnapshot Snapshot(int64_t now_ms);
  // Nodes up at `now_ms` with their utilization over the watcher window, by instance.
  std::vector<NodeLoad> NodeLoads(int64_t now_ms);

  void set_stale_after(std::chrono::milliseconds d);
  // Applies new options; a changed watcher_window restarts the histories.
  void set_options(const CapacityOptions& options);
  CapacityOptions options() const;
  size_t node_count() const;

 private:
  // Every metric of the model starts with node_ or suanli_.
  static bool HasModelPrefix(std::string_view n) {
    if (n.size() < 5) return false;
    if (n[0] == 'n') return n[1] == 'o' && n[2] == 'd' && n[3] == 'e' && n[4] == '_';
    return n[0] == 's' && n.starts_with("suanli_");
  }
  static bool IsModelMetric(std::string_view metric_name);

  // Newest point of a gauge.
  struct Latest {
    Sample s{INT64_MIN, 0};
    void Push(const Sample& x);
    bool has() const { return s.timestamp_ms != INT64_MIN; }
  };
  // The two newest points of a counter.
  struct TwoPoints {
    Sample prev{INT64_MIN, 0};
    Sample cur{INT64_MIN, 0};
    void Push(const Sample& s);
    bool HasRate() const { return prev.timestamp_ms != INT64_MIN; }
  };
  struct Gpu {
    Latest utilization, memory_used, memory_reserved, memory_total, power, info;
    int64_t newest_ms() const;
  };
  struct LinkDevice {
    TwoPoints rx, tx;
  };
  struct Link {
    Latest capacity_bits;
    std::map<std::string, LinkDevice> devices;
  };
  // A counter re-accumulated from its increases: never drops when the source resets.
  struct Accumulator {
    Sample last{INT64_MIN, 0};
    double total = 0;
    void Push(const Sample& s);
  };
  // Per-node utilization history: a ring of buckets (count, sum, sum of squares), so AVG and
  // STD over the window cost O(buckets) and memory is fixed however often the node reports.
  class History {
   public:
    static constexpr int kBuckets = 60;
    void Configure(int64_t window_ms);
    void Add(int64_t ts_ms, double cpu, double memory);  // NaN: not known this time
    void Stats(int64_t now_ms, WindowStats* cpu, WindowStats* memory) const;

   private:
    struct Bucket {
      int64_t index = INT64_MIN;
      uint32_t cpu_n = 0, mem_n = 0;
      double cpu_sum = 0, cpu_sq = 0, mem_sum = 0, mem_sq = 0;
    };
    int64_t bucket_ms_ = 0;
    int64_t last_ts_ = INT64_MIN;
    double latest_cpu_ = NAN, latest_mem_ = NAN;
    std::vector<Bucket> ring_;  // allocated on first Add
  };
  struct NodeState {
    Location location;
    std::string instance;
    int64_t newest_ms = INT64_MIN;
    std::map<std::pair<std::string, std::string>, TwoPoints> cpu;              // (cpu, mode)
    std::map<std::string, Latest> memory;                                      // metric name
    std::map<std::string, TwoPoints> net_rx, net_tx;                           // device
    std::map<std::string, Latest> capacity;                                    // precision
    std::map<std::pair<std::string, std::string>, Latest> capacity_by_source;  // (source, prec)
    std::map<std::string, Gpu> gpus;                                           // uuid or index
    Latest power;
    std::string power_source;
    // A shared reading (source *_shared): the chassis' identity and the servers it covers.
    bool power_shared = false;
    std::string power_chassis;
    int64_t power_systems = 1;
    // Measured energy increases this node reported for a shared chassis whose energy another
    // node of the dc already counts: left out of the dc's energy.
    double energy_not_counted = 0;
    Accumulator energy;
    Accumulator estimated_energy;
    std::map<std::pair<std::string, std::string>, Link> links;  // (link, peer_dc)
    // Derived when samples arrive.
    GroupFigures figures;
    std::vector<std::pair<std::pair<std::string, std::string>, LinkFigures>> link_figures;
    int64_t history_end_ms = INT64_MIN;  // timestamp of the newest point in `history`
    History history;
    bool dirty = false;  // touched by the batch being observed
  };
  struct FacilityMeter {
    Latest watts;
  };

  // The node of a series' region/dc/instance; nullptr when absent and !create.
  NodeState* NodeFor(const Labels& labels, bool create);
  void Derive(NodeState& node) const;
  // Measured energy increase `joules` of a node with a shared reading: counted by one node per
  // chassis (the first to report it, until it goes stale); the others leave it out.
  void CountSharedEnergy(NodeState& node, double joules);
  void ForgetGone(int64_t now_ms);

  mutable std::mutex mu_;
  CapacityOptions options_;
  // key: region \0 dc \0 instance
  std::map<std::string, NodeState> nodes_;
  std::unique_ptr<TierInput> tier_;  // dcs reported by lower tiers
  uint64_t conflicting_samples_ = 0;
  // Facility meters by dc, then by the meter's own series identity.
  std::map<Location, std::map<std::string, FacilityMeter>> facility_;
  // What forgotten nodes leave behind in their dc.
  struct Retired {
    double energy_joules = 0;
    double estimated_energy_joules = 0;
    int64_t nodes = 0;
  };
  std::map<Location, Retired> retired_;
  // Per dc and shared chassis identity: the instance whose energy counts for the chassis.
  std::map<std::pair<Location, std::string>, std::string> shared_energy_node_;
};

}  // namespace suanli::capacity
