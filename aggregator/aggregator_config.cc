#include "aggregator/aggregator_config.h"

#include "core/config.h"
#include "core/file_util.h"
#include "core/labels.h"

namespace suanli::aggregator {

const char* const kEmbeddedAggregatorConfig = R"(# suanli-aggregator embedded default configuration
web:
  listen_address: ":9466"
storage:
  path: data/aggregator
capacity:
  stale_after: 5m
  forget_after: 1h
  watcher_window: 15m
)";

void AddAggregatorFlags(FlagSet& flags) {
  flags.AddString("config.file", "Aggregator configuration file (YAML); embedded default if unset");
  flags.AddBool("config.check", "Validate the configuration, print what is wrong, and exit");
  flags.AddString("web.listen-address", "Address for all HTTP endpoints (port 0: any free)");
  flags.AddString("web.config.file",
                  "Web configuration file (TLS, basic auth, per-dc credentials; exporter-toolkit "
                  "format plus credentials:)");
  flags.AddString("storage.path", "Directory of the RocksDB store");
  flags.AddBool("web.enable-admin-api",
                "Serve the admin endpoints (POST /api/v1/admin/snapshot; scope admin where "
                "credentials are configured)");
  flags.AddString("log.level", "Log level: debug, info, warn, error");
  flags.AddString("log.format", "Log format: logfmt or json");
  flags.AddBool("version", "Print the version and exit");
  flags.AddBool("help", "Print this help and exit");
}

Result<AggregatorConfig> ParseAggregatorConfig(const std::string& source, const std::string& yaml) {
  ASSIGN_OR_RETURN(ConfigMap root, ConfigMap::Parse(source, yaml));
  AggregatorConfig c;
  c.source = source;
  ASSIGN_OR_RETURN(ConfigMap web, root.Map("web"));
  RETURN_IF_ERROR(web.Get("listen_address", &c.listen_address));
  RETURN_IF_ERROR(web.Get("config_file", &c.web_config_file));
  RETURN_IF_ERROR(web.Get("enable_admin_api", &c.enable_admin_api));
  RETURN_IF_ERROR(web.Get("worker_threads", &c.http_worker_threads));
  if (c.http_worker_threads < 1 || c.http_worker_threads > 1024) {
    return web.Error("worker_threads", "must be between 1 and 1024");
  }
  RETURN_IF_ERROR(web.Get("io_threads", &c.http_io_threads));
  if (c.http_io_threads < 1 || c.http_io_threads > 1024) {
    return web.Error("io_threads", "must be between 1 and 1024");
  }
  RETURN_IF_ERROR(web.Finish());
  ASSIGN_OR_RETURN(ConfigMap storage, root.Map("storage"));
  RETURN_IF_ERROR(storage.Get("path", &c.storage_path));
  RETURN_IF_ERROR(storage.Get("out_of_order_window", &c.retention.out_of_order_window));
  if (c.retention.out_of_order_window.count() < 0) {
    return storage.Error("out_of_order_window", "must not be negative");
  }
  RETURN_IF_ERROR(storage.Get("future_grace", &c.retention.future_grace));
  if (c.retention.future_grace.count() < 0) {
    return storage.Error("future_grace", "must not be negative (0 turns the check off)");
  }
  ASSIGN_OR_RETURN(ConfigMap retention, storage.Map("retention"));
  RETURN_IF_ERROR(retention.Get("raw", &c.retention.raw));
  RETURN_IF_ERROR(retention.Get("1m", &c.retention.m1));
  RETURN_IF_ERROR(retention.Get("5m", &c.retention.m5));
  RETURN_IF_ERROR(retention.Get("1h", &c.retention.h1));
  for (const char* key : {"raw", "1m", "5m", "1h"}) {
    std::chrono::milliseconds d{0};
    RETURN_IF_ERROR(retention.Get(key, &d));
    if (d.count() < 0) return retention.Error(key, "must not be negative (0 keeps forever)");
  }
  RETURN_IF_ERROR(retention.Finish());
  RETURN_IF_ERROR(storage.Finish());
  ASSIGN_OR_RETURN(ConfigMap limits, root.Map("limits"));
  RETURN_IF_ERROR(limits.Get("max_body_bytes", &c.limits.max_body_bytes));
  RETURN_IF_ERROR(limits.Get("max_decoded_bytes", &c.limits.max_decoded_bytes));
  RETURN_IF_ERROR(limits.Get("max_series_per_dc", &c.limits.max_series_per_dc));
  RETURN_IF_ERROR(limits.Get("max_labels_per_series", &c.limits.max_labels_per_series));
  if (c.limits.max_series_per_dc < 0) return limits.Error("max_series_per_dc", "must be >= 0");
  if (c.limits.max_labels_per_series < 0) {
    return limits.Error("max_labels_per_series", "must be >= 0");
  }
  RETURN_IF_ERROR(limits.Get("max_series_per_request", &c.limits.max_series_per_request));
  RETURN_IF_ERROR(limits.Get("max_label_name_length", &c.limits.max_label_name_length));
  RETURN_IF_ERROR(limits.Get("max_label_value_length", &c.limits.max_label_value_length));
  RETURN_IF_ERROR(
      limits.Get("max_samples_per_second_per_dc", &c.limits.max_samples_per_second_per_dc));
  RETURN_IF_ERROR(limits.Get("samples_burst_per_dc", &c.limits.samples_burst_per_dc));
  for (const char* key : {"max_series_per_request", "max_label_name_length",
                          "max_label_value_length", "samples_burst_per_dc"}) {
    int64_t v = 0;
    RETURN_IF_ERROR(limits.Get(key, &v));
    if (v < 0) return limits.Error(key, "must be >= 0 (0: no limit)");
  }
  if (!(c.limits.max_samples_per_second_per_dc >= 0)) {
    return limits.Error("max_samples_per_second_per_dc", "must be >= 0 (0: no limit)");
  }
  if (c.limits.samples_burst_per_dc > 0 && c.limits.max_samples_per_second_per_dc == 0) {
    return limits.Error("samples_burst_per_dc", "needs max_samples_per_second_per_dc");
  }
  if (c.limits.max_body_bytes < 1024) return limits.Error("max_body_bytes", "must be >= 1024");
  if (c.limits.max_decoded_bytes < c.limits.max_body_bytes) {
    return limits.Error("max_decoded_bytes", "must be >= max_body_bytes");
  }
  RETURN_IF_ERROR(limits.Finish());
  ASSIGN_OR_RETURN(ConfigMap capacity, root.Map("capacity"));
  RETURN_IF_ERROR(capacity.Get("stale_after", &c.stale_after));
  if (c.stale_after.count() <= 0) return capacity.Error("stale_after", "must be positive");
  RETURN_IF_ERROR(capacity.Get("forget_after", &c.forget_after));
  if (c.forget_after <= c.stale_after) {
    return capacity.Error("forget_after", "must be longer than stale_after");
  }
  RETURN_IF_ERROR(capacity.Get("evaluation_interval", &c.evaluation_interval));
  if (c.evaluation_interval < std::chrono::seconds(1) ||
      c.evaluation_interval > std::chrono::hours(1)) {
    return capacity.Error("evaluation_interval", "must be between 1s and 1h");
  }
  RETURN_IF_ERROR(capacity.Get("record", &c.record_capacity));
  RETURN_IF_ERROR(capacity.Get("watcher_window", &c.watcher_window));
  if (c.watcher_window < std::chrono::seconds(10) || c.watcher_window > std::chrono::hours(24)) {
    return capacity.Error("watcher_window", "must be between 10s and 24h");
  }
  ASSIGN_OR_RETURN(std::vector<ConfigMap> facilities, capacity.List("facility_power"));
  for (ConfigMap& f : facilities) {
    FacilityPower fp;
    RETURN_IF_ERROR(f.Get("region", &fp.region));
    RETURN_IF_ERROR(f.Get("dc", &fp.dc));
    RETURN_IF_ERROR(f.Get("watts", &fp.watts));
    if (fp.dc.empty()) return f.Error("dc", "is required");
    if (!(fp.watts > 0)) return f.Error("watts", "must be positive");
    for (const FacilityPower& other : c.facility_power) {
      if (other.region == fp.region && other.dc == fp.dc) {
        return f.Error("dc", "facility power for this region and dc is given twice");
      }
    }
    RETURN_IF_ERROR(f.Finish());
    c.facility_power.push_back(std::move(fp));
  }
  RETURN_IF_ERROR(capacity.Finish());
  ASSIGN_OR_RETURN(c.forward, exporters::ParseForwardTargets(root));
  ASSIGN_OR_RETURN(ConfigMap ha, root.Map("ha"));
  RETURN_IF_ERROR(ha.Get("replica_label", &c.ha.replica_label));
  if (!c.ha.replica_label.empty() &&
      (!IsValidLabelName(c.ha.replica_label) || c.ha.replica_label == "__name__" ||
       c.ha.replica_label == "region" || c.ha.replica_label == "dc" ||
       c.ha.replica_label == "shard")) {
    return ha.Error("replica_label", "must be a label name other than __name__, region, dc, shard");
  }
  RETURN_IF_ERROR(ha.Get("failover_after", &c.ha.failover_after));
  if (c.ha.failover_after < std::chrono::seconds(1)) {
    return ha.Error("failover_after", "must be at least 1s");
  }
  RETURN_IF_ERROR(ha.Finish());
  ASSIGN_OR_RETURN(ConfigMap log, root.Map("log"));
  RETURN_IF_ERROR(log.Get("level", &c.log_level));
  RETURN_IF_ERROR(log.Get("format", &c.log_format));
  RETURN_IF_ERROR(log.Finish());
  RETURN_IF_ERROR(root.Finish());
  return c;
}

Result<AggregatorConfig> LoadAggregatorConfig(const FlagSet& flags) {
  AggregatorConfig c;
  if (flags.IsSet("config.file")) {
    std::string path = flags.Get("config.file");
    auto text = ReadFileToString(path);
    if (!text.ok()) return text.status().WithContext("--config.file");
    ASSIGN_OR_RETURN(c, ParseAggregatorConfig(path, *text));
  } else {
    ASSIGN_OR_RETURN(c, ParseAggregatorConfig("<embedded default>", kEmbeddedAggregatorConfig));
  }
  if (flags.IsSet("web.listen-address")) c.listen_address = flags.Get("web.listen-address");
  if (flags.IsSet("storage.path")) c.storage_path = flags.Get("storage.path");
  if (flags.IsSet("web.config.file")) c.web_config_file = flags.Get("web.config.file");
  if (flags.IsSet("web.enable-admin-api"))
    c.enable_admin_api = flags.GetBool("web.enable-admin-api");
  if (!c.web_config_file.empty()) {
    auto web = LoadWebConfig(c.web_config_file);
    if (!web.ok()) return web.status();
    c.web = std::move(web).value();
  }
  if (flags.IsSet("log.level")) c.log_level = flags.Get("log.level");
  if (flags.IsSet("log.format")) c.log_format = flags.Get("log.format");
  if (c.storage_path.empty()) return InvalidArgument("storage.path must not be empty");
  return c;
}

}  // namespace suanli::aggregator
