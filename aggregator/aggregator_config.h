// The aggregator's configuration: the YAML file (or the embedded default), then flags on top.
// See deploy/aggregator.example.yml for every key.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "aggregator/ingest/write_handler.h"
#include "core/flags.h"
#include "core/status.h"
#include "core/web_config.h"
#include "exporters/remote_write/forward_config.h"

namespace suanli::aggregator {

// Retention per resolution, the out-of-order window and the future grace
// (storage.retention.*, storage.out_of_order_window, storage.future_grace); 0 retention keeps
// forever.
struct StorageRetention {
  std::chrono::milliseconds raw{std::chrono::hours(24 * 15)};
  std::chrono::milliseconds m1{std::chrono::hours(24 * 90)};
  std::chrono::milliseconds m5{std::chrono::hours(24 * 365)};
  std::chrono::milliseconds h1{std::chrono::hours(24 * 365 * 5)};
  std::chrono::milliseconds out_of_order_window{std::chrono::hours(1)};
  // A request with a sample newer than now + this is refused (400); 0: no check.
  std::chrono::milliseconds future_grace{std::chrono::minutes(10)};
};

// A facility's total power draw (IT + cooling + losses) for one dc, for PUE where no meter
// writes suanli_facility_power_watts.
struct FacilityPower {
  std::string region;
  std::string dc;
  double watts = 0;
};

struct AggregatorConfig {
  std::string source = "<embedded default>";
  std::string listen_address = ":9466";
  std::string storage_path = "data/aggregator";
  // --web.config.file (web.config_file): TLS, basic auth and per-dc credentials; "" = none.
  std::string web_config_file;
  WebConfig web;  // loaded from web_config_file
  // --web.enable-admin-api (web.enable_admin_api): serve /api/v1/admin/* (snapshots), which
  // need scope admin where credentials are configured.
  bool enable_admin_api = false;
  WriteLimits limits;
  StorageRetention retention;
  // A node whose newest sample is older than this no longer counts as capacity.
  std::chrono::milliseconds stale_after{std::chrono::minutes(5)};
  // A node silent this long is forgotten (removed from memory; counted as gone).
  std::chrono::milliseconds forget_after{std::chrono::hours(1)};
  // Window of the AVG/STD figures served on /watcher (load-watcher's default is 15m).
  std::chrono::milliseconds watcher_window{std::chrono::minutes(15)};
  std::vector<FacilityPower> facility_power;
  // How often the capacity figures are evaluated and recorded in the store, at multiples of it
  // since the Unix epoch (capacity.evaluation_interval).
  std::chrono::milliseconds evaluation_interval{std::chrono::seconds(15)};
  // Record them always (capacity.record): the dc's capacity history for the status page and
  // remote_read; off, only while a `select: capacity` forward target reads them.
  bool record_capacity = true;
  // forward: where the aggregator's data goes upstream (docs/forwarding.md).
  std::vector<exporters::ForwardTarget> forward;
  // ha: deduplication of the HA pairs that forward to this aggregator (docs/tiers.md).
  HaConfig ha;
  int64_t http_worker_threads = 16;
  // Connection threads; remote_write requests are handled on them (HttpServer::RunOn).
  int64_t http_io_threads = 4;
  std::string log_level = "info";
  std::string log_format = "logfmt";
};

extern const char* const kEmbeddedAggregatorConfig;

void AddAggregatorFlags(FlagSet& flags);
Result<AggregatorConfig> LoadAggregatorConfig(const FlagSet& flags);
Result<AggregatorConfig> ParseAggregatorConfig(const std::string& source, const std::string& yaml);

}  // namespace suanli::aggregator
