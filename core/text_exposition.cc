#include "core/text_exposition.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace suanli {

std::string RenderText(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
  family_.name = std::move(name);
  family_.help = std::move(help);
  family_.type = type;
}

FamilyBuilder& FamilyBuilder::Add(std::vector<prometheus::ClientMetric::Label> labels,
                                  double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  switch (family_.type) {
    case prometheus::MetricType::Counter:
      m.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      m.gauge.value = value;
      break;
    default:
      m.untyped.value = value;
      break;
  }
  family_.metric.push_back(std::move(m));
  return *this;
}

prometheus::MetricFamily FamilyBuilder::Build() && { return std::move(family_); }

}  // namespace suanli
