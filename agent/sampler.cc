#include "agent/sampler.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace suanli::agent {

Result<std::vector<BuiltCollector>> BuildCollectors(const AgentConfig& config) {
  std::vector<BuiltCollector> out;
  for (const auto& spec : AllCollectors()) {
    auto it = config.collectors.find(spec.name);
    bool on = it != config.collectors.end() ? it->second : spec.enabled_by_default;
    if (!on) continue;
    auto section = config.collector_config.find(spec.name);
    ConfigMap options = section != config.collector_config.end()
                            ? section->second
                            : ConfigMap(config.source, YAML::Node(YAML::NodeType::Map),
                                        "collector_config." + spec.name);
    CollectorContext ctx{config.paths, options, config.sample_interval};
    auto collector = spec.make(ctx);
    if (!collector.ok()) return collector.status();
    RETURN_IF_ERROR(options.Finish());
    out.push_back({&spec, std::move(collector).value()});
  }
  return out;
}

BlockingCollectorRunner::BlockingCollectorRunner(std::unique_ptr<Collector> collector,
                                                 std::string name)
    : collector_(std::move(collector)), name_(std::move(name)), thread_([this] { Loop(); }) {}

BlockingCollectorRunner::~BlockingCollectorRunner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BlockingCollectorRunner::Loop() {
  pthread_setname_np(pthread_self(), ("c-" + name_).substr(0, 15).c_str());
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || state_ == State::kRequested; });
    if (stop_) return;
    state_ = State::kRunning;
    Sweep local;
    lock.unlock();
    CollectResult r = collector_->Collect(local);
    lock.lock();
    output_ = std::move(local);
    result_ = std::move(r);
    state_ = State::kDone;
    cv_.notify_all();
  }
}

CollectResult BlockingCollectorRunner::Run(Sweep& out,
                                           std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (state_ == State::kRequested || state_ == State::kRunning) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 started_)
                    .count();
    return CollectResult::Failed("timed out: still running since " + std::to_string(secs) +
                                 "s ago");
  }
  // kDone here is a late result of a timed-out run: discarded.
  if (!collector_->MayBlockNow()) {
    state_ = State::kIdle;
    return collector_->Collect(out);  // the worker waits for kRequested: it cannot run now
  }
  state_ = State::kRequested;
  started_ = std::chrono::steady_clock::now();
  cv_.notify_all();
  if (!cv_.wait_until(lock, deadline, [this] { return state_ == State::kDone; })) {
    return CollectResult::Failed("timed out: no answer within the collector timeout");
  }
  state_ = State::kIdle;
  out = std::move(output_);
  output_.Clear();
  return std::move(result_);
}

Sampler::Sampler(std::vector<BuiltCollector> collectors, std::chrono::milliseconds timeout,
                 prometheus::Registry& registry)
    : timeout_(timeout) {
  auto& duration = prometheus::BuildGauge()
                       .Name("suanli_agent_collector_duration_seconds")
                       .Help("Time the collector's last run took.")
                       .Register(registry);
  auto& success =
      prometheus::BuildGauge()
          .Name("suanli_agent_collector_success")
          .Help("1 when the collector's last run succeeded (no data counts as success).")
          .Register(registry);
  auto& no_data = prometheus::BuildGauge()
                      .Name("suanli_agent_collector_no_data")
                      .Help("1 when the collector found nothing to measure on this host.")
                      .Register(registry);
  auto& failures = prometheus::BuildCounter()
                       .Name("suanli_agent_collector_failures_total")
                       .Help("Collector runs that failed or timed out.")
                       .Register(registry);
  for (auto& built : collectors) {
    const std::string& name = built.spec->name;
    Entry e;
    e.name = name;
    if (built.spec->may_block) {
      e.runner = std::make_unique<BlockingCollectorRunner>(std::move(built.collector), name);
    } else {
      e.collector = std::move(built.collector);
    }
    e.duration = &duration.Add({{"collector", name}});
    e.success = &success.Add({{"collector", name}});
    e.no_data = &no_data.Add({{"collector", name}});
    e.failures = &failures.Add({{"collector", name}});
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
    auto start = std::chrono::steady_clock::now();
    // Inline collectors add straight to the sweep; a runner's output is merged after.
    CollectResult r;
    if (e.runner) {
      scratch_.Clear();
      r = e.runner->Run(scratch_, start + timeout_);
    } else {
      r = e.collector->Collect(out);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    e.duration->Set(secs);
    if (!e.ran || r.kind != e.last_kind) {
      e.success->Set(r.kind == CollectResult::Kind::kFailed ? 0 : 1);
      e.no_data->Set(r.kind == CollectResult::Kind::kNoData ? 1 : 0);
      e.ran = true;
    }
    if (r.kind == CollectResult::Kind::kFailed) e.failures->Increment();
    // Log on change only: a sweep every second must not flood the log.
    if (r.kind != e.last_kind || r.message != e.last_message) {
      if (r.kind == CollectResult::Kind::kFailed) {
        spdlog::warn("collector failed collector={} reason=\"{}\"", e.name, r.message);
      } else if (r.kind == CollectResult::Kind::kNoData) {
        spdlog::info("collector has no data on this host collector={} reason=\"{}\"", e.name,
                     r.message);
      } else if (!r.message.empty()) {
        // OK with a message: partial input (e.g. malformed lines skipped).
        spdlog::warn("collector degraded collector={} reason=\"{}\"", e.name, r.message);
      } else if (e.last_kind == CollectResult::Kind::kFailed) {
        spdlog::info("collector recovered collector={}", e.name);
      }
      e.last_kind = r.kind;
      e.last_message = r.message;
    }
    if (e.runner) out.Merge(std::move(scratch_));
  }
}

}  // namespace suanli::agent
