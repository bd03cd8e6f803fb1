// Prometheus remote_write 1.0 and remote_read codec: protobuf messages (core/proto/remote.proto)
// in the snappy block format, plus the protocol's header names and status semantics.
// Thread-safety: free functions over plain values; safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/remote_write_response.h"
#include "core/sample.h"
#include "core/status.h"

namespace suanli::remote {

inline constexpr const char* kContentEncoding = "snappy";
inline constexpr const char* kWriteContentType = "application/x-protobuf";
inline constexpr const char* kWriteVersionHeader = "X-Prometheus-Remote-Write-Version";
inline constexpr const char* kWriteVersion = "0.1.0";
inline constexpr const char* kReadVersionHeader = "X-Prometheus-Remote-Read-Version";
inline constexpr const char* kReadVersion = "0.1.0";

struct WriteRequest {
  std::vector<TimeSeries> series;
  std::vector<MetricMetadata> metadata;
};

// Serializes to protobuf and compresses with snappy (block format): the HTTP body.
std::string EncodeWriteRequest(const WriteRequest& request);

// Decompresses and parses a remote_write body. Fails with kInvalidArgument and a one-line
// reason on bad snappy or protobuf, and with kResourceExhausted when the decompressed size
// would exceed `max_decoded_bytes` (checked before decompressing: snappy bombs).
// Labels are sorted; label validity is NOT checked here (see Labels::Validate).
Result<WriteRequest> DecodeWriteRequest(std::string_view body, size_t max_decoded_bytes);

// Decompresses a snappy block-format body into *out (*size bytes), with the checks both
// remote_write decoders share: kInvalidArgument for an empty or corrupt body,
// kResourceExhausted when the declared size exceeds `max_decoded_bytes` (checked before
// allocating: snappy bombs) or INT_MAX (libprotobuf's limit). With `capacity` (the size of
// *out), a buffer that is large enough is reused and *capacity updated when it is replaced.
Status SnappyDecompress(std::string_view body, size_t max_decoded_bytes,
                        std::unique_ptr<char[]>* out, size_t* size, size_t* capacity = nullptr);

// The answer table every sender applies: core/remote_write_response.h.

// ---- remote_read (SAMPLES responses only) ----

struct LabelMatcher {
  enum class Type { kEqual = 0, kNotEqual = 1, kRegexMatch = 2, kRegexNoMatch = 3 };
  Type type = Type::kEqual;
  std::string name;
  std::string value;
};

// Prometheus' ReadHints: what PromQL will do with the data, used to pick a resolution.
struct ReadHints {
  int64_t step_ms = 0;
  std::string func;  // e.g. "rate", "max_over_time"; empty when absent
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::vector<std::string> grouping;
  bool by = false;
  int64_t range_ms = 0;
};

struct ReadQuery {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::vector<LabelMatcher> matchers;
  ReadHints hints;
  bool has_hints = false;
};

struct ReadRequest {
  std::vector<ReadQuery> queries;
  bool accepts_streamed_chunks = false;  // we always answer SAMPLES
};

Result<ReadRequest> DecodeReadRequest(std::string_view body, size_t max_decoded_bytes);
std::string EncodeReadRequest(const ReadRequest& request);  // for tests and clients

// One result per query, each a list of series: protobuf ReadResponse, snappy-compressed.
std::string EncodeReadResponse(const std::vector<std::vector<TimeSeries>>& results);
Result<std::vector<std::vector<TimeSeries>>> DecodeReadResponse(std::string_view body,
                                                                size_t max_decoded_bytes);

}  // namespace suanli::remote
