// Gorilla-style compression of one series' samples inside one time window (a "chunk"), as the
// open head builds it sample by sample, and the bit-level codes that column_codec.h reuses. Byte
// formats are drawn in aggregator/storage/README.md; fixtures in
// tests/unit/aggregator/storage/fixtures/ pin them.
//
// Timestamps are Unix ms; every timestamp of a chunk lies in [window_start, window_start +
// window), so deltas never overflow. Values are kept as raw float64 bits (NaN payloads and the
// stale marker survive).
// Thread-safety: encoders and decoders are plain values used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/sample.h"
#include "core/status.h"

namespace suanli::storage {

inline constexpr uint8_t kChunkFormat = 1;   // first byte of a raw chunk value
inline constexpr uint8_t kRollupFormat = 1;  // first byte of a row-wise rollup value (read only)

// LEB128 varints (7 bits per byte, low first) of the value headers.
void AppendVarint(std::string* out, uint64_t v);
bool ConsumeVarint(std::string_view* in, uint64_t* v);  // false when truncated

// Appends bits MSB-first to a byte string.
class BitWriter {
 public:
  void WriteBit(bool bit);
  void WriteBits(uint64_t value, int nbits);  // the low nbits of value, high bit first
  std::string& bytes() { return bytes_; }
  const std::string& bytes() const { return bytes_; }
  int free_bits() const { return free_; }

 private:
  std::string bytes_;
  int free_ = 0;  // unused low bits in the last byte
};

class BitReader {
 public:
  explicit BitReader(std::string_view bytes) : bytes_(bytes) {}
  bool ReadBit(bool* bit);
  bool ReadBits(int nbits, uint64_t* value);

 private:
  std::string_view bytes_;
  size_t pos_ = 0;  // in bits
};

// Delta-of-delta bucket coding shared by timestamps and small integers:
// '0' = 0; '10'+14 bits; '110'+17 bits; '1110'+20 bits; '1111'+64 bits (two's complement).
void WriteDod(BitWriter* w, int64_t dod);
bool ReadDod(BitReader* r, int64_t* dod);

// Gorilla XOR coding of a float64 stream against a predicted value: '0' = same bits;
// '10' + meaningful bits inside the previous leading/trailing window; '11' + 6 bits leading
// zeros + 6 bits (meaningful bits - 1) + meaningful bits.
class XorWriter {
 public:
  void Write(BitWriter* w, uint64_t predicted, uint64_t bits);
  // The low prefix_bits (0..24) of prefix, then what Write(w, predicted, bits) writes.
  void Write(BitWriter* w, uint64_t prefix, int prefix_bits, uint64_t predicted, uint64_t bits);
  // The bits Write would emit, with the same change of window (to price a predictor).
  int Cost(uint64_t predicted, uint64_t bits);

 private:
  bool ReuseWindow(int leading, int trailing) const;

  int leading_ = -1, trailing_ = 0;  // window of the last non-zero XOR; -1: none yet
};
class XorReader {
 public:
  bool Read(BitReader* r, uint64_t predicted, uint64_t* bits);

 private:
  int leading_ = -1, trailing_ = 0;
};

// Builds a chunk by appending samples in strictly increasing time order. Deterministic: the
// same samples give the same bytes.
class ChunkEncoder {
 public:
  explicit ChunkEncoder(int64_t window_start = 0) : window_start_(window_start) {}
  void Append(int64_t ts, uint64_t bits);
  uint32_t count() const { return count_; }
  int64_t window_start() const { return window_start_; }
  int64_t last_ts() const { return prev_ts_; }
  uint64_t last_bits() const { return prev_bits_; }
  // The chunk value: format byte, varint count, bit stream.
  std::string Finish() const;
  size_t MemoryBytes() const { return sizeof(*this) + w_.bytes().capacity(); }
  void ShrinkToFit() { w_.bytes().shrink_to_fit(); }
  void Reserve(size_t bytes) { w_.bytes().reserve(bytes); }
  // Starts loading the bytes the next Append writes (a batch prefetches its series' heads).
  void PrefetchTail() const {
    const std::string& b = w_.bytes();
    __builtin_prefetch(b.data() + (b.empty() ? 0 : b.size() - 1), 1);
  }

 private:
  int64_t window_start_;
  uint32_t count_ = 0;
  int64_t prev_ts_ = 0, prev_delta_ = 0;
  uint64_t prev_bits_ = 0;
  BitWriter w_;
  XorWriter xw_;
};

// Decodes a chunk value into samples, appended to *out: format 1 (Finish() above, the open
// head and its checkpoint) or format 2 (a closed window, column_codec.h).
Status DecodeChunk(std::string_view value, int64_t window_start, std::vector<Sample>* out);
// Re-encodes sorted, distinct samples in format 1.
std::string EncodeChunk(int64_t window_start, const std::vector<Sample>& samples);

// Decodes a rollup value: format 2 (a block of records, column_codec.h, encoded by
// EncodeRollupBlock) or format 1 (records of one window, row by row; written by earlier
// builds, no longer encoded). Records are appended to *out, sorted by start.
Status DecodeRollups(std::string_view value, int64_t window_start,
                     std::vector<rollup::Record>* out);

}  // namespace suanli::storage
