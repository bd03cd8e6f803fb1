#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

#include "aggregator/admin_api.h"
#include "core/daemon.h"
#include "core/file_util.h"
#include "core/text_exposition.h"
#include "exporters/prometheus/capacity_metrics.h"
#include "exporters/scheduler/capacity_json.h"
#include "exporters/scheduler/load_watcher.h"
#include "exporters/status/status_page.h"

namespace suanli::aggregator {
namespace {

capacity::CapacityOptions CapacityOptionsFrom(const AggregatorConfig& c) {
  capacity::CapacityOptions o;
  o.stale_after = c.stale_after;
  o.forget_after = c.forget_after;
  o.watcher_window = c.watcher_window;
  for (const FacilityPower& f : c.facility_power) {
    o.facility_power_watts[{f.region, f.dc}] = f.watts;
  }
  return o;
}

}  // namespace

Aggregator::Aggregator(AggregatorConfig config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("suanli_aggregator_build_info")
      .Help("Always 1; the aggregator's version as a label.")
      .Register(*registry_)
      .Add({{"version", SUANLI_VERSION}})
      .Set(1);
  exposed_secret_files_ = &prometheus::BuildGauge()
                               .Name("suanli_config_secret_files_readable_by_others")
                               .Help(
                                   "Files holding secrets (web config, TLS key, token files) "
                                   "that other users can read, as of the last (re)load.")
                               .Register(*registry_)
                               .Add({});
}

Aggregator::~Aggregator() { Stop(); }

Status Aggregator::Start() {
  RETURN_IF_ERROR(MakeDirectories(config_.storage_path));
  storage::RocksDbStoreOptions opts;
  opts.path = config_.storage_path;
  opts.retention_ms[0] = config_.retention.raw.count();
  opts.retention_ms[1] = config_.retention.m1.count();
  opts.retention_ms[2] = config_.retention.m5.count();
  opts.retention_ms[3] = config_.retention.h1.count();
  opts.out_of_order_window_ms = config_.retention.out_of_order_window.count();
  opts.limits = {static_cast<uint64_t>(config_.limits.max_series_per_dc),
                 static_cast<uint64_t>(config_.limits.max_labels_per_series)};
  // After a failed write the store refuses every write until reopened: exit non-zero so that
  // the service manager restarts the aggregator (/-/healthy answers 503 meanwhile).
  opts.on_write_failed = [path = config_.storage_path](const Status& st) {
    spdlog::critical("storage failed at {}: {}; exiting so that the service manager restarts it",
                     path, st.message());
    RequestShutdown(1);
  };
  auto store = storage::OpenRocksDbStore(opts);
  if (!store.ok()) return store.status().WithContext("opening the store");
  store_ = std::move(store).value();
  spdlog::info("store open path={} series={}", config_.storage_path, store_->Stats().series);

  model_ = std::make_unique<capacity::CapacityModel>(CapacityOptionsFrom(config_));
  write_handler_ = std::make_unique<WriteHandler>(*store_, *model_, *registry_);
  write_handler_->set_future_grace(config_.retention.future_grace, clock_);
  write_handler_->set_limits(config_.limits);
  ha_ = std::make_unique<HaTracker>(*registry_);
  ha_->set_config(config_.ha);
  write_handler_->set_ha(ha_.get());

  HttpServer::Options sopts;
  sopts.listen_address = config_.listen_address;
  sopts.io_threads = static_cast<int>(config_.http_io_threads);
  sopts.worker_threads = static_cast<int>(config_.http_worker_threads);
  sopts.max_body_bytes = static_cast<size_t>(config_.limits.max_body_bytes);
  sopts.on_refused = [this](int status) {
    if (status == 413 && write_handler_) write_handler_->CountOversizedBody();
  };
  sopts.registry = registry_.get();
  server_ = std::make_unique<HttpServer>(sopts);
  RETURN_IF_ERROR(server_->SetWebConfig(config_.web));
  exposed_secret_files_->Set(WarnIfReadableByOthers(config_.web.secret_files));
  server_->Route(
      "POST", "/api/v1/write", [this](const HttpRequest& r) { return write_handler_->Handle(r); },
      kScopeWrite, HttpServer::RunOn::kIoThread);
  read_handler_ = std::make_unique<ReadHandler>(*store_, *registry_);
  server_->Route("POST", "/api/v1/read",
                 [this](const HttpRequest& r) { return read_handler_->Handle(r); });
  server_->Route(
      "GET", "/metrics", [this](const HttpRequest&) { return HandleMetrics(); }, kScopeMetrics);
  server_->Route("GET", "/api/v1/capacity", [this](const HttpRequest& r) {
    HttpResponse resp;
    resp.content_type = exporters::kJsonContentType;
    auto query = exporters::ParseCapacityQuery(r.query);
    if (!query.ok()) {
      resp.status = 400;
      resp.body = exporters::JsonError("bad_data", query.status().message());
      return resp;
    }
    resp.body = exporters::CapacityJson(model_->Snapshot(clock_.NowUnixMs()), *query);
    return resp;
  });
  // The status page: the same figures as /api/v1/capacity, for people; the same credentials.
  // storage.path never changes while running: a copy, as Reload rewrites config_.
  server_->Route("GET", "/", [this, path = config_.storage_path](const HttpRequest&) {
    return HandleStatusPage(path);
  });
  server_->Route("GET", "/watcher", [this](const HttpRequest& r) {
    int64_t now = clock_.NowUnixMs();
    auto answer = exporters::WatcherMetricsJson(model_->NodeLoads(now), now,
                                                model_->options().watcher_window, r.query);
    HttpResponse resp;
    resp.status = answer.status;
    resp.content_type = exporters::kJsonContentType;
    resp.body = std::move(answer.body);
    return resp;
  });
  // Admin endpoints: registered always, so that without --web.enable-admin-api they answer
  // "admin APIs disabled" as Prometheus does; the flag counts from start-up.
  server_->Route(
      "POST", "/api/v1/admin/snapshot",
      [this, enabled = config_.enable_admin_api, path = config_.storage_path](const HttpRequest&) {
        return HandleSnapshot(*store_, path, enabled, clock_);
      },
      kScopeAdmin);
  // load-watcher answers 200 while its metrics source is healthy, 503 otherwise (no body).
  // Health checks (load-watcher's, Kubernetes', systemd's) need no credentials.
  server_->Route(
      "GET", "/watcher/health",
      [this](const HttpRequest&) {
        HttpResponse resp;
        resp.status = store_->Healthy() ? 200 : 503;
        return resp;
      },
      kScopePublic);
  server_->Route(
      "GET", "/-/healthy",
      [this](const HttpRequest&) {
        return store_->Healthy() ? HttpResponse::Text(200, "Healthy\n")
                                 : HttpResponse::Text(503, "store failed; exiting\n");
      },
      kScopePublic);
  server_->Route(
      "GET", "/-/ready",
      [this](const HttpRequest&) {
        return store_->Healthy() ? HttpResponse::Text(200, "Ready\n")
                                 : HttpResponse::Text(503, "store failed; see the log\n");
      },
      kScopePublic);
  // Before serving: the status page reads the targets' state.
  recorder_ = std::make_unique<exporters::CapacityRecorder>(*store_, *model_, clock_);
  forward_ = std::make_unique<exporters::ForwardManager>(*store_, recorder_->progress(), *registry_,
                                                         clock_);
  RETURN_IF_ERROR(server_->Start());
  spdlog::info("listening on {}://{} tls={} auth={}", server_->tls() ? "https" : "http",
               server_->address(), server_->tls(), config_.web.auth_enabled());
  recorder_->Apply(exporters::CapacityRecordingWanted(config_.record_capacity, config_.forward),
                   config_.evaluation_interval);
  forward_->Apply(config_.forward);
  return Status::Ok();
}

void Aggregator::Stop() {
  if (server_) server_->Stop();  // in-flight writes finish before the store closes
  server_.reset();
  forward_.reset();  // requests in flight end; undelivered data stays behind the cursors
  recorder_.reset();
  write_handler_.reset();
  read_handler_.reset();
  if (store_) spdlog::info("closing the store");
  store_.reset();
}

void Aggregator::Reload(const AggregatorConfig& config) {
  if (config.listen_address != config_.listen_address) {
    spdlog::warn("web.listen_address changes only on restart old={} new={}", config_.listen_address,
                 config.listen_address);
  }
  if (config.storage_path != config_.storage_path) {
    spdlog::warn("storage.path changes only on restart old={} new={}", config_.storage_path,
                 config.storage_path);
  }
  if (config.enable_admin_api != config_.enable_admin_api) {
    spdlog::warn("web.enable_admin_api changes only on restart old={} new={}",
                 config_.enable_admin_api, config.enable_admin_api);
  }
  AggregatorConfig next = config;
  next.listen_address = config_.listen_address;
  next.storage_path = config_.storage_path;
  next.enable_admin_api = config_.enable_admin_api;            // the route took it at start
  next.limits.max_body_bytes = config_.limits.max_body_bytes;  // fixed in the running server
  if (config.limits.max_body_bytes != config_.limits.max_body_bytes) {
    spdlog::warn("limits.max_body_bytes changes only on restart");
  }
  if (server_) {
    if (Status st = server_->SetWebConfig(next.web); !st.ok()) {
      spdlog::error("web config not reloaded, keeping the old one: {}", st.message());
      next.web = config_.web;
      next.web_config_file = config_.web_config_file;
    } else {
      exposed_secret_files_->Set(WarnIfReadableByOthers(next.web.secret_files));
    }
  }
  config_ = next;
  if (write_handler_) {
    write_handler_->set_limits(config_.limits);
    write_handler_->set_future_grace(config_.retention.future_grace, clock_);
  }
  if (store_) {
    store_->SetLimits({static_cast<uint64_t>(config_.limits.max_series_per_dc),
                       static_cast<uint64_t>(config_.limits.max_labels_per_series)});
  }
  if (model_) model_->set_options(CapacityOptionsFrom(config_));
  if (ha_) ha_->set_config(config_.ha);
  if (recorder_) {
    recorder_->Apply(exporters::CapacityRecordingWanted(config_.record_capacity, config_.forward),
                     config_.evaluation_interval);
  }
  if (forward_) forward_->Apply(config_.forward);
  spdlog::info("configuration reloaded source={}", config_.source);
}

std::string Aggregator::address() const { return server_ ? server_->address() : ""; }

HttpResponse Aggregator::HandleStatusPage(const std::string& storage_path) {
  exporters::StatusPageInput in;
  in.now_ms = clock_.NowUnixMs();
  in.version = SUANLI_VERSION;
  in.capacity_json = exporters::CapacityJson(model_->Snapshot(in.now_ms), {});
  in.history = exporters::ReadStatusHistory(*store_, in.now_ms);
  in.storage_path = storage_path;
  in.store = store_->Stats();
  in.store_healthy = store_->Healthy();
  in.forward = forward_->TargetStates();
  in.ha_replica_label = ha_->replica_label();
  in.ha = ha_->Elections();
  in.nonce = exporters::StatusPageNonce();
  HttpResponse r;
  r.content_type = exporters::kHtmlContentType;
  r.headers["Content-Security-Policy"] = exporters::StatusPageSecurityPolicy(in.nonce);
  r.headers["Cache-Control"] = "no-store";
  r.headers["X-Content-Type-Options"] = "nosniff";
  r.body = exporters::RenderStatusPage(in);
  return r;
}

HttpResponse Aggregator::HandleMetrics() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  storage::StoreStats stats = store_->Stats();
  FamilyBuilder series("suanli_aggregator_series", "Series known to the store.",
                       prometheus::MetricType::Gauge);
  series.Add({}, static_cast<double>(stats.series));
  families.push_back(std::move(series).Build());
  FamilyBuilder disk("suanli_aggregator_storage_bytes",
                     "Bytes the store occupies on disk (SST files and WAL).",
                     prometheus::MetricType::Gauge);
  disk.Add({}, static_cast<double>(stats.disk_bytes));
  families.push_back(std::move(disk).Build());
  FamilyBuilder forgotten("suanli_aggregator_series_forgotten_total",
                          "Series removed from memory and index: no sample inside any "
                          "retention (series churn).",
                          prometheus::MetricType::Counter);
  forgotten.Add({}, static_cast<double>(stats.series_forgotten));
  families.push_back(std::move(forgotten).Build());
  FamilyBuilder conflicts("suanli_aggregator_capacity_conflicting_samples_total",
                          "Node-level samples of a dc that a lower tier also reports: left out "
                          "of the capacity figures (the tier's figures win).",
                          prometheus::MetricType::Counter);
  conflicts.Add({}, static_cast<double>(model_->conflicting_samples()));
  families.push_back(std::move(conflicts).Build());
  HttpResponse r;
  r.content_type = kTextContentType;
  r.body = RenderText(families);
  exporters::AppendCapacityText(model_->Snapshot(clock_.NowUnixMs()), &r.body);
  return r;
}

}  // namespace suanli::aggregator
