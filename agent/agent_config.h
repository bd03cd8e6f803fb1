// The agent's configuration: the YAML file (or the embedded default), then command-line flags
// on top (a flag given wins over the file's key). See deploy/agent.example.yml for every key.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/links.h"
#include "agent/spool.h"
#include "core/config.h"
#include "core/flags.h"
#include "core/status.h"
#include "core/web_config.h"

namespace suanli::agent {

// spool: directory "data/agent-spool" (relative to the working directory), the rest as
// SpoolOptions' defaults.
SpoolOptions DefaultSpoolOptions();

struct RemoteWriteEndpoint {
  std::string url;
  std::chrono::milliseconds timeout{10000};
  std::string bearer_token;  // sent as Authorization: Bearer
  std::string ca_file;
  bool insecure_skip_verify = false;
  std::string cert_file, key_file;  // tls_config: client certificate for mutual TLS
  // Spooled sweeps merged into one request while a backlog waits, up to this many samples
  // (a sweep larger than this is sent alone, never split).
  int64_t max_samples_per_send = 20000;
  ReplayOrder replay_order = ReplayOrder::kOldestFirst;
  // newest_first only: how far behind its newest sample the receiver still accepts one (our
  // aggregator: storage.out_of_order_window; Prometheus: out_of_order_time_window).
  std::chrono::milliseconds out_of_order_window{std::chrono::hours(1)};
  std::chrono::milliseconds min_backoff{250};    // first retry delay
  std::chrono::milliseconds max_backoff{30000};  // after 5xx/429; network errors: sample_interval
  // Least time between the starts of two requests that carry new sweeps (0: send every sweep at
  // once). A sweep that finds the last request older than this is sent at once; otherwise it
  // waits and goes with every sweep pending then, in one request. Retries, a backlog of a full
  // batch or more, and sweeps resent one at a time after a refusal are not held back.
  std::chrono::milliseconds min_send_interval{1000};
};

struct AgentConfig {
  std::string source = "<embedded default>";  // file the config came from
  std::map<std::string, std::string> labels;  // static labels: region, dc, instance
  std::chrono::milliseconds sample_interval{15000};
  std::vector<RemoteWriteEndpoint> remote_write;
  // The disk spool every sweep goes through (directory relative to the working directory).
  SpoolOptions spool = DefaultSpoolOptions();
  std::string listen_address = ":9465";
  // --web.config.file (web.config_file): TLS and credentials for /metrics; "" = none.
  std::string web_config_file;
  WebConfig web;
  HostPaths paths;
  std::map<std::string, bool> collectors;  // NAME -> enabled; absent: the collector's default
  // collector_config.NAME: each collector's own section, read by its factory.
  std::map<std::string, ConfigMap> collector_config;
  // A collector that may block (registry: may_block) gets this long per sweep, at most 90% of
  // the sample interval; past it the sweep goes on without it and the timeout is counted.
  std::chrono::milliseconds collector_timeout{5000};
  std::vector<LinkSpec> links;  // inter-dc links this server terminates
  std::string log_level = "info";
  std::string log_format = "logfmt";
};

// The configuration used when no --config.file is given: a local aggregator on this host.
extern const char* const kEmbeddedAgentConfig;

// Registers every agent flag (names fixed by DESIGN.md).
void AddAgentFlags(FlagSet& flags, const std::vector<std::string>& collector_names);

// Reads the file named by --config.file (or the embedded default), applies the flags, fills
// `instance` with the host name when unset, and validates the result. Errors name file, line
// and key, or the flag.
Result<AgentConfig> LoadAgentConfig(const FlagSet& flags);
// Same, from YAML text (for tests and the embedded default).
Result<AgentConfig> ParseAgentConfig(const std::string& source, const std::string& yaml);

}  // namespace suanli::agent
