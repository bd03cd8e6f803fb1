// Samples and time series as they travel through Suanli (agent sweep, remote_write, store).
// Timestamps are Unix milliseconds (remote_write's unit); values are float64, and NaN or the
// Prometheus stale marker are legal values.
// Thread-safety: plain values.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/labels.h"

namespace suanli {

struct Sample {
  int64_t timestamp_ms = 0;
  double value = 0;
  bool operator==(const Sample& o) const {
    // Bitwise equality so NaN and the stale marker compare as themselves.
    return timestamp_ms == o.timestamp_ms && std::memcmp(&value, &o.value, sizeof value) == 0;
  }
};

struct TimeSeries {
  Labels labels;
  std::vector<Sample> samples;
};

// Prometheus' stale marker: a specific NaN bit pattern (value.StaleNaN).
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
inline double StaleNaN() {
  double d;
  std::memcpy(&d, &kStaleNaNBits, sizeof d);
  return d;
}
inline bool IsStaleNaN(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits == kStaleNaNBits;
}

// Metric metadata sent alongside samples (remote_write MetricMetadata).
enum class MetricType {
  kUnknown = 0,
  kCounter = 1,
  kGauge = 2,
  kHistogram = 3,
  kGaugeHistogram = 4,
  kSummary = 5,
  kInfo = 6,
  kStateset = 7
};
struct MetricMetadata {
  MetricType type = MetricType::kUnknown;
  std::string metric_family_name;
  std::string help;
  std::string unit;
};

}  // namespace suanli
