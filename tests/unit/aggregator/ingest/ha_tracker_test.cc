#include "aggregator/ingest/ha_tracker.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cmath>

namespace suanli::aggregator {
namespace {

double Value(prometheus::Registry& r, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  for (const auto& f : r.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      size_t hits = 0;
      for (const auto& l : m.label) hits += labels.count(l.name) && labels.at(l.name) == l.value;
      if (hits == labels.size()) {
        return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
  }
  return NAN;
}

TEST(HaTrackerTest, ElectsTheFirstReplicaAndFailsOverAfterSilence) {
  prometheus::Registry registry;
  HaTracker ha(registry);
  ha.set_config({"__replica__", std::chrono::seconds(30)});
  EXPECT_TRUE(ha.enabled());
  const int64_t t = 1'700'000'000'000;
  EXPECT_TRUE(ha.Accept("gansu", "lz-1", "", "a", 10, t));
  EXPECT_FALSE(ha.Accept("gansu", "lz-1", "", "b", 10, t + 1000));
  EXPECT_TRUE(ha.Accept("gansu", "lz-1", "", "a", 10, t + 20'000));
  EXPECT_FALSE(ha.Accept("gansu", "lz-1", "", "b", 7, t + 50'000));  // a heard 30 s ago
  // Another pair is elected on its own.
  EXPECT_TRUE(ha.Accept("gansu", "lz-1", "s2", "b", 5, t + 50'000));
  EXPECT_EQ(Value(registry, "suanli_aggregator_ha_samples_deduplicated_total", {}), 17);
  EXPECT_EQ(Value(registry, "suanli_aggregator_ha_elected",
                  {{"dc", "lz-1"}, {"shard", ""}, {"replica", "a"}}),
            1);
  // a is silent for more than 30 s: b takes over, and a is then the one dropped.
  EXPECT_TRUE(ha.Accept("gansu", "lz-1", "", "b", 10, t + 50'001));
  EXPECT_FALSE(ha.Accept("gansu", "lz-1", "", "a", 10, t + 50'002));
  EXPECT_EQ(
      Value(registry, "suanli_aggregator_ha_failovers_total", {{"dc", "lz-1"}, {"shard", ""}}), 1);
  EXPECT_EQ(Value(registry, "suanli_aggregator_ha_elected",
                  {{"dc", "lz-1"}, {"shard", ""}, {"replica", "a"}}),
            0);
  EXPECT_EQ(Value(registry, "suanli_aggregator_ha_elected",
                  {{"dc", "lz-1"}, {"shard", ""}, {"replica", "b"}}),
            1);
  ha.set_config({});
  EXPECT_FALSE(ha.enabled());
}

}  // namespace
}  // namespace suanli::aggregator
