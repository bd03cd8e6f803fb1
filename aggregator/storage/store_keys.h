// The store's key layout and byte encodings, drawn in docs/architecture.md ("Aggregator
// store"): column families, key tags, big-endian ids, sign-flipped timestamps (so that keys
// sort by time), time partitions per resolution, and the labels blob. RocksDbStore writes
// them; the read-only tools (StoreReader) read them back with the same functions.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/labels.h"

namespace suanli::storage {

constexpr char kIndexCf[] = "index";
constexpr char kHeadCf[] = "head";

// First byte of every key in the index column family.
// Databases written before this build also hold 'h' (hash -> id) and 'p' (postings) keys; the
// index now keeps both in memory, and Open ignores those keys.
constexpr char kSeriesTag = 's';  // s id -> labels
constexpr std::string_view kFormatKey = "mformat_version";
// The next series id (BE64), written when series are forgotten: their chunks stay on disk
// until retention drops their partitions, so their ids must never be handed out again.
constexpr std::string_view kNextIdKey = "mnext_id";
// 1: one key per sample. 2: head log, Gorilla chunks and rollups in time partitions.
constexpr uint32_t kFormatVersion = 2;

// First byte of every key in the head column family.
constexpr char kLogTag = 'l';     // l seq -> samples of one acknowledged batch (head log)
constexpr char kHeadTag = 'h';    // h id -> window start + open chunk (checkpoint)
constexpr char kCursorTag = 'c';  // c name -> kind (1 byte) + value (int64 BE)
// The first head log seq that Replay applies (the last checkpoint's); batches before it are
// only kept for log cursors. Absent in databases written before: replay everything.
constexpr std::string_view kReplayFromKey = "mreplay_from";

constexpr int64_t kNoSamples = std::numeric_limits<int64_t>::min();
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
// One raw chunk per series per hour. An open chunk at a 15 s interval holds 240 samples
// (~400 bytes with these values); a 2 h window would double the head's memory.
constexpr int64_t kWindowMs = kHourMs;
// Partition length per resolution (raw, 1m, 5m, 1h): each a multiple of the window, so a
// window (and its rollups) never straddles two partitions.
constexpr int64_t kPartitionMs[4] = {kDayMs, 7 * kDayMs, 30 * kDayMs, 90 * kDayMs};
constexpr const char* kPartitionPrefix[4] = {"raw_", "1m_", "5m_", "1h_"};

// ---- byte encodings (README.md) ----

inline void PutBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

inline uint64_t GetBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Flipping the sign bit makes the unsigned big-endian order equal the signed order.
inline uint64_t FlipTimestamp(int64_t ts) {
  return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63);
}
inline int64_t UnflipTimestamp(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }

inline std::string RawKey(uint64_t id, int64_t ts) {
  std::string k;
  k.reserve(16);
  PutBE64(&k, id);
  PutBE64(&k, FlipTimestamp(ts));
  return k;
}

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

inline bool GetLengthPrefixed(std::string_view* in, std::string* out) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

// Appends the blob form of a label set (a range of items with .name and .value) to *out.
template <typename Range>
inline void EncodeLabelsTo(const Range& labels, std::string* out) {
  PutVarint(out, std::size(labels));
  for (const auto& l : labels) {
    PutVarint(out, std::size(l.name));
    out->append(l.name);
    PutVarint(out, std::size(l.value));
    out->append(l.value);
  }
}

inline bool DecodeLabels(std::string_view in, Labels* labels) {
  uint64_t n;
  if (!GetVarint(&in, &n) || n > in.size()) return false;  // each label takes >= 2 bytes
  std::vector<Label> items(n);
  for (Label& l : items) {
    if (!GetLengthPrefixed(&in, &l.name) || !GetLengthPrefixed(&in, &l.value)) return false;
  }
  if (!in.empty()) return false;
  *labels = Labels(std::move(items));
  return true;
}

inline std::string SeriesKey(uint64_t id) {
  std::string k(1, kSeriesTag);
  PutBE64(&k, id);
  return k;
}

// Smallest key greater than every key starting with `prefix`. Our prefixes end in a tag
// letter or a 0x00 terminator, never 0xff, so incrementing the last byte is enough.
inline std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// Key of a chunk or rollup value: series id, then the window start with the sign bit flipped.
inline std::string ChunkKey(uint64_t id, int64_t window_start) { return RawKey(id, window_start); }

inline std::string LogKey(uint64_t seq) {
  std::string k(1, kLogTag);
  PutBE64(&k, seq);
  return k;
}

inline std::string CursorKey(std::string_view name) {
  std::string k(1, kCursorTag);
  k += name;
  return k;
}

inline std::string HeadKey(uint64_t id) {
  std::string k(1, kHeadTag);
  PutBE64(&k, id);
  return k;
}

inline int64_t WindowOf(int64_t ts) { return rollup::IntervalStart(ts, kWindowMs); }
inline int64_t PartitionOf(int res, int64_t ts) { return rollup::FloorDiv(ts, kPartitionMs[res]); }

// End (exclusive) of partition p, saturating at INT64_MAX.
inline int64_t PartitionEnd(int res, int64_t p) {
  if (p >= std::numeric_limits<int64_t>::max() / kPartitionMs[res]) {
    return std::numeric_limits<int64_t>::max();
  }
  return (p + 1) * kPartitionMs[res];
}

inline int64_t SatSub(int64_t a, int64_t b) {  // a - b, saturating (b >= 0)
  return a < std::numeric_limits<int64_t>::min() + b ? std::numeric_limits<int64_t>::min() : a - b;
}

// "raw_-3" -> (0, -3); false for other names.
inline bool ParsePartitionName(const std::string& name, int* res, int64_t* p) {
  for (int r = 0; r < 4; ++r) {
    std::string_view prefix = kPartitionPrefix[r];
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string num = name.substr(prefix.size());
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(num.c_str(), &end, 10);
    if (errno != 0 || end == num.c_str() || *end != '\0') return false;
    *res = r;
    *p = v;
    return true;
  }
  return false;
}

inline std::string PartitionName(int res, int64_t p) {
  return kPartitionPrefix[res] + std::to_string(p);
}

}  // namespace suanli::storage
