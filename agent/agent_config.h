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
#include "core/config.h"
#include "core/flags.h"
#include "core/status.h"

namespace suanli::agent {

struct RemoteWriteEndpoint {
  std::string url;
  std::chrono::milliseconds timeout{10000};
  std::string bearer_token;  // sent as Authorization: Bearer
  std::string ca_file;
  bool insecure_skip_verify = false;
  // Sweeps held in memory per endpoint while it is unreachable; the oldest go first.
  int64_t max_pending_bytes = 64 << 20;
};

struct AgentConfig {
  std::string source = "<embedded default>";  // file the config came from
  std::map<std::string, std::string> labels;  // static labels: region, dc, instance
  std::chrono::milliseconds sample_interval{15000};
  std::vector<RemoteWriteEndpoint> remote_write;
  std::string listen_address = ":9465";
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
