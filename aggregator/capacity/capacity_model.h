// CapacityModel: the latest state of every node that writes to this aggregator, and from it
// the figures per data center and region (nodes reporting, CPU cores and utilization, memory,
// network throughput). It keeps the two newest points of the few series it needs, so a
// figure is derived from the samples themselves (their timestamps), not from arrival times.
// Thread-safety: Observe() and Snapshot() may be called concurrently (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/sample.h"

namespace suanli::capacity {

struct Location {
  std::string region;
  std::string dc;
  auto operator<=>(const Location&) const = default;
};

// Figures of one group of nodes (a dc, a region). Rates are per second; utilization in [0,1].
struct GroupFigures {
  int64_t nodes_up = 0;
  int64_t nodes_stale = 0;
  double cpu_cores = 0;
  double cpu_busy_cores = 0;   // sum over nodes of utilization x cores
  int64_t nodes_with_cpu_rate = 0;
  double memory_total_bytes = 0;
  double memory_available_bytes = 0;
  double network_receive_bytes_per_second = 0;
  double network_transmit_bytes_per_second = 0;

  double cpu_utilization() const { return cpu_cores > 0 ? cpu_busy_cores / cpu_cores : 0; }
  void Add(const GroupFigures& o);
};

struct CapacitySnapshot {
  std::map<Location, GroupFigures> dcs;
  std::map<std::string, GroupFigures> regions;
};

class CapacityModel {
 public:
  // A node is stale when its newest sample is older than `stale_after` at snapshot time.
  explicit CapacityModel(std::chrono::milliseconds stale_after);

  // Takes what it needs from accepted samples (call after they are durable).
  void Observe(const std::vector<TimeSeries>& batch);
  CapacitySnapshot Snapshot(int64_t now_ms) const;
  void set_stale_after(std::chrono::milliseconds d);

 private:
  // The two newest points of one counter or gauge.
  struct TwoPoints {
    Sample prev{INT64_MIN, 0};
    Sample cur{INT64_MIN, 0};
    void Push(const Sample& s);
    bool HasRate() const { return prev.timestamp_ms != INT64_MIN; }
  };
  struct NodeState {
    Location location;
    int64_t newest_ms = INT64_MIN;
    std::map<std::pair<std::string, std::string>, TwoPoints> cpu;  // (cpu, mode)
    std::map<std::string, TwoPoints> memory;                        // meminfo key
    std::map<std::string, TwoPoints> net_rx, net_tx;                // device
  };

  NodeState& NodeFor(const Labels& labels);
  static GroupFigures Figures(const NodeState& node);

  mutable std::mutex mu_;
  std::chrono::milliseconds stale_after_;
  // key: region \0 dc \0 instance
  std::map<std::string, NodeState> nodes_;
};

}  // namespace suanli::capacity
