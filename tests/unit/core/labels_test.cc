#include "core/labels.h"

#include <gtest/gtest.h>

#include "core/sample.h"

namespace suanli {
namespace {

TEST(LabelsTest, SortedAndLookup) {
  Labels l({{"instance", "n1"}, {"__name__", "up"}, {"dc", "lanzhou-1"}});
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l.items()[0].name, "__name__");
  EXPECT_EQ(l.items()[1].name, "dc");
  EXPECT_EQ(l.MetricName(), "up");
  EXPECT_EQ(l.Get("dc"), "lanzhou-1");
  EXPECT_EQ(l.Get("absent"), "");
  l.Set("region", "gansu");
  l.Set("dc", "lanzhou-2");
  EXPECT_EQ(l.ToString(), R"(up{dc="lanzhou-2",instance="n1",region="gansu"})");
}

TEST(LabelsTest, HashIsOrderIndependentAndDistinguishesBoundaries) {
  Labels a({{"a", "bc"}, {"__name__", "m"}});
  Labels b({{"__name__", "m"}, {"a", "bc"}});
  Labels c({{"__name__", "m"}, {"ab", "c"}});
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_NE(a.Hash(), c.Hash());
}

TEST(LabelsTest, Validate) {
  EXPECT_TRUE(Labels({{"__name__", "node_load1"}, {"instance", "x"}}).Validate().ok());
  EXPECT_EQ(Labels({{"instance", "x"}}).Validate().message(),
            "series has no metric name (__name__ label)");
  EXPECT_FALSE(Labels({{"__name__", "1bad"}}).Validate().ok());
  EXPECT_FALSE(Labels({{"__name__", "m"}, {"", "v"}}).Validate().ok());
  EXPECT_FALSE(Labels({{"__name__", "m"}, {"bad-name", "v"}}).Validate().ok());
  Status dup = Labels({{"__name__", "m"}, {"dc", "a"}, {"dc", "b"}}).Validate();
  EXPECT_NE(dup.message().find("\"dc\" twice"), std::string::npos) << dup.message();
  Status utf = Labels({{"__name__", "m"}, {"dc", std::string("\xff\xfe", 2)}}).Validate();
  EXPECT_NE(utf.message().find("not valid UTF-8"), std::string::npos) << utf.message();
}

// The same rules over views, as the ingest path checks a new series in the request's bytes.
TEST(LabelsTest, ValidateLabelsOverViews) {
  struct View {
    std::string_view name, value;
  };
  using Views = std::vector<View>;
  EXPECT_TRUE(ValidateLabels(Views{{"__name__", "node_load1"}, {"instance", "x"}}).ok());
  EXPECT_EQ(ValidateLabels(Views{{"instance", "x"}}).message(),
            "series has no metric name (__name__ label)");
  EXPECT_EQ(ValidateLabels(Views{{"__name__", "1bad"}}).message(), "invalid metric name \"1bad\"");
  EXPECT_EQ(ValidateLabels(Views{{"", "v"}, {"__name__", "m"}}).message(),
            "series m has a label with an empty name");
  EXPECT_EQ(ValidateLabels(Views{{"__name__", "m"}, {"bad-name", "v"}}).message(),
            "series m has an invalid label name \"bad-name\"");
  EXPECT_EQ(ValidateLabels(Views{{"__name__", "m"}, {"dc", "a"}, {"dc", "b"}}).message(),
            "series m has label \"dc\" twice");
  EXPECT_EQ(
      ValidateLabels(Views{{"__name__", "m"}, {"dc", std::string_view("\xff\xfe", 2)}}).message(),
      "series m label \"dc\" has a value that is not valid UTF-8");
  // Labels::Validate is the same function.
  EXPECT_EQ(Labels({{"__name__", "m"}, {"dc", "a"}, {"dc", "b"}}).Validate().message(),
            "series m has label \"dc\" twice");
}

TEST(LabelsTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8("lanzhou 兰州 ✓"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));         // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));     // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe5\x85"));         // truncated
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // U+1F600
}

TEST(SampleTest, StaleMarkerIsDistinctNaN) {
  double stale = StaleNaN();
  EXPECT_TRUE(std::isnan(stale));
  EXPECT_TRUE(IsStaleNaN(stale));
  EXPECT_FALSE(IsStaleNaN(std::nan("")));
  EXPECT_FALSE(Sample({1, stale}) == Sample({1, std::nan("")}));
  EXPECT_TRUE(Sample({1, stale}) == Sample({1, stale}));
}

}  // namespace
}  // namespace suanli
