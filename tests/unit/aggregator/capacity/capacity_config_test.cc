// The capacity section of the aggregator's configuration (forget_after, watcher_window,
// facility_power).
#include <gtest/gtest.h>

#include "aggregator/aggregator_config.h"

namespace suanli::aggregator {
namespace {

TEST(CapacityConfigTest, Keys) {
  auto c = ParseAggregatorConfig("a.yml", R"(capacity:
  stale_after: 1m
  forget_after: 2h
  watcher_window: 10m
  facility_power:
    - {region: gansu, dc: lanzhou-1, watts: 1250000}
    - {region: ningxia, dc: zhongwei-1, watts: 2.5e6}
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->forget_after, std::chrono::hours(2));
  EXPECT_EQ(c->watcher_window, std::chrono::minutes(10));
  ASSERT_EQ(c->facility_power.size(), 2u);
  EXPECT_EQ(c->facility_power[1].dc, "zhongwei-1");
  EXPECT_DOUBLE_EQ(c->facility_power[1].watts, 2.5e6);
  auto d = ParseAggregatorConfig("<embedded default>", kEmbeddedAggregatorConfig);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->forget_after, std::chrono::hours(1));
  EXPECT_EQ(d->watcher_window, std::chrono::minutes(15));
  EXPECT_TRUE(d->facility_power.empty());
}

TEST(CapacityConfigTest, Errors) {
  auto err = [](const std::string& yaml) {
    return ParseAggregatorConfig("a.yml", yaml).status().message();
  };
  EXPECT_EQ(err("capacity:\n  stale_after: 5m\n  forget_after: 5m\n"),
            "a.yml:3: capacity.forget_after: must be longer than stale_after");
  EXPECT_EQ(err("capacity:\n  watcher_window: 1s\n"),
            "a.yml:2: capacity.watcher_window: must be between 10s and 24h");
  EXPECT_EQ(err("capacity:\n  facility_power:\n    - {region: r, watts: 1}\n"),
            "a.yml:3: capacity.facility_power[0].dc: is required");
  EXPECT_EQ(err("capacity:\n  facility_power:\n    - {dc: d, watts: 0}\n"),
            "a.yml:3: capacity.facility_power[0].watts: must be positive");
  EXPECT_EQ(err("capacity:\n  facility_power:\n    - {dc: d, watts: 1, kw: 2}\n"),
            "a.yml:3: capacity.facility_power[0].kw: unknown key");
  EXPECT_EQ(err("capacity:\n  facility_power:\n    - {dc: d, watts: 1}\n    - {dc: d, watts: 2}\n"),
            "a.yml:4: capacity.facility_power[1].dc: facility power for this region and dc is "
            "given twice");
}

}  // namespace
}  // namespace suanli::aggregator
