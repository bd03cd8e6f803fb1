// Head log record codec; see head_log.h and README.md.
#include "aggregator/storage/head_log.h"

#include <bit>
#include <cstring>

#include "aggregator/storage/gorilla.h"

namespace suanli::storage {
namespace {

// Zigzag of the wrapping difference a - b (timestamps may span the whole int64 range).
uint64_t ZigZagDelta(int64_t a, int64_t b) {
  auto v = static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t AddZigZag(int64_t base, uint64_t z) {
  auto v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
  return static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(v));
}

uint64_t GetBE64(std::string_view p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

// Varint at p (LEB128, low 7 bits first); returns the end.
static char* PutVarint(char* p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = static_cast<char>(v | 0x80);
  *p++ = static_cast<char>(v);
  return p;
}

void HeadLogWriter::BeginSeries(uint64_t id, uint64_t count, int64_t first_ts) {
  // Built in a local buffer and appended once, as Sample does: this runs for every series.
  char buf[kMaxStartBytes + kMaxSeriesBytes];
  char* p = BeginSeries(buf, out_->empty(), id, count, first_ts);
  out_->append(buf, static_cast<size_t>(p - buf));
}

void HeadLogWriter::Sample(int64_t ts, uint64_t bits) {
  char buf[kMaxSampleBytes];
  char* p = Sample(buf, ts, bits);
  out_->append(buf, static_cast<size_t>(p - buf));
}

char* HeadLogWriter::BeginSeries(char* p, bool first, uint64_t id, uint64_t count,
                                 int64_t first_ts) {
  if (first) {
    *p++ = '\0';
    *p++ = static_cast<char>(kHeadLogFormat);
    base_ts_ = first_ts;
    p = PutVarint(p, ZigZagDelta(first_ts, 0));
  }
  p = PutVarint(p, ZigZagDelta(static_cast<int64_t>(id), static_cast<int64_t>(prev_id_)));
  p = PutVarint(p, count);
  prev_id_ = id;
  prev_ts_ = base_ts_;
  return p;
}

char* HeadLogWriter::Sample(char* p, int64_t ts, uint64_t bits) {
  p = PutVarint(p, ZigZagDelta(ts, prev_ts_));
  prev_ts_ = ts;
  // Integer-valued and short decimal values end in zero bytes: keep only the high ones.
  const int keep = bits == 0 ? 0 : 8 - std::countr_zero(bits) / 8;
  *p++ = static_cast<char>(keep);
  const uint64_t big_endian = __builtin_bswap64(bits);
  std::memcpy(p, &big_endian, 8);  // always 8 bytes: kMaxSampleBytes leaves room
  return p + keep;
}

bool ReadHeadLog(std::string_view rec,
                 const std::function<bool(uint64_t id, int64_t ts, uint64_t bits)>& add) {
  uint64_t z;
  if (!rec.empty() && rec.front() == '\0') {
    if (rec.size() < 2 || static_cast<uint8_t>(rec[1]) != kHeadLogFormat) return false;
    rec.remove_prefix(2);
    if (!ConsumeVarint(&rec, &z)) return false;
    const int64_t base_ts = AddZigZag(0, z);
    uint64_t id = 0;
    while (!rec.empty()) {
      uint64_t n;
      if (!ConsumeVarint(&rec, &z) || !ConsumeVarint(&rec, &n)) return false;
      id = static_cast<uint64_t>(AddZigZag(static_cast<int64_t>(id), z));
      int64_t ts = base_ts;
      for (uint64_t i = 0; i < n; ++i) {
        if (!ConsumeVarint(&rec, &z) || rec.empty()) return false;
        ts = AddZigZag(ts, z);
        const auto keep = static_cast<uint8_t>(rec.front());
        if (keep > 8 || rec.size() < 1u + keep) return false;
        uint64_t bits = 0;
        for (int k = 0; k < keep; ++k) {
          bits |= static_cast<uint64_t>(static_cast<uint8_t>(rec[1 + k])) << (56 - 8 * k);
        }
        rec.remove_prefix(1 + keep);
        if (!add(id, ts, bits)) return false;
      }
    }
    return true;
  }
  // Format 1: id varint, n varint, n x {zigzag(ts - prev) varint (prev from 0), bits BE64}.
  while (!rec.empty()) {
    uint64_t id, n;
    if (!ConsumeVarint(&rec, &id) || !ConsumeVarint(&rec, &n)) return false;
    int64_t ts = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (!ConsumeVarint(&rec, &z) || rec.size() < 8) return false;
      ts = AddZigZag(ts, z);
      if (!add(id, ts, GetBE64(rec))) return false;
      rec.remove_prefix(8);
    }
  }
  return true;
}

}  // namespace suanli::storage
