// Column-wise codecs of closed data: see column_codec.h and README.md.
#include "aggregator/storage/column_codec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "aggregator/storage/gorilla.h"

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

// A prediction must come out bit-identical wherever it is decoded: only additions and
// subtractions of finite numbers (IEEE-exact everywhere, and nothing a compiler may fuse into
// an FMA); a non-finite input or result predicts 0 instead of a platform-dependent NaN.
uint64_t Finite(double v) { return std::isfinite(v) ? Bits(v) : 0; }
uint64_t Linear(uint64_t prev, uint64_t prev2) {
  double a = Double(prev), b = Double(prev2);
  return std::isfinite(a) && std::isfinite(b) ? Finite(a + (a - b)) : prev;
}

// ---- integer columns ----
// x0 = v0, x1 = v1 - v0, xi = (vi - v[i-1]) - (v[i-1] - v[i-2]) (wrapping): a flag bit '1' when
// every xi for i >= 2 is 0 (then only x0 and x1 follow), else '0' and every xi, each WriteDod.

void WriteIntColumn(BitWriter* w, const std::vector<int64_t>& v) {
  const size_t n = v.size();
  auto x = [&](size_t i) -> int64_t {
    uint64_t d = static_cast<uint64_t>(v[i]) - (i >= 1 ? static_cast<uint64_t>(v[i - 1]) : 0);
    uint64_t prev_d =
        i >= 2 ? static_cast<uint64_t>(v[i - 1]) - static_cast<uint64_t>(v[i - 2]) : 0;
    return static_cast<int64_t>(i == 0 ? d : i == 1 ? d : d - prev_d);
  };
  bool regular = true;
  for (size_t i = 2; i < n && regular; ++i) regular = x(i) == 0;
  w->WriteBit(regular);
  for (size_t i = 0; i < n && (i < 2 || !regular); ++i) WriteDod(w, x(i));
}

bool ReadIntColumn(BitReader* r, size_t n, std::vector<int64_t>* v) {
  bool regular;
  if (n == 0) return true;
  if (!r->ReadBit(&regular)) return false;
  v->resize(n);
  uint64_t value = 0, delta = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t x = 0;
    if ((i < 2 || !regular) && !ReadDod(r, &x)) return false;
    delta = i <= 1 ? static_cast<uint64_t>(x) : delta + static_cast<uint64_t>(x);
    value = i == 0 ? delta : value + delta;
    (*v)[i] = static_cast<int64_t>(value);
  }
  return true;
}

// ---- float64 columns ----
// 2 bits predictor (0 previous value, 1 linear extrapolation, 2 reference column), a flag bit
// '1' when every value from row 2 on equals its prediction (then only rows 0 and 1 follow),
// else '0'; then one XorWriter code per row. Row 0 is
// predicted as 0 by "previous" and "linear"; row 1 by "linear" as row 0.

enum Predictor : uint64_t { kPrevious = 0, kLinear = 1, kReference = 2 };

uint64_t Predict(Predictor p, const std::vector<uint64_t>& bits, const std::vector<uint64_t>* ref,
                 size_t i) {
  switch (p) {
    case kPrevious:
      return i == 0 ? 0 : bits[i - 1];
    case kLinear:
      return i == 0 ? 0 : i == 1 ? bits[0] : Linear(bits[i - 1], bits[i - 2]);
    case kReference:
      return (*ref)[i];
  }
  return 0;
}

void WriteDoubleColumn(BitWriter* w, const std::vector<uint64_t>& bits,
                       const std::vector<uint64_t>* ref) {
  Predictor best = kPrevious;
  long best_cost = -1;
  bool best_exact = false;
  for (Predictor p : {kPrevious, kLinear, kReference}) {
    if (p == kReference && ref == nullptr) continue;
    XorWriter pricer;
    long cost = 0, head_cost = 0;  // all rows; rows 0 and 1
    bool exact = true;             // rows 2.. equal their predictions
    for (size_t i = 0; i < bits.size(); ++i) {
      uint64_t predicted = Predict(p, bits, ref, i);
      if (i >= 2) exact = exact && predicted == bits[i];
      cost += pricer.Cost(predicted, bits[i]);
      if (i <= 1) head_cost = cost;
    }
    if (exact) cost = head_cost;
    if (best_cost < 0 || cost < best_cost) {
      best = p;
      best_cost = cost;
      best_exact = exact;
    }
  }
  w->WriteBits(best, 2);
  w->WriteBit(best_exact);
  XorWriter xw;
  for (size_t i = 0; i < bits.size() && (i < 2 || !best_exact); ++i) {
    xw.Write(w, Predict(best, bits, ref, i), bits[i]);
  }
}

// `ref` is filled by the caller before the call only when the column may use it; it must then
// hold the values the encoder saw (the decoder computes them from columns decoded earlier).
bool ReadDoubleColumn(BitReader* r, size_t n, const std::vector<uint64_t>* ref,
                      std::vector<uint64_t>* bits) {
  if (n == 0) return true;
  uint64_t p;
  bool exact;
  if (!r->ReadBits(2, &p) || !r->ReadBit(&exact)) return false;
  if (p > kReference || (p == kReference && ref == nullptr)) return false;
  bits->resize(n);
  XorReader xr;
  for (size_t i = 0; i < n; ++i) {
    uint64_t predicted = Predict(static_cast<Predictor>(p), *bits, ref, i);
    if (exact && i >= 2) {
      (*bits)[i] = predicted;
    } else if (!xr.Read(r, predicted, &(*bits)[i])) {
      return false;
    }
  }
  return true;
}

// Format byte and row count; false when malformed or implausibly many rows.
bool ReadHeader(std::string_view* value, uint8_t format, uint64_t* n) {
  if (value->empty() || static_cast<uint8_t>((*value)[0]) != format) return false;
  value->remove_prefix(1);
  return ConsumeVarint(value, n) && *n <= kMaxColumnRows;
}

// Rollup value columns, in stream order, and what each may be predicted from (besides its
// previous value and the linear extrapolation): last: nothing; first: the previous record's
// last (the sample just before it); min: min(first, last); max: max(first, last); sum:
// count * (first + last) / 2 (exact for a steady counter); increase: last - first (exact for a
// counter without reset).
enum RollupColumn { kLast, kFirst, kMin, kMax, kSum, kIncrease, kRollupColumns };

// The reference of column c, from the columns before it (last, and for c > kFirst also first).
std::vector<uint64_t> RollupReference(int c, const std::vector<uint64_t>& last,
                                      const std::vector<uint64_t>& first,
                                      const std::vector<int64_t>& count) {
  const size_t n = last.size();
  std::vector<uint64_t> ref(n);
  for (size_t i = 0; i < n; ++i) {
    if (c == kFirst) {
      ref[i] = i == 0 ? 0 : last[i - 1];
      continue;
    }
    double f = Double(first[i]), l = Double(last[i]);
    switch (c) {
      case kMin:
        ref[i] = Bits(std::min(f, l));
        break;
      case kMax:
        ref[i] = Bits(std::max(f, l));
        break;
      case kSum: {
        // f + l is rounded before the multiplication, so no FMA can form.
        double fl = f + l;
        ref[i] = Finite(fl * (static_cast<double>(count[i]) / 2));
        break;
      }
      case kIncrease:
        ref[i] = Finite(l - f);
        break;
    }
  }
  return ref;
}

}  // namespace

std::string EncodeClosedChunk(int64_t window_start, const std::vector<Sample>& samples) {
  std::vector<int64_t> ts(samples.size());
  std::vector<uint64_t> bits(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    ts[i] = samples[i].timestamp_ms - window_start;
    bits[i] = Bits(samples[i].value);
  }
  BitWriter w;
  if (!samples.empty()) {
    WriteIntColumn(&w, ts);
    WriteDoubleColumn(&w, bits, nullptr);
  }
  std::string out;
  out.push_back(static_cast<char>(kColumnChunkFormat));
  AppendVarint(&out, samples.size());
  out += w.bytes();
  return out;
}

Status DecodeClosedChunk(std::string_view value, int64_t window_start, std::vector<Sample>* out) {
  uint64_t n;
  if (!ReadHeader(&value, kColumnChunkFormat, &n)) return Internal("malformed chunk header");
  BitReader r(value);
  std::vector<int64_t> ts;
  std::vector<uint64_t> bits;
  if (!ReadIntColumn(&r, n, &ts) || !ReadDoubleColumn(&r, n, nullptr, &bits)) {
    return Internal("truncated chunk");
  }
  out->reserve(out->size() + n);
  for (size_t i = 0; i < n; ++i) {
    out->push_back(
        {static_cast<int64_t>(static_cast<uint64_t>(window_start) + ts[i]), Double(bits[i])});
  }
  return Status::Ok();
}

std::string EncodeRollupBlock(int64_t block_start, const std::vector<rollup::Record>& records) {
  const size_t n = records.size();
  std::array<std::vector<int64_t>, 4> ints;  // start, count, first_ts, last_ts offsets
  std::array<std::vector<uint64_t>, kRollupColumns> vals;
  for (auto& c : ints) c.resize(n);
  for (auto& c : vals) c.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const rollup::Record& r = records[i];
    ints[0][i] = static_cast<int64_t>(static_cast<uint64_t>(r.start) - block_start);
    ints[1][i] = static_cast<int64_t>(r.count);
    ints[2][i] = static_cast<int64_t>(static_cast<uint64_t>(r.first_ts) - r.start);
    ints[3][i] = static_cast<int64_t>(static_cast<uint64_t>(r.last_ts) - r.start);
    vals[kLast][i] = Bits(r.last);
    vals[kFirst][i] = Bits(r.first);
    vals[kMin][i] = Bits(r.min);
    vals[kMax][i] = Bits(r.max);
    vals[kSum][i] = Bits(r.sum);
    vals[kIncrease][i] = Bits(r.increase);
  }
  BitWriter w;
  if (n > 0) {
    for (const auto& c : ints) WriteIntColumn(&w, c);
    WriteDoubleColumn(&w, vals[kLast], nullptr);
    for (int c = kFirst; c < kRollupColumns; ++c) {
      std::vector<uint64_t> ref = RollupReference(c, vals[kLast], vals[kFirst], ints[1]);
      WriteDoubleColumn(&w, vals[c], &ref);
    }
  }
  std::string out;
  out.push_back(static_cast<char>(kColumnRollupFormat));
  AppendVarint(&out, n);
  out += w.bytes();
  return out;
}

Status DecodeRollupBlock(std::string_view value, int64_t block_start,
                         std::vector<rollup::Record>* out) {
  uint64_t n;
  if (!ReadHeader(&value, kColumnRollupFormat, &n)) return Internal("malformed rollup header");
  BitReader r(value);
  std::array<std::vector<int64_t>, 4> ints;
  std::array<std::vector<uint64_t>, kRollupColumns> vals;
  for (auto& c : ints) {
    if (!ReadIntColumn(&r, n, &c)) return Internal("truncated rollup");
  }
  if (!ReadDoubleColumn(&r, n, nullptr, &vals[kLast])) return Internal("truncated rollup");
  for (int c = kFirst; c < kRollupColumns; ++c) {
    std::vector<uint64_t> ref = RollupReference(c, vals[kLast], vals[kFirst], ints[1]);
    if (!ReadDoubleColumn(&r, n, &ref, &vals[c])) return Internal("truncated rollup");
  }
  out->reserve(out->size() + n);
  for (size_t i = 0; i < n; ++i) {
    if (ints[1][i] <= 0) return Internal("rollup record without samples");
    rollup::Record rec;
    rec.start = static_cast<int64_t>(static_cast<uint64_t>(block_start) + ints[0][i]);
    rec.count = static_cast<uint64_t>(ints[1][i]);
    rec.first_ts = static_cast<int64_t>(static_cast<uint64_t>(rec.start) + ints[2][i]);
    rec.last_ts = static_cast<int64_t>(static_cast<uint64_t>(rec.start) + ints[3][i]);
    rec.last = Double(vals[kLast][i]);
    rec.first = Double(vals[kFirst][i]);
    rec.min = Double(vals[kMin][i]);
    rec.max = Double(vals[kMax][i]);
    rec.sum = Double(vals[kSum][i]);
    rec.increase = Double(vals[kIncrease][i]);
    out->push_back(rec);
  }
  return Status::Ok();
}

}  // namespace suanli::storage
