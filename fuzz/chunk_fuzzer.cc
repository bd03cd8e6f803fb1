// libFuzzer target: the chunk and rollup value decoders of the store (aggregator/storage/gorilla.h
// and column_codec.h), which read every raw chunk and rollup value found in RocksDB. The input's
// first 8 bytes are the window start (int64, little-endian; from the key in the store), the rest
// is the value:
// - DecodeChunk (formats 1 and 2) and DecodeRollups (formats 1 and 2), and the format-2 decoders
//   directly (both paths must agree); any bytes must be refused or decoded without a crash, and
//   an empty rollup block decoded right after them must be empty;
// - what decodes to sorted, distinct samples (records) inside the window encodes again
//   (EncodeChunk, EncodeClosedChunk, EncodeRollupBlock) and decodes back bit for bit;
// - samples derived from the value bytes (12 bytes each: a 32-bit offset into the window, the
//   value's 64 bits), sorted and distinct, encode in both formats and decode back bit for bit
//   (NaN payloads compared as bits).
// SUANLI_FUZZ_WRITE_SEEDS=DIR: writes seed inputs made by the real encoders into DIR and exits
// (fuzz/make_seeds.py).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"

namespace {

using suanli::Sample;
using suanli::rollup::Record;
namespace storage = suanli::storage;

// Derived samples lie in [window_start, window_start + 2^32) ms (about 49 days: more than any
// window or rollup block the store uses).
constexpr int64_t kWindow = int64_t{1} << 32;

// A few bits of a format-2 header can describe kMaxColumnRows rows; decoding them is the point,
// re-encoding that many only slows the search down.
constexpr size_t kMaxRoundTripRows = size_t{1} << 16;

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

bool SameSamples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].timestamp_ms != b[i].timestamp_ms || Bits(a[i].value) != Bits(b[i].value)) {
      return false;
    }
  }
  return true;
}

bool SameRecords(const std::vector<Record>& a, const std::vector<Record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Record &x = a[i], &y = b[i];
    if (x.start != y.start || x.first_ts != y.first_ts || x.last_ts != y.last_ts ||
        x.count != y.count || Bits(x.sum) != Bits(y.sum) || Bits(x.min) != Bits(y.min) ||
        Bits(x.max) != Bits(y.max) || Bits(x.first) != Bits(y.first) ||
        Bits(x.last) != Bits(y.last) || Bits(x.increase) != Bits(y.increase)) {
      return false;
    }
  }
  return true;
}

// Offset of ts from the window start, without overflow; false when before it or past the window.
bool InWindow(int64_t window_start, int64_t ts) {
  return ts >= window_start &&
         static_cast<uint64_t>(ts) - static_cast<uint64_t>(window_start) < uint64_t{kWindow};
}

// Both encoders of sorted, distinct samples inside the window; each must decode back to them.
void CheckSampleRoundTrip(int64_t window_start, const std::vector<Sample>& samples) {
  for (const std::string& value : {storage::EncodeChunk(window_start, samples),
                                   storage::EncodeClosedChunk(window_start, samples)}) {
    std::vector<Sample> back;
    if (!storage::DecodeChunk(value, window_start, &back).ok() || !SameSamples(back, samples)) {
      __builtin_trap();
    }
  }
}

void CheckDecodedSamples(std::string_view value, int64_t window_start) {
  std::vector<Sample> samples;
  const bool ok = storage::DecodeChunk(value, window_start, &samples).ok();
  if (!value.empty() && static_cast<uint8_t>(value[0]) == storage::kColumnChunkFormat) {
    std::vector<Sample> closed;
    const bool closed_ok = storage::DecodeClosedChunk(value, window_start, &closed).ok();
    if (closed_ok != ok || (ok && !SameSamples(closed, samples))) __builtin_trap();
  }
  if (!ok || samples.size() > kMaxRoundTripRows) return;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!InWindow(window_start, samples[i].timestamp_ms)) return;
    if (i > 0 && samples[i].timestamp_ms <= samples[i - 1].timestamp_ms) return;
  }
  CheckSampleRoundTrip(window_start, samples);
}

void CheckDecodedRollups(std::string_view value, int64_t block_start) {
  std::vector<Record> records;
  const bool ok = storage::DecodeRollups(value, block_start, &records).ok();
  if (!value.empty() && static_cast<uint8_t>(value[0]) == storage::kColumnRollupFormat) {
    std::vector<Record> block;
    const bool block_ok = storage::DecodeRollupBlock(value, block_start, &block).ok();
    if (block_ok != ok || (ok && !SameRecords(block, records))) __builtin_trap();
  }
  // The decoder reuses its column buffers, block after block, on each thread (a long range
  // read decodes thousands): an empty block after any other, decoded or refused, is empty.
  std::vector<Record> none;
  if (!storage::DecodeRollupBlock(std::string_view("\x02\x00", 2), block_start, &none).ok() ||
      !none.empty()) {
    __builtin_trap();
  }
  if (!ok || records.size() > kMaxRoundTripRows) return;
  // EncodeRollupBlock's contract: starts sorted, distinct, >= block_start; a record has samples.
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].start < block_start || records[i].count == 0 ||
        records[i].count > uint64_t{std::numeric_limits<int64_t>::max()}) {
      return;
    }
    if (i > 0 && records[i].start <= records[i - 1].start) return;
  }
  std::vector<Record> back;
  if (!storage::DecodeRollups(storage::EncodeRollupBlock(block_start, records), block_start, &back)
           .ok() ||
      !SameRecords(back, records)) {
    __builtin_trap();
  }
}

void CheckDerivedSamples(std::string_view bytes, int64_t window_start) {
  window_start = std::min(window_start, std::numeric_limits<int64_t>::max() - kWindow);
  std::vector<Sample> samples;
  for (; bytes.size() >= 12; bytes.remove_prefix(12)) {
    uint32_t offset;
    uint64_t bits;
    std::memcpy(&offset, bytes.data(), 4);
    std::memcpy(&bits, bytes.data() + 4, 8);
    samples.push_back({window_start + offset, std::bit_cast<double>(bits)});
  }
  std::stable_sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  samples.erase(std::unique(samples.begin(), samples.end(),
                            [](const Sample& a, const Sample& b) {
                              return a.timestamp_ms == b.timestamp_ms;
                            }),
                samples.end());
  CheckSampleRoundTrip(window_start, samples);
}

void WriteSeed(const std::string& dir, const std::string& name, int64_t window_start,
               const std::string& value) {
  std::string input(8, '\0');
  std::memcpy(input.data(), &window_start, 8);
  input += value;
  std::ofstream(dir + "/" + name, std::ios::binary).write(input.data(), input.size());
}

void WriteSeeds(const std::string& dir) {
  const int64_t window = 1700000000000 - 1700000000000 % 7200000;  // a 2 h window
  // A counter at a steady 15 s scrape, a gauge with jitter and a NaN, one sample.
  std::vector<Sample> counter, gauge;
  for (int i = 0; i < 40; ++i) counter.push_back({window + 15000 * i, 1000.0 + 12.5 * i});
  for (int i = 0; i < 30; ++i) {
    gauge.push_back({window + 15000 * i + (i * 37) % 11, 0.1 * ((i * 7919) % 23)});
  }
  gauge[5].value = std::bit_cast<double>(uint64_t{0x7ff0000000000002});  // the stale marker
  const std::vector<Sample> one = {{window + 3, -0.0}};
  WriteSeed(dir, "seed-chunk-counter", window, storage::EncodeChunk(window, counter));
  WriteSeed(dir, "seed-chunk-gauge", window, storage::EncodeChunk(window, gauge));
  WriteSeed(dir, "seed-chunk-one", window, storage::EncodeChunk(window, one));
  WriteSeed(dir, "seed-closed-counter", window, storage::EncodeClosedChunk(window, counter));
  WriteSeed(dir, "seed-closed-gauge", window, storage::EncodeClosedChunk(window, gauge));
  // Rollup blocks of 5 min records over the counter and the gauge, as the rollup layer makes them.
  WriteSeed(dir, "seed-rollups-counter", window,
            storage::EncodeRollupBlock(window, suanli::rollup::Compute(counter, 300000)));
  WriteSeed(dir, "seed-rollups-gauge", window,
            storage::EncodeRollupBlock(window, suanli::rollup::Compute(gauge, 300000)));
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
  if (size < 8) return 0;
  int64_t window_start;
  std::memcpy(&window_start, data, 8);
  std::string_view value(reinterpret_cast<const char*>(data) + 8, size - 8);
  CheckDecodedSamples(value, window_start);
  CheckDecodedRollups(value, window_start);
  CheckDerivedSamples(value, window_start);
  return 0;
}
