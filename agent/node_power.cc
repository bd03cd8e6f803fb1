#include "agent/node_power.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace suanli::agent {
namespace {

std::string_view LabelOf(const Point& p, std::string_view name) {
  for (const Label& l : p.labels) {
    if (l.name == name) return l.value;
  }
  return {};
}

std::optional<double> Single(const Sweep& sweep, std::string_view family) {
  const Family* f = sweep.Find(family);
  if (f == nullptr || f->points.empty()) return std::nullopt;
  return f->points[0].value;
}

double SumOf(const Family* f) {
  double sum = 0;
  if (f != nullptr) {
    for (const Point& p : f->points) {
      if (std::isfinite(p.value)) sum += p.value;
    }
  }
  return sum;
}

}  // namespace

NodePower::NodePower(std::chrono::milliseconds sample_interval)
    : max_age_seconds_(std::max(30.0, 3.0 * sample_interval.count() / 1000.0)) {}

std::map<std::string, double> NodePower::RaplWatts(const Sweep& sweep, int64_t timestamp_ms) {
  std::map<std::string, double> watts;  // zone -> W, summed over indexes
  const Family* f = sweep.Find("suanli_rapl_energy_joules_total");
  if (f == nullptr) return watts;
  for (const Point& p : f->points) {
    std::string zone(LabelOf(p, "zone"));
    std::string key = zone + '\0' + std::string(LabelOf(p, "index"));
    auto it = rapl_prev_.find(key);
    if (it != rapl_prev_.end() && timestamp_ms > it->second.ms && p.value >= it->second.joules) {
      watts[zone] += (p.value - it->second.joules) * 1000.0 /
                     static_cast<double>(timestamp_ms - it->second.ms);
    }
    rapl_prev_[key] = RaplPoint{p.value, timestamp_ms};
  }
  return watts;
}

std::optional<double> NodePower::CpuUtilization(const Sweep& sweep) {
  const Family* f = sweep.Find("node_cpu_seconds_total");
  if (f == nullptr || f->points.empty()) {
    have_cpu_prev_ = false;
    return std::nullopt;
  }
  double idle = 0, all = 0;
  for (const Point& p : f->points) {
    if (!std::isfinite(p.value)) continue;
    std::string_view mode = LabelOf(p, "mode");
    if (mode == "idle" || mode == "iowait") idle += p.value;
    all += p.value;
  }
  std::optional<double> util;
  if (have_cpu_prev_) {
    double d_idle = idle - cpu_idle_prev_, d_all = all - cpu_all_prev_;
    if (d_all > 0 && d_idle >= 0 && d_idle <= d_all) util = 1.0 - d_idle / d_all;
  }
  have_cpu_prev_ = true;
  cpu_idle_prev_ = idle;
  cpu_all_prev_ = all;
  return util;
}

void NodePower::Derive(Sweep& sweep, int64_t timestamp_ms) {
  std::map<std::string, double> rapl = RaplWatts(sweep, timestamp_ms);
  std::optional<double> cpu_util = CpuUtilization(sweep);
  const Family* gpu = sweep.Find("suanli_gpu_power_watts");
  double gpu_watts = SumOf(gpu);

  const char* source = nullptr;
  double watts = 0;
  // A reading that covers several servers carries the chassis' identity and its systems, so
  // that the aggregator counts it once per chassis.
  const Point* shared_point = nullptr;
  if (const Family* rf = sweep.Find("suanli_redfish_server_power_watts");
      rf && !rf->points.empty()) {
    const Point& p = rf->points[0];
    std::string_view chassis = LabelOf(p, "chassis");
    bool fresh = true;
    if (const Family* age = sweep.Find("suanli_redfish_reading_age_seconds")) {
      for (const Point& a : age->points) {
        if (LabelOf(a, "chassis") == chassis) fresh = a.value <= max_age_seconds_;
      }
    }
    if (fresh) {
      bool shared = LabelOf(p, "scope") == "shared";
      source = shared ? "redfish_shared" : "redfish";
      watts = p.value;
      if (shared) shared_point = &p;
    }
  }
  if (source == nullptr) {
    auto active = Single(sweep, "suanli_ipmi_dcmi_power_measurement_active");
    auto age = Single(sweep, "suanli_ipmi_dcmi_reading_age_seconds");
    const Family* ipmi = sweep.Find("suanli_ipmi_dcmi_power_watts");
    if (ipmi && !ipmi->points.empty() && active.value_or(1) == 1 &&
        age.value_or(0) <= max_age_seconds_) {
      const Point& p = ipmi->points[0];
      bool shared = LabelOf(p, "scope") == "shared";
      source = shared ? "ipmi_dcmi_shared" : "ipmi_dcmi";
      watts = p.value;
      if (shared) shared_point = &p;
    }
  }
  if (source == nullptr) {
    if (const Family* acpi = sweep.Find("suanli_acpi_power_meter_watts");
        acpi && !acpi->points.empty()) {
      source = "acpi_power_meter";
      watts = SumOf(acpi);
    }
  }
  if (source == nullptr && rapl.count("psys")) {
    source = "rapl_psys";
    watts = rapl["psys"] + gpu_watts;
  }
  if (source == nullptr && rapl.count("package")) {
    source = "rapl";
    watts = rapl["package"] + (rapl.count("dram") ? rapl["dram"] : 0) + gpu_watts;
  }
  if (source == nullptr && gpu != nullptr && !gpu->points.empty()) {
    source = "gpu";
    watts = gpu_watts;
  }
  if (source == nullptr && cpu_util) {
    // Only where nothing measures power at all: any family of a meter, even one that gave no
    // figure this sweep, rules the estimate out.
    bool measured = false;
    for (std::string_view family :
         {"suanli_redfish_power_watts", "suanli_ipmi_dcmi_power_watts",
          "suanli_acpi_power_meter_watts", "suanli_rapl_energy_joules_total",
          "suanli_hwmon_power_watts", "suanli_gpu_power_watts"}) {
      const Family* f = sweep.Find(family);
      measured = measured || (f != nullptr && !f->points.empty());
    }
    auto idle = Single(sweep, "suanli_node_cpu_power_model_idle_watts");
    auto max = Single(sweep, "suanli_node_cpu_power_model_max_watts");
    if (!measured && idle && max) {
      source = "estimated";
      watts = *idle + (*max - *idle) * *cpu_util;
    }
  }
  if (source == nullptr || !std::isfinite(watts)) return;

  bool estimated = std::string_view(source) == "estimated";
  EnergyIntegral& energy = estimated ? estimated_energy_ : measured_energy_;
  energy.Add(watts, timestamp_ms);
  (estimated ? measured_energy_ : estimated_energy_).last_watts = -1;
  std::vector<Label> labels{{"source", source}};
  if (shared_point != nullptr) {
    if (std::string_view id = LabelOf(*shared_point, "chassis_identity"); !id.empty()) {
      labels.push_back({"chassis_identity", std::string(id)});
    }
    labels.push_back({"systems", std::string(LabelOf(*shared_point, "systems"))});
  }
  sweep.Add("suanli_node_power_watts",
            "Whole-server power; source says which measurement, or \"estimated\" from the CPUs' "
            "power model and utilization where nothing measures it; a *_shared source covers "
            "the servers of a chassis (chassis_identity, systems), counted once per chassis.",
            MetricType::kGauge, std::move(labels), watts);
  static const std::vector<Label> kMeasuredLabels, kEstimatedLabels{{"source", "estimated"}};
  sweep.Add("suanli_node_energy_joules_total",
            "Whole-server energy integrated from suanli_node_power_watts since the agent started; "
            "source=\"estimated\" integrates the estimate, apart from measured energy.",
            MetricType::kCounter, estimated ? kEstimatedLabels : kMeasuredLabels, energy.joules);
}

void NodePower::EnergyIntegral::Add(double watts, int64_t timestamp_ms) {
  // Trapezoid between sweeps: the counter grows by the mean power times the interval.
  if (last_watts >= 0 && timestamp_ms > last_ms) {
    joules += (last_watts + watts) / 2 * static_cast<double>(timestamp_ms - last_ms) / 1000.0;
  }
  last_watts = watts;
  last_ms = timestamp_ms;
}

}  // namespace suanli::agent
