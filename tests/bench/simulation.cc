#include "tests/bench/simulation.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace suanli::sim {
namespace {

constexpr const char* kPrecisions[] = {"fp64", "fp32", "fp16", "int8"};
// Peak FLOPS of one simulated CPU core and one simulated GPU (an A100-class part), per precision.
constexpr double kCoreFlops[] = {40e9, 80e9, 80e9, 320e9};
constexpr double kGpuFlops[] = {9.7e12, 19.5e12, 312e12, 624e12};
constexpr double kGpuMemoryBytes = 80.0 * (1ull << 30);
constexpr double kNodeMemoryBytes = 256.0 * (1ull << 30);
constexpr double kLinkBitsPerSecond = 100e9;
constexpr const char* kModes[] = {"idle", "user", "system", "iowait"};

double Clamp01(double v) { return std::fmin(1.0, std::fmax(0.0, v)); }

}  // namespace

Simulation::Simulation(const SimulationOptions& o) : o_(o) {
  std::vector<std::string> dcs;
  for (const auto& r : o.regions) {
    for (int d = 1; d <= o.dcs_per_region; ++d) dcs.push_back(r + "-" + std::to_string(d));
  }
  size_t dc_index = 0;
  for (const auto& r : o.regions) {
    for (int d = 1; d <= o.dcs_per_region; ++d, ++dc_index) {
      if (!o.only_dc.empty() && dcs[dc_index] != o.only_dc) continue;
      for (int n = 0; n < o.nodes_per_dc; ++n) {
        Node node;
        node.region = r;
        node.dc = dcs[dc_index];
        node.instance = node.dc + "-n" + std::to_string(n);
        node.utilization = Clamp01(o.utilization);
        node.link_utilization = Clamp01(o.link_utilization);
        if (n == 0 && dcs.size() > 1) node.peer_dc = dcs[(dc_index + 1) % dcs.size()];
        node.cpu.assign(static_cast<size_t>(o.cpus), {0, 0, 0, 0});
        nodes_.push_back(std::move(node));
      }
    }
  }
}

std::vector<TimeSeries> Simulation::Sweep(double t, double dt, int64_t now_ms, size_t begin,
                                          size_t end) {
  std::lock_guard lock(mu_);
  end = std::min(end, nodes_.size());
  std::vector<TimeSeries> out;
  out.reserve((end - begin) * (4 * o_.cpus + 40 + 8 * o_.gpus));
  std::map<std::pair<std::string, std::string>, double> it_power;  // (region, dc) -> W
  for (size_t i = begin; i < end; ++i) {
    Node& n = nodes_[i];
    // A slow wobble per node, so utilization has a spread over a window (STD > 0).
    double phase = static_cast<double>(i);
    double u = Clamp01(n.utilization + 0.04 * std::sin(t / 20.0 + phase));
    double gpu_u = Clamp01(n.utilization + 0.03 * std::cos(t / 15.0 + phase));
    for (auto& c : n.cpu) {
      c[0] += (1 - u) * dt;
      c[1] += 0.8 * u * dt;
      c[2] += 0.2 * u * dt;
    }
    n.rx += 1e8 * (0.2 + u) * dt;
    n.tx += 6e7 * (0.2 + u) * dt;
    double gpu_power = o_.gpus * (60 + 340 * gpu_u);
    double power = 150 + 250 * u + gpu_power;
    n.energy += power * dt;
    double link_bytes = n.link_utilization * kLinkBitsPerSecond / 8 * dt;
    n.link_rx += 0.9 * link_bytes;
    n.link_tx += link_bytes;
    n.sweeps += 1;
    it_power[{n.region, n.dc}] += power;

    auto add = [&](const char* name, std::vector<Label> extra, double v) {
      extra.push_back({"__name__", name});
      extra.push_back({"region", n.region});
      extra.push_back({"dc", n.dc});
      extra.push_back({"instance", n.instance});
      out.push_back(TimeSeries{Labels(std::move(extra)), {{now_ms, v}}});
    };
    for (size_t c = 0; c < n.cpu.size(); ++c) {
      for (int m = 0; m < 4; ++m) {
        add("node_cpu_seconds_total", {{"cpu", std::to_string(c)}, {"mode", kModes[m]}},
            n.cpu[c][m]);
      }
    }
    add("node_memory_MemTotal_bytes", {}, kNodeMemoryBytes);
    add("node_memory_MemAvailable_bytes", {}, kNodeMemoryBytes * (1 - (0.2 + 0.6 * u)));
    add("node_network_receive_bytes_total", {{"device", "eth0"}}, n.rx);
    add("node_network_transmit_bytes_total", {{"device", "eth0"}}, n.tx);
    add("node_load1", {}, u * o_.cpus);
    for (int p = 0; p < 4; ++p) {
      double cpu_cap = kCoreFlops[p] * o_.cpus, gpu_cap = kGpuFlops[p] * o_.gpus;
      add("suanli_node_compute_capacity_flops", {{"precision", kPrecisions[p]}}, cpu_cap + gpu_cap);
      add("suanli_node_compute_capacity_flops_by_source",
          {{"precision", kPrecisions[p]}, {"source", "cpu"}}, cpu_cap);
      if (o_.gpus > 0) {
        add("suanli_node_compute_capacity_flops_by_source",
            {{"precision", kPrecisions[p]}, {"source", "gpu"}}, gpu_cap);
      }
    }
    for (int g = 0; g < o_.gpus; ++g) {
      std::string uuid = "GPU-" + n.instance + "-" + std::to_string(g);
      std::vector<Label> id = {{"gpu", std::to_string(g)}, {"uuid", uuid}};
      add("suanli_gpu_utilization_ratio", id, gpu_u);
      add("suanli_gpu_memory_total_bytes", id, kGpuMemoryBytes);
      add("suanli_gpu_memory_used_bytes", id, kGpuMemoryBytes * gpu_u);
      add("suanli_gpu_power_watts", id, 60 + 340 * gpu_u);
      auto info = id;
      info.push_back({"model", "NVIDIA A100-SXM4-80GB"});
      info.push_back({"driver_version", "535.104.05"});
      add("suanli_gpu_info", info, 1);
    }
    add("suanli_node_power_watts", {{"source", "redfish"}}, power);
    add("suanli_node_energy_joules_total", {}, n.energy);
    add("suanli_agent_sweeps_total", {}, n.sweeps);
    if (!n.peer_dc.empty()) {
      std::vector<Label> link = {{"link", "passage-" + n.dc}, {"peer_dc", n.peer_dc}};
      auto with_device = link;
      with_device.push_back({"device", "eth1"});
      add("suanli_link_receive_bytes_total", with_device, n.link_rx);
      add("suanli_link_transmit_bytes_total", with_device, n.link_tx);
      add("suanli_link_capacity_bits_per_second", link, kLinkBitsPerSecond);
    }
  }
  if (o_.facility_meters) {
    // A meter at the facility's feed: IT power plus cooling and losses (PUE 1.3).
    for (const auto& [loc, watts] : it_power) {
      out.push_back(TimeSeries{Labels({{"__name__", "suanli_facility_power_watts"},
                                       {"region", loc.first},
                                       {"dc", loc.second},
                                       {"instance", loc.second + "-facility-meter"}}),
                               {{now_ms, watts * 1.3}}});
    }
  }
  if (begin == 0 && end == nodes_.size()) {
    last_ = out;
    ++sweeps_;
  }
  return out;
}

bool Simulation::Control(const std::map<std::string, std::string>& q, std::string* message) {
  std::lock_guard lock(mu_);
  auto get = [&](const char* k) -> std::string {
    auto it = q.find(k);
    return it == q.end() ? "" : it->second;
  };
  std::string region = get("region"), dc = get("dc"), restart = get("restart");
  std::string util = get("utilization"), link = get("link_utilization");
  int changed = 0;
  for (Node& n : nodes_) {
    if (!restart.empty()) {
      if (n.instance != restart) continue;
      for (auto& c : n.cpu) c = {0, 0, 0, 0};
      n.rx = n.tx = n.link_rx = n.link_tx = n.energy = n.sweeps = 0;
      ++changed;
      continue;
    }
    if ((!region.empty() && n.region != region) || (!dc.empty() && n.dc != dc)) continue;
    if (!util.empty()) n.utilization = Clamp01(std::atof(util.c_str()));
    if (!link.empty()) n.link_utilization = Clamp01(std::atof(link.c_str()));
    ++changed;
  }
  *message = changed == 0 ? "no node matches\n" : "changed " + std::to_string(changed) + " nodes\n";
  return changed > 0;
}

std::string Simulation::MetricsText() {
  std::lock_guard lock(mu_);
  // One family's series must be contiguous in the text format: group them by name.
  std::map<std::string, std::vector<const TimeSeries*>> by_name;
  for (const auto& ts : last_) by_name[std::string(ts.labels.MetricName())].push_back(&ts);
  std::ostringstream out;
  out.precision(17);
  for (const auto& [name, series] : by_name) {
    bool counter = name.ends_with("_total");
    out << "# TYPE " << name << (counter ? " counter\n" : " gauge\n");
    for (const TimeSeries* ts : series) {
      out << name << '{';
      bool first = true;
      for (const auto& l : ts->labels.items()) {
        if (l.name == "__name__") continue;
        out << (first ? "" : ",") << l.name << "=\"" << l.value << '"';
        first = false;
      }
      out << "} " << ts->samples[0].value << '\n';
    }
  }
  out << "# TYPE suanli_loadgen_sweeps_total counter\nsuanli_loadgen_sweeps_total " << sweeps_
      << '\n';
  return out.str();
}

}  // namespace suanli::sim
