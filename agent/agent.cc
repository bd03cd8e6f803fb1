#include "agent/agent.h"

#include <prometheus/gauge.h>
#include <pthread.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>
#include <utility>

#include "core/text_exposition.h"

namespace suanli::agent {
namespace {

prometheus::MetricType ToPrometheusType(MetricType t) {
  return t == MetricType::kCounter ? prometheus::MetricType::Counter
                                   : prometheus::MetricType::Gauge;
}

std::vector<prometheus::MetricFamily> SweepToFamilies(const Sweep& sweep) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(sweep.families().size());
  for (const auto& f : sweep.families()) {
    FamilyBuilder b(f.name, f.help, ToPrometheusType(f.type));
    for (const auto& p : f.points) {
      std::vector<prometheus::ClientMetric::Label> labels;
      labels.reserve(p.labels.size());
      for (const auto& l : p.labels) labels.push_back({l.name, l.value});
      b.Add(std::move(labels), p.value);
    }
    out.push_back(std::move(b).Build());
  }
  return out;
}

// Warns about files holding secrets that others can read, and exports how many there are.
void CheckSecretFiles(const AgentConfig& config, prometheus::Registry& registry) {
  std::vector<std::string> files = config.web.secret_files;
  bool inline_token = false;
  for (const auto& ep : config.remote_write) inline_token |= !ep.bearer_token.empty();
  if (inline_token && config.source.front() != '<') files.push_back(config.source);
  for (const auto& ep : config.remote_write) {
    if (!ep.key_file.empty()) files.push_back(ep.key_file);
  }
  // Registering again returns the same gauge (prometheus-cpp merges equal families).
  prometheus::BuildGauge()
      .Name("suanli_config_secret_files_readable_by_others")
      .Help(
          "Files holding secrets (web config, TLS keys, tokens) that other users can read, "
          "as of the last (re)load.")
      .Register(registry)
      .Add({})
      .Set(WarnIfReadableByOthers(files));
}

}  // namespace

remote::WriteRequest SweepToWriteRequest(const Sweep& sweep,
                                         const std::map<std::string, std::string>& static_labels,
                                         int64_t timestamp_ms) {
  remote::WriteRequest req;
  req.series.reserve(sweep.PointCount());
  for (const auto& f : sweep.families()) {
    MetricMetadata md;
    md.type = f.type == MetricType::kCounter ? MetricType::kCounter : MetricType::kGauge;
    md.metric_family_name = f.name;
    md.help = f.help;
    req.metadata.push_back(std::move(md));
    for (const auto& p : f.points) {
      std::vector<Label> labels;
      labels.reserve(p.labels.size() + static_labels.size() + 1);
      labels.push_back({"__name__", f.name});
      for (const auto& l : p.labels) {
        if (static_labels.count(l.name) == 0 && !l.value.empty()) labels.push_back(l);
      }
      for (const auto& [n, v] : static_labels) labels.push_back({n, v});
      TimeSeries ts;
      ts.labels = Labels(std::move(labels));
      ts.samples.push_back({timestamp_ms, p.value});
      req.series.push_back(std::move(ts));
    }
  }
  return req;
}

Agent::Agent(AgentConfig config, const Clock& clock)
    : clock_(clock),
      config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()) {
  ::sem_init(&loop_wake_, /*pshared=*/0, 0);
  sweeps_ = &prometheus::BuildCounter()
                 .Name("suanli_agent_sweeps_total")
                 .Help("Completed sampling sweeps.")
                 .Register(*registry_)
                 .Add({});
  prometheus::BuildGauge()
      .Name("suanli_agent_build_info")
      .Help("Always 1; the agent's version as a label.")
      .Register(*registry_)
      .Add({{"version", SUANLI_VERSION}})
      .Set(1);
}

Agent::~Agent() {
  Stop();
  ::sem_destroy(&loop_wake_);
}

Status Agent::Start() {
  HttpServer::Options opts;
  opts.listen_address = config_.listen_address;
  opts.io_threads = 1;
  opts.worker_threads = 2;
  opts.max_body_bytes = 1 << 16;  // the agent takes no uploads
  opts.registry = registry_.get();
  server_ = std::make_unique<HttpServer>(opts);
  RETURN_IF_ERROR(server_->SetWebConfig(config_.web));
  CheckSecretFiles(config_, *registry_);
  server_->Route(
      "GET", "/metrics", [this](const HttpRequest&) { return HandleMetrics(); }, kScopeMetrics);
  server_->Route(
      "GET", "/-/healthy", [](const HttpRequest&) { return HttpResponse::Text(200, "Healthy\n"); },
      kScopePublic);
  RETURN_IF_ERROR(server_->Start());
  spdlog::info("listening on {}://{} tls={} auth={}", server_->tls() ? "https" : "http",
               server_->address(), server_->tls(), config_.web.auth_enabled());
  StartPipeline();
  return Status::Ok();
}

void Agent::StartPipeline() {
  auto built = BuildCollectors(config_);
  if (!built.ok()) {
    // LoadAgentConfig built the same collectors already; this cannot fail for a loaded config.
    spdlog::error("cannot build collectors: {}", built.status().message());
    built = std::vector<BuiltCollector>{};
  }
  auto timeout = std::min(config_.collector_timeout, config_.sample_interval * 9 / 10);
  sampler_ = std::make_unique<Sampler>(std::move(built).value(), timeout, *registry_);
  links_ = std::make_unique<Links>(config_.links, config_.sample_interval);
  encoder_ = std::make_unique<WriteRequestEncoder>(
      config_.labels, config_.sample_interval < WriteRequestEncoder::kCachedShapeBelow);
  node_power_ = std::make_unique<NodePower>(config_.sample_interval);
  warned_missing_links_ = false;
  std::string names;
  for (const auto& n : sampler_->enabled()) names += (names.empty() ? "" : ",") + n;
  spdlog::info("sampling every {}ms collectors={} procfs={} sysfs={}",
               config_.sample_interval.count(), names, config_.paths.procfs, config_.paths.sysfs);
  if (!config_.remote_write.empty()) {
    std::vector<std::string> urls;
    for (const auto& ep : config_.remote_write) urls.push_back(ep.url);
    spool_ = std::make_unique<Spool>(config_.spool, urls, clock_, *registry_);
  }
  for (size_t i = 0; i < config_.remote_write.size(); ++i) {
    const auto& ep = config_.remote_write[i];
    senders_.push_back(
        std::make_unique<RemoteWriteSender>(ep, i, *spool_, config_.sample_interval, *registry_));
    senders_.back()->Start();
    spdlog::info("remote_write endpoint={}", ep.url);
  }
  if (config_.remote_write.empty()) spdlog::warn("no remote_write endpoint configured");
  // Drop the wake-up the last StopPipeline() may have left.
  while (::sem_trywait(&loop_wake_) == 0) continue;
  loop_stop_ = false;
  loop_ = std::thread([this] { SampleLoop(); });
}

void Agent::StopPipeline() {
  loop_stop_ = true;
  ::sem_post(&loop_wake_);
  if (loop_.joinable()) loop_.join();
  for (auto& s : senders_) s->Stop();
  senders_.clear();
  spool_.reset();
  sampler_.reset();
}

void Agent::Stop() {
  StopPipeline();
  if (server_) server_->Stop();
}

void Agent::Reload(AgentConfig config) {
  if (config.listen_address != config_.listen_address) {
    spdlog::warn("web.listen_address changes only on restart old={} new={}", config_.listen_address,
                 config.listen_address);
    config.listen_address = config_.listen_address;
  }
  if (server_) {
    if (Status st = server_->SetWebConfig(config.web); !st.ok()) {
      spdlog::error("web config not reloaded, keeping the old one: {}", st.message());
      config.web = config_.web;
      config.web_config_file = config_.web_config_file;
    }
  }
  CheckSecretFiles(config, *registry_);
  StopPipeline();
  config_ = std::move(config);
  StartPipeline();
  spdlog::info("configuration reloaded source={}", config_.source);
}

std::string Agent::address() const { return server_ ? server_->address() : ""; }

bool Agent::SleepUntil(std::chrono::steady_clock::time_point t) {
  // std::chrono::steady_clock is CLOCK_MONOTONIC (as the condition variable used before).
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (!loop_stop_) {
    if (::sem_clockwait(&loop_wake_, CLOCK_MONOTONIC, &ts) == 0 || errno != EINTR) break;
  }
  return loop_stop_;
}

void Agent::SampleLoop() {
  pthread_setname_np(pthread_self(), "sampler");  // for top -H and per-thread CPU figures
  auto next = clock_.SteadyNow();
  // Two sweeps take turns: one is built while the other is the /metrics snapshot, and each is
  // recycled (Sweep::Recycle) so that a steady-state sweep allocates nothing.
  auto building = std::make_unique<Sweep>();
  for (;;) {
    Sweep& sweep = *building;
    sweep.Recycle();
    int64_t ts = clock_.NowUnixMs();
    sampler_->RunOnce(sweep);
    // The derived families come after the collectors', in the same place every sweep: Finish()
    // only once they are in, or the sweep's shape (and the encoder's memo) changes every time.
    sweep.FinishPoints();
    node_power_->Derive(sweep, ts);
    std::vector<std::string> missing = links_->Derive(sweep);
    sweep.Finish();
    if (!missing.empty() && !warned_missing_links_) {
      spdlog::warn("declared link devices not found (is the netdev collector on?) devices={}",
                   fmt::join(missing, ","));
      warned_missing_links_ = true;
    }
    sweeps_->Increment();

    if (spool_ && sweep.PointCount() > 0) {
      // Spooled before it is sent: every endpoint reads it from there.
      uint32_t samples = 0;
      std::string body = encoder_->Encode(sweep, ts, &samples);
      spool_->Append(std::move(body), samples, ts, ts);
    }
    // Kept as is; /metrics renders it only when scraped (most agents are never scraped).
    {
      std::lock_guard lock(snapshot_mu_);
      std::swap(snapshot_, building);
    }
    if (!building) building = std::make_unique<Sweep>();

    next += config_.sample_interval;
    auto now = clock_.SteadyNow();
    if (next < now) {
      // A sweep overran (or the host was suspended): skip the missed ticks, don't burst.
      while (next < now) next += config_.sample_interval;
    }
    if (SleepUntil(next)) return;
  }
}

HttpResponse Agent::HandleMetrics() const {
  std::vector<prometheus::MetricFamily> all = registry_->Collect();
  {
    std::lock_guard lock(snapshot_mu_);  // the sampling thread reuses the sweep after a swap
    if (snapshot_) {
      std::vector<prometheus::MetricFamily> sweep = SweepToFamilies(*snapshot_);
      all.insert(all.end(), std::make_move_iterator(sweep.begin()),
                 std::make_move_iterator(sweep.end()));
    }
  }
  HttpResponse r;
  r.content_type = kTextContentType;
  r.body = RenderText(all);
  return r;
}

}  // namespace suanli::agent
