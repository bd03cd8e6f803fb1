// Simulation: the agents of many simulated data centers (regions x dcs x servers), producing
// the node-level series of the agents' contract sweep by sweep: node_cpu_seconds_total,
// memory, NIC counters, compute capacity per precision and source, GPUs, whole-server power and
// energy, inter-dc links (node 0 of each dc links it to the next dc) and one facility power
// meter per dc. Used by suanli-loadgen and the capacity benchmarks.
// Units are the contract's: seconds, bytes, FLOPS, watts, joules, bits/s for link capacity.
// Thread-safety: every public method may be called concurrently (one mutex).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/sample.h"

namespace suanli::sim {

struct SimulationOptions {
  std::vector<std::string> regions = {"gansu", "ningxia", "guizhou"};
  int dcs_per_region = 2;
  int nodes_per_dc = 3;
  int cpus = 16;
  int gpus = 2;
  double utilization = 0.3;       // CPU and GPU, 0-1
  double link_utilization = 0.3;  // 0-1
  bool facility_meters = true;
  // Non-empty: only this dc's servers (e.g. "gansu-3"), named and linked as in the whole
  // topology, so one process per dc writes to that dc's own aggregator.
  std::string only_dc;
};

class Simulation {
 public:
  explicit Simulation(const SimulationOptions& options);

  size_t node_count() const { return nodes_.size(); }  // 0: only_dc names no dc

  // Advances nodes [begin, end) by dt seconds (t: seconds since the start, for the wobble) and
  // returns their samples stamped now_ms, plus the facility meters of their dcs.
  std::vector<TimeSeries> Sweep(double t, double dt, int64_t now_ms, size_t begin = 0,
                                size_t end = std::numeric_limits<size_t>::max());

  // Applies a control request (see suanli-loadgen): region/dc + utilization/link_utilization,
  // or restart=INSTANCE. False when no node matches; *message says what changed.
  bool Control(const std::map<std::string, std::string>& query, std::string* message);

  // The last full sweep in the text format (no timestamps).
  std::string MetricsText();

 private:
  struct Node {
    std::string region, dc, instance;
    double utilization = 0.3;
    double link_utilization = 0.3;
    std::string peer_dc;                     // empty: no inter-dc link on this node
    std::vector<std::array<double, 4>> cpu;  // per cpu: idle, user, system, iowait (s)
    double rx = 0, tx = 0, link_rx = 0, link_tx = 0, energy = 0, sweeps = 0;
  };

  SimulationOptions o_;
  std::mutex mu_;
  std::vector<Node> nodes_;
  std::vector<TimeSeries> last_;
  int64_t sweeps_ = 0;
};

}  // namespace suanli::sim
