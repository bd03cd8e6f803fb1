#include "aggregator/capacity/capacity_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

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

namespace suanli::capacity {
namespace {

// ---- helpers for the alliance view tests ----

struct Node {
  std::string region = "gansu";
  std::string dc = "dc1";
  std::string instance = "a";
};

TimeSeries At(const Node& n, const char* name, std::vector<Label> extra, int64_t ts, double v) {
  extra.push_back({"__name__", name});
  extra.push_back({"region", n.region});
  extra.push_back({"dc", n.dc});
  extra.push_back({"instance", n.instance});
  return TimeSeries{Labels(std::move(extra)), {{ts, v}}};
}

// One CPU whose counters say `busy` of the time since the previous sweep was in use: callers
// pass cumulative idle and user seconds.
void AddCpu(std::vector<TimeSeries>& b, const Node& n, int64_t ts, double idle, double user) {
  b.push_back(At(n, "node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "idle"}}, ts, idle));
  b.push_back(At(n, "node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "user"}}, ts, user));
}

void AddCapacity(std::vector<TimeSeries>& b, const Node& n, int64_t ts, const char* precision,
                 double cpu, double gpu) {
  b.push_back(
      At(n, "suanli_node_compute_capacity_flops", {{"precision", precision}}, ts, cpu + gpu));
  b.push_back(At(n, "suanli_node_compute_capacity_flops_by_source",
                 {{"precision", precision}, {"source", "cpu"}}, ts, cpu));
  if (gpu > 0) {
    b.push_back(At(n, "suanli_node_compute_capacity_flops_by_source",
                   {{"precision", precision}, {"source", "gpu"}}, ts, gpu));
  }
}

void AddGpu(std::vector<TimeSeries>& b, const Node& n, int64_t ts, const char* uuid, double util,
            double watts) {
  std::vector<Label> id = {{"gpu", "0"}, {"uuid", uuid}};
  b.push_back(At(n, "suanli_gpu_utilization_ratio", id, ts, util));
  b.push_back(At(n, "suanli_gpu_memory_total_bytes", id, ts, 80e9));
  b.push_back(At(n, "suanli_gpu_memory_used_bytes", id, ts, 80e9 * util));
  b.push_back(At(n, "suanli_gpu_power_watts", id, ts, watts));
}

CapacityOptions Options(std::chrono::milliseconds stale = std::chrono::seconds(30),
                        std::chrono::milliseconds forget = std::chrono::minutes(10)) {
  CapacityOptions o;
  o.stale_after = stale;
  o.forget_after = forget;
  o.watcher_window = std::chrono::minutes(15);
  return o;
}

TEST(CapacityViewTest, FreeComputeIsCapacityTimesOneMinusUtilizationPerSource) {
  CapacityModel m(Options());
  Node n;
  std::vector<TimeSeries> b1, b2;
  AddCpu(b1, n, 10'000, 100, 100);
  AddCapacity(b1, n, 10'000, "fp32", 1e12, 20e12);
  AddGpu(b1, n, 10'000, "GPU-1", 0.9, 300);
  AddCpu(b2, n, 20'000, 107.5, 102.5);  // 2.5 of 10 CPU-seconds busy: 25 %
  AddCapacity(b2, n, 20'000, "fp32", 1e12, 20e12);
  AddGpu(b2, n, 20'000, "GPU-1", 0.75, 300);
  m.Observe(b1);
  m.Observe(b2);
  CapacitySnapshot s = m.Snapshot(21'000);
  const GroupFigures& dc = s.dcs.at({"gansu", "dc1"});
  EXPECT_DOUBLE_EQ(dc.cpu_utilization(), 0.25);
  EXPECT_EQ(dc.gpus, 1);
  EXPECT_DOUBLE_EQ(dc.gpu_utilization(), 0.75);
  EXPECT_DOUBLE_EQ(dc.gpu_memory_used_bytes, 60e9);
  EXPECT_DOUBLE_EQ(dc.gpu_power_watts, 300);
  // What the driver reserves (R510+ reports it apart) is not free either.
  std::vector<TimeSeries> b3;
  b3.push_back(At(n, "suanli_gpu_memory_reserved_bytes", {{"gpu", "0"}, {"uuid", "GPU-1"}}, 20'000,
                  644'939'776));
  m.Observe(b3);
  EXPECT_DOUBLE_EQ(m.Snapshot(21'000).dcs.at({"gansu", "dc1"}).gpu_memory_used_bytes,
                   60e9 + 644'939'776);
  const ComputeFigures& c = dc.compute.at("fp32");
  EXPECT_DOUBLE_EQ(c.capacity_flops, 21e12);
  EXPECT_DOUBLE_EQ(c.cpu_capacity_flops, 1e12);
  EXPECT_DOUBLE_EQ(c.gpu_capacity_flops, 20e12);
  EXPECT_DOUBLE_EQ(c.cpu_free_flops, 0.75e12);
  EXPECT_DOUBLE_EQ(c.gpu_free_flops, 5e12);
  EXPECT_DOUBLE_EQ(c.free_flops, 5.75e12);
  // The same at every level.
  EXPECT_DOUBLE_EQ(s.regions.at("gansu").compute.at("fp32").free_flops, 5.75e12);
  EXPECT_DOUBLE_EQ(s.alliance.compute.at("fp32").free_flops, 5.75e12);
}

TEST(CapacityViewTest, WithoutTheSplitCapacityGoesToGpusOnGpuNodesElseToCpus) {
  CapacityModel m(Options());
  Node cpu_node{"r", "d", "cpu-only"}, gpu_node{"r", "d", "gpu"};
  for (int64_t ts : {10'000, 20'000}) {
    std::vector<TimeSeries> b;
    double k = ts / 10'000.0;
    AddCpu(b, cpu_node, ts, 5 * k, 5 * k);  // 50 % busy
    AddCpu(b, gpu_node, ts, 10 * k, 0);     // CPUs idle
    b.push_back(
        At(cpu_node, "suanli_node_compute_capacity_flops", {{"precision", "fp64"}}, ts, 100));
    b.push_back(
        At(gpu_node, "suanli_node_compute_capacity_flops", {{"precision", "fp64"}}, ts, 1000));
    AddGpu(b, gpu_node, ts, "GPU-x", 0.6, 200);
    m.Observe(b);
  }
  const ComputeFigures c = m.Snapshot(20'000).dcs.at({"r", "d"}).compute.at("fp64");
  EXPECT_DOUBLE_EQ(c.capacity_flops, 1100);
  EXPECT_DOUBLE_EQ(c.cpu_free_flops, 50);   // 100 x (1 - 0.5)
  EXPECT_DOUBLE_EQ(c.gpu_free_flops, 400);  // 1000 x (1 - 0.6), not 1000 x (1 - 0 CPU)
  EXPECT_DOUBLE_EQ(c.free_flops, 450);
}

TEST(CapacityViewTest, UnknownUtilizationOffersNothingAsFree) {
  CapacityModel m(Options());
  Node n;
  std::vector<TimeSeries> b;
  AddCpu(b, n, 10'000, 1, 1);  // one sweep: no CPU rate yet
  AddCapacity(b, n, 10'000, "fp16", 4e12, 0);
  m.Observe(b);
  const ComputeFigures c = m.Snapshot(10'000).dcs.at({"gansu", "dc1"}).compute.at("fp16");
  EXPECT_DOUBLE_EQ(c.capacity_flops, 4e12);
  EXPECT_DOUBLE_EQ(c.free_flops, 0);
}

TEST(CapacityViewTest, EnergyNeverDropsAcrossServerRestartsOrForgetting) {
  CapacityModel m(Options(std::chrono::seconds(30), std::chrono::minutes(2)));
  Node a{"gansu", "dc1", "a"}, b{"gansu", "dc1", "b"};
  auto energy = [&](const Node& n, int64_t ts, double j) {
    m.Observe({At(n, "suanli_node_energy_joules_total", {}, ts, j),
               At(n, "suanli_node_power_watts", {{"source", "redfish"}}, ts, 100)});
  };
  energy(a, 10'000, 5'000);  // baseline: what a counter held before we saw it is not ours
  energy(b, 10'000, 700);
  EXPECT_DOUBLE_EQ(m.Snapshot(10'000).dcs.at({"gansu", "dc1"}).energy_joules_total, 0);
  energy(a, 20'000, 6'000);  // +1000
  energy(b, 20'000, 900);    // +200
  EXPECT_DOUBLE_EQ(m.Snapshot(20'000).dcs.at({"gansu", "dc1"}).energy_joules_total, 1200);
  energy(a, 30'000, 300);    // a restarted: its counter began again at 0 -> +300
  energy(a, 25'000, 6'500);  // a late point changes nothing
  CapacitySnapshot s = m.Snapshot(30'000);
  EXPECT_DOUBLE_EQ(s.dcs.at({"gansu", "dc1"}).energy_joules_total, 1500);
  EXPECT_DOUBLE_EQ(s.regions.at("gansu").energy_joules_total, 1500);
  EXPECT_DOUBLE_EQ(s.alliance.energy_joules_total, 1500);
  EXPECT_DOUBLE_EQ(s.dcs.at({"gansu", "dc1"}).power_watts, 200);
  EXPECT_EQ(s.dcs.at({"gansu", "dc1"}).power_sources.at("redfish"), 2);
  EXPECT_DOUBLE_EQ(m.Snapshot(55'000).dcs.at({"gansu", "dc1"}).power_watts, 100);  // b stale
  // b goes silent and is forgotten: its energy stays in the dc's counter.
  energy(a, 200'000, 400);  // +100
  CapacitySnapshot later = m.Snapshot(200'000);
  const GroupFigures& dc = later.dcs.at({"gansu", "dc1"});
  EXPECT_EQ(dc.nodes_up, 1);
  EXPECT_EQ(dc.nodes_stale, 0);
  EXPECT_EQ(dc.nodes_gone, 1);
  EXPECT_DOUBLE_EQ(dc.energy_joules_total, 1600);
  EXPECT_EQ(m.node_count(), 1u);
}

TEST(CapacityViewTest, NodesUpStaleAndGone) {
  CapacityModel m(Options(std::chrono::seconds(30), std::chrono::seconds(90)));
  m.Observe({At({"r", "d", "a"}, "node_load1", {}, 10'000, 1)});
  m.Observe({At({"r", "d", "b"}, "node_load1", {}, 50'000, 1)});
  CapacitySnapshot s = m.Snapshot(60'000);
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_up, 1);
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_stale, 1);
  EXPECT_EQ(s.dcs.at({"r", "d"}).newest_sample_ms, 50'000);
  s = m.Snapshot(101'000);  // a: 91 s silent
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_stale, 1);
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_gone, 1);
  EXPECT_EQ(m.node_count(), 1u);
  s = m.Snapshot(200'000);  // both gone: the dc stays, with nothing up
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_up, 0);
  EXPECT_EQ(s.dcs.at({"r", "d"}).nodes_gone, 2);
  EXPECT_EQ(s.alliance.nodes_gone, 2);
  EXPECT_EQ(m.node_count(), 0u);
}

TEST(CapacityViewTest, SeriesThatCannotBePlacedAreIgnored) {
  CapacityModel m(Options());
  m.Observe({TimeSeries{Labels({{"__name__", "node_load1"}, {"instance", "x"}}), {{1000, 1}}},
             TimeSeries{Labels({{"__name__", "node_load1"}, {"dc", "d"}}), {{1000, 1}}},
             At({"r", "d", "stale-only"}, "node_load1", {}, 1000, StaleNaN()),
             At({"r", "d", "a"}, "http_requests_total", {}, 1000, 1)});
  EXPECT_EQ(m.node_count(), 0u);
  EXPECT_TRUE(m.Snapshot(1000).dcs.empty());
}

TEST(CapacityViewTest, PartsThatStopReportingLeaveTheFigures) {
  CapacityModel m(Options(std::chrono::seconds(30)));
  Node n;
  std::vector<TimeSeries> b;
  AddGpu(b, n, 10'000, "GPU-1", 0.5, 100);
  AddGpu(b, n, 10'000, "GPU-2", 0.5, 100);
  m.Observe(b);
  EXPECT_EQ(m.Snapshot(10'000).dcs.at({"gansu", "dc1"}).gpus, 2);
  // GPU-2 fell off the bus: it is not in later sweeps.
  for (int64_t ts = 20'000; ts <= 50'000; ts += 10'000) {
    b.clear();
    AddGpu(b, n, ts, "GPU-1", 0.5, 100);
    m.Observe(b);
  }
  EXPECT_EQ(m.Snapshot(50'000).dcs.at({"gansu", "dc1"}).gpus, 1);
  // A stale marker ends a series at once.
  m.Observe({At(n, "suanli_gpu_utilization_ratio", {{"gpu", "0"}, {"uuid", "GPU-1"}}, 51'000,
                StaleNaN())});
  EXPECT_EQ(m.Snapshot(51'000).dcs.at({"gansu", "dc1"}).gpus_with_utilization, 0);
}

TEST(CapacityViewTest, LinksSumThroughputAndKeepTheDeclaredCapacity) {
  CapacityModel m(Options());
  Node a{"gansu", "lz1", "a"}, b{"gansu", "lz1", "b"};
  for (int64_t ts : {10'000, 20'000}) {
    double k = ts / 10'000.0 - 1;  // 0, then 1
    std::vector<TimeSeries> batch;
    for (const Node* n : {&a, &b}) {
      std::vector<Label> link = {{"link", "passage"}, {"peer_dc", "sh1"}};
      auto dev = link;
      dev.push_back({"device", "eth1"});
      batch.push_back(At(*n, "suanli_link_receive_bytes_total", dev, ts, k * 1e10));
      batch.push_back(At(*n, "suanli_link_transmit_bytes_total", dev, ts, k * 5e9));
      batch.push_back(At(*n, "suanli_link_capacity_bits_per_second", link, ts, 100e9));
    }
    m.Observe(batch);
  }
  CapacitySnapshot s = m.Snapshot(20'000);
  ASSERT_EQ(s.links.size(), 1u);
  const LinkFigures& l = s.links.at({"gansu", "lz1", "passage", "sh1"});
  EXPECT_DOUBLE_EQ(l.capacity_bytes_per_second, 12.5e9);  // one link, declared twice
  EXPECT_DOUBLE_EQ(l.receive_bytes_per_second, 2e9);      // 1e10 B in 10 s, two nodes
  EXPECT_DOUBLE_EQ(l.transmit_bytes_per_second, 1e9);
  EXPECT_DOUBLE_EQ(l.receive_utilization(), 0.16);
}

// A router link (agent/collectors/network/snmp_links.h) carries source="snmp:TARGET" and the
// router's interface as device; the model keys links by (link, peer_dc) and sums devices, so
// it reads them as a NIC's. A router restart makes the counters go back: a reset, never a
// negative throughput.
TEST(CapacityViewTest, RouterLinksWithASourceLabelAndARestart) {
  CapacityModel m(Options());
  Node agent{"gansu", "lz1", "a"};
  const std::vector<Label> link = {
      {"link", "passage"}, {"peer_dc", "sh1"}, {"source", "snmp:10.0.0.1:161"}};
  auto dev = link;
  dev.push_back({"device", "Ethernet1/1"});
  auto sweep = [&](int64_t ts, double rx) {
    m.Observe({At(agent, "suanli_link_receive_bytes_total", dev, ts, rx),
               At(agent, "suanli_link_transmit_bytes_total", dev, ts, rx / 2),
               At(agent, "suanli_link_capacity_bits_per_second", link, ts, 400e9)});
  };
  sweep(10'000, 1e12);
  sweep(20'000, 1e12 + 1e10);
  CapacitySnapshot s = m.Snapshot(20'000);
  const LinkFigures& l = s.links.at({"gansu", "lz1", "passage", "sh1"});
  EXPECT_DOUBLE_EQ(l.capacity_bytes_per_second, 50e9);
  EXPECT_DOUBLE_EQ(l.receive_bytes_per_second, 1e9);
  EXPECT_DOUBLE_EQ(l.transmit_bytes_per_second, 0.5e9);
  sweep(30'000, 2e9);  // the router restarted: its counters start again from 0
  CapacitySnapshot s_after = m.Snapshot(30'000);
  const LinkFigures& after = s_after.links.at({"gansu", "lz1", "passage", "sh1"});
  EXPECT_GE(after.receive_bytes_per_second, 0);
  EXPECT_GE(after.transmit_bytes_per_second, 0);
  sweep(40'000, 2e9 + 1e10);  // and the next interval's rate is right again
  CapacitySnapshot s_later = m.Snapshot(40'000);
  const LinkFigures& later = s_later.links.at({"gansu", "lz1", "passage", "sh1"});
  EXPECT_DOUBLE_EQ(later.receive_bytes_per_second, 1e9);
}

TEST(CapacityViewTest, PueFromTheMeterElseFromTheConfiguration) {
  CapacityOptions o = Options();
  o.facility_power_watts[{"gansu", "dc1"}] = 1500;
  o.facility_power_watts[{"gansu", "dc2"}] = 900;
  CapacityModel m(o);
  m.Observe(
      {At({"gansu", "dc1", "a"}, "suanli_node_power_watts", {{"source", "ipmi_dcmi"}}, 10'000,
          1000),
       At({"gansu", "dc2", "b"}, "suanli_node_power_watts", {{"source", "rapl_psys"}}, 10'000, 600),
       At({"gansu", "dc1", "meter"}, "suanli_facility_power_watts", {}, 10'000, 1300)});
  CapacitySnapshot s = m.Snapshot(10'000);
  EXPECT_DOUBLE_EQ(s.dcs.at({"gansu", "dc1"}).pue(), 1.3);  // the meter wins
  EXPECT_EQ(s.facility_power_source.at({"gansu", "dc1"}), "meter");
  EXPECT_DOUBLE_EQ(s.dcs.at({"gansu", "dc2"}).pue(), 1.5);
  EXPECT_EQ(s.facility_power_source.at({"gansu", "dc2"}), "config");
  EXPECT_DOUBLE_EQ(s.regions.at("gansu").pue(), (1300.0 + 900) / (1000 + 600));
  EXPECT_EQ(m.node_count(), 2u);  // a facility meter is not a node
  // The meter falls silent: the configured figure takes over.
  m.Observe({At({"gansu", "dc1", "a"}, "suanli_node_power_watts", {{"source", "ipmi_dcmi"}}, 60'000,
                1000)});
  EXPECT_DOUBLE_EQ(m.Snapshot(60'000).dcs.at({"gansu", "dc1"}).pue(), 1.5);
}

// A VM's estimated power (no meter) is kept apart: never added to the measured power or PUE.
TEST(CapacityViewTest, EstimatedPowerIsKeptApartFromMeasuredPower) {
  CapacityOptions o = Options();
  o.facility_power_watts[{"gansu", "dc1"}] = 1500;
  CapacityModel m(o);
  m.Observe({At({"gansu", "dc1", "a"}, "suanli_node_power_watts", {{"source", "ipmi_dcmi"}}, 10'000,
                1000),
             At({"gansu", "dc1", "vm"}, "suanli_node_power_watts", {{"source", "estimated"}},
                10'000, 120),
             At({"gansu", "dc1", "vm2"}, "suanli_node_power_watts", {{"source", "estimated"}},
                10'000, 80)});
  const CapacitySnapshot snap = m.Snapshot(10'000);
  const GroupFigures& dc = snap.dcs.at({"gansu", "dc1"});
  EXPECT_DOUBLE_EQ(dc.power_watts, 1000);
  EXPECT_EQ(dc.nodes_with_power, 1);
  EXPECT_DOUBLE_EQ(dc.estimated_power_watts, 200);
  EXPECT_EQ(dc.nodes_with_estimated_power, 2);
  EXPECT_EQ(dc.power_sources.count("estimated"), 0u);
  EXPECT_DOUBLE_EQ(dc.pue(), 1.5);
}

// An agent's energy integrated from estimated power is its own series: summed apart, never
// into the measured energy counter, and kept when the node is forgotten.
TEST(CapacityViewTest, EstimatedEnergyIsKeptApartFromMeasuredEnergy) {
  CapacityModel m(Options(std::chrono::seconds(30), std::chrono::minutes(2)));
  Node metered{"gansu", "dc1", "a"}, vm{"gansu", "dc1", "vm"};
  auto sweep = [&](int64_t ts, double measured_j, double estimated_j) {
    m.Observe(
        {At(metered, "suanli_node_energy_joules_total", {}, ts, measured_j),
         At(metered, "suanli_node_power_watts", {{"source", "ipmi_dcmi"}}, ts, 500),
         At(vm, "suanli_node_energy_joules_total", {{"source", "estimated"}}, ts, estimated_j),
         At(vm, "suanli_node_power_watts", {{"source", "estimated"}}, ts, 50)});
  };
  sweep(10'000, 1'000, 100);  // baselines
  sweep(20'000, 6'000, 600);  // +5000 measured, +500 estimated
  CapacitySnapshot s = m.Snapshot(20'000);
  const GroupFigures& dc = s.dcs.at({"gansu", "dc1"});
  EXPECT_DOUBLE_EQ(dc.energy_joules_total, 5'000);
  EXPECT_DOUBLE_EQ(dc.estimated_energy_joules_total, 500);
  EXPECT_DOUBLE_EQ(s.regions.at("gansu").estimated_energy_joules_total, 500);
  EXPECT_DOUBLE_EQ(s.alliance.energy_joules_total, 5'000);
  EXPECT_DOUBLE_EQ(s.alliance.estimated_energy_joules_total, 500);
  // The VM restarts its agent (counter from 0: +40), then goes silent and is forgotten: its
  // estimated energy stays in the dc's estimated counter, never in the measured one.
  m.Observe({At(vm, "suanli_node_energy_joules_total", {{"source", "estimated"}}, 30'000, 40)});
  m.Observe({At(metered, "suanli_node_energy_joules_total", {}, 200'000, 7'000)});  // +1000
  CapacitySnapshot later = m.Snapshot(200'000);
  const GroupFigures& dc_later = later.dcs.at({"gansu", "dc1"});
  EXPECT_EQ(dc_later.nodes_gone, 1);
  EXPECT_DOUBLE_EQ(dc_later.energy_joules_total, 6'000);
  EXPECT_DOUBLE_EQ(dc_later.estimated_energy_joules_total, 540);
}

// Four agents on the nodes of one 2U four-node chassis each report the chassis' one Redfish
// reading (source redfish_shared, the chassis' identity): the dc counts it once, beside a
// server with its own meter, in power, PUE, energy and the shared share.
TEST(CapacityViewTest, FourNodesOfOneSharedChassisCountItOnce) {
  CapacityOptions o = Options();
  o.facility_power_watts[{"gansu", "dc1"}] = 3000;
  CapacityModel m(o);
  const std::vector<Label> shared = {
      {"source", "redfish_shared"}, {"chassis_identity", "2U4N-S7J00482"}, {"systems", "4"}};
  Node own{"gansu", "dc1", "r640"};
  auto sweep = [&](int64_t ts, double chassis_watts, double joules) {
    std::vector<TimeSeries> b;
    for (int n = 1; n <= 4; ++n) {
      Node node{"gansu", "dc1", "node" + std::to_string(n)};
      b.push_back(At(node, "suanli_node_power_watts", shared, ts, chassis_watts));
      // Every node integrates the same chassis power (sweeps a few ms apart in practice).
      b.push_back(At(node, "suanli_node_energy_joules_total", {}, ts, joules + n));
    }
    b.push_back(At(own, "suanli_node_power_watts", {{"source", "redfish"}}, ts, 352));
    b.push_back(At(own, "suanli_node_energy_joules_total", {}, ts, joules / 4));
    m.Observe(b);
  };
  sweep(10'000, 1648, 100'000);
  sweep(20'000, 1652, 116'500);  // +16500 J per node over 10 s; the server +4125 J
  CapacitySnapshot s = m.Snapshot(20'000);
  const GroupFigures& dc = s.dcs.at({"gansu", "dc1"});
  EXPECT_DOUBLE_EQ(dc.power_watts, 1652 + 352);  // the chassis once, never 4 x 1652
  EXPECT_DOUBLE_EQ(dc.shared_power_watts, 1652);
  EXPECT_EQ(dc.shared_power_chassis, 1);
  EXPECT_EQ(dc.nodes_with_power, 5);
  EXPECT_EQ(dc.power_sources.at("redfish_shared"), 4);
  EXPECT_EQ(dc.power_sources.at("redfish"), 1);
  EXPECT_DOUBLE_EQ(dc.pue(), 3000.0 / (1652 + 352));
  EXPECT_DOUBLE_EQ(dc.energy_joules_total, 16'500 + 4'125);
  EXPECT_DOUBLE_EQ(s.regions.at("gansu").power_watts, 1652 + 352);
  EXPECT_DOUBLE_EQ(s.alliance.shared_power_watts, 1652);

  // The node counting the chassis' energy goes silent: another takes over, nothing counted
  // twice, nothing dropped but its last interval.
  auto without_node1 = [&](int64_t ts, double joules) {
    std::vector<TimeSeries> b;
    for (int n = 2; n <= 4; ++n) {
      Node node{"gansu", "dc1", "node" + std::to_string(n)};
      b.push_back(At(node, "suanli_node_power_watts", shared, ts, 1650));
      b.push_back(At(node, "suanli_node_energy_joules_total", {}, ts, joules + n));
    }
    m.Observe(b);
  };
  without_node1(60'000, 182'500);  // node1 is stale (30 s): node2 counts from here
  without_node1(70'000, 199'000);  // +16500
  CapacitySnapshot later = m.Snapshot(70'000);
  const GroupFigures& dc_later = later.dcs.at({"gansu", "dc1"});
  EXPECT_EQ(dc_later.nodes_up, 3);
  EXPECT_DOUBLE_EQ(dc_later.power_watts, 1650);
  EXPECT_DOUBLE_EQ(dc_later.energy_joules_total, 16'500 + 4'125 + 66'000 + 16'500);
}

// Without an identity nothing tells the chassis apart: each node counts its share.
TEST(CapacityViewTest, SharedReadingWithoutIdentityCountsEachNodesShare) {
  CapacityModel m(Options());
  for (const char* instance : {"a", "b"}) {
    m.Observe({At({"gansu", "dc1", instance}, "suanli_node_power_watts",
                  {{"source", "ipmi_dcmi_shared"}, {"systems", "4"}}, 10'000, 1200)});
  }
  const GroupFigures dc = m.Snapshot(10'000).dcs.at({"gansu", "dc1"});
  EXPECT_DOUBLE_EQ(dc.power_watts, 600);
  EXPECT_DOUBLE_EQ(dc.shared_power_watts, 600);
  EXPECT_EQ(dc.shared_power_chassis, 0);
}

TEST(CapacityViewTest, WatcherHistoryGivesMeanStdAndLatestOverTheWindow) {
  CapacityOptions o = Options(std::chrono::minutes(5), std::chrono::hours(1));
  o.watcher_window = std::chrono::minutes(1);  // buckets of 1 s
  CapacityModel m(o);
  Node n{"r", "d", "node-1"};
  // CPU busy 20 %, then 60 %, then 40 % per 10 s interval; memory at 50 %.
  double idle = 0, user = 0;
  int64_t ts = 100'000;
  auto sweep = [&](double busy) {
    std::vector<TimeSeries> b;
    idle += 10 * (1 - busy);
    user += 10 * busy;
    AddCpu(b, n, ts, idle, user);
    b.push_back(At(n, "node_memory_MemTotal_bytes", {}, ts, 1000));
    b.push_back(At(n, "node_memory_MemAvailable_bytes", {}, ts, 500));
    m.Observe(b);
    ts += 10'000;
  };
  sweep(0);  // the first sweep only sets the counters
  sweep(0.2);
  sweep(0.6);
  sweep(0.4);
  auto loads = m.NodeLoads(ts);
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].instance, "node-1");
  EXPECT_EQ(loads[0].location.dc, "d");
  EXPECT_EQ(loads[0].cpu.samples, 3);
  EXPECT_NEAR(loads[0].cpu.mean, 0.4, 1e-12);
  EXPECT_NEAR(loads[0].cpu.stddev, std::sqrt((0.04 + 0.04 + 0) / 3), 1e-12);
  EXPECT_NEAR(loads[0].cpu.latest, 0.4, 1e-12);
  EXPECT_NEAR(loads[0].memory.mean, 0.5, 1e-12);
  EXPECT_NEAR(loads[0].memory.stddev, 0, 1e-12);
  // Two minutes on, the points have left the 1 m window (the node is still up: 5 m).
  auto later = m.NodeLoads(ts + 120'000);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].cpu.samples, 0);
  // Stale nodes are not listed.
  EXPECT_TRUE(m.NodeLoads(ts + 400'000).empty());
}

TEST(CapacityViewTest, HalfASweepRecordsNoMixedInterval) {
  CapacityModel m(Options());
  Node n;
  auto cpu = [&](const char* c, const char* mode, int64_t ts, double v) {
    return At(n, "node_cpu_seconds_total", {{"cpu", c}, {"mode", mode}}, ts, v);
  };
  m.Observe({cpu("0", "idle", 10'000, 10), cpu("0", "user", 10'000, 0),
             cpu("1", "idle", 10'000, 10), cpu("1", "user", 10'000, 0)});
  // The next sweep arrives in two requests.
  m.Observe({cpu("0", "idle", 20'000, 10), cpu("0", "user", 20'000, 10)});
  EXPECT_EQ(m.NodeLoads(20'000)[0].cpu.samples, 0);
  m.Observe({cpu("1", "idle", 20'000, 20), cpu("1", "user", 20'000, 0)});
  auto loads = m.NodeLoads(20'000);
  EXPECT_EQ(loads[0].cpu.samples, 1);
  EXPECT_DOUBLE_EQ(loads[0].cpu.latest, 0.5);
}

TEST(CapacityViewTest, ConcurrentObserveAndSnapshot) {
  CapacityModel m(Options());
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      m.Snapshot(1'000'000);
      m.NodeLoads(1'000'000);
    }
  });
  for (int i = 0; i < 200; ++i) {
    std::vector<TimeSeries> b;
    Node n{"r", "d" + std::to_string(i % 7), "n" + std::to_string(i % 13)};
    AddCpu(b, n, 1'000'000 + i * 1000, i, i);
    AddGpu(b, n, 1'000'000 + i * 1000, "G", 0.5, 10);
    m.Observe(b);
  }
  done = true;
  reader.join();
  EXPECT_GT(m.node_count(), 0u);
}

}  // namespace
}  // namespace suanli::capacity
