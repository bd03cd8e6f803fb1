// Benchmarks of the alliance capacity view over a simulated alliance of 1,000 dcs (10 servers
// each, 16 CPUs and 2 GPUs per server, 1,000 inter-dc links):
//   BM_MetricsScrape       what GET /metrics does for the view: Snapshot + text (< 100 ms)
//   BM_MetricsScrapeHttp   GET /metrics of a real Aggregator (RocksDB store, HTTP server)
//                          holding 1,000 dcs of 2 servers each, fed by remote_write
//   BM_MetricsViaFamilies  the same through prometheus-cpp families + TextSerializer (why the
//                          direct text writer exists)
//   BM_CapacityJson        GET /api/v1/capacity, unfiltered
//   BM_CapacityJsonRender  the JSON rendering alone, from a snapshot taken once
//   BM_CapacityJsonHttp    GET /api/v1/capacity of the real Aggregator of BM_MetricsScrapeHttp
//   BM_Watcher             GET /watcher for every server
//   BM_ObserveSweep        ingest of one full sweep into the model, per server
// Run: <build>/bin/capacity_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "aggregator/aggregator.h"
#include "aggregator/capacity/capacity_model.h"
#include "core/clock.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "core/text_exposition.h"
#include "exporters/prometheus/capacity_metrics.h"
#include "exporters/scheduler/capacity_json.h"
#include "exporters/scheduler/load_watcher.h"
#include "tests/bench/simulation.h"

namespace suanli {
namespace {

constexpr int kRegions = 10;
constexpr int kDcsPerRegion = 100;
constexpr int kNodesPerDc = 10;
constexpr int64_t kStartMs = 1'700'000'000'000;

sim::SimulationOptions Alliance() {
  sim::SimulationOptions o;
  o.regions.clear();
  for (int r = 0; r < kRegions; ++r) o.regions.push_back("region-" + std::to_string(r));
  o.dcs_per_region = kDcsPerRegion;
  o.nodes_per_dc = kNodesPerDc;
  return o;
}

// A model holding two sweeps (15 s apart) of every server, fed a chunk of servers at a time.
struct Fixture {
  std::unique_ptr<capacity::CapacityModel> model;
  int64_t now_ms = kStartMs + 16'000;
};

Fixture& Loaded() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    fx->model = std::make_unique<capacity::CapacityModel>(capacity::CapacityOptions{});
    sim::Simulation s(Alliance());
    for (int sweep = 0; sweep < 2; ++sweep) {
      for (size_t i = 0; i < s.node_count(); i += 100) {
        fx->model->Observe(
            s.Sweep(sweep * 15.0, sweep ? 15.0 : 0, kStartMs + sweep * 15'000, i, i + 100));
      }
    }
    return fx;
  }();
  return *f;
}

void BM_MetricsScrape(benchmark::State& state) {
  Fixture& f = Loaded();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body;
    exporters::AppendCapacityText(f.model->Snapshot(f.now_ms), &body);
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["dcs"] = kRegions * kDcsPerRegion;
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MetricsScrape)->Unit(benchmark::kMillisecond);

// A real aggregator on loopback with 1,000 dcs (2 small servers each), written by remote_write;
// each iteration GETs `path`.
void GetFromFedAggregator(benchmark::State& state, const std::string& path) {
  std::string dir = std::filesystem::temp_directory_path().string() + "/capacity_bench." +
                    std::to_string(getpid());
  aggregator::AggregatorConfig config;
  config.listen_address = "127.0.0.1:0";
  config.storage_path = dir;
  config.log_level = "warn";
  aggregator::Aggregator agg(config, SystemClock::Get());
  if (Status st = agg.Start(); !st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return;
  }
  sim::SimulationOptions o = Alliance();
  o.nodes_per_dc = 2;
  o.cpus = 4;
  o.gpus = 1;
  sim::Simulation s(o);
  HttpClient client;
  const std::map<std::string, std::string> headers = {
      {"Content-Encoding", remote::kContentEncoding},
      {"Content-Type", remote::kWriteContentType},
      {remote::kWriteVersionHeader, remote::kWriteVersion}};
  const std::string url = "http://" + agg.address();
  int64_t now = SystemClock::Get().NowUnixMs() - 15'000;
  for (int sweep = 0; sweep < 2; ++sweep, now += 15'000) {
    for (size_t i = 0; i < s.node_count(); i += 200) {
      remote::WriteRequest req;
      req.series = s.Sweep(sweep * 15.0, sweep ? 15.0 : 0, now, i, i + 200);
      auto r = client.Post(url + "/api/v1/write", remote::EncodeWriteRequest(req), headers);
      if (!r.ok() || r->status != 204) {
        state.SkipWithError("write failed");
        return;
      }
    }
  }
  size_t bytes = 0;
  for (auto _ : state) {
    auto r = client.Get(url + path);
    if (!r.ok() || r->status != 200) {
      state.SkipWithError("GET failed");
      break;
    }
    bytes = r->body.size();
  }
  state.counters["dcs"] = kRegions * kDcsPerRegion;
  state.counters["body_bytes"] = static_cast<double>(bytes);
  agg.Stop();
  std::filesystem::remove_all(dir);
}
void BM_MetricsScrapeHttp(benchmark::State& state) { GetFromFedAggregator(state, "/metrics"); }
BENCHMARK(BM_MetricsScrapeHttp)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CapacityJsonHttp(benchmark::State& state) {
  GetFromFedAggregator(state, "/api/v1/capacity");
}
BENCHMARK(BM_CapacityJsonHttp)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MetricsViaFamilies(benchmark::State& state) {
  Fixture& f = Loaded();
  for (auto _ : state) {
    std::string body = RenderText(exporters::CapacityFamilies(f.model->Snapshot(f.now_ms)));
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_MetricsViaFamilies)->Unit(benchmark::kMillisecond);

void BM_CapacityJson(benchmark::State& state) {
  Fixture& f = Loaded();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = exporters::CapacityJson(f.model->Snapshot(f.now_ms), {});
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CapacityJson)->Unit(benchmark::kMillisecond);

void BM_CapacityJsonRender(benchmark::State& state) {
  Fixture& f = Loaded();
  const capacity::CapacitySnapshot snap = f.model->Snapshot(f.now_ms);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = exporters::CapacityJson(snap, {});
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["dcs"] = static_cast<double>(snap.dcs.size());
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CapacityJsonRender)->Unit(benchmark::kMillisecond);

void BM_Watcher(benchmark::State& state) {
  Fixture& f = Loaded();
  for (auto _ : state) {
    auto answer = exporters::WatcherMetricsJson(f.model->NodeLoads(f.now_ms), f.now_ms,
                                                std::chrono::minutes(15), {});
    benchmark::DoNotOptimize(answer);
  }
  state.counters["nodes"] = kRegions * kDcsPerRegion * kNodesPerDc;
}
BENCHMARK(BM_Watcher)->Unit(benchmark::kMillisecond);

void BM_ObserveSweep(benchmark::State& state) {
  // One dc's worth of servers per batch, as one agent request per server would bring them.
  sim::SimulationOptions o;
  o.regions = {"r"};
  o.dcs_per_region = 1;
  o.nodes_per_dc = kNodesPerDc;
  sim::Simulation s(o);
  capacity::CapacityModel model(capacity::CapacityOptions{});
  int64_t ts = kStartMs;
  double t = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto batch = s.Sweep(t, 15, ts);
    t += 15;
    ts += 15'000;
    state.ResumeTiming();
    model.Observe(batch);
  }
  state.SetItemsProcessed(state.iterations() * kNodesPerDc);  // servers per second
}
BENCHMARK(BM_ObserveSweep)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace suanli

BENCHMARK_MAIN();
