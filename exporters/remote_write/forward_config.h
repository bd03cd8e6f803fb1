// The aggregator's `forward:` section: where its data goes upstream by remote_write (a region
// or alliance aggregator, or a distributed store such as Mimir, Thanos Receive or a
// VictoriaMetrics cluster), what goes (capacity, rollups or raw), and how (credentials, TLS,
// tenant headers, queue). deploy/aggregator.example.yml shows every key; docs/forwarding.md
// explains them.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "aggregator/storage/store.h"
#include "core/config.h"
#include "core/status.h"

namespace suanli::exporters {

enum class ForwardSelect { kCapacity, kRollups, kRaw };
const char* ForwardSelectName(ForwardSelect s);

struct ForwardQueueConfig {
  int64_t shards = 4;                   // requests in flight at once; a series stays on one
  int64_t max_samples_per_send = 5000;  // samples per request
  std::chrono::milliseconds min_backoff{30};
  std::chrono::milliseconds max_backoff{5000};
  bool operator==(const ForwardQueueConfig&) const = default;
};

struct ForwardTarget {
  std::string name;  // the `target` label of the self-metrics; unique
  std::string url;
  ForwardSelect select = ForwardSelect::kCapacity;
  rollup::Resolution resolution = rollup::Resolution::k5m;  // rollups only
  // Series selectors (PromQL, e.g. {__name__=~"node_.*"}); a series matching any is sent.
  // Empty: every series (raw, rollups); capacity always sends only suanli_dc_* and suanli_link_*.
  std::vector<std::string> match;
  std::vector<std::vector<storage::MatcherSpec>> matchers;  // parsed `match`
  std::map<std::string, std::string> headers;               // e.g. X-Scope-OrgID
  std::map<std::string, std::string> external_labels;       // added where a series lacks them
  std::string bearer_token_file;  // read before every request: a rotated token needs no reload
  std::string basic_auth_username;
  std::string basic_auth_password;
  std::string basic_auth_password_file;
  std::string ca_file, cert_file, key_file;  // tls_config
  bool insecure_skip_verify = false;
  std::chrono::milliseconds remote_timeout{30000};
  // A backlog older than this (by sample time) is skipped, counted and logged.
  std::chrono::milliseconds max_backlog{std::chrono::hours(24)};
  // rollups: an interval is sent this long after it ends, so late samples still count.
  std::chrono::milliseconds rollup_delay{std::chrono::minutes(1)};
  ForwardQueueConfig queue;

  bool operator==(const ForwardTarget&) const = default;
};

// Parses the `forward:` list of the aggregator's configuration (`root` is the file's root map;
// its `forward` key is read). Errors name file, line and key.
Result<std::vector<ForwardTarget>> ParseForwardTargets(ConfigMap& root);

// Parses one PromQL series selector: `name`, `{a="b", c!~"d.*"}` or `name{...}`. At least one
// matcher must not match the empty string (Prometheus' rule).
Result<std::vector<storage::MatcherSpec>> ParseSeriesSelector(std::string_view text);

}  // namespace suanli::exporters
