#include "aggregator/capacity/capacity_model.h"

#include <cmath>

namespace suanli::capacity {

void GroupFigures::Add(const GroupFigures& o) {
  nodes_up += o.nodes_up;
  nodes_stale += o.nodes_stale;
  cpu_cores += o.cpu_cores;
  cpu_busy_cores += o.cpu_busy_cores;
  nodes_with_cpu_rate += o.nodes_with_cpu_rate;
  memory_total_bytes += o.memory_total_bytes;
  memory_available_bytes += o.memory_available_bytes;
  network_receive_bytes_per_second += o.network_receive_bytes_per_second;
  network_transmit_bytes_per_second += o.network_transmit_bytes_per_second;
}

CapacityModel::CapacityModel(std::chrono::milliseconds stale_after) : stale_after_(stale_after) {}

void CapacityModel::set_stale_after(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  stale_after_ = d;
}

void CapacityModel::TwoPoints::Push(const Sample& s) {
  if (std::isnan(s.value)) return;  // NaN and stale markers carry no figure
  if (s.timestamp_ms > cur.timestamp_ms) {
    prev = cur;
    cur = s;
  } else if (s.timestamp_ms == cur.timestamp_ms) {
    cur = s;  // a resend of the same point
  } else if (s.timestamp_ms > prev.timestamp_ms) {
    prev = s;  // late, but newer than what we had as previous
  }
}

CapacityModel::NodeState& CapacityModel::NodeFor(const Labels& labels) {
  std::string key;
  std::string_view region = labels.Get("region"), dc = labels.Get("dc"),
                   instance = labels.Get("instance");
  key.reserve(region.size() + dc.size() + instance.size() + 2);
  key.append(region).push_back('\0');
  key.append(dc).push_back('\0');
  key.append(instance);
  auto it = nodes_.find(key);
  if (it == nodes_.end()) {
    it = nodes_.emplace(std::move(key), NodeState{}).first;
    it->second.location = Location{std::string(region), std::string(dc)};
  }
  return it->second;
}

void CapacityModel::Observe(const std::vector<TimeSeries>& batch) {
  std::lock_guard lock(mu_);
  for (const auto& ts : batch) {
    std::string_view name = ts.labels.MetricName();
    // Cheap prefix test first: most series are of no interest to the model.
    if (name.size() < 5 || name.compare(0, 5, "node_") != 0 || ts.samples.empty()) continue;
    NodeState* node = nullptr;
    auto node_for = [&]() -> NodeState& {
      if (!node) node = &NodeFor(ts.labels);
      for (const auto& s : ts.samples) {
        if (s.timestamp_ms > node->newest_ms) node->newest_ms = s.timestamp_ms;
      }
      return *node;
    };
    if (name == "node_cpu_seconds_total") {
      auto& tp = node_for().cpu[{std::string(ts.labels.Get("cpu")),
                                  std::string(ts.labels.Get("mode"))}];
      for (const auto& s : ts.samples) tp.Push(s);
    } else if (name == "node_memory_MemTotal_bytes" || name == "node_memory_MemAvailable_bytes" ||
               name == "node_memory_MemFree_bytes" || name == "node_memory_Buffers_bytes" ||
               name == "node_memory_Cached_bytes") {
      auto& tp = node_for().memory[std::string(name)];
      for (const auto& s : ts.samples) tp.Push(s);
    } else if (name == "node_network_receive_bytes_total" ||
               name == "node_network_transmit_bytes_total") {
      std::string_view device = ts.labels.Get("device");
      if (device == "lo") continue;  // loopback traffic never leaves the host
      auto& n = node_for();
      auto& tp = (name[13] == 'r' ? n.net_rx : n.net_tx)[std::string(device)];
      for (const auto& s : ts.samples) tp.Push(s);
    } else if (name == "node_load1") {
      node_for();  // any node_* sample keeps the node fresh
    }
  }
}

namespace {
// Per-second increase between two points of a counter; nullopt across a reset or no gap.
bool CounterRate(const Sample& a, const Sample& b, double* rate) {
  if (b.timestamp_ms <= a.timestamp_ms || b.value < a.value) return false;
  *rate = (b.value - a.value) * 1000.0 / static_cast<double>(b.timestamp_ms - a.timestamp_ms);
  return true;
}
}  // namespace

GroupFigures CapacityModel::Figures(const NodeState& node) {
  GroupFigures f;
  // CPU: cores are the distinct cpu labels; utilization = 1 - idle share of the last interval,
  // over all CPUs and modes.
  std::map<std::string, std::pair<double, double>> per_cpu;  // cpu -> (delta idle, delta all)
  bool rate_ok = !node.cpu.empty();
  for (const auto& [key, tp] : node.cpu) {
    per_cpu.try_emplace(key.first, 0.0, 0.0);
    if (!tp.HasRate() || tp.cur.value < tp.prev.value) {
      rate_ok = false;
      continue;
    }
    double d = tp.cur.value - tp.prev.value;
    auto& acc = per_cpu[key.first];
    acc.second += d;
    if (key.second == "idle") acc.first += d;
  }
  f.cpu_cores = static_cast<double>(per_cpu.size());
  if (rate_ok) {
    double idle = 0, all = 0;
    for (const auto& [cpu, acc] : per_cpu) {
      idle += acc.first;
      all += acc.second;
    }
    if (all > 0) {
      f.cpu_busy_cores = (1.0 - idle / all) * f.cpu_cores;
      f.nodes_with_cpu_rate = 1;
    }
  }
  auto mem = [&](const char* k) -> double {
    auto it = node.memory.find(k);
    return it == node.memory.end() ? NAN : it->second.cur.value;
  };
  double total = mem("node_memory_MemTotal_bytes");
  if (!std::isnan(total)) f.memory_total_bytes = total;
  double avail = mem("node_memory_MemAvailable_bytes");
  if (std::isnan(avail)) {
    // Kernels before 3.14 lack MemAvailable: approximate as free + buffers + page cache.
    double free = mem("node_memory_MemFree_bytes"), buf = mem("node_memory_Buffers_bytes"),
           cached = mem("node_memory_Cached_bytes");
    avail = (std::isnan(free) ? 0 : free) + (std::isnan(buf) ? 0 : buf) +
            (std::isnan(cached) ? 0 : cached);
  }
  f.memory_available_bytes = avail;
  for (const auto& [dev, tp] : node.net_rx) {
    double r;
    if (tp.HasRate() && CounterRate(tp.prev, tp.cur, &r)) f.network_receive_bytes_per_second += r;
  }
  for (const auto& [dev, tp] : node.net_tx) {
    double r;
    if (tp.HasRate() && CounterRate(tp.prev, tp.cur, &r)) f.network_transmit_bytes_per_second += r;
  }
  return f;
}

CapacitySnapshot CapacityModel::Snapshot(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  CapacitySnapshot snap;
  for (const auto& [key, node] : nodes_) {
    GroupFigures& dc = snap.dcs[node.location];
    if (node.newest_ms < now_ms - stale_after_.count()) {
      dc.nodes_stale += 1;  // counted, but its figures are no longer supply
      continue;
    }
    GroupFigures f = Figures(node);
    f.nodes_up = 1;
    dc.Add(f);
  }
  for (const auto& [loc, f] : snap.dcs) snap.regions[loc.region].Add(f);
  return snap;
}

}  // namespace suanli::capacity
