#include "core/text_exposition.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace suanli {
namespace {

TEST(TextExpositionTest, RendersBuiltFamiliesInTextFormat) {
  std::vector<prometheus::MetricFamily> families;
  FamilyBuilder total("suanli_test_total", "Things counted.", prometheus::MetricType::Counter);
  total.Add({{"dc", "lanzhou-1"}}, 3);
  families.push_back(std::move(total).Build());
  FamilyBuilder watts("suanli_test_watts", "Power drawn.", prometheus::MetricType::Gauge);
  watts.Add({{"dc", "lanzhou-1"}, {"source", "rapl"}}, 112.5)
      .Add({{"dc", "lanzhou-2"}, {"source", "gpu"}}, 0.25);
  families.push_back(std::move(watts).Build());
  EXPECT_EQ(RenderText(families),
            "# HELP suanli_test_total Things counted.\n"
            "# TYPE suanli_test_total counter\n"
            "suanli_test_total{dc=\"lanzhou-1\"} 3\n"
            "# HELP suanli_test_watts Power drawn.\n"
            "# TYPE suanli_test_watts gauge\n"
            "suanli_test_watts{dc=\"lanzhou-1\",source=\"rapl\"} 112.5\n"
            "suanli_test_watts{dc=\"lanzhou-2\",source=\"gpu\"} 0.25\n");
  EXPECT_STREQ(kTextContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(TextExpositionTest, EmptyBuilderSaysSo) {
  FamilyBuilder b("suanli_none", "Nothing.", prometheus::MetricType::Gauge);
  EXPECT_TRUE(b.empty());
  b.Add({}, 1);
  EXPECT_FALSE(b.empty());
}

}  // namespace
}  // namespace suanli
