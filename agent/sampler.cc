#include "agent/sampler.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "agent/collectors/registry.h"

namespace suanli::agent {

Sampler::Sampler(const HostPaths& paths, const std::map<std::string, bool>& overrides,
                 prometheus::Registry& registry) {
  auto& duration = prometheus::BuildGauge()
                       .Name("suanli_agent_collector_duration_seconds")
                       .Help("Time the collector's last run took.")
                       .Register(registry);
  auto& success = prometheus::BuildGauge()
                      .Name("suanli_agent_collector_success")
                      .Help("1 when the collector's last run succeeded (no data counts as success).")
                      .Register(registry);
  auto& no_data = prometheus::BuildGauge()
                      .Name("suanli_agent_collector_no_data")
                      .Help("1 when the collector found nothing to measure on this host.")
                      .Register(registry);
  auto& failures = prometheus::BuildCounter()
                       .Name("suanli_agent_collector_failures_total")
                       .Help("Collector runs that failed.")
                       .Register(registry);
  for (const auto& spec : AllCollectors()) {
    auto it = overrides.find(spec.name);
    bool on = it != overrides.end() ? it->second : spec.enabled_by_default;
    if (!on) continue;
    Entry e;
    e.name = spec.name;
    e.collector = spec.make(paths);
    e.duration = &duration.Add({{"collector", spec.name}});
    e.success = &success.Add({{"collector", spec.name}});
    e.no_data = &no_data.Add({{"collector", spec.name}});
    e.failures = &failures.Add({{"collector", spec.name}});
    entries_.push_back(std::move(e));
  }
}

std::vector<std::string> Sampler::enabled() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.name);
  return names;
}

void Sampler::RunOnce(Sweep& out) {
  for (auto& e : entries_) {
    scratch_.Clear();
    auto start = std::chrono::steady_clock::now();
    CollectResult r = e.collector->Collect(scratch_);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    e.duration->Set(secs);
    e.success->Set(r.kind == CollectResult::Kind::kFailed ? 0 : 1);
    e.no_data->Set(r.kind == CollectResult::Kind::kNoData ? 1 : 0);
    if (r.kind == CollectResult::Kind::kFailed) e.failures->Increment();
    // Log on change only: a sweep every second must not flood the log.
    if (r.kind != e.last_kind || r.message != e.last_message) {
      if (r.kind == CollectResult::Kind::kFailed) {
        spdlog::warn("collector failed collector={} reason=\"{}\"", e.name, r.message);
      } else if (r.kind == CollectResult::Kind::kNoData) {
        spdlog::info("collector has no data on this host collector={} reason=\"{}\"", e.name,
                     r.message);
      } else if (e.last_kind == CollectResult::Kind::kFailed) {
        spdlog::info("collector recovered collector={}", e.name);
      }
      e.last_kind = r.kind;
      e.last_message = r.message;
    }
    for (auto& f : scratch_.mutable_families()) {
      for (auto& p : f.points) out.Add(f.name, f.help, f.type, std::move(p.labels), p.value);
    }
  }
}

}  // namespace suanli::agent
