// suanli_load: a db_bench-style load driver for the aggregator's store (no HTTP, no codec):
// appends --series series for --steps steps at --step_ms in batches of --batch series, then
// reports samples/s and per CPU-second, disk bytes per sample after a full compaction (by
// family), resident memory per series, and the latency of reading --read_days of one series at
// 1h resolution. Usage: suanli_load --path=DIR [--series=N --steps=N --step_ms=MS --batch=N
// --threads=N --read_days=N --values=linear|mixed --dump_openmetrics=FILE]
// --dump_openmetrics=FILE also writes every appended sample, values at full precision, as
// OpenMetrics text, so that Prometheus can build blocks of the very same samples (promtool tsdb
// create-blocks-from openmetrics; tests/bench/synthetic_data_bytes.sh).
// --values=linear (default, as tests/bench/rwgen.py): series i grows by (i % 7 + 1) per
// step on a steady scrape. --values=mixed, closer to real node data: a quarter each of
// cpu-seconds-like counters (steps of 0.01 at a wobbling rate), gauges with full-precision
// noise, byte counters with a noisy rate, and two-decimal gauges, with up to 10 ms of
// timestamp jitter per step (the same for every series of the step, like one agent sweep).
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"

using namespace suanli;

namespace {

int64_t Flag(int argc, char** argv, const char* name, int64_t def) {
  std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0)
      return std::stoll(argv[i] + prefix.size());
  }
  return def;
}

std::string StrFlag(int argc, char** argv, const char* name, std::string def) {
  std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return def;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long RssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

Labels SeriesLabels(int64_t i) {
  char host[32], metric[48];
  std::snprintf(host, sizeof host, "srv-%06lld.example:9100", (long long)(i / 500));
  std::snprintf(metric, sizeof metric, "load_metric_%03lld_total", (long long)(i % 500));
  return Labels{{"__name__", metric},
                {"dc", "dc" + std::to_string(i / 500 % 20)},
                {"instance", host},
                {"job", "node"}};
}

uint64_t Mix(uint64_t x) {  // splitmix64: deterministic noise
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
double Noise(int64_t i, int64_t step) {  // uniform in [-1, 1)
  return double(Mix(uint64_t(i) * 1'000'003 + uint64_t(step)) >> 11) / double(1ull << 52) - 1;
}

// The --values=mixed value of series i at `step`, given its previous value.
double MixedValue(int64_t i, int64_t step, double prev) {
  double wobble = std::sin(double(step) / 20 + double(i));
  switch (i % 4) {
    case 0:  // node_cpu_seconds_total: hundredths of a second at a wobbling utilization
      return std::round((prev + 15 * (0.3 + 0.1 * wobble + 0.02 * Noise(i, step))) * 100) / 100;
    case 1:  // power in watts, full-precision noise
      return 400 + 50 * wobble + 2 * Noise(i, step);
    case 2:  // bytes counter
      return prev + std::floor(1e6 * (1 + 0.5 * Noise(i, step)));
    default:  // load average, two decimals
      return std::round((4 + wobble + 0.1 * Noise(i, step)) * 100) / 100;
  }
}

// The timestamp of every sample of `step`: --values=mixed adds up to 10 ms of jitter, the
// same for every series of the step.
int64_t StepTimestamp(int64_t start, int64_t step_ms, int64_t step, bool mixed) {
  return start + step * step_ms + (mixed ? int64_t(Mix(uint64_t(step)) % 10) : 0);
}

// The value series i gets at `step`, given its previous one: the only source of values, for the
// store and for the OpenMetrics dump alike.
double StepValue(int64_t i, int64_t step, double prev, bool mixed) {
  return mixed ? MixedValue(i, step, prev) : double(step * (i % 7 + 1));
}

std::string EscapeLabelValue(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

// Writes the samples the load appends to `out` (closed here) as OpenMetrics text: one family at a
// time (families must not interleave), each series' samples in time order (promtool appends them in
// file order), values in the shortest form that reads back to the same float64 bits, timestamps in
// seconds with exact milliseconds. Series of one metric name are of one kind (i % 500 keeps i % 4),
// so the metric names ending in _total that are gauges (--values=mixed, odd i % 4) are declared
// gauges under their full name.
bool DumpOpenMetrics(std::FILE* out, const std::string& path, const std::vector<Labels>& labels,
                     int64_t start, int64_t step_ms, int64_t steps, bool mixed) {
  std::vector<char> buffer(1 << 20);
  std::setvbuf(out, buffer.data(), _IOFBF, buffer.size());
  const int64_t series = int64_t(labels.size());
  const int64_t names = std::min<int64_t>(series, 500);
  for (int64_t name = 0; name < names; ++name) {
    const std::string sample_name(labels[name].MetricName());
    const bool counter = !mixed || name % 2 == 0;
    if (counter) {
      std::fprintf(out, "# TYPE %.*s counter\n", int(sample_name.size() - 6),
                   sample_name.c_str());  // the family's name lacks "_total"
    } else {
      std::fprintf(out, "# TYPE %s gauge\n", sample_name.c_str());
    }
    for (int64_t i = name; i < series; i += 500) {
      std::string line = sample_name + "{";
      bool first = true;
      for (const Label& label : labels[i].items()) {
        if (label.name == "__name__") continue;
        line += (first ? "" : ",") + label.name + "=\"" + EscapeLabelValue(label.value) + "\"";
        first = false;
      }
      line += "} ";
      double value = 0;
      for (int64_t step = 0; step < steps; ++step) {
        value = StepValue(i, step, value, mixed);
        const int64_t ts = StepTimestamp(start, step_ms, step, mixed);
        char sample[64];
        const char* end = std::to_chars(sample, sample + sizeof sample, value).ptr;
        std::fwrite(line.data(), 1, line.size(), out);
        std::fwrite(sample, 1, size_t(end - sample), out);
        std::fprintf(out, " %lld.%03lld\n", (long long)(ts / 1000), (long long)(ts % 1000));
      }
    }
  }
  std::fputs("# EOF\n", out);
  bool ok = std::ferror(out) == 0;
  if (std::fclose(out) != 0) ok = false;
  if (!ok) std::fprintf(stderr, "--dump_openmetrics=%s: write failed\n", path.c_str());
  return ok;
}

// Bytes per sample of each column family, then of what Prometheus' blocks hold (samples,
// series and index: raw + head + index), the line tests/bench scripts compare.
void PrintBytesByFamily(storage::RocksDbStore& store, double samples) {
  uint64_t raw_equivalent = 0;
  for (auto& [family, bytes] : store.DiskBytesByFamily()) {
    std::printf("  %-8s %12llu bytes  %.3f B/sample\n", family.c_str(), (unsigned long long)bytes,
                double(bytes) / samples);
    if (family == "raw" || family == "head" || family == "index") raw_equivalent += bytes;
  }
  std::printf("aggregator raw samples with their index (raw + head + index): %.3f B/sample\n",
              double(raw_equivalent) / samples);
}

int CompactExisting(const std::string& path, int64_t samples) {
  if (samples <= 0) {
    std::fprintf(stderr,
                 "--compact_existing needs --samples=N (how many samples the store holds)\n");
    return 2;
  }
  storage::RocksDbStoreOptions opts;
  opts.path = path;
  auto opened = storage::RocksDbStore::Open(opts);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), opened.status().ToString().c_str());
    return 1;
  }
  auto store = std::move(opened).value();
  if (!store->Checkpoint().ok() || !store->CompactAll().ok()) return 1;
  auto stats = store->Stats();
  std::printf("aggregator: %llu bytes in all, %.3f B/sample (WAL included)\n",
              (unsigned long long)stats.disk_bytes, double(stats.disk_bytes) / double(samples));
  PrintBytesByFamily(*store, double(samples));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = StrFlag(argc, argv, "path", "");
  if (path.empty()) {
    std::fprintf(stderr, "usage: suanli_load --path=DIR [--series=N --steps=N ...]\n");
    return 2;
  }
  // --compact_existing: open a store that a running aggregator wrote (stopped since), close
  // what can be closed, compact it fully and print its bytes per sample by family, for
  // --samples samples (tests/bench/real_data_bytes.sh). Nothing is appended.
  if (std::find_if(argv + 1, argv + argc, [](const char* a) {
        return std::strcmp(a, "--compact_existing") == 0;
      }) != argv + argc) {
    return CompactExisting(path, Flag(argc, argv, "samples", 0));
  }
  const int64_t series = Flag(argc, argv, "series", 100000);
  const int64_t steps = Flag(argc, argv, "steps", 30);
  const int64_t step_ms = Flag(argc, argv, "step_ms", 15000);
  const int64_t batch = Flag(argc, argv, "batch", 2000);
  const int64_t threads = Flag(argc, argv, "threads", 2);
  const int64_t read_days = Flag(argc, argv, "read_days", 90);
  const std::string values = StrFlag(argc, argv, "values", "linear");
  if (values != "linear" && values != "mixed") {
    std::fprintf(stderr, "--values=%s: expected linear or mixed\n", values.c_str());
    return 2;
  }
  const bool mixed = values == "mixed";
  const std::string dump_path = StrFlag(argc, argv, "dump_openmetrics", "");
  std::FILE* dump = nullptr;  // opened first: an unwritable path fails before the load
  if (!dump_path.empty() && (dump = std::fopen(dump_path.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "--dump_openmetrics=%s: %s\n", dump_path.c_str(), std::strerror(errno));
    return 2;
  }
  std::filesystem::remove_all(path);
  storage::RocksDbStoreOptions opts;
  opts.path = path;
  auto opened = storage::RocksDbStore::Open(opts);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto store = std::move(opened).value();
  std::vector<Labels> labels;
  for (int64_t i = 0; i < series; ++i) labels.push_back(SeriesLabels(i));
  long rss0 = RssKb();
  const int64_t start = 1'700'000'000'000;
  double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int64_t w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      std::vector<double> prev(series, 0);
      for (int64_t step = 0; step < steps; ++step) {
        const int64_t ts = StepTimestamp(start, step_ms, step, mixed);
        for (int64_t b = w * batch; b < series; b += batch * threads) {
          std::vector<TimeSeries> req;
          for (int64_t i = b; i < std::min(series, b + batch); ++i) {
            prev[i] = StepValue(i, step, prev[i], mixed);
            req.push_back({labels[i], {{ts, prev[i]}}});
          }
          auto r = store->Append(req);
          if (!r.ok()) {
            std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
            std::exit(1);
          }
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;
  long rss1 = RssKb();
  double samples = double(series * steps);
  std::printf("ingest: %.0f samples in %.2f s: %.0f samples/s, %.0f samples per CPU-second\n",
              samples, wall, samples / wall, samples / cpu);
  std::printf("memory: %.0f bytes RSS per series (RSS %ld kB -> %ld kB)\n",
              double(rss1 - rss0) * 1024 / double(series), rss0, rss1);
  if (!store->Checkpoint().ok() || !store->CompactAll().ok()) return 1;
  auto stats = store->Stats();
  std::printf("disk: %.3f bytes per sample (%llu bytes incl. WAL)\n",
              double(stats.disk_bytes) / samples, (unsigned long long)stats.disk_bytes);
  PrintBytesByFamily(*store, samples);
  if (dump != nullptr) {
    if (!DumpOpenMetrics(dump, dump_path, labels, start, step_ms, steps, mixed)) return 1;
    std::printf("openmetrics: %.0f samples written to %s\n", samples, dump_path.c_str());
  }

  // 90 days of one series at one sample per 15 s, then read it at 1h resolution.
  if (read_days > 0) {
    Labels l{{"__name__", "long_series"}, {"dc", "x"}};
    const int64_t span = read_days * 86'400'000;
    const int64_t t_begin = start - span;
    std::vector<Sample> chunk;
    double v = 0;
    for (int64_t t = t_begin; t < start; t += 15'000) {
      chunk.push_back({t, v += 1.5});
      if (chunk.size() == 20000) {
        if (!store->Append({{l, chunk}}).ok()) return 1;
        chunk.clear();
      }
    }
    if (!chunk.empty() && !store->Append({{l, chunk}}).ok()) return 1;
    if (!store->CompactAll().ok()) return 1;
    for (auto [name, agg] : {std::pair{"max", rollup::Aggregate::kMax},
                             std::pair{"counter", rollup::Aggregate::kCounter}}) {
      double best = 1e9;
      size_t n = 0;
      for (int rep = 0; rep < 20; ++rep) {
        auto r0 = std::chrono::steady_clock::now();
        auto r = store->SelectRollup({{storage::MatcherSpec::kEqual, "__name__", "long_series"}},
                                     t_begin, start, rollup::Resolution::k1h, agg);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0)
                        .count();
        if (!r.ok() || r->empty()) return 1;
        n = (*r)[0].samples.size();
        best = std::min(best, ms);
      }
      std::printf("read: %lld days of one series at 1h (%s): %zu samples, best of 20 %.3f ms\n",
                  (long long)read_days, name, n, best);
    }
  }
  return 0;
}
