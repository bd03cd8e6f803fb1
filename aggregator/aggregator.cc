#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

#include "core/file_util.h"
#include "exporters/prometheus/capacity_metrics.h"
#include "exporters/prometheus/text_exposition.h"

namespace suanli::aggregator {

Aggregator::Aggregator(AggregatorConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock), registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("suanli_aggregator_build_info")
      .Help("Always 1; the aggregator's version as a label.")
      .Register(*registry_)
      .Add({{"version", SUANLI_VERSION}})
      .Set(1);
}

Aggregator::~Aggregator() { Stop(); }

Status Aggregator::Start() {
  RETURN_IF_ERROR(MakeDirectories(config_.storage_path));
  storage::RocksDbStoreOptions opts;
  opts.path = config_.storage_path;
  auto store = storage::OpenRocksDbStore(opts);
  if (!store.ok()) return store.status().WithContext("opening the store");
  store_ = std::move(store).value();
  spdlog::info("store open path={} series={}", config_.storage_path, store_->Stats().series);

  model_ = std::make_unique<capacity::CapacityModel>(config_.stale_after);
  write_handler_ = std::make_unique<WriteHandler>(*store_, *model_, *registry_);
  write_handler_->set_limits(config_.limits);

  HttpServer::Options sopts;
  sopts.listen_address = config_.listen_address;
  sopts.io_threads = 2;
  sopts.worker_threads = static_cast<int>(config_.http_worker_threads);
  sopts.max_body_bytes = static_cast<size_t>(config_.limits.max_body_bytes);
  server_ = std::make_unique<HttpServer>(sopts);
  server_->Route("POST", "/api/v1/write",
                 [this](const HttpRequest& r) { return write_handler_->Handle(r); });
  server_->Route("GET", "/metrics", [this](const HttpRequest&) { return HandleMetrics(); });
  server_->Route("GET", "/-/healthy",
                 [](const HttpRequest&) { return HttpResponse::Text(200, "Healthy\n"); });
  server_->Route("GET", "/-/ready", [this](const HttpRequest&) {
    return store_->Healthy() ? HttpResponse::Text(200, "Ready\n")
                             : HttpResponse::Text(503, "store failed; see the log\n");
  });
  RETURN_IF_ERROR(server_->Start());
  spdlog::info("listening on http://{}", server_->address());
  return Status::Ok();
}

void Aggregator::Stop() {
  if (server_) server_->Stop();  // in-flight writes finish before the store closes
  server_.reset();
  write_handler_.reset();
  if (store_) spdlog::info("closing the store");
  store_.reset();
}

void Aggregator::Reload(const AggregatorConfig& config) {
  if (config.listen_address != config_.listen_address) {
    spdlog::warn("web.listen_address changes only on restart old={} new={}",
                 config_.listen_address, config.listen_address);
  }
  if (config.storage_path != config_.storage_path) {
    spdlog::warn("storage.path changes only on restart old={} new={}", config_.storage_path,
                 config.storage_path);
  }
  AggregatorConfig next = config;
  next.listen_address = config_.listen_address;
  next.storage_path = config_.storage_path;
  next.limits.max_body_bytes = config_.limits.max_body_bytes;  // fixed in the running server
  if (config.limits.max_body_bytes != config_.limits.max_body_bytes) {
    spdlog::warn("limits.max_body_bytes changes only on restart");
  }
  config_ = next;
  if (write_handler_) write_handler_->set_limits(config_.limits);
  if (model_) model_->set_stale_after(config_.stale_after);
  spdlog::info("configuration reloaded source={}", config_.source);
}

std::string Aggregator::address() const { return server_ ? server_->address() : ""; }

HttpResponse Aggregator::HandleMetrics() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  storage::StoreStats stats = store_->Stats();
  exporters::FamilyBuilder series("suanli_aggregator_series",
                                  "Series known to the store.", prometheus::MetricType::Gauge);
  series.Add({}, static_cast<double>(stats.series));
  families.push_back(std::move(series).Build());
  exporters::FamilyBuilder disk("suanli_aggregator_storage_bytes",
                                "Bytes the store occupies on disk (SST files and WAL).",
                                prometheus::MetricType::Gauge);
  disk.Add({}, static_cast<double>(stats.disk_bytes));
  families.push_back(std::move(disk).Build());
  for (auto& f : exporters::CapacityFamilies(model_->Snapshot(clock_.NowUnixMs()))) {
    families.push_back(std::move(f));
  }
  HttpResponse r;
  r.content_type = exporters::kTextContentType;
  r.body = exporters::RenderText(families);
  return r;
}

}  // namespace suanli::aggregator
