// suanli-loadgen: simulates the agents of many data centers. Every --interval it writes one
// sweep of node-level series (the agents' contract: node_cpu_seconds_total, memory, NICs,
// compute capacity per precision and source, GPUs, whole-server power and energy, inter-dc
// links, a facility power meter per dc) for regions x dcs x nodes by remote_write, and serves
// the same series on /metrics (with their region/dc/instance labels, for a Prometheus that
// scrapes with honor_labels: true).
//
// POST /control drives the simulation while it runs, e.g. a shortage in one region:
//   /control?region=ningxia&utilization=1      CPU and GPU utilization of its nodes (0-1)
//   /control?dc=gansu-1&link_utilization=0.97  traffic on a dc's inter-dc links (0-1)
//   /control?restart=gansu-1-n0                the server restarts: its counters start over
// --only-dc gansu-3 simulates one dc of the topology (names and links as in the whole), so one
// process per dc can write to that dc's aggregator.
// Logs "listening on http://ADDR" once serving. Exits on SIGTERM/SIGINT, or after --sweeps.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/daemon.h"
#include "core/flags.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/remote_codec.h"
#include "tests/bench/simulation.h"

using namespace suanli;

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  return out;
}

bool ParseInt(const std::string& s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  FlagSet flags("suanli-loadgen");
  flags.AddRepeated("remote-write.url", "remote_write endpoint (repeatable; none: serve only)");
  flags.AddString("regions", "Comma-separated region names", "gansu,ningxia,guizhou");
  flags.AddString("dcs-per-region", "Data centers per region", "2");
  flags.AddString("nodes-per-dc", "Servers per data center", "3");
  flags.AddString("cpus", "Logical CPUs per server", "16");
  flags.AddString("gpus", "GPUs per server", "2");
  flags.AddString("utilization", "Initial CPU and GPU utilization (0-1)", "0.3");
  flags.AddString("link-utilization", "Initial inter-dc link utilization (0-1)", "0.3");
  flags.AddString("interval", "Time between sweeps", "1s");
  flags.AddString("sweeps", "Stop after this many sweeps (0: until SIGTERM)", "0");
  flags.AddBool("facility-meters",
                "Write suanli_facility_power_watts per dc (default on; --no-facility-meters: off)");
  flags.AddString("only-dc",
                  "Simulate only this dc of the topology (e.g. gansu-3): one process per dc", "");
  flags.AddString("web.listen-address", "Address for /metrics and /control", "127.0.0.1:0");
  flags.AddBool("help", "Print this help and exit");
  if (Status st = flags.Parse(argc, argv); !st.ok()) {
    std::fprintf(stderr, "suanli-loadgen: %s\n", st.message().c_str());
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << flags.Help();
    return 0;
  }
  sim::SimulationOptions o;
  o.regions = Split(flags.Get("regions"));
  int sweeps_wanted = 0;
  double u = std::atof(flags.Get("utilization").c_str());
  double lu = std::atof(flags.Get("link-utilization").c_str());
  auto interval = ParseDuration(flags.Get("interval"));
  if (o.regions.empty() || !ParseInt(flags.Get("dcs-per-region"), &o.dcs_per_region) ||
      !ParseInt(flags.Get("nodes-per-dc"), &o.nodes_per_dc) ||
      !ParseInt(flags.Get("cpus"), &o.cpus) || !ParseInt(flags.Get("gpus"), &o.gpus) ||
      !ParseInt(flags.Get("sweeps"), &sweeps_wanted) || !interval.ok() || interval->count() <= 0 ||
      o.cpus < 1 || o.dcs_per_region < 1 || o.nodes_per_dc < 1) {
    std::fprintf(stderr, "suanli-loadgen: bad flag value; see --help\n");
    return 2;
  }
  o.utilization = u;
  o.link_utilization = lu;
  o.facility_meters = !flags.IsSet("facility-meters") || flags.GetBool("facility-meters");
  o.only_dc = flags.Get("only-dc");

  BlockSignals();
  sim::Simulation sim(o);
  if (sim.node_count() == 0) {
    std::fprintf(stderr, "suanli-loadgen: --only-dc %s is not a dc of the topology\n",
                 o.only_dc.c_str());
    return 2;
  }
  constexpr size_t kMaxSeriesPerRequest = 20000;
  HttpServer::Options so;
  so.listen_address = flags.Get("web.listen-address");
  so.worker_threads = 2;
  HttpServer server(so);
  server.Route("GET", "/metrics", [&](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = sim.MetricsText();
    return r;
  });
  server.Route("POST", "/control", [&](const HttpRequest& req) {
    std::string msg;
    bool ok = sim.Control(req.query, &msg);
    std::fprintf(stderr, "control %s", msg.c_str());
    return HttpResponse::Text(ok ? 200 : 404, msg);
  });
  server.Route("GET", "/-/healthy",
               [](const HttpRequest&) { return HttpResponse::Text(200, "Healthy\n"); });
  if (Status st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "suanli-loadgen: %s\n", st.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "listening on http://%s\n", server.address().c_str());

  std::atomic<bool> stop{false};
  std::vector<std::string> urls = flags.GetAll("remote-write.url");
  std::thread sender([&] {
    HttpClient client;
    const std::map<std::string, std::string> headers = {
        {"Content-Encoding", remote::kContentEncoding},
        {"Content-Type", remote::kWriteContentType},
        {remote::kWriteVersionHeader, remote::kWriteVersion}};
    auto start = std::chrono::steady_clock::now();
    auto next = start;
    double last_t = 0;
    for (int sweep = 0; !stop.load(); ++sweep) {
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      std::vector<TimeSeries> series =
          sim.Sweep(t, sweep == 0 ? 0 : t - last_t, now_ms);  // first sweep: counters at zero
      last_t = t;
      for (const auto& url : urls) {
        for (size_t i = 0; i < series.size(); i += kMaxSeriesPerRequest) {
          remote::WriteRequest req;
          size_t end = std::min(series.size(), i + kMaxSeriesPerRequest);
          req.series.assign(series.begin() + i, series.begin() + end);
          auto r = client.Post(url, remote::EncodeWriteRequest(req), headers);
          if (!r.ok()) {
            std::fprintf(stderr, "write failed: %s\n", r.status().message().c_str());
          } else if (r->status / 100 != 2) {
            std::fprintf(stderr, "write answered %d: %s\n", r->status, r->body.c_str());
          }
        }
      }
      if (sweeps_wanted > 0 && sweep + 1 >= sweeps_wanted) {
        kill(getpid(), SIGTERM);
        return;
      }
      next += *interval;
      while (!stop.load() && std::chrono::steady_clock::now() < next) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });
  ServeUntilTerminated([] {});
  stop = true;
  sender.join();
  server.Stop();
  return 0;
}
