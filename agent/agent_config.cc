#include "agent/agent_config.h"

#include "agent/collectors/network/device_filter.h"
#include "agent/collectors/registry.h"
#include "agent/sampler.h"
#include "core/config.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

// node_exporter 1.5's device filter flags and the collector_config keys they set.
struct DeviceFilterFlag {
  const char* flag;
  const char* collector;
  const char* key;
};
const DeviceFilterFlag kDeviceFilterFlags[] = {
    {"collector.netdev.device-include", "netdev", DeviceFilter::kIncludeKey},
    {"collector.netdev.device-exclude", "netdev", DeviceFilter::kExcludeKey},
    {"collector.netclass.ignored-devices", "netclass", DeviceFilter::kExcludeKey},
};

}  // namespace

const char* const kEmbeddedAgentConfig = R"(# suanli-agent embedded default configuration
labels:
  region: local
  dc: local-1
sample_interval: 15s
remote_write:
  - url: http://127.0.0.1:9466/api/v1/write
web:
  listen_address: ":9465"
)";

SpoolOptions DefaultSpoolOptions() {
  SpoolOptions s;
  s.directory = "data/agent-spool";
  return s;
}

void AddAgentFlags(FlagSet& flags, const std::vector<std::string>& collector_names) {
  flags.AddString("config.file", "Agent configuration file (YAML); embedded default if unset");
  flags.AddBool("config.check", "Validate the configuration, print what is wrong, and exit");
  flags.AddString("web.listen-address", "Address for /metrics and /-/healthy (port 0: any free)");
  flags.AddString("web.config.file",
                  "Web configuration file (TLS, basic auth, credentials; exporter-toolkit format)");
  flags.AddString("log.level", "Log level: debug, info, warn, error");
  flags.AddString("log.format", "Log format: logfmt or json");
  flags.AddString("path.procfs", "procfs mount point");
  flags.AddString("path.sysfs", "sysfs mount point");
  flags.AddString("sample.interval", "Time between sampling sweeps, e.g. 15s or 1s");
  flags.AddRepeated("remote-write.url", "remote_write receiver; replaces the file's list");
  flags.AddBool("version", "Print the version and exit");
  flags.AddBool("help", "Print this help and exit");
  // One boolean flag per collector (not a prefix family), so that a collector's own flags such as
  // --collector.netdev.device-include can live beside --collector.netdev.
  for (const std::string& name : collector_names) {
    std::string help = "Enable the " + name + " collector";
    for (const auto& spec : AllCollectors()) {
      if (spec.name == name) {
        help += spec.enabled_by_default ? " (default: on): " : " (default: off): ";
        help += spec.help;
      }
    }
    flags.AddBool("collector." + name, help);
  }
  for (const DeviceFilterFlag& f : kDeviceFilterFlags) {
    flags.AddString(
        f.flag, std::string("Regexp of devices to ") +
                    (std::string_view(f.key) == DeviceFilter::kIncludeKey ? "include" : "exclude") +
                    " for the " + f.collector + " collector (collector_config." + f.collector +
                    "." + f.key + ")");
  }
}

namespace {

Status ReadEndpoint(ConfigMap& m, RemoteWriteEndpoint* e) {
  RETURN_IF_ERROR(m.Get("url", &e->url));
  if (e->url.empty()) return m.Error("url", "is required");
  if (e->url.rfind("http://", 0) != 0 && e->url.rfind("https://", 0) != 0) {
    return m.Error("url", "must start with http:// or https://, got \"" + e->url + "\"");
  }
  RETURN_IF_ERROR(m.Get("timeout", &e->timeout));
  RETURN_IF_ERROR(m.Get("bearer_token", &e->bearer_token));
  RETURN_IF_ERROR(m.Get("max_samples_per_send", &e->max_samples_per_send));
  std::string order;
  RETURN_IF_ERROR(m.Get("replay_order", &order));
  if (order == "oldest_first") {
    e->replay_order = ReplayOrder::kOldestFirst;
  } else if (order == "newest_first") {
    e->replay_order = ReplayOrder::kNewestFirst;
  } else if (!order.empty()) {
    return m.Error("replay_order", "must be oldest_first or newest_first, got \"" + order + "\"");
  }
  RETURN_IF_ERROR(m.Get("out_of_order_window", &e->out_of_order_window));
  RETURN_IF_ERROR(m.Get("min_backoff", &e->min_backoff));
  RETURN_IF_ERROR(m.Get("max_backoff", &e->max_backoff));
  RETURN_IF_ERROR(m.Get("min_send_interval", &e->min_send_interval));
  ASSIGN_OR_RETURN(ConfigMap tls, m.Map("tls_config"));
  RETURN_IF_ERROR(tls.Get("ca_file", &e->ca_file));
  RETURN_IF_ERROR(tls.Get("insecure_skip_verify", &e->insecure_skip_verify));
  RETURN_IF_ERROR(tls.Get("cert_file", &e->cert_file));
  RETURN_IF_ERROR(tls.Get("key_file", &e->key_file));
  if (e->cert_file.empty() != e->key_file.empty()) {
    return tls.Error(e->cert_file.empty() ? "cert_file" : "key_file",
                     "cert_file and key_file go together");
  }
  RETURN_IF_ERROR(tls.Finish());
  if (e->timeout.count() <= 0) return m.Error("timeout", "must be positive");
  if (e->max_samples_per_send < 1) return m.Error("max_samples_per_send", "must be at least 1");
  if (e->out_of_order_window.count() <= 0) {
    return m.Error("out_of_order_window", "must be positive");
  }
  if (e->min_backoff.count() <= 0) return m.Error("min_backoff", "must be positive");
  if (e->max_backoff < e->min_backoff) return m.Error("max_backoff", "must be >= min_backoff");
  return m.Finish();
}

Status ReadSpool(ConfigMap& m, SpoolOptions* s) {
  RETURN_IF_ERROR(m.Get("directory", &s->directory));
  RETURN_IF_ERROR(m.Get("max_bytes", &s->max_bytes));
  RETURN_IF_ERROR(m.Get("segment_bytes", &s->segment_bytes));
  RETURN_IF_ERROR(m.Get("max_memory_bytes", &s->max_memory_bytes));
  std::string fsync;
  RETURN_IF_ERROR(m.Get("fsync", &fsync));
  if (fsync == "always") {
    s->fsync = FsyncPolicy::kAlways;
  } else if (fsync == "interval") {
    s->fsync = FsyncPolicy::kInterval;
  } else if (fsync == "never") {
    s->fsync = FsyncPolicy::kNever;
  } else if (!fsync.empty()) {
    return m.Error("fsync", "must be always, interval or never, got \"" + fsync + "\"");
  }
  RETURN_IF_ERROR(m.Get("fsync_interval", &s->fsync_interval));
  if (s->fsync_interval.count() <= 0) return m.Error("fsync_interval", "must be positive");
  RETURN_IF_ERROR(m.Get("disk_retry_interval", &s->disk_retry_interval));
  if (s->segment_bytes < 64 << 10) return m.Error("segment_bytes", "must be >= 65536");
  if (s->max_bytes < 2 * s->segment_bytes) {
    return m.Error("max_bytes", "must be at least twice segment_bytes");
  }
  if (s->max_memory_bytes < 1 << 20) return m.Error("max_memory_bytes", "must be >= 1048576");
  if (s->disk_retry_interval.count() <= 0) {
    return m.Error("disk_retry_interval", "must be positive");
  }
  return m.Finish();
}

Status ReadFile(ConfigMap& root, AgentConfig* c) {
  RETURN_IF_ERROR(root.Get("labels", &c->labels));
  for (const auto& [name, value] : c->labels) {
    if (!IsValidLabelName(name) || name.rfind("__", 0) == 0) {
      return root.Error("labels", "invalid label name \"" + name + "\"");
    }
  }
  RETURN_IF_ERROR(root.Get("sample_interval", &c->sample_interval));
  if (c->sample_interval.count() < 100) {
    return root.Error("sample_interval", "must be at least 100ms");
  }
  ASSIGN_OR_RETURN(std::vector<ConfigMap> rw, root.List("remote_write"));
  c->remote_write.clear();
  for (auto& m : rw) {
    RemoteWriteEndpoint e;
    RETURN_IF_ERROR(ReadEndpoint(m, &e));
    // The URL names the endpoint's spool cursor and metrics.
    for (const auto& other : c->remote_write) {
      if (other.url == e.url) return m.Error("url", "\"" + e.url + "\" is listed twice");
    }
    c->remote_write.push_back(std::move(e));
  }
  ASSIGN_OR_RETURN(ConfigMap spool, root.Map("spool"));
  RETURN_IF_ERROR(ReadSpool(spool, &c->spool));
  ASSIGN_OR_RETURN(ConfigMap web, root.Map("web"));
  RETURN_IF_ERROR(web.Get("listen_address", &c->listen_address));
  RETURN_IF_ERROR(web.Get("config_file", &c->web_config_file));
  RETURN_IF_ERROR(web.Finish());
  ASSIGN_OR_RETURN(ConfigMap path, root.Map("path"));
  RETURN_IF_ERROR(path.Get("procfs", &c->paths.procfs));
  RETURN_IF_ERROR(path.Get("sysfs", &c->paths.sysfs));
  RETURN_IF_ERROR(path.Finish());
  ASSIGN_OR_RETURN(ConfigMap collectors, root.Map("collectors"));
  for (const auto& spec : AllCollectors()) {
    if (collectors.Has(spec.name)) {
      bool on = spec.enabled_by_default;
      RETURN_IF_ERROR(collectors.Get(spec.name, &on));
      c->collectors[spec.name] = on;
    }
  }
  RETURN_IF_ERROR(collectors.Finish());
  ASSIGN_OR_RETURN(ConfigMap sections, root.Map("collector_config"));
  for (const std::string& name : sections.Keys()) {
    bool known = false;
    for (const auto& spec : AllCollectors()) known = known || spec.name == name;
    if (!known) return sections.Error(name, "no collector of this name");
    ASSIGN_OR_RETURN(ConfigMap section, sections.Map(name));
    c->collector_config.emplace(name, std::move(section));
  }
  RETURN_IF_ERROR(root.Get("collector_timeout", &c->collector_timeout));
  if (c->collector_timeout.count() <= 0) return root.Error("collector_timeout", "must be positive");
  ASSIGN_OR_RETURN(c->links, ParseLinks(root));
  ASSIGN_OR_RETURN(ConfigMap log, root.Map("log"));
  RETURN_IF_ERROR(log.Get("level", &c->log_level));
  RETURN_IF_ERROR(log.Get("format", &c->log_format));
  RETURN_IF_ERROR(log.Finish());
  return root.Finish();
}

// A device filter flag replaces the collector's whole filter from the file (both keys): the
// include and exclude patterns are one setting. The flags' patterns are checked here so that an
// error names the flag.
Status ApplyDeviceFilterFlags(const FlagSet& flags, AgentConfig* c) {
  for (const char* collector : {"netdev", "netclass"}) {
    std::string include, exclude, include_flag;
    bool given = false;
    for (const DeviceFilterFlag& f : kDeviceFilterFlags) {
      if (f.collector != std::string_view(collector) || !flags.IsSet(f.flag)) continue;
      given = true;
      std::string pattern = flags.Get(f.flag);
      if (auto re = CompileDevicePattern(pattern); !pattern.empty() && !re.ok()) {
        return InvalidArgument("--" + std::string(f.flag) + ": " + re.status().message());
      }
      if (std::string_view(f.key) == DeviceFilter::kIncludeKey) {
        include = pattern;
        include_flag = f.flag;
      } else if (!include.empty() && !pattern.empty()) {
        return InvalidArgument("--" + std::string(f.flag) + ": mutually exclusive with --" +
                               include_flag);
      } else {
        exclude = pattern;
      }
    }
    if (!given) continue;
    YAML::Node section(YAML::NodeType::Map);
    auto file = c->collector_config.find(collector);
    if (file != c->collector_config.end()) {
      // Keys other than the filter's stay errors, as without the flags.
      for (const std::string& key : file->second.Keys()) {
        if (key != DeviceFilter::kIncludeKey && key != DeviceFilter::kExcludeKey) {
          return file->second.Error(key, "unknown key");
        }
      }
    }
    if (!include.empty()) section[DeviceFilter::kIncludeKey] = include;
    if (!exclude.empty()) section[DeviceFilter::kExcludeKey] = exclude;
    c->collector_config.insert_or_assign(
        collector, ConfigMap("<flags>", section, "collector_config." + std::string(collector)));
  }
  return Status::Ok();
}

Status ApplyFlags(const FlagSet& flags, AgentConfig* c) {
  if (flags.IsSet("web.listen-address")) c->listen_address = flags.Get("web.listen-address");
  if (flags.IsSet("web.config.file")) c->web_config_file = flags.Get("web.config.file");
  if (flags.IsSet("log.level")) c->log_level = flags.Get("log.level");
  if (flags.IsSet("log.format")) c->log_format = flags.Get("log.format");
  if (flags.IsSet("path.procfs")) c->paths.procfs = flags.Get("path.procfs");
  if (flags.IsSet("path.sysfs")) c->paths.sysfs = flags.Get("path.sysfs");
  if (flags.IsSet("sample.interval")) {
    auto d = ParseDuration(flags.Get("sample.interval"));
    if (!d.ok()) return d.status().WithContext("--sample.interval");
    if (d->count() < 100) return InvalidArgument("--sample.interval: must be at least 100ms");
    c->sample_interval = *d;
  }
  if (flags.IsSet("remote-write.url")) {
    c->remote_write.clear();
    for (const auto& url : flags.GetAll("remote-write.url")) {
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        return InvalidArgument("--remote-write.url: must start with http:// or https://, got \"" +
                               url + "\"");
      }
      for (const auto& other : c->remote_write) {
        if (other.url == url) return InvalidArgument("--remote-write.url: \"" + url + "\" twice");
      }
      RemoteWriteEndpoint e;
      e.url = url;
      c->remote_write.push_back(e);
    }
  }
  for (const auto& spec : AllCollectors()) {
    if (flags.IsSet("collector." + spec.name)) {
      c->collectors[spec.name] = flags.GetBool("collector." + spec.name);
    }
  }
  return ApplyDeviceFilterFlags(flags, c);
}

Status Finalize(AgentConfig* c) {
  // Every enabled collector is built once here, so that --config.check reports a collector's
  // configuration errors too (factories do not touch the host).
  auto built = BuildCollectors(*c);
  if (!built.ok()) return built.status();
  // A link's device must pass the device filters, or its series would silently never appear.
  for (const char* collector : {"netdev", "netclass"}) {
    auto section = c->collector_config.find(collector);
    if (section == c->collector_config.end()) continue;
    ConfigMap options = section->second;  // a copy: its read keys are its own
    ASSIGN_OR_RETURN(DeviceFilter filter, DeviceFilter::FromOptions(options));
    for (const LinkSpec& link : c->links) {
      if (link.snmp) continue;  // a router's interface, not a NIC of this server
      if (!filter.Accepts(link.device)) {
        return options.Error(
            filter.include_set() ? DeviceFilter::kIncludeKey : DeviceFilter::kExcludeKey,
            "leaves out device \"" + link.device + "\" of link \"" + link.name + "\"");
      }
    }
  }
  if (c->labels["instance"].empty()) c->labels["instance"] = HostName();
  for (auto it = c->labels.begin(); it != c->labels.end();) {
    it = it->second.empty() ? c->labels.erase(it) : std::next(it);
  }
  return Status::Ok();
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(const std::string& source, const std::string& yaml) {
  ASSIGN_OR_RETURN(ConfigMap root, ConfigMap::Parse(source, yaml));
  AgentConfig c;
  c.source = source;
  RETURN_IF_ERROR(ReadFile(root, &c));
  return c;
}

Result<AgentConfig> LoadAgentConfig(const FlagSet& flags) {
  AgentConfig c;
  if (flags.IsSet("config.file")) {
    std::string path = flags.Get("config.file");
    auto text = ReadFileToString(path);
    if (!text.ok()) return text.status().WithContext("--config.file");
    ASSIGN_OR_RETURN(c, ParseAgentConfig(path, *text));
  } else {
    ASSIGN_OR_RETURN(c, ParseAgentConfig("<embedded default>", kEmbeddedAgentConfig));
  }
  RETURN_IF_ERROR(ApplyFlags(flags, &c));
  if (!c.web_config_file.empty()) {
    auto web = LoadWebConfig(c.web_config_file);
    if (!web.ok()) return web.status();
    c.web = std::move(web).value();
  }
  RETURN_IF_ERROR(Finalize(&c));
  return c;
}

}  // namespace suanli::agent
