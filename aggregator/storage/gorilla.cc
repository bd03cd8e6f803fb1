// Gorilla chunk and rollup codecs: see gorilla.h and README.md.
#include "aggregator/storage/gorilla.h"

#include <bit>
#include <cstring>

#include "aggregator/storage/column_codec.h"

namespace suanli::storage {
namespace {

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
double Double(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

int64_t SignExtend(uint64_t v, int nbits) {
  if (nbits == 64) return static_cast<int64_t>(v);
  uint64_t sign = uint64_t{1} << (nbits - 1);
  return static_cast<int64_t>((v ^ sign) - sign);
}

// Two's-complement a + b: the deltas of a corrupt value may overflow (valid ones never do, every
// timestamp lies in its window), and a decoder must not run into undefined behaviour on them.
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

bool Fits(int64_t v, int nbits) {
  int64_t lim = int64_t{1} << (nbits - 1);
  return v >= -lim && v < lim;
}

// Sample 0's timestamp is coded as a delta from the window start, sample 1's as a delta from
// sample 0, later ones as delta-of-delta; all through WriteDod.
}  // namespace

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ConsumeVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

void BitWriter::WriteBit(bool bit) {
  if (free_ == 0) {
    bytes_.push_back(0);
    free_ = 8;
  }
  --free_;
  if (bit) bytes_.back() = static_cast<char>(bytes_.back() | (1 << free_));
}

// Fills the last byte, then whole bytes, then a partial one (closing a window writes tens of
// bits per value: a bit-by-bit loop was the encoder's largest cost).
void BitWriter::WriteBits(uint64_t value, int nbits) {
  if (nbits <= 0) return;
  if (nbits < 64) value &= (uint64_t{1} << nbits) - 1;
  if (free_ > 0) {
    int take = std::min(nbits, free_);
    nbits -= take;
    free_ -= take;
    bytes_.back() =
        static_cast<char>(static_cast<unsigned char>(bytes_.back()) | ((value >> nbits) << free_));
    if (nbits == 0) return;
    value &= (uint64_t{1} << nbits) - 1;  // nbits < 64: take >= 1
  }
  // 1..64 bits left: left-align them in one word and append its high bytes big-endian (one
  // append, no per-byte loop; the padding bits of the last byte are zero).
  const int nbytes = (nbits + 7) / 8;
  const uint64_t aligned = nbits == 64 ? value : value << (64 - nbits);
  const uint64_t big_endian = __builtin_bswap64(aligned);
  char buf[8];
  std::memcpy(buf, &big_endian, 8);
  bytes_.append(buf, static_cast<size_t>(nbytes));
  free_ = nbytes * 8 - nbits;
}

bool BitReader::ReadBit(bool* bit) {
  if (pos_ >= bytes_.size() * 8) return false;
  *bit = (static_cast<unsigned char>(bytes_[pos_ / 8]) >> (7 - pos_ % 8)) & 1;
  ++pos_;
  return true;
}

bool BitReader::ReadBits(int nbits, uint64_t* value) {
  if (pos_ + nbits > bytes_.size() * 8) return false;
  uint64_t v = 0;
  while (nbits > 0) {
    int avail = 8 - static_cast<int>(pos_ % 8);
    int take = std::min(nbits, avail);
    uint64_t byte = static_cast<unsigned char>(bytes_[pos_ / 8]);
    uint64_t chunk = (byte >> (avail - take)) & ((uint64_t{1} << take) - 1);
    v = (take == 64 ? 0 : v << take) | chunk;
    pos_ += take;
    nbits -= take;
  }
  *value = v;
  return true;
}

// Prefix and payload go out in one WriteBits call where they fit in 64 bits.
void WriteDod(BitWriter* w, int64_t dod) {
  const uint64_t u = static_cast<uint64_t>(dod);
  if (dod == 0) {
    w->WriteBit(false);
  } else if (Fits(dod, 14)) {
    w->WriteBits((uint64_t{0b10} << 14) | (u & 0x3fff), 16);
  } else if (Fits(dod, 17)) {
    w->WriteBits((uint64_t{0b110} << 17) | (u & 0x1ffff), 20);
  } else if (Fits(dod, 20)) {
    w->WriteBits((uint64_t{0b1110} << 20) | (u & 0xfffff), 24);
  } else {
    w->WriteBits(0b1111, 4);
    w->WriteBits(u, 64);
  }
}

bool ReadDod(BitReader* r, int64_t* dod) {
  int ones = 0;
  bool bit;
  while (ones < 4) {
    if (!r->ReadBit(&bit)) return false;
    if (!bit) break;
    ++ones;
  }
  static constexpr int kWidth[] = {0, 14, 17, 20, 64};
  if (ones == 0) {
    *dod = 0;
    return true;
  }
  uint64_t v;
  if (!r->ReadBits(kWidth[ones], &v)) return false;
  *dod = SignExtend(v, kWidth[ones]);
  return true;
}

// Reuses the previous window when the XOR fits in it and that is not dearer than a new window
// (Gorilla reuses whenever it fits; a wide window, e.g. from a first value coded against 0,
// would then cost its full width forever). The decoder follows the '10' / '11' tags either way.
bool XorWriter::ReuseWindow(int leading, int trailing) const {
  if (leading_ < 0 || leading < leading_ || trailing < trailing_) return false;
  return 64 - leading_ - trailing_ <= 12 + 64 - leading - trailing;
}

void XorWriter::Write(BitWriter* w, uint64_t predicted, uint64_t bits) {
  Write(w, 0, 0, predicted, bits);
}

// The prefix bits go out in the same WriteBits call as the code where both fit in 64 bits
// (the chunk encoder passes its timestamp code: one call per sample in the steady state).
void XorWriter::Write(BitWriter* w, uint64_t prefix, int prefix_bits, uint64_t predicted,
                      uint64_t bits) {
  uint64_t x = predicted ^ bits;
  if (x == 0) {
    w->WriteBits(prefix << 1, prefix_bits + 1);
    return;
  }
  int leading = std::min(std::countl_zero(x), 63);
  int trailing = std::countr_zero(x);
  if (ReuseWindow(leading, trailing)) {
    int n = 64 - leading_ - trailing_;
    if (prefix_bits + n + 2 <= 64) {
      w->WriteBits((((prefix << 2) | 0b10) << n) | (x >> trailing_), prefix_bits + n + 2);
    } else {
      w->WriteBits((prefix << 2) | 0b10, prefix_bits + 2);
      w->WriteBits(x >> trailing_, n);
    }
    return;
  }
  int n = 64 - leading - trailing;
  // '11', 6 bits leading zeros, 6 bits (n - 1): one call, then the meaningful bits.
  w->WriteBits((prefix << 14) | (uint64_t{0b11} << 12) | (static_cast<uint64_t>(leading) << 6) |
                   static_cast<uint64_t>(n - 1),
               prefix_bits + 14);
  w->WriteBits(x >> trailing, n);
  leading_ = leading;
  trailing_ = trailing;
}

int XorWriter::Cost(uint64_t predicted, uint64_t bits) {
  uint64_t x = predicted ^ bits;
  if (x == 0) return 1;
  int leading = std::min(std::countl_zero(x), 63);
  int trailing = std::countr_zero(x);
  if (ReuseWindow(leading, trailing)) return 2 + 64 - leading_ - trailing_;
  leading_ = leading;
  trailing_ = trailing;
  return 2 + 12 + 64 - leading - trailing;
}

bool XorReader::Read(BitReader* r, uint64_t predicted, uint64_t* bits) {
  bool b;
  if (!r->ReadBit(&b)) return false;
  if (!b) {
    *bits = predicted;
    return true;
  }
  if (!r->ReadBit(&b)) return false;
  if (b) {
    uint64_t leading, n1;
    if (!r->ReadBits(6, &leading) || !r->ReadBits(6, &n1)) return false;
    int n = static_cast<int>(n1) + 1;
    if (static_cast<int>(leading) + n > 64) return false;
    leading_ = static_cast<int>(leading);
    trailing_ = 64 - leading_ - n;
  } else if (leading_ < 0) {
    return false;  // window reuse before any window
  }
  int n = 64 - leading_ - trailing_;
  uint64_t m;
  if (!r->ReadBits(n, &m)) return false;
  *bits = predicted ^ (m << trailing_);
  return true;
}

void ChunkEncoder::Append(int64_t ts, uint64_t bits) {
  if (count_ == 0) {
    WriteDod(&w_, ts - window_start_);
    w_.WriteBits(bits, 64);
  } else {
    int64_t delta = ts - prev_ts_;
    const int64_t dod = count_ == 1 ? delta : delta - prev_delta_;
    prev_delta_ = delta;
    // The timestamp code (WriteDod's) as the prefix of the value's, when it is short.
    const uint64_t u = static_cast<uint64_t>(dod);
    if (dod == 0) {
      xw_.Write(&w_, 0, 1, prev_bits_, bits);
    } else if (Fits(dod, 14)) {
      xw_.Write(&w_, (uint64_t{0b10} << 14) | (u & 0x3fff), 16, prev_bits_, bits);
    } else if (Fits(dod, 17)) {
      xw_.Write(&w_, (uint64_t{0b110} << 17) | (u & 0x1ffff), 20, prev_bits_, bits);
    } else if (Fits(dod, 20)) {
      xw_.Write(&w_, (uint64_t{0b1110} << 20) | (u & 0xfffff), 24, prev_bits_, bits);
    } else {
      WriteDod(&w_, dod);
      xw_.Write(&w_, prev_bits_, bits);
    }
  }
  prev_ts_ = ts;
  prev_bits_ = bits;
  ++count_;
}

std::string ChunkEncoder::Finish() const {
  std::string out;
  out.reserve(6 + w_.bytes().size());
  out.push_back(static_cast<char>(kChunkFormat));
  AppendVarint(&out, count_);
  out += w_.bytes();
  return out;
}

Status DecodeChunk(std::string_view value, int64_t window_start, std::vector<Sample>* out) {
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kColumnChunkFormat) {
    return DecodeClosedChunk(value, window_start, out);
  }
  if (value.empty() || static_cast<uint8_t>(value[0]) != kChunkFormat) {
    return Internal("unknown chunk format");
  }
  value.remove_prefix(1);
  uint64_t count;
  if (!ConsumeVarint(&value, &count) || count > value.size() * 8) {
    return Internal("malformed chunk header");
  }
  BitReader r(value);
  XorReader xr;
  int64_t ts = window_start, delta = 0;
  uint64_t bits = 0;
  for (uint64_t i = 0; i < count; ++i) {
    int64_t dod;
    if (!ReadDod(&r, &dod)) return Internal("truncated chunk");
    if (i == 0) {
      ts = WrapAdd(window_start, dod);
      if (!r.ReadBits(64, &bits)) return Internal("truncated chunk");
    } else {
      delta = i == 1 ? dod : WrapAdd(delta, dod);
      ts = WrapAdd(ts, delta);
      if (!xr.Read(&r, bits, &bits)) return Internal("truncated chunk");
    }
    out->push_back({ts, Double(bits)});
  }
  return Status::Ok();
}

std::string EncodeChunk(int64_t window_start, const std::vector<Sample>& samples) {
  ChunkEncoder enc(window_start);
  for (const Sample& s : samples) enc.Append(s.timestamp_ms, Bits(s.value));
  return enc.Finish();
}

// Format 1 rollup record stream (read only), per record: interval start offset from the window
// start in ms (dod), count (delta against the previous count, via WriteDod), first_ts and
// last_ts offsets from the interval start (delta against the previous offsets), then six
// XOR-coded values: first (vs previous first), last (vs previous last), min (vs
// min(first,last)), max (vs max(first,last)), sum (vs previous sum), increase (vs last-first).
Status DecodeRollups(std::string_view value, int64_t window_start,
                     std::vector<rollup::Record>* out) {
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kColumnRollupFormat) {
    return DecodeRollupBlock(value, window_start, out);
  }
  if (value.empty() || static_cast<uint8_t>(value[0]) != kRollupFormat) {
    return Internal("unknown rollup format");
  }
  value.remove_prefix(1);
  uint64_t count;
  if (!ConsumeVarint(&value, &count) || count > value.size() * 8) {
    return Internal("malformed rollup header");
  }
  BitReader r(value);
  XorReader xf, xl, xmin, xmax, xsum, xinc;
  int64_t idx = 0, step = 0, cnt = 0, fo = 0, lo = 0;
  uint64_t pf = 0, pl = 0, ps = 0;
  for (uint64_t i = 0; i < count; ++i) {
    int64_t d[4];
    for (int64_t& x : d) {
      if (!ReadDod(&r, &x)) return Internal("truncated rollup");
    }
    step = WrapAdd(step, d[0]);
    idx = WrapAdd(idx, step);
    cnt = WrapAdd(cnt, d[1]);
    fo = WrapAdd(fo, d[2]);
    lo = WrapAdd(lo, d[3]);
    rollup::Record rec;
    rec.start = WrapAdd(window_start, idx);
    rec.count = static_cast<uint64_t>(cnt);
    rec.first_ts = WrapAdd(rec.start, fo);
    rec.last_ts = WrapAdd(rec.start, lo);
    uint64_t f, l, mn, mx, s, inc;
    if (!xf.Read(&r, pf, &f) || !xl.Read(&r, pl, &l)) return Internal("truncated rollup");
    rec.first = Double(f);
    rec.last = Double(l);
    if (!xmin.Read(&r, Bits(std::min(rec.first, rec.last)), &mn) ||
        !xmax.Read(&r, Bits(std::max(rec.first, rec.last)), &mx) || !xsum.Read(&r, ps, &s) ||
        !xinc.Read(&r, Bits(rec.last - rec.first), &inc)) {
      return Internal("truncated rollup");
    }
    rec.min = Double(mn);
    rec.max = Double(mx);
    rec.sum = Double(s);
    rec.increase = Double(inc);
    pf = f;
    pl = l;
    ps = s;
    out->push_back(rec);
  }
  return Status::Ok();
}

}  // namespace suanli::storage
