// Prometheus text exposition (format 0.0.4) for both binaries' /metrics, rendered by
// prometheus-cpp's TextSerializer from its MetricFamily model.
// Thread-safety: free functions over values.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <string_view>
#include <vector>

namespace suanli {

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string RenderText(const std::vector<prometheus::MetricFamily>& families);

// Builder for families whose samples are computed at scrape time (not held in a Registry).
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);
  // Adds one sample; label pairs in the order given.
  FamilyBuilder& Add(std::vector<prometheus::ClientMetric::Label> labels, double value);
  prometheus::MetricFamily Build() &&;
  bool empty() const { return family_.metric.empty(); }

 private:
  prometheus::MetricFamily family_;
};

}  // namespace suanli
