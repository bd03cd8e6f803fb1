// Aggregator: the suanli-aggregator daemon assembled: the store, the capacity model, the
// remote_write receiver, the HTTP endpoints (/api/v1/write, /metrics, the status page at /,
// /-/healthy, /-/ready), the capacity recorder (the dc's capacity history in the store) and
// forwarding upstream (forward:).
// Thread-safety: Start/Stop/Reload from the main thread; HTTP handlers run concurrently.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>

#include "aggregator/aggregator_config.h"
#include "aggregator/capacity/capacity_model.h"
#include "aggregator/ingest/write_handler.h"
#include "aggregator/query/read_handler.h"
#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "core/http_server.h"
#include "exporters/remote_write/capacity_recorder.h"
#include "exporters/remote_write/forwarder.h"

namespace suanli::aggregator {

class Aggregator {
 public:
  Aggregator(AggregatorConfig config, const Clock& clock);
  ~Aggregator();

  // Opens the store (recovering it after a crash), then binds and serves.
  Status Start();
  // Stops accepting, finishes in-flight requests, then closes the store.
  void Stop();
  // Applies limits, staleness and logging; storage.path and the listen address change only on
  // restart (a warning says so).
  void Reload(const AggregatorConfig& config);
  std::string address() const;

 private:
  HttpResponse HandleMetrics();
  HttpResponse HandleStatusPage(const std::string& storage_path);

  AggregatorConfig config_;
  const Clock& clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* exposed_secret_files_ = nullptr;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<capacity::CapacityModel> model_;
  std::unique_ptr<HaTracker> ha_;
  std::unique_ptr<WriteHandler> write_handler_;
  std::unique_ptr<ReadHandler> read_handler_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<exporters::CapacityRecorder> recorder_;  // before forward_: its targets read it
  std::unique_ptr<exporters::ForwardManager> forward_;
};

}  // namespace suanli::aggregator
