#include "aggregator/capacity/capacity_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "aggregator/capacity/tier_input.h"

namespace suanli::capacity {
namespace {

// What the model does with a series, by metric name.
enum class Kind {
  kCpu,
  kMemory,
  kNetRx,
  kNetTx,
  kFreshOnly,  // keeps the node fresh, carries no figure
  kCapacity,
  kCapacityBySource,
  kGpuUtilization,
  kGpuMemoryUsed,
  kGpuMemoryReserved,
  kGpuMemoryTotal,
  kGpuPower,
  kGpuInfo,
  kPower,
  kEnergy,
  kLinkRx,
  kLinkTx,
  kLinkCapacity,
  kFacilityPower,
};

const std::unordered_map<std::string_view, Kind>& Kinds() {
  static const auto* kinds = new std::unordered_map<std::string_view, Kind>{
      {"node_cpu_seconds_total", Kind::kCpu},
      {"node_memory_MemTotal_bytes", Kind::kMemory},
      {"node_memory_MemAvailable_bytes", Kind::kMemory},
      {"node_memory_MemFree_bytes", Kind::kMemory},
      {"node_memory_Buffers_bytes", Kind::kMemory},
      {"node_memory_Cached_bytes", Kind::kMemory},
      {"node_network_receive_bytes_total", Kind::kNetRx},
      {"node_network_transmit_bytes_total", Kind::kNetTx},
      {"node_load1", Kind::kFreshOnly},
      {"suanli_agent_sweeps_total", Kind::kFreshOnly},
      {"suanli_node_compute_capacity_flops", Kind::kCapacity},
      {"suanli_node_compute_capacity_flops_by_source", Kind::kCapacityBySource},
      {"suanli_gpu_utilization_ratio", Kind::kGpuUtilization},
      {"suanli_gpu_memory_used_bytes", Kind::kGpuMemoryUsed},
      {"suanli_gpu_memory_reserved_bytes", Kind::kGpuMemoryReserved},
      {"suanli_gpu_memory_total_bytes", Kind::kGpuMemoryTotal},
      {"suanli_gpu_power_watts", Kind::kGpuPower},
      {"suanli_gpu_info", Kind::kGpuInfo},
      {"suanli_node_power_watts", Kind::kPower},
      {"suanli_node_energy_joules_total", Kind::kEnergy},
      {"suanli_link_receive_bytes_total", Kind::kLinkRx},
      {"suanli_link_transmit_bytes_total", Kind::kLinkTx},
      {"suanli_link_capacity_bits_per_second", Kind::kLinkCapacity},
      {"suanli_facility_power_watts", Kind::kFacilityPower},
  };
  return *kinds;
}

double Clamp01(double v) { return std::clamp(v, 0.0, 1.0); }

// Per-second increase between two points of a counter; false across a reset or without a gap.
bool CounterRate(const Sample& a, const Sample& b, double* rate) {
  if (b.timestamp_ms <= a.timestamp_ms || b.value < a.value) return false;
  *rate = (b.value - a.value) * 1000.0 / static_cast<double>(b.timestamp_ms - a.timestamp_ms);
  return true;
}

template <typename Map, typename Pred>
void EraseIf(Map& m, Pred pred) {
  for (auto it = m.begin(); it != m.end();) {
    it = pred(it->second) ? m.erase(it) : std::next(it);
  }
}

}  // namespace

void ComputeFigures::Add(const ComputeFigures& o) {
  capacity_flops += o.capacity_flops;
  free_flops += o.free_flops;
  cpu_capacity_flops += o.cpu_capacity_flops;
  cpu_free_flops += o.cpu_free_flops;
  gpu_capacity_flops += o.gpu_capacity_flops;
  gpu_free_flops += o.gpu_free_flops;
}

void GroupFigures::Add(const GroupFigures& o) {
  nodes_up += o.nodes_up;
  nodes_stale += o.nodes_stale;
  nodes_gone += o.nodes_gone;
  newest_sample_ms = std::max(newest_sample_ms, o.newest_sample_ms);
  cpu_cores += o.cpu_cores;
  cpu_busy_cores += o.cpu_busy_cores;
  nodes_with_cpu_rate += o.nodes_with_cpu_rate;
  memory_total_bytes += o.memory_total_bytes;
  memory_available_bytes += o.memory_available_bytes;
  network_receive_bytes_per_second += o.network_receive_bytes_per_second;
  network_transmit_bytes_per_second += o.network_transmit_bytes_per_second;
  gpus += o.gpus;
  gpu_busy += o.gpu_busy;
  gpus_with_utilization += o.gpus_with_utilization;
  gpu_memory_total_bytes += o.gpu_memory_total_bytes;
  gpu_memory_used_bytes += o.gpu_memory_used_bytes;
  gpu_power_watts += o.gpu_power_watts;
  for (const auto& [precision, c] : o.compute) compute[precision].Add(c);
  power_watts += o.power_watts;
  nodes_with_power += o.nodes_with_power;
  shared_power_watts += o.shared_power_watts;
  shared_power_chassis += o.shared_power_chassis;
  estimated_power_watts += o.estimated_power_watts;
  nodes_with_estimated_power += o.nodes_with_estimated_power;
  for (const auto& [source, n] : o.power_sources) power_sources[source] += n;
  energy_joules_total += o.energy_joules_total;
  estimated_energy_joules_total += o.estimated_energy_joules_total;
  facility_power_watts += o.facility_power_watts;
  pue_it_power_watts += o.pue_it_power_watts;
  dcs_with_facility_power += o.dcs_with_facility_power;
  dcs_reporting += o.dcs_reporting;
  dcs_stale += o.dcs_stale;
}

// ---- point keepers ----

void CapacityModel::Latest::Push(const Sample& x) {
  if (x.timestamp_ms < s.timestamp_ms) return;  // late: we already hold a newer point
  if (IsStaleNaN(x.value)) {
    s = Sample{INT64_MIN, 0};  // the series ended: its figure is gone
    return;
  }
  if (std::isnan(x.value)) return;
  s = x;
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

void CapacityModel::Accumulator::Push(const Sample& s) {
  if (std::isnan(s.value) || s.timestamp_ms <= last.timestamp_ms) return;  // late: no news
  if (last.timestamp_ms != INT64_MIN) {
    // After a reset the counter restarted from zero, so its whole value is new energy.
    total += s.value >= last.value ? s.value - last.value : s.value;
  }
  last = s;
}

int64_t CapacityModel::Gpu::newest_ms() const {
  return std::max({utilization.s.timestamp_ms, memory_used.s.timestamp_ms,
                   memory_reserved.s.timestamp_ms, memory_total.s.timestamp_ms,
                   power.s.timestamp_ms, info.s.timestamp_ms});
}

// ---- history ----

void CapacityModel::History::Configure(int64_t window_ms) {
  bucket_ms_ = std::max<int64_t>(1, window_ms / kBuckets);
  ring_.clear();
  last_ts_ = INT64_MIN;
  latest_cpu_ = latest_mem_ = NAN;
}

void CapacityModel::History::Add(int64_t ts_ms, double cpu, double memory) {
  if (bucket_ms_ <= 0 || ts_ms < 0) return;
  if (ring_.empty()) ring_.resize(kBuckets);
  if (ts_ms > last_ts_) {
    last_ts_ = ts_ms;
    if (!std::isnan(cpu)) latest_cpu_ = cpu;
    if (!std::isnan(memory)) latest_mem_ = memory;
  }
  int64_t index = ts_ms / bucket_ms_;
  Bucket& b = ring_[static_cast<size_t>(index % kBuckets)];
  if (b.index != index) {
    if (b.index > index) return;  // older than everything the ring still holds
    b = Bucket{};
    b.index = index;
  }
  if (!std::isnan(cpu)) {
    b.cpu_n++;
    b.cpu_sum += cpu;
    b.cpu_sq += cpu * cpu;
  }
  if (!std::isnan(memory)) {
    b.mem_n++;
    b.mem_sum += memory;
    b.mem_sq += memory * memory;
  }
}

void CapacityModel::History::Stats(int64_t now_ms, WindowStats* cpu, WindowStats* memory) const {
  *cpu = WindowStats{};
  *memory = WindowStats{};
  if (ring_.empty() || bucket_ms_ <= 0) return;
  int64_t hi = now_ms / bucket_ms_, lo = hi - kBuckets;  // buckets (lo, hi]: the window
  double cn = 0, cs = 0, cq = 0, mn = 0, ms = 0, mq = 0;
  for (const Bucket& b : ring_) {
    if (b.index <= lo || b.index > hi) continue;
    cn += b.cpu_n;
    cs += b.cpu_sum;
    cq += b.cpu_sq;
    mn += b.mem_n;
    ms += b.mem_sum;
    mq += b.mem_sq;
  }
  auto fill = [](double n, double sum, double sq, double latest, WindowStats* out) {
    if (n <= 0) return;
    out->samples = static_cast<int64_t>(n);
    out->mean = sum / n;
    out->stddev = std::sqrt(std::max(0.0, sq / n - out->mean * out->mean));
    out->latest = std::isnan(latest) ? out->mean : latest;
  };
  fill(cn, cs, cq, latest_cpu_, cpu);
  fill(mn, ms, mq, latest_mem_, memory);
}

// ---- the model ----

CapacityModel::CapacityModel(std::chrono::milliseconds stale_after)
    : CapacityModel([&] {
        CapacityOptions o;
        o.stale_after = stale_after;
        o.forget_after = std::max(o.forget_after, 2 * stale_after);
        return o;
      }()) {}

CapacityModel::CapacityModel(CapacityOptions options)
    : options_(std::move(options)), tier_(std::make_unique<TierInput>()) {}

CapacityModel::~CapacityModel() = default;

uint64_t CapacityModel::conflicting_samples() const {
  std::lock_guard lock(mu_);
  return conflicting_samples_;
}

void CapacityModel::set_stale_after(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  options_.stale_after = d;
}

void CapacityModel::set_options(const CapacityOptions& options) {
  std::lock_guard lock(mu_);
  bool new_window = options.watcher_window != options_.watcher_window;
  options_ = options;
  if (new_window) {
    for (auto& [key, node] : nodes_) {
      node.history.Configure(options_.watcher_window.count());
      node.history_end_ms = INT64_MIN;
    }
  }
}

CapacityOptions CapacityModel::options() const {
  std::lock_guard lock(mu_);
  return options_;
}

size_t CapacityModel::node_count() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

CapacityModel::NodeState* CapacityModel::NodeFor(const Labels& labels, bool create) {
  std::string_view region = labels.Get("region"), dc = labels.Get("dc"),
                   instance = labels.Get("instance");
  std::string key;
  key.reserve(region.size() + dc.size() + instance.size() + 2);
  key.append(region).push_back('\0');
  key.append(dc).push_back('\0');
  key.append(instance);
  auto it = nodes_.find(key);
  if (it != nodes_.end()) return &it->second;
  if (!create) return nullptr;
  NodeState& n = nodes_.emplace(std::move(key), NodeState{}).first->second;
  n.location = Location{std::string(region), std::string(dc)};
  n.instance = std::string(instance);
  n.history.Configure(options_.watcher_window.count());
  return &n;
}

bool CapacityModel::IsModelMetric(std::string_view metric_name) {
  return Kinds().count(metric_name) > 0 || TierInput::Uses(metric_name);
}

void CapacityModel::Observe(const std::vector<TimeSeries>& batch) {
  std::lock_guard lock(mu_);
  std::vector<NodeState*> touched;
  const auto& kinds = Kinds();
  for (const auto& ts : batch) {
    std::string_view name = ts.labels.MetricName();
    // Cheap prefix test first: most series are of no interest to the model.
    if (ts.samples.empty() || !HasModelPrefix(name)) continue;
    auto kit = kinds.find(name);
    if (kit == kinds.end()) {
      if (TierInput::Uses(name)) tier_->Observe(ts);  // a dc's figures from a lower tier
      continue;
    }
    // A sample that cannot be placed in a dc is no one's capacity.
    if (ts.labels.Get("dc").empty()) continue;
    int64_t newest = INT64_MIN;
    for (const auto& s : ts.samples) {
      if (!IsStaleNaN(s.value)) newest = std::max(newest, s.timestamp_ms);
    }
    const Kind kind = kit->second;
    if (kind == Kind::kFacilityPower) {
      Location loc{std::string(ts.labels.Get("region")), std::string(ts.labels.Get("dc"))};
      auto& meter = facility_[loc][ts.labels.ToString()];
      for (const auto& s : ts.samples) meter.watts.Push(s);
      continue;
    }
    if (ts.labels.Get("instance").empty()) continue;
    // Only a series with a real sample creates a node (stale markers alone do not).
    NodeState* found = NodeFor(ts.labels, /*create=*/newest != INT64_MIN);
    if (!found) continue;
    NodeState& node = *found;
    if (tier_->Has(node.location)) conflicting_samples_ += ts.samples.size();
    node.newest_ms = std::max(node.newest_ms, newest);
    if (!node.dirty) {
      node.dirty = true;
      touched.push_back(&node);
    }
    auto push_all = [&](auto& keeper) {
      for (const auto& s : ts.samples) keeper.Push(s);
    };
    auto gpu = [&]() -> Gpu& {
      std::string_view uuid = ts.labels.Get("uuid");
      return node.gpus[std::string(uuid.empty() ? ts.labels.Get("gpu") : uuid)];
    };
    auto link = [&]() -> Link& {
      return node
          .links[{std::string(ts.labels.Get("link")), std::string(ts.labels.Get("peer_dc"))}];
    };
    switch (kind) {
      case Kind::kCpu:
        push_all(node.cpu[{std::string(ts.labels.Get("cpu")), std::string(ts.labels.Get("mode"))}]);
        break;
      case Kind::kMemory:
        push_all(node.memory[std::string(name)]);
        break;
      case Kind::kNetRx:
      case Kind::kNetTx: {
        std::string_view device = ts.labels.Get("device");
        if (device == "lo") break;  // loopback traffic never leaves the host
        push_all((kind == Kind::kNetRx ? node.net_rx : node.net_tx)[std::string(device)]);
        break;
      }
      case Kind::kFreshOnly:
        break;
      case Kind::kCapacity:
        push_all(node.capacity[std::string(ts.labels.Get("precision"))]);
        break;
      case Kind::kCapacityBySource:
        push_all(node.capacity_by_source[{std::string(ts.labels.Get("source")),
                                          std::string(ts.labels.Get("precision"))}]);
        break;
      case Kind::kGpuUtilization:
        push_all(gpu().utilization);
        break;
      case Kind::kGpuMemoryUsed:
        push_all(gpu().memory_used);
        break;
      case Kind::kGpuMemoryReserved:
        push_all(gpu().memory_reserved);
        break;
      case Kind::kGpuMemoryTotal:
        push_all(gpu().memory_total);
        break;
      case Kind::kGpuPower:
        push_all(gpu().power);
        break;
      case Kind::kGpuInfo:
        push_all(gpu().info);
        break;
      case Kind::kPower: {
        int64_t before = node.power.s.timestamp_ms;
        push_all(node.power);
        // One series per node, but the agent may switch sources: the newest point names it.
        if (node.power.s.timestamp_ms != before || node.power_source.empty()) {
          node.power_source = std::string(ts.labels.Get("source"));
          node.power_shared = node.power_source.ends_with("_shared");
          node.power_chassis = std::string(ts.labels.Get("chassis_identity"));
          int64_t systems = 1;
          std::string_view text = ts.labels.Get("systems");
          std::from_chars(text.data(), text.data() + text.size(), systems);
          node.power_systems = std::max<int64_t>(1, systems);
        }
        break;
      }
      case Kind::kEnergy:
        // An agent's integral of estimated power is its own series: never measured energy.
        if (ts.labels.Get("source") == "estimated") {
          push_all(node.estimated_energy);
        } else {
          double before = node.energy.total;
          push_all(node.energy);
          if (node.power_shared) CountSharedEnergy(node, node.energy.total - before);
        }
        break;
      case Kind::kLinkRx:
        push_all(link().devices[std::string(ts.labels.Get("device"))].rx);
        break;
      case Kind::kLinkTx:
        push_all(link().devices[std::string(ts.labels.Get("device"))].tx);
        break;
      case Kind::kLinkCapacity:
        push_all(link().capacity_bits);
        break;
      case Kind::kFacilityPower:
        break;  // handled above
    }
  }
  for (NodeState* node : touched) {
    Derive(*node);
    node->dirty = false;
  }
}

void CapacityModel::CountSharedEnergy(NodeState& node, double joules) {
  if (joules <= 0) return;
  if (node.power_chassis.empty()) {
    // No identity to tell the chassis' nodes apart: each counts its share.
    node.energy_not_counted += joules * (1 - 1.0 / static_cast<double>(node.power_systems));
    return;
  }
  std::string& counter = shared_energy_node_[{node.location, node.power_chassis}];
  if (counter != node.instance) {
    // The node counting for the chassis hands over once it stopped doing so: gone, stale or no
    // longer on that chassis.
    const NodeState* current = nullptr;
    if (!counter.empty()) {
      auto it = nodes_.find(node.location.region + '\0' + node.location.dc + '\0' + counter);
      if (it != nodes_.end()) current = &it->second;
    }
    bool hand_over = current == nullptr || !current->power_shared ||
                     current->power_chassis != node.power_chassis ||
                     current->newest_ms < node.newest_ms - options_.stale_after.count();
    if (!hand_over) {
      node.energy_not_counted += joules;
      return;
    }
    counter = node.instance;
  }
}

void CapacityModel::Derive(NodeState& n) const {
  // Parts of a node that stopped reporting (a hot-unplugged GPU, a container's veth) leave its
  // figures once they are stale relative to the node's own newest sample.
  const int64_t horizon = n.newest_ms - options_.stale_after.count();
  GroupFigures f;
  f.newest_sample_ms = n.newest_ms;

  // CPU: cores are the distinct cpu labels; utilization = 1 - idle share of the last interval,
  // over all CPUs and modes.
  EraseIf(n.cpu, [&](const TwoPoints& tp) { return tp.cur.timestamp_ms < horizon; });
  std::map<std::string_view, std::pair<double, double>> per_cpu;  // (delta idle, delta all)
  bool rate_ok = !n.cpu.empty();
  bool one_interval = true;  // every series' points from the same two sweeps
  int64_t interval_end = INT64_MIN;
  const TwoPoints* first = n.cpu.empty() ? nullptr : &n.cpu.begin()->second;
  for (const auto& [key, tp] : n.cpu) {
    auto& acc = per_cpu[key.first];
    interval_end = std::max(interval_end, tp.cur.timestamp_ms);
    if (tp.cur.timestamp_ms != first->cur.timestamp_ms ||
        tp.prev.timestamp_ms != first->prev.timestamp_ms) {
      one_interval = false;
    }
    if (!tp.HasRate() || tp.cur.value < tp.prev.value) {
      rate_ok = false;
      continue;
    }
    double d = tp.cur.value - tp.prev.value;
    acc.second += d;
    if (key.second == "idle") acc.first += d;
  }
  f.cpu_cores = static_cast<double>(per_cpu.size());
  double cpu_util = NAN;
  if (rate_ok) {
    double idle = 0, all = 0;
    for (const auto& [cpu, acc] : per_cpu) {
      idle += acc.first;
      all += acc.second;
    }
    if (all > 0) {
      cpu_util = Clamp01(1.0 - idle / all);
      f.cpu_busy_cores = cpu_util * f.cpu_cores;
      f.nodes_with_cpu_rate = 1;
    }
  }

  // Memory.
  EraseIf(n.memory, [&](const Latest& l) { return !l.has() || l.s.timestamp_ms < horizon; });
  int64_t memory_ts = INT64_MIN;
  auto mem = [&](const char* k) -> double {
    auto it = n.memory.find(k);
    if (it == n.memory.end()) return NAN;
    memory_ts = std::max(memory_ts, it->second.s.timestamp_ms);
    return it->second.s.value;
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
  double mem_util = f.memory_total_bytes > 0 ? Clamp01(1 - avail / f.memory_total_bytes) : NAN;

  // Network.
  auto stale_counter = [&](const TwoPoints& tp) { return tp.cur.timestamp_ms < horizon; };
  EraseIf(n.net_rx, stale_counter);
  EraseIf(n.net_tx, stale_counter);
  for (const auto& [dev, tp] : n.net_rx) {
    double r;
    if (tp.HasRate() && CounterRate(tp.prev, tp.cur, &r)) f.network_receive_bytes_per_second += r;
  }
  for (const auto& [dev, tp] : n.net_tx) {
    double r;
    if (tp.HasRate() && CounterRate(tp.prev, tp.cur, &r)) f.network_transmit_bytes_per_second += r;
  }

  // GPUs.
  EraseIf(n.gpus, [&](const Gpu& g) { return g.newest_ms() < horizon; });
  for (const auto& [id, g] : n.gpus) {
    f.gpus += 1;
    if (g.utilization.has()) {
      f.gpu_busy += Clamp01(g.utilization.s.value);
      f.gpus_with_utilization += 1;
    }
    if (g.memory_total.has()) f.gpu_memory_total_bytes += g.memory_total.s.value;
    if (g.memory_used.has()) f.gpu_memory_used_bytes += g.memory_used.s.value;
    // Memory the driver sets aside is no more free than allocated memory (agents on R510+
    // drivers report it apart from "used", older ones inside it).
    if (g.memory_reserved.has()) f.gpu_memory_used_bytes += g.memory_reserved.s.value;
    if (g.power.has()) f.gpu_power_watts += g.power.s.value;
  }
  double gpu_util = f.gpus_with_utilization > 0 ? f.gpu_busy / f.gpus_with_utilization : NAN;

  // Compute per precision. Free compute needs the utilization of its source; where that is not
  // known yet (a node's first sweep) the capacity counts but nothing of it is offered as free.
  auto stale_gauge = [&](const Latest& l) { return !l.has() || l.s.timestamp_ms < horizon; };
  EraseIf(n.capacity, stale_gauge);
  EraseIf(n.capacity_by_source, stale_gauge);
  std::set<std::string_view> precisions;
  for (const auto& [p, l] : n.capacity) precisions.insert(p);
  for (const auto& [sp, l] : n.capacity_by_source) precisions.insert(sp.second);
  for (std::string_view p : precisions) {
    auto source = [&](const char* s) -> double {
      auto it = n.capacity_by_source.find({s, std::string(p)});
      return it == n.capacity_by_source.end() ? NAN : std::max(0.0, it->second.s.value);
    };
    double cpu_cap = source("cpu"), gpu_cap = source("gpu");
    bool by_source = !std::isnan(cpu_cap) || !std::isnan(gpu_cap);
    if (std::isnan(cpu_cap)) cpu_cap = 0;
    if (std::isnan(gpu_cap)) gpu_cap = 0;
    auto it = n.capacity.find(std::string(p));
    double cap = it != n.capacity.end() ? std::max(0.0, it->second.s.value) : cpu_cap + gpu_cap;
    if (!by_source) {
      // Without the split, a GPU node's peak is its GPUs' (they dwarf its CPUs); else the CPUs'.
      (f.gpus > 0 ? gpu_cap : cpu_cap) = cap;
    }
    ComputeFigures c;
    c.capacity_flops = cap;
    c.cpu_capacity_flops = cpu_cap;
    c.gpu_capacity_flops = gpu_cap;
    c.cpu_free_flops = std::isnan(cpu_util) ? 0 : cpu_cap * (1 - cpu_util);
    c.gpu_free_flops = std::isnan(gpu_util) ? 0 : gpu_cap * (1 - gpu_util);
    c.free_flops = std::min(cap, c.cpu_free_flops + c.gpu_free_flops);
    f.compute.emplace(std::string(p), c);
  }

  // Power and energy.
  if (n.power.has() && n.power.s.timestamp_ms >= horizon && n.power_source == "estimated") {
    // A utilization model, not a meter: kept apart, never added to measured power.
    f.estimated_power_watts = n.power.s.value;
    f.nodes_with_estimated_power = 1;
  } else if (n.power.has() && n.power.s.timestamp_ms >= horizon) {
    // A shared chassis' reading is added once per dc, in Snapshot, not once per node.
    if (!n.power_shared) f.power_watts = n.power.s.value;
    f.nodes_with_power = 1;
    f.power_sources[n.power_source.empty() ? "unknown" : n.power_source] = 1;
  }
  f.energy_joules_total = n.energy.total - n.energy_not_counted;
  f.estimated_energy_joules_total = n.estimated_energy.total;

  // Links.
  n.link_figures.clear();
  for (auto it = n.links.begin(); it != n.links.end();) {
    Link& l = it->second;
    EraseIf(l.devices, [&](const LinkDevice& d) {
      return d.rx.cur.timestamp_ms < horizon && d.tx.cur.timestamp_ms < horizon;
    });
    bool has_capacity = l.capacity_bits.has() && l.capacity_bits.s.timestamp_ms >= horizon;
    if (!has_capacity && l.devices.empty()) {
      it = n.links.erase(it);
      continue;
    }
    LinkFigures lf;
    if (has_capacity) lf.capacity_bytes_per_second = std::max(0.0, l.capacity_bits.s.value) / 8;
    for (const auto& [dev, d] : l.devices) {
      double r;
      if (d.rx.HasRate() && CounterRate(d.rx.prev, d.rx.cur, &r)) lf.receive_bytes_per_second += r;
      if (d.tx.HasRate() && CounterRate(d.tx.prev, d.tx.cur, &r)) {
        lf.transmit_bytes_per_second += r;
      }
    }
    n.link_figures.emplace_back(it->first, lf);
    ++it;
  }

  // History for /watcher: one point per completed CPU interval (whole sweeps only, so a
  // request carrying half a sweep does not record a mixed interval); memory-only nodes record
  // their memory samples.
  if (!std::isnan(cpu_util) && one_interval && interval_end > n.history_end_ms) {
    n.history.Add(interval_end, cpu_util, mem_util);
    n.history_end_ms = interval_end;
  } else if (n.cpu.empty() && !std::isnan(mem_util) && memory_ts > n.history_end_ms) {
    n.history.Add(memory_ts, NAN, mem_util);
    n.history_end_ms = memory_ts;
  }
  n.figures = std::move(f);
}

void CapacityModel::ForgetGone(int64_t now_ms) {
  const int64_t gone_before = now_ms - options_.forget_after.count();
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.newest_ms >= gone_before) {
      ++it;
      continue;
    }
    // Its energy stays in the dc's counter, so forgetting a node never makes the counter drop.
    Retired& r = retired_[it->second.location];
    r.energy_joules += it->second.energy.total - it->second.energy_not_counted;
    r.estimated_energy_joules += it->second.estimated_energy.total;
    r.nodes += 1;
    it = nodes_.erase(it);
  }
  for (auto& [loc, meters] : facility_) {
    EraseIf(meters, [&](const FacilityMeter& m) {
      return !m.watts.has() || m.watts.s.timestamp_ms < gone_before;
    });
  }
  EraseIf(facility_, [](const auto& meters) { return meters.empty(); });
  for (auto it = shared_energy_node_.begin(); it != shared_energy_node_.end();) {
    const auto& [loc, identity] = it->first;
    bool known = nodes_.count(loc.region + '\0' + loc.dc + '\0' + it->second) > 0;
    it = known ? std::next(it) : shared_energy_node_.erase(it);
  }
}

CapacitySnapshot CapacityModel::Snapshot(int64_t now_ms) {
  std::lock_guard lock(mu_);
  ForgetGone(now_ms);
  CapacitySnapshot snap;
  snap.at_ms = now_ms;
  snap.stale_after_ms = options_.stale_after.count();
  const int64_t stale_before = now_ms - options_.stale_after.count();
  // Dcs a lower tier reports: their figures as forwarded (a dc is stale there when no shard's
  // evaluation is fresh; its last figures stay, so a partition never reads as zero supply).
  auto tier = tier_->Figures(stale_before, now_ms - options_.forget_after.count());
  for (auto& [loc, t] : tier) {
    GroupFigures& g = snap.dcs[loc];
    g = t.figures;
    (t.shards_fresh > 0 ? g.dcs_reporting : g.dcs_stale) = 1;
    snap.from_tier.insert(loc);
    for (const auto& [id, lf] : t.links) snap.links[{loc.region, loc.dc, id.first, id.second}] = lf;
  }
  // Nodes arrive in key order (region, dc, instance): remember the current dc's entry.
  const Location* last_loc = nullptr;
  GroupFigures* dc = nullptr;
  // Shared chassis by dc and identity: the newest reading of any of its nodes.
  std::map<Location, std::map<std::string_view, Sample>> shared;
  for (const auto& [key, node] : nodes_) {
    if (tier.count(node.location) > 0) {
      // Never added to a lower tier's figures of the same dc: the tier's figures win.
      snap.conflicts.insert(node.location);
      continue;
    }
    if (!last_loc || !(*last_loc == node.location)) {
      dc = &snap.dcs[node.location];
      last_loc = &node.location;
    }
    dc->newest_sample_ms = std::max(dc->newest_sample_ms, node.newest_ms);
    if (node.newest_ms < stale_before) {
      dc->nodes_stale += 1;  // counted, but its figures are no longer supply
      dc->energy_joules_total += node.energy.total - node.energy_not_counted;
      dc->estimated_energy_joules_total += node.estimated_energy.total;
      continue;
    }
    dc->Add(node.figures);
    dc->nodes_up += 1;
    if (node.power_shared && node.figures.nodes_with_power > 0) {
      if (node.power_chassis.empty()) {
        // Nothing tells its chassis apart: its share.
        double share = node.power.s.value / static_cast<double>(node.power_systems);
        dc->power_watts += share;
        dc->shared_power_watts += share;
      } else {
        Sample& chassis = shared[node.location]
                              .try_emplace(node.power_chassis, Sample{INT64_MIN, 0})
                              .first->second;
        if (node.power.s.timestamp_ms > chassis.timestamp_ms ||
            (node.power.s.timestamp_ms == chassis.timestamp_ms &&
             node.power.s.value > chassis.value)) {
          chassis = node.power.s;
        }
      }
    }
    for (const auto& [id, lf] : node.link_figures) {
      LinkFigures& l = snap.links[{node.location.region, node.location.dc, id.first, id.second}];
      l.capacity_bytes_per_second =
          std::max(l.capacity_bytes_per_second, lf.capacity_bytes_per_second);
      l.receive_bytes_per_second += lf.receive_bytes_per_second;
      l.transmit_bytes_per_second += lf.transmit_bytes_per_second;
    }
  }
  for (const auto& [loc, chassis] : shared) {
    GroupFigures& g = snap.dcs[loc];
    for (const auto& [identity, reading] : chassis) {
      g.power_watts += reading.value;
      g.shared_power_watts += reading.value;
      g.shared_power_chassis += 1;
    }
  }
  for (const auto& [loc, r] : retired_) {
    if (tier.count(loc) > 0) continue;
    GroupFigures& g = snap.dcs[loc];
    g.energy_joules_total += r.energy_joules;
    g.estimated_energy_joules_total += r.estimated_energy_joules;
    g.nodes_gone += r.nodes;
  }
  for (auto& [loc, g] : snap.dcs) {
    if (tier.count(loc) > 0) continue;
    (g.nodes_up > 0 ? g.dcs_reporting : g.dcs_stale) = 1;
  }
  // Facility power: fresh meter readings win over the configured figure (a lower tier's dcs
  // come with theirs).
  for (auto& [loc, g] : snap.dcs) {
    if (tier.count(loc) > 0) continue;
    double watts = 0;
    bool metered = false;
    if (auto it = facility_.find(loc); it != facility_.end()) {
      for (const auto& [id, m] : it->second) {
        if (m.watts.has() && m.watts.s.timestamp_ms >= stale_before) {
          watts += m.watts.s.value;
          metered = true;
        }
      }
    }
    if (metered) {
      snap.facility_power_source[loc] = "meter";
    } else if (auto it = options_.facility_power_watts.find(loc);
               it != options_.facility_power_watts.end()) {
      watts = it->second;
      snap.facility_power_source[loc] = "config";
    } else {
      continue;
    }
    g.facility_power_watts = watts;
    g.dcs_with_facility_power = 1;
    g.pue_it_power_watts = g.power_watts;
  }
  for (const auto& [loc, f] : snap.dcs) snap.regions[loc.region].Add(f);
  for (const auto& [region, f] : snap.regions) snap.alliance.Add(f);
  return snap;
}

std::vector<NodeLoad> CapacityModel::NodeLoads(int64_t now_ms) {
  std::lock_guard lock(mu_);
  const int64_t stale_before = now_ms - options_.stale_after.count();
  std::vector<NodeLoad> out;
  for (const auto& [key, node] : nodes_) {
    if (node.newest_ms < stale_before) continue;
    NodeLoad l;
    l.location = node.location;
    l.instance = node.instance;
    l.newest_sample_ms = node.newest_ms;
    node.history.Stats(now_ms, &l.cpu, &l.memory);
    out.push_back(std::move(l));
  }
  std::sort(out.begin(), out.end(), [](const NodeLoad& a, const NodeLoad& b) {
    return std::tie(a.instance, a.location) < std::tie(b.instance, b.location);
  });
  return out;
}

}  // namespace suanli::capacity
