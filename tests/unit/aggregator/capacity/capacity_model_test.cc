#include "aggregator/capacity/capacity_model.h"

#include <gtest/gtest.h>

namespace suanli::capacity {
namespace {

TimeSeries Series(std::vector<Label> labels, int64_t ts, double v) {
  return TimeSeries{Labels(std::move(labels)), {{ts, v}}};
}

std::vector<TimeSeries> NodeSweep(const std::string& dc, const std::string& instance, int64_t ts,
                                  double idle0, double user0, double idle1, double user1,
                                  double rx) {
  auto cpu = [&](const char* c, const char* mode, double v) {
    return Series({{"__name__", "node_cpu_seconds_total"},
                   {"region", "gansu"},
                   {"dc", dc},
                   {"instance", instance},
                   {"cpu", c},
                   {"mode", mode}},
                  ts, v);
  };
  auto node = [&](const char* name, std::vector<Label> extra, double v) {
    std::vector<Label> l = {
        {"__name__", name}, {"region", "gansu"}, {"dc", dc}, {"instance", instance}};
    l.insert(l.end(), extra.begin(), extra.end());
    return Series(l, ts, v);
  };
  return {cpu("0", "idle", idle0),
          cpu("0", "user", user0),
          cpu("1", "idle", idle1),
          cpu("1", "user", user1),
          node("node_memory_MemTotal_bytes", {}, 1000),
          node("node_memory_MemAvailable_bytes", {}, 400),
          node("node_network_receive_bytes_total", {{"device", "eth0"}}, rx),
          node("node_network_receive_bytes_total", {{"device", "lo"}}, rx * 100)};
}

TEST(CapacityModelTest, DerivesDcAndRegionFigures) {
  CapacityModel m(std::chrono::minutes(5));
  m.Observe(NodeSweep("lanzhou-1", "a", 10'000, 100, 100, 100, 100, 1000));
  // 10 s later: cpu0 spent 5 s idle and 5 s user; cpu1 10 s idle. 30000 bytes more on eth0.
  m.Observe(NodeSweep("lanzhou-1", "a", 20'000, 105, 105, 110, 100, 31000));
  m.Observe(NodeSweep("lanzhou-1", "b", 20'000, 0, 0, 0, 0, 0));  // one sweep only: no rates
  CapacitySnapshot s = m.Snapshot(25'000);
  const GroupFigures& dc = s.dcs.at({"gansu", "lanzhou-1"});
  EXPECT_EQ(dc.nodes_up, 2);
  EXPECT_EQ(dc.cpu_cores, 4);
  // Node a: 5 busy of 20 CPU-seconds -> 0.25 x 2 cores = 0.5 busy cores; b has no rate yet.
  EXPECT_DOUBLE_EQ(dc.cpu_busy_cores, 0.5);
  EXPECT_DOUBLE_EQ(dc.memory_total_bytes, 2000);
  EXPECT_DOUBLE_EQ(dc.memory_available_bytes, 800);
  EXPECT_DOUBLE_EQ(dc.network_receive_bytes_per_second, 3000);  // lo excluded
  EXPECT_EQ(s.regions.at("gansu").nodes_up, 2);
}

TEST(CapacityModelTest, StaleNodesLeaveTheSupplyAndResetsGiveNoRate) {
  CapacityModel m(std::chrono::seconds(30));
  m.Observe(NodeSweep("dc1", "a", 10'000, 100, 100, 100, 100, 5000));
  m.Observe(NodeSweep("dc1", "a", 20'000, 1, 1, 1, 1, 10));  // the node rebooted
  CapacitySnapshot fresh = m.Snapshot(21'000);
  EXPECT_EQ(fresh.dcs.at({"gansu", "dc1"}).cpu_busy_cores, 0);
  EXPECT_EQ(fresh.dcs.at({"gansu", "dc1"}).network_receive_bytes_per_second, 0);
  CapacitySnapshot later = m.Snapshot(60'000);
  EXPECT_EQ(later.dcs.at({"gansu", "dc1"}).nodes_up, 0);
  EXPECT_EQ(later.dcs.at({"gansu", "dc1"}).nodes_stale, 1);
  EXPECT_EQ(later.dcs.at({"gansu", "dc1"}).memory_total_bytes, 0);
}

TEST(CapacityModelTest, MemAvailableFallback) {
  CapacityModel m(std::chrono::minutes(5));
  std::vector<TimeSeries> b;
  for (auto [name, v] :
       std::vector<std::pair<const char*, double>>{{"node_memory_MemTotal_bytes", 100},
                                                   {"node_memory_MemFree_bytes", 10},
                                                   {"node_memory_Buffers_bytes", 5},
                                                   {"node_memory_Cached_bytes", 20}}) {
    b.push_back(
        Series({{"__name__", name}, {"region", "r"}, {"dc", "d"}, {"instance", "i"}}, 1000, v));
  }
  m.Observe(b);
  EXPECT_DOUBLE_EQ(m.Snapshot(1000).dcs.at({"r", "d"}).memory_available_bytes, 35);
}

}  // namespace
}  // namespace suanli::capacity
