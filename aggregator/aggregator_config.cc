#include "aggregator/aggregator_config.h"

#include "core/config.h"
#include "core/file_util.h"

namespace suanli::aggregator {

const char* const kEmbeddedAggregatorConfig = R"(# suanli-aggregator embedded default configuration
web:
  listen_address: ":9466"
storage:
  path: data/aggregator
capacity:
  stale_after: 5m
)";

void AddAggregatorFlags(FlagSet& flags) {
  flags.AddString("config.file", "Aggregator configuration file (YAML); embedded default if unset");
  flags.AddBool("config.check", "Validate the configuration, print what is wrong, and exit");
  flags.AddString("web.listen-address", "Address for all HTTP endpoints (port 0: any free)");
  flags.AddString("storage.path", "Directory of the RocksDB store");
  flags.AddString("log.level", "Log level: debug, info, warn, error");
  flags.AddString("log.format", "Log format: logfmt or json");
  flags.AddBool("version", "Print the version and exit");
  flags.AddBool("help", "Print this help and exit");
}

Result<AggregatorConfig> ParseAggregatorConfig(const std::string& source,
                                               const std::string& yaml) {
  ASSIGN_OR_RETURN(ConfigMap root, ConfigMap::Parse(source, yaml));
  AggregatorConfig c;
  c.source = source;
  ASSIGN_OR_RETURN(ConfigMap web, root.Map("web"));
  RETURN_IF_ERROR(web.Get("listen_address", &c.listen_address));
  RETURN_IF_ERROR(web.Get("worker_threads", &c.http_worker_threads));
  if (c.http_worker_threads < 1 || c.http_worker_threads > 1024) {
    return web.Error("worker_threads", "must be between 1 and 1024");
  }
  RETURN_IF_ERROR(web.Finish());
  ASSIGN_OR_RETURN(ConfigMap storage, root.Map("storage"));
  RETURN_IF_ERROR(storage.Get("path", &c.storage_path));
  RETURN_IF_ERROR(storage.Finish());
  ASSIGN_OR_RETURN(ConfigMap limits, root.Map("limits"));
  RETURN_IF_ERROR(limits.Get("max_body_bytes", &c.limits.max_body_bytes));
  RETURN_IF_ERROR(limits.Get("max_decoded_bytes", &c.limits.max_decoded_bytes));
  if (c.limits.max_body_bytes < 1024) return limits.Error("max_body_bytes", "must be >= 1024");
  if (c.limits.max_decoded_bytes < c.limits.max_body_bytes) {
    return limits.Error("max_decoded_bytes", "must be >= max_body_bytes");
  }
  RETURN_IF_ERROR(limits.Finish());
  ASSIGN_OR_RETURN(ConfigMap capacity, root.Map("capacity"));
  RETURN_IF_ERROR(capacity.Get("stale_after", &c.stale_after));
  if (c.stale_after.count() <= 0) return capacity.Error("stale_after", "must be positive");
  RETURN_IF_ERROR(capacity.Finish());
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
  if (flags.IsSet("log.level")) c.log_level = flags.Get("log.level");
  if (flags.IsSet("log.format")) c.log_format = flags.Get("log.format");
  if (c.storage_path.empty()) return InvalidArgument("storage.path must not be empty");
  return c;
}

}  // namespace suanli::aggregator
