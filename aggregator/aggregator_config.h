// The aggregator's configuration: the YAML file (or the embedded default), then flags on top.
// See deploy/aggregator.example.yml for every key.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <string>

#include "core/flags.h"
#include "core/status.h"

namespace suanli::aggregator {

struct WriteLimits {
  int64_t max_body_bytes = 16 << 20;     // compressed request body; more is answered 413
  int64_t max_decoded_bytes = 64 << 20;  // after snappy; guards against decompression bombs
};

struct AggregatorConfig {
  std::string source = "<embedded default>";
  std::string listen_address = ":9466";
  std::string storage_path = "data/aggregator";
  WriteLimits limits;
  // A node whose newest sample is older than this no longer counts as capacity.
  std::chrono::milliseconds stale_after{std::chrono::minutes(5)};
  int64_t http_worker_threads = 16;
  std::string log_level = "info";
  std::string log_format = "logfmt";
};

extern const char* const kEmbeddedAggregatorConfig;

void AddAggregatorFlags(FlagSet& flags);
Result<AggregatorConfig> LoadAggregatorConfig(const FlagSet& flags);
Result<AggregatorConfig> ParseAggregatorConfig(const std::string& source, const std::string& yaml);

}  // namespace suanli::aggregator
