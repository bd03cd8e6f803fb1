// Tiers with real processes on loopback: the same servers' samples written once to a single
// aggregator and once to dc aggregators that forward `select: capacity` to a top aggregator
// give the same region and alliance figures; an HA pair with one replica SIGKILLed keeps the
// dc counted once at the top, fails over after ha.failover_after, and leaves no longer gap in
// the top's history of the dc's figures.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/file_util.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

// One sweep of a server: 4 CPUs at `busy`, memory, compute capacity, power and energy.
void AddServer(std::vector<TimeSeries>* b, const std::string& region, const std::string& dc,
               const std::string& instance, int64_t ts, double secs, double busy, bool gpu) {
  auto add = [&](const char* name, std::vector<Label> extra, double v) {
    extra.push_back({"__name__", name});
    extra.push_back({"region", region});
    extra.push_back({"dc", dc});
    extra.push_back({"instance", instance});
    b->push_back({Labels(std::move(extra)), {{ts, v}}});
  };
  for (const char* cpu : {"0", "1", "2", "3"}) {
    add("node_cpu_seconds_total", {{"cpu", cpu}, {"mode", "idle"}}, secs * (1 - busy));
    add("node_cpu_seconds_total", {{"cpu", cpu}, {"mode", "user"}}, secs * busy);
  }
  add("node_memory_MemTotal_bytes", {}, 64e9);
  add("node_memory_MemAvailable_bytes", {}, 64e9 * (1 - busy / 2));
  add("suanli_node_compute_capacity_flops", {{"precision", "fp32"}}, gpu ? 20.5e12 : 0.5e12);
  add("suanli_node_compute_capacity_flops_by_source", {{"precision", "fp32"}, {"source", "cpu"}},
      0.5e12);
  if (gpu) {
    add("suanli_node_compute_capacity_flops_by_source", {{"precision", "fp32"}, {"source", "gpu"}},
        20e12);
    add("suanli_gpu_utilization_ratio", {{"gpu", "0"}, {"uuid", "GPU-" + instance}}, busy);
    add("suanli_gpu_power_watts", {{"gpu", "0"}, {"uuid", "GPU-" + instance}}, 250);
  }
  add("suanli_node_power_watts", {{"source", "rapl_psys"}}, gpu ? 600 : 180);
  add("suanli_node_energy_joules_total", {}, secs * 300);
}

struct Server {
  std::string region, dc, instance;
  double busy;
  bool gpu;
};

const std::vector<Server>& Servers() {
  static const std::vector<Server> servers = {
      {"gansu", "lz-1", "lz-1-a", 0.25, true},  {"gansu", "lz-1", "lz-1-b", 0.5, false},
      {"gansu", "lz-1", "lz-1-c", 0.8, true},   {"gansu", "qy-1", "qy-1-a", 0.9, true},
      {"gansu", "qy-1", "qy-1-b", 0.05, false}, {"ningxia", "zw-1", "zw-1-a", 0.1, false},
      {"ningxia", "zw-1", "zw-1-b", 0.6, true},
  };
  return servers;
}

// Two sweeps, 10 s apart, of every server whose dc `accept`s, to `url`.
void WriteSweeps(const std::string& url, int64_t t0,
                 const std::function<bool(const Server&)>& accept) {
  for (int64_t ts : {t0, t0 + 10'000}) {
    std::vector<TimeSeries> batch;
    for (const Server& s : Servers()) {
      if (accept(s)) AddServer(&batch, s.region, s.dc, s.instance, ts, ts / 1000.0, s.busy, s.gpu);
    }
    ASSERT_TRUE(PostRemoteWrite(url, batch).ok());
  }
}

std::string TopConfig(const std::string& path) {
  EXPECT_TRUE(WriteFile(path, "ha:\n  replica_label: __replica__\n  failover_after: 3s\n").ok());
  return path;
}

std::string DcConfig(const std::string& path, const std::string& top_url,
                     const std::string& external = "") {
  std::string yml =
      "capacity:\n  evaluation_interval: 1s\nforward:\n  - name: top\n    url: " + top_url +
      "\n    select: capacity\n";
  if (!external.empty()) yml += "    external_labels: {" + external + "}\n";
  EXPECT_TRUE(WriteFile(path, yml).ok());
  return path;
}

TEST(TiersTest, DcAggregatorsForwardingCapacityGiveTheSingleAggregatorsFigures) {
  TempDir tmp("suanli-tiers");
  ASSERT_TRUE(MakeDirectories(tmp.Sub("single")).ok());
  auto single = StartAggregator(tmp.Sub("single"), {}, "single.log");
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  ASSERT_TRUE(MakeDirectories(tmp.Sub("top")).ok());
  auto top = StartAggregator(tmp.Sub("top"), {"--config.file=" + TopConfig(tmp.Sub("top.yml"))},
                             "top.log");
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  std::vector<Daemon> dcs;
  for (const char* dc : {"lz-1", "qy-1", "zw-1"}) {
    ASSERT_TRUE(MakeDirectories(tmp.Sub(dc)).ok());
    auto d = StartAggregator(
        tmp.Sub(dc),
        {"--config.file=" + DcConfig(tmp.Sub(std::string(dc) + ".yml"), top->Url("/api/v1/write"))},
        std::string(dc) + ".log");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dcs.push_back(std::move(d).value());
  }
  const int64_t t0 = UnixNowMs() - 20'000;
  WriteSweeps(single->Url("/api/v1/write"), t0, [](const Server&) { return true; });
  for (size_t i = 0; i < dcs.size(); ++i) {
    const std::string dc = i == 0 ? "lz-1" : i == 1 ? "qy-1" : "zw-1";
    WriteSweeps(dcs[i].Url("/api/v1/write"), t0, [&](const Server& s) { return s.dc == dc; });
  }
  const int64_t written = UnixNowMs();
  // The top has every dc's figures from an evaluation after both sweeps: until then (a dc
  // aggregator may evaluate between the two, and a slow sanitizer build makes that likely) the
  // figures that need the second sweep (rates, energy) still differ. Wait until every figure
  // agrees, then report what still differs.
  MetricsMap at_top, at_single;
  std::vector<std::string> differ;
  size_t compared = 0;
  auto compare = [&] {
    differ.clear();
    compared = 0;
    auto t = ScrapeMetrics(top->Url("/metrics"));
    auto m = ScrapeMetrics(single->Url("/metrics"));
    if (!t.ok() || !m.ok()) return false;
    at_top = *t;
    at_single = *m;
    for (const auto& [key, value] : at_single) {
      if (!key.starts_with("suanli_region_") && !key.starts_with("suanli_alliance_")) continue;
      if (key.find("_age_seconds") != std::string::npos) continue;
      auto it = at_top.find(key);
      if (it == at_top.end()) {
        differ.push_back(key + ": not at the top");
      } else if (!NearlyEqual(value, it->second, 1e-9) && !(value == 0 && it->second == 0)) {
        differ.push_back(key + ": single " + std::to_string(value) + ", two tiers " +
                         std::to_string(it->second));
      }
      ++compared;
    }
    return differ.empty() && FindSample(at_top, "suanli_alliance_nodes", {{"state", "up"}}) == 7.0;
  };
  EXPECT_TRUE(WaitFor(compare, seconds(60))) << top->process->LogTail();
  for (const std::string& d : differ) ADD_FAILURE() << d;
  const int64_t seen = UnixNowMs();
  for (const auto& [key, value] : at_single) {
    if (key.find("_age_seconds") == std::string::npos) continue;
    if (!key.starts_with("suanli_region_") && !key.starts_with("suanli_alliance_")) continue;
    auto it = at_top.find(key);
    ASSERT_NE(it, at_top.end()) << key;
    // Freshness: the top's figures are at most two evaluation intervals (2 s) behind.
    EXPECT_LE(it->second, value + 2.0 + (seen - written) / 1000.0) << key;
    EXPECT_GE(it->second, value - 1.0) << key;
  }
  EXPECT_GT(compared, 60u);
  EXPECT_EQ(FindSample(at_top, "suanli_region_dcs", {{"region", "gansu"}, {"state", "reporting"}}),
            2.0);
}

TEST(TiersTest, AnHaPairCountsOnceAndFailsOverWhenTheElectedReplicaDies) {
  TempDir tmp("suanli-tiers");
  ASSERT_TRUE(MakeDirectories(tmp.Sub("top")).ok());
  auto top = StartAggregator(tmp.Sub("top"), {"--config.file=" + TopConfig(tmp.Sub("top.yml"))},
                             "top.log");
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  std::vector<Daemon> replicas;
  for (const char* r : {"a", "b"}) {
    ASSERT_TRUE(MakeDirectories(tmp.Sub(r)).ok());
    auto d = StartAggregator(
        tmp.Sub(r),
        {"--config.file=" + DcConfig(tmp.Sub(std::string(r) + ".yml"), top->Url("/api/v1/write"),
                                     std::string("__replica__: ") + r)},
        std::string("replica-") + r + ".log");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    replicas.push_back(std::move(d).value());
  }
  // Agents write every second to both replicas, as their two remote_write entries do.
  std::atomic<bool> stop{false};
  std::atomic<int> killed{-1};  // the replica the test SIGKILLed (its process is not touched)
  const int64_t started = UnixNowMs();
  std::thread agents([&] {
    while (!stop) {
      const int64_t ts = UnixNowMs();
      std::vector<TimeSeries> batch;
      for (const Server& s : Servers()) {
        if (s.dc == "lz-1")
          AddServer(&batch, s.region, s.dc, s.instance, ts, ts / 1000.0, s.busy, s.gpu);
      }
      for (size_t i = 0; i < replicas.size(); ++i) {
        if (killed.load() != static_cast<int>(i)) {
          PostRemoteWrite(replicas[i].Url("/api/v1/write"), batch).IgnoreError();
        }
      }
      std::this_thread::sleep_for(milliseconds(1000));
    }
  });
  auto stop_agents = [&] {
    stop = true;
    if (agents.joinable()) agents.join();
  };
  MetricsMap m;
  auto scrape = [&] {
    auto r = ScrapeMetrics(top->Url("/metrics"));
    if (r.ok()) m = *r;
    return r.ok();
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return scrape() &&
               FindSample(m, "suanli_dc_nodes", {{"dc", "lz-1"}, {"state", "up"}}) == 3.0;
      },
      seconds(30)));
  std::string elected =
      FindSample(m, "suanli_aggregator_ha_elected", {{"replica", "a"}}) == 1.0 ? "a" : "b";
  ASSERT_EQ(FindSample(m, "suanli_aggregator_ha_elected", {{"replica", elected}}), 1.0);
  // Counted once, never twice, while both replicas forward.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(scrape());
    EXPECT_EQ(FindSample(m, "suanli_dc_nodes", {{"dc", "lz-1"}, {"state", "up"}}), 3.0);
    EXPECT_EQ(FindSample(m, "suanli_region_cpu_cores", {{"region", "gansu"}}), 12.0);
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_GT(FindSample(m, "suanli_aggregator_ha_samples_deduplicated_total").value_or(0), 0);
  // The elected replica dies; after failover_after (3 s) the other one takes over.
  Daemon& victim = replicas[elected == "a" ? 0 : 1];
  killed = elected == "a" ? 0 : 1;
  victim.process->Signal(SIGKILL);
  victim.process->Wait(seconds(10));
  const std::string other = elected == "a" ? "b" : "a";
  ASSERT_TRUE(WaitFor(
      [&] {
        return scrape() &&
               FindSample(m, "suanli_aggregator_ha_elected", {{"replica", other}}) == 1.0;
      },
      seconds(30)))
      << top->process->LogTail();
  EXPECT_EQ(FindSample(m, "suanli_aggregator_ha_failovers_total", {{"dc", "lz-1"}}), 1.0);
  std::this_thread::sleep_for(seconds(3));
  const int64_t ended = UnixNowMs();
  stop_agents();
  ASSERT_TRUE(scrape());
  EXPECT_EQ(FindSample(m, "suanli_dc_nodes", {{"dc", "lz-1"}, {"state", "up"}}), 3.0);
  // The top's history of the dc's figures: one sample per evaluation second, no gap longer
  // than failover_after plus an evaluation interval.
  std::vector<Sample> cores =
      RemoteReadSamples(top->Url("/api/v1/read"), "suanli_dc_cpu_cores", "lz-1", started, ended);
  ASSERT_GT(cores.size(), 5u);
  for (size_t i = 1; i < cores.size(); ++i) {
    EXPECT_LE(cores[i].timestamp_ms - cores[i - 1].timestamp_ms, 3'000 + 1'000 + 1'000)
        << "gap before " << cores[i].timestamp_ms;
    EXPECT_EQ(cores[i].value, 12.0);
  }
}

}  // namespace
}  // namespace suanli::it
