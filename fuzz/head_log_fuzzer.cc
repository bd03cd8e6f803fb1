// libFuzzer target: the head log record reader (aggregator/storage/head_log.h), which the
// aggregator runs on every record of the `head` column family at start-up. Any bytes must be
// refused or read without a crash; what reads must write again (HeadLogWriter, format 2) and
// read back to the same samples, and the writer's two forms (string and raw buffer) must agree.
// SUANLI_FUZZ_WRITE_SEEDS=DIR: writes seed records made by HeadLogWriter into DIR and exits
// (fuzz/make_seeds.py).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/storage/head_log.h"

namespace {

struct HeadSample {
  uint64_t id;
  int64_t ts;
  uint64_t bits;
  bool operator==(const HeadSample&) const = default;
};

// One run of samples with the same id: what BeginSeries announces.
struct Run {
  uint64_t id;
  size_t begin, end;  // into the sample list
};

std::vector<Run> Runs(const std::vector<HeadSample>& samples) {
  std::vector<Run> runs;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (runs.empty() || runs.back().id != samples[i].id) runs.push_back({samples[i].id, i, i});
    runs.back().end = i + 1;
  }
  return runs;
}

std::string WriteRecord(const std::vector<HeadSample>& samples) {
  std::string out;
  suanli::storage::HeadLogWriter writer(&out);
  for (const Run& run : Runs(samples)) {
    writer.BeginSeries(run.id, run.end - run.begin, samples[run.begin].ts);
    for (size_t i = run.begin; i < run.end; ++i) writer.Sample(samples[i].ts, samples[i].bits);
  }
  return out;
}

// The ingest path's form: sized once, written through raw pointers.
std::string WriteRecordRaw(const std::vector<HeadSample>& samples) {
  using suanli::storage::HeadLogWriter;
  const std::vector<Run> runs = Runs(samples);
  std::string out(HeadLogWriter::kMaxStartBytes + runs.size() * HeadLogWriter::kMaxSeriesBytes +
                      samples.size() * HeadLogWriter::kMaxSampleBytes,
                  '\0');
  HeadLogWriter writer(nullptr);
  char* p = out.data();
  for (size_t r = 0; r < runs.size(); ++r) {
    p = writer.BeginSeries(p, r == 0, runs[r].id, runs[r].end - runs[r].begin,
                           samples[runs[r].begin].ts);
    for (size_t i = runs[r].begin; i < runs[r].end; ++i) {
      p = writer.Sample(p, samples[i].ts, samples[i].bits);
    }
  }
  out.resize(static_cast<size_t>(p - out.data()));
  return out;
}

bool Read(std::string_view record, std::vector<HeadSample>* out) {
  return suanli::storage::ReadHeadLog(record, [out](uint64_t id, int64_t ts, uint64_t bits) {
    out->push_back({id, ts, bits});
    return true;
  });
}

void WriteSeeds(const std::string& dir) {
  const std::vector<std::pair<const char*, std::vector<HeadSample>>> seeds = {
      // Two series at a 15 s scrape: integer, short decimal and full-precision values.
      {"seed-two-series",
       {{1, 1700000000000, 0x4059000000000000},  // 100.0
        {1, 1700000015000, 0x4059040000000000},
        {1, 1700000030000, 0x3fb999999999999a},  // 0.1
        {7, 1700000000000, 0},
        {7, 1700000015000, 0x7ff8000000000001}}},  // a NaN payload (stale marker bits)
      // Ids going down, timestamps going back and the extremes of int64.
      {"seed-extremes",
       {{1000000, -1, 0xffffffffffffffff},
        {3, INT64_MIN, 0x8000000000000000},
        {3, INT64_MAX, 1},
        {UINT64_MAX, 0, 0x0000000000000100}}},
  };
  for (const auto& [name, samples] : seeds) {
    std::string record = WriteRecord(samples);
    std::ofstream(dir + "/" + name, std::ios::binary).write(record.data(), record.size());
  }
  // Format 1 (written by earlier builds, still read; no writer left): per series the id and
  // sample count, per sample zigzag(ts - previous ts) from 0 and the value as BE64.
  std::string v1;
  auto varint = [&v1](uint64_t v) {
    for (; v >= 0x80; v >>= 7) v1.push_back(static_cast<char>(v | 0x80));
    v1.push_back(static_cast<char>(v));
  };
  varint(5);
  varint(2);
  for (auto [delta, bits] : {std::pair<uint64_t, uint64_t>{3400000000000, 0x4059000000000000},
                             {30000, 0x3ff0000000000000}}) {
    varint(delta);
    for (int k = 7; k >= 0; --k) v1.push_back(static_cast<char>(bits >> (8 * k)));
  }
  std::ofstream(dir + "/seed-format1", std::ios::binary).write(v1.data(), v1.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SUANLI_FUZZ_WRITE_SEEDS")) {
    WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view record(reinterpret_cast<const char*>(data), size);
  std::vector<HeadSample> samples;
  if (!Read(record, &samples)) return 0;
  // What was read (format 1 or 2) writes as format 2 and reads back the same.
  const std::string again = WriteRecord(samples);
  if (WriteRecordRaw(samples) != again) __builtin_trap();
  std::vector<HeadSample> round;
  if (!Read(again, &round) || round != samples) __builtin_trap();
  return 0;
}
