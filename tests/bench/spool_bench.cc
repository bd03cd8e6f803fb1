// spool_bench: what a one-hour outage at 1 s sampling costs the agent, and how fast it is
// replayed. Not a Google Benchmark: it drives the real binaries.
//
//  1. fill:   samples this host (/proc, /sys) --sweeps times back to back, each sweep encoded as
//             the agent does and appended to a spool, timestamps 1 s apart ending now;
//  2. hold:   starts the real suanli-agent (1 s sampling) on that spool with its aggregator
//             unreachable, and measures its RSS and CPU while it holds the backlog;
//  3. replay: starts a real suanli-aggregator on loopback and measures how long the agent takes
//             to deliver the backlog (x real time = backlog seconds / replay seconds), with the
//             agent's CPU and peak RSS meanwhile;
//  4. format: merged re-encoding (what the sender does) against sending the spooled sweeps
//             concatenated as they are (snappy-decoded, joined, re-compressed): request bytes,
//             agent CPU, and the aggregator's time per request, each on a fresh store.
//
// Usage: spool_bench [--sweeps=3600] [--hold=10] [--max-samples-per-send=20000]
//                    [--replay-order=oldest_first] [--work=DIR] [--keep]
// The daemons are the build's bin/suanli-agent and bin/suanli-aggregator.
#include <snappy.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/sampler.h"
#include "agent/sender.h"
#include "agent/spool.h"
#include "agent/write_request_encoder.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

using namespace suanli;
using namespace suanli::it;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Args {
  int sweeps = 3600;
  int hold_seconds = 10;
  int64_t max_samples_per_send = 20000;
  std::string replay_order = "oldest_first";
  std::string work;
  bool keep = false;
  int format_records = 600;  // spooled sweeps used by the format comparison
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto val = [&](const char* name) -> std::optional<std::string> {
      std::string p = std::string("--") + name + "=";
      if (s.rfind(p, 0) == 0) return s.substr(p.size());
      return std::nullopt;
    };
    if (auto v = val("sweeps")) {
      a.sweeps = std::stoi(*v);
    } else if (auto v = val("hold")) {
      a.hold_seconds = std::stoi(*v);
    } else if (auto v = val("max-samples-per-send")) {
      a.max_samples_per_send = std::stoll(*v);
    } else if (auto v = val("replay-order")) {
      a.replay_order = *v;
    } else if (auto v = val("work")) {
      a.work = *v;
    } else if (s == "--keep") {
      a.keep = true;
    } else {
      std::cerr << "unknown argument " << s << "\n";
      std::exit(2);
    }
  }
  return a;
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU seconds (user + system) a process has used, from /proc/PID/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  std::vector<std::string> fields;
  while (in >> field) fields.push_back(field);
  if (fields.size() < 13) return 0;
  // After the command: state is field 3, utime 14, stime 15 (1-based, whole line).
  double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A /proc/PID/status field in MiB (VmRSS, VmHWM).
double StatusMiB(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

double ProcessCpuSelf() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double Metric(const Daemon& d, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  auto m = ScrapeMetrics(d.Url("/metrics"));
  if (!m.ok()) return -1;
  return FindSample(*m, name, labels).value_or(-1);
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ConcatAsIs(const std::vector<agent::SpoolRecord>& records) {
  std::string raw, one;
  for (const auto& r : records) {
    one.clear();
    snappy::Uncompress(r.body->data(), r.body->size(), &one);
    raw += one;  // protobuf: concatenated messages merge their repeated fields
  }
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

int Fail(const std::string& why) {
  std::cerr << "spool_bench: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = ParseArgs(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGPIPE, SIG_IGN);
  if (args.work.empty()) {
    char tmpl[] = "/tmp/spool-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Fail("mkdtemp failed");
    args.work = tmpl;
  }
  std::filesystem::create_directories(args.work);
  const int port = PickFreePort();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string url = "http://" + address + "/api/v1/write";
  const std::string spool_dir = args.work + "/spool";
  std::filesystem::remove_all(spool_dir);
  std::printf("work dir %s, host %s, %ld cores\n", args.work.c_str(), HostName().c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));

  // ---- 1. fill
  auto cfg = agent::ParseAgentConfig("<bench>",
                                     "labels: {region: bench, dc: bench-1, instance: "
                                     "bench-host}\nsample_interval: 1s\n");
  if (!cfg.ok()) return Fail(cfg.status().ToString());
  auto collectors = agent::BuildCollectors(*cfg);
  if (!collectors.ok()) return Fail(collectors.status().ToString());
  prometheus::Registry registry;
  agent::Sampler sampler(std::move(collectors).value(), std::chrono::seconds(1), registry);
  std::vector<agent::SpoolRecord> format_records;
  double sample_s = 0, encode_s = 0, append_s = 0;
  uint64_t samples = 0, body_bytes = 0, disk_bytes = 0;
  {
    agent::SpoolOptions so;
    so.directory = spool_dir;
    so.max_bytes = int64_t{1} << 30;
    so.fsync = agent::FsyncPolicy::kInterval;  // the agent's default (group sync every second)
    agent::Spool spool(so, {url}, SystemClock::Get(), registry);
    agent::WriteRequestEncoder encoder(cfg->labels);  // what the sampling loop uses
    const int64_t t0 = UnixMs() - int64_t{1000} * args.sweeps;
    agent::Sweep sweep;
    for (int i = 0; i < args.sweeps; ++i) {
      auto a = SteadyClock::now();
      sweep.Clear();
      sampler.RunOnce(sweep);
      auto b = SteadyClock::now();
      const int64_t ts = t0 + int64_t{1000} * i;
      uint32_t series = 0;
      std::string body = encoder.Encode(sweep, ts, &series);
      auto c = SteadyClock::now();
      samples += series;
      body_bytes += body.size();
      if (i < args.format_records) {
        agent::SpoolRecord r;
        r.seq = static_cast<uint64_t>(i);
        r.samples = series;
        r.min_ts_ms = r.max_ts_ms = ts;
        r.body = std::make_shared<const std::string>(body);
        format_records.push_back(r);
      }
      spool.Append(std::move(body), series, ts, ts);
      auto d = SteadyClock::now();
      sample_s += Seconds(b - a);
      encode_s += Seconds(c - b);
      append_s += Seconds(d - c);
    }
    disk_bytes = spool.Stats().disk_bytes;
  }
  std::printf("\n[fill] %d sweeps of this host, %.0f samples/sweep, %.0f bytes/sweep encoded\n",
              args.sweeps, static_cast<double>(samples) / args.sweeps,
              static_cast<double>(body_bytes) / args.sweeps);
  std::printf(
      "  per sweep: sampling %.2f ms, encoding %.3f ms, spool append (fsync: interval) %.3f ms\n",
      1e3 * sample_s / args.sweeps, 1e3 * encode_s / args.sweeps, 1e3 * append_s / args.sweeps);
  std::printf(
      "  spool on disk: %.1f MiB for %.1f h of 1 s sampling (%.1f MiB/h; default cap "
      "256 MiB = %.0f h)\n",
      disk_bytes / 1048576.0, args.sweeps / 3600.0, disk_bytes / 1048576.0 * 3600.0 / args.sweeps,
      256.0 / (disk_bytes / 1048576.0 * 3600.0 / args.sweeps));

  std::fflush(stdout);

  // ---- 2. hold
  std::string config = args.work + "/agent.yml";
  Status st = WriteFile(config,
                        "labels: {region: bench, dc: bench-1, instance: bench-host}\n"
                        "sample_interval: 1s\n"
                        "remote_write:\n"
                        "  - url: " +
                            url +
                            "\n"
                            "    max_samples_per_send: " +
                            std::to_string(args.max_samples_per_send) +
                            "\n"
                            "    replay_order: " +
                            args.replay_order +
                            "\n"
                            "spool:\n"
                            "  directory: " +
                            spool_dir +
                            "\n"
                            "  max_bytes: 1073741824\n");
  if (!st.ok()) return Fail(st.ToString());
  auto spawn = SteadyClock::now();
  auto agent = StartAgent(args.work, {"--config.file=" + config}, "agent.log");
  if (!agent.ok()) return Fail(agent.status().ToString());
  if (!agent->process->WaitForLog("spool: opened", seconds(60)).has_value()) {
    return Fail("agent never opened its spool:\n" + agent->process->LogTail());
  }
  double open_s = Seconds(SteadyClock::now() - spawn);
  const pid_t apid = agent->process->pid();
  std::this_thread::sleep_for(seconds(1));
  double cpu0 = CpuSeconds(apid);
  std::this_thread::sleep_for(seconds(args.hold_seconds));
  double cpu1 = CpuSeconds(apid);
  double hold_rss = StatusMiB(apid, "VmRSS");
  double pending = Metric(*agent, "suanli_agent_remote_write_pending_samples", {{"endpoint", url}});
  double spool_bytes = Metric(*agent, "suanli_agent_spool_bytes", {{"medium", "disk"}});
  double age = Metric(*agent, "suanli_agent_spool_oldest_sample_age_seconds");
  std::printf("\n[hold] agent started on the spool in %.2f s (opens and checks every record)\n",
              open_s);
  std::printf("  holding %.0f samples (%.1f MiB on disk, oldest %.0f s old), aggregator down:\n",
              pending, spool_bytes / 1048576.0, age);
  std::printf("  agent RSS %.1f MiB, CPU %.2f %% of one core (sampling every 1 s, probing)\n",
              hold_rss, 100.0 * (cpu1 - cpu0) / args.hold_seconds);

  std::fflush(stdout);

  // ---- 3. replay
  auto up = SteadyClock::now();
  double cpu2 = CpuSeconds(apid);
  auto agg = StartAggregator(
      args.work, {"--web.listen-address=" + address, "--storage.path=" + args.work + "/store"},
      "aggregator.log");
  if (!agg.ok()) return Fail(agg.status().ToString());
  auto listening = SteadyClock::now();
  bool emptied = WaitFor(
      [&] {
        return Metric(*agent, "suanli_agent_remote_write_pending_samples", {{"endpoint", url}}) ==
               0;
      },
      seconds(600), std::chrono::milliseconds(10));
  auto done = SteadyClock::now();
  if (!emptied) return Fail("backlog not delivered:\n" + agent->process->LogTail());
  // The sender's own figure, from its first accepted request (absent for a tiny backlog).
  auto delivered = agent->process->WaitForLog(
      R"(backlog delivered endpoint=\S+ samples=\d+ seconds=([0-9.]+))", seconds(2));
  double cpu3 = CpuSeconds(apid);
  double agg_cpu = CpuSeconds(agg->process->pid());
  double peak_rss = StatusMiB(apid, "VmHWM");
  double replay_s = delivered ? std::stod(*delivered) : Seconds(done - listening);
  double sent = Metric(*agent, "suanli_agent_remote_write_samples_sent_total", {{"endpoint", url}});
  double requests = Metric(*agent, "suanli_agent_remote_write_requests_total",
                           {{"endpoint", url}, {"result", "ok"}});
  std::printf("\n[replay] max_samples_per_send=%" PRId64 " replay_order=%s\n",
              args.max_samples_per_send, args.replay_order.c_str());
  std::printf(
      "  backlog of %.0f s delivered in %.2f s by the agent's clock (its first successful "
      "request to an empty backlog) = x%.0f real time\n",
      static_cast<double>(args.sweeps), replay_s, args.sweeps / replay_s);
  std::printf(
      "  %.2f s from the aggregator's start (%.2f s after it listened; includes the "
      "agent's next probe, at most 1 s) = x%.0f real time\n",
      Seconds(done - up), Seconds(done - listening), args.sweeps / Seconds(done - up));
  std::printf(
      "  %.0f requests, %.0f samples sent; agent CPU %.2f s, peak RSS %.1f MiB; "
      "aggregator CPU %.2f s (start included)\n",
      requests, sent, cpu3 - cpu2, peak_rss, agg_cpu);
  agent->process->Signal(SIGTERM);
  agent->process->Wait(seconds(30));
  agg->process->Signal(SIGTERM);
  agg->process->Wait(seconds(30));

  std::fflush(stdout);

  // ---- 4. format: merged re-encoding against concatenation as is
  std::printf("\n[format] %zu spooled sweeps in batches of %" PRId64
              " samples, each on a fresh "
              "aggregator store\n",
              format_records.size(), args.max_samples_per_send);
  for (const char* format : {"merged", "as-is"}) {
    std::vector<std::vector<agent::SpoolRecord>> batches(1);
    uint64_t in_batch = 0;
    for (const auto& r : format_records) {
      if (in_batch + r.samples > static_cast<uint64_t>(args.max_samples_per_send) &&
          !batches.back().empty()) {
        batches.emplace_back();
        in_batch = 0;
      }
      batches.back().push_back(r);
      in_batch += r.samples;
    }
    double cpu_a = ProcessCpuSelf();
    std::vector<std::string> bodies;
    for (const auto& b : batches) {
      if (std::string(format) == "merged") {
        bodies.push_back(agent::MergeRecords(b).value());
      } else {
        bodies.push_back(ConcatAsIs(b));
      }
    }
    double build_cpu = ProcessCpuSelf() - cpu_a;
    uint64_t bytes = 0;
    for (const auto& b : bodies) bytes += b.size();
    std::string store = args.work + "/store-" + format;
    auto fresh = StartAggregator(args.work, {"--storage.path=" + store},
                                 std::string("aggregator-") + format + ".log");
    if (!fresh.ok()) return Fail(fresh.status().ToString());
    HttpClient client;
    const std::map<std::string, std::string> headers = {
        {"Content-Encoding", remote::kContentEncoding},
        {"Content-Type", remote::kWriteContentType},
        {remote::kWriteVersionHeader, remote::kWriteVersion}};
    double agg0 = CpuSeconds(fresh->process->pid());
    auto t = SteadyClock::now();
    for (const auto& b : bodies) {
      auto r = client.Post(fresh->Url("/api/v1/write"), b, headers);
      if (!r.ok() || r->status / 100 != 2) {
        return Fail(std::string(format) + ": " +
                    (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString()));
      }
    }
    double post_s = Seconds(SteadyClock::now() - t);
    double agg_cpu_f = CpuSeconds(fresh->process->pid()) - agg0;
    std::printf(
        "  %-7s %3zu requests, %.1f KiB each, build %.1f ms CPU, aggregator %.0f ms wall "
        "/ %.0f ms CPU\n",
        format, bodies.size(), bytes / 1024.0 / bodies.size(), 1e3 * build_cpu, 1e3 * post_s,
        1e3 * agg_cpu_f);
    fresh->process->Signal(SIGTERM);
    fresh->process->Wait(seconds(30));
  }
  if (!args.keep) std::filesystem::remove_all(args.work);
  return 0;
}
