// Column-wise codecs of closed data: see column_codec.h and README.md.
#include "aggregator/storage/column_codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "aggregator/storage/gorilla.h"

namespace suanli::storage {
namespace {

bool Fits(int64_t v, int nbits) {
  int64_t lim = int64_t{1} << (nbits - 1);
  return v >= -lim && v < lim;
}

int64_t SignExtend(uint64_t v, int nbits) {
  if (nbits == 64) return static_cast<int64_t>(v);
  uint64_t sign = uint64_t{1} << (nbits - 1);
  return static_cast<int64_t>(((v & ((sign << 1) - 1)) ^ sign) - sign);
}

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }
double Double(uint64_t b) { return std::bit_cast<double>(b); }

// A prediction must come out bit-identical wherever it is decoded: only additions and
// subtractions of finite numbers (IEEE-exact everywhere, and nothing a compiler may fuse into
// an FMA); a non-finite input or result predicts 0 instead of a platform-dependent NaN.
uint64_t Finite(double v) { return std::isfinite(v) ? Bits(v) : 0; }
uint64_t Linear(uint64_t prev, uint64_t prev2) {
  double a = Double(prev), b = Double(prev2);
  return std::isfinite(a) && std::isfinite(b) ? Finite(a + (a - b)) : prev;
}

// ---- integer columns ----
// A mode bit: '0' delta-of-delta: WriteDod(v0), WriteDod(v1 - v0), residuals
// ri = (vi - v[i-1]) - (v[i-1] - v[i-2]) for i >= 2 (a steady interval, a counter);
// '1' delta: WriteDod(v0), WriteDod(D), residuals ri = (vi - v[i-1]) - D for i >= 1, D the
// median delta (a gauge, a jittered interval). Then, if there are residuals: '1' when all are
// 0, else '0', 7 bits width w (0..64) and per residual '0' + w bits (two's complement) or
// '1' + 64 bits. All arithmetic wraps (uint64), so any int64 column round-trips.

int DodBits(int64_t x) {
  if (x == 0) return 1;
  if (Fits(x, 14)) return 16;
  if (Fits(x, 17)) return 20;
  if (Fits(x, 20)) return 24;
  return 68;
}

// Two's complement bits that hold r (0 for r == 0).
int NeededBits(int64_t r) {
  return r == 0 ? 0 : 65 - std::countl_zero(static_cast<uint64_t>(r ^ (r >> 63)));
}

struct IntPlan {
  bool delta_mode = false;
  int64_t head[2] = {0, 0};  // v0, then v1 - v0 (dod) or D (delta)
  bool all_zero = true;
  int width = 0;
  long cost = 0;
};

size_t FirstResidual(const IntPlan& p) { return p.delta_mode ? 1 : 2; }

int64_t Residual(const std::vector<int64_t>& v, const IntPlan& p, size_t i) {
  uint64_t d = static_cast<uint64_t>(v[i]) - static_cast<uint64_t>(v[i - 1]);
  if (p.delta_mode) return static_cast<int64_t>(d - static_cast<uint64_t>(p.head[1]));
  return static_cast<int64_t>(d -
                              (static_cast<uint64_t>(v[i - 1]) - static_cast<uint64_t>(v[i - 2])));
}

IntPlan PlanIntMode(const std::vector<int64_t>& v, bool delta_mode) {
  IntPlan p;
  p.delta_mode = delta_mode;
  const size_t n = v.size();
  p.head[0] = v[0];
  if (n >= 2) {
    if (delta_mode) {
      thread_local std::vector<int64_t> deltas;  // reused: no allocation per column
      deltas.clear();
      for (size_t i = 1; i < n; ++i) {
        deltas.push_back(
            static_cast<int64_t>(static_cast<uint64_t>(v[i]) - static_cast<uint64_t>(v[i - 1])));
      }
      std::nth_element(deltas.begin(), deltas.begin() + deltas.size() / 2, deltas.end());
      p.head[1] = deltas[deltas.size() / 2];
    } else {
      p.head[1] = static_cast<int64_t>(static_cast<uint64_t>(v[1]) - static_cast<uint64_t>(v[0]));
    }
  }
  p.cost = 1 + DodBits(p.head[0]) + (n >= 2 ? DodBits(p.head[1]) : 0);
  if (n <= FirstResidual(p)) return p;
  std::array<long, 65> hist{};
  for (size_t i = FirstResidual(p); i < n; ++i) {
    int64_t r = Residual(v, p, i);
    ++hist[NeededBits(r)];
    p.all_zero = p.all_zero && r == 0;
  }
  if (p.all_zero) {
    p.cost += 1;
    return p;
  }
  long best = -1, wider = static_cast<long>(n - FirstResidual(p)), fitting = 0;
  for (int w = 0; w <= 64; ++w) {
    fitting += hist[w];
    wider -= hist[w];
    long cost = fitting * (1 + w) + wider * 65;
    if (best < 0 || cost < best) {
      best = cost;
      p.width = w;
    }
  }
  p.cost += 1 + 7 + best;
  return p;
}

IntPlan PlanInt(const std::vector<int64_t>& v) {
  IntPlan dod = PlanIntMode(v, false);
  if (dod.all_zero) return dod;  // a regular column: nothing is cheaper
  IntPlan delta = PlanIntMode(v, true);
  return delta.cost < dod.cost ? delta : dod;
}

bool FitsWidth(int64_t r, int w) { return w >= 64 || (w == 0 ? r == 0 : Fits(r, w)); }

void WriteInt(BitWriter* w, const IntPlan& p, const std::vector<int64_t>& v) {
  const size_t n = v.size();
  w->WriteBit(p.delta_mode);
  WriteDod(w, p.head[0]);
  if (n >= 2) WriteDod(w, p.head[1]);
  if (n <= FirstResidual(p)) return;
  w->WriteBit(p.all_zero);
  if (p.all_zero) return;
  w->WriteBits(static_cast<uint64_t>(p.width), 7);
  for (size_t i = FirstResidual(p); i < n; ++i) {
    int64_t r = Residual(v, p, i);
    if (FitsWidth(r, p.width)) {
      if (p.width < 64) {  // '0' + the low w bits, in one call
        w->WriteBits(static_cast<uint64_t>(r) & ((uint64_t{1} << p.width) - 1), 1 + p.width);
      } else {
        w->WriteBit(false);
        w->WriteBits(static_cast<uint64_t>(r), 64);
      }
    } else {
      w->WriteBit(true);
      w->WriteBits(static_cast<uint64_t>(r), 64);
    }
  }
}

void WriteIntColumn(BitWriter* w, const std::vector<int64_t>& v) { WriteInt(w, PlanInt(v), v); }

bool ReadIntColumn(BitReader* r, size_t n, std::vector<int64_t>* v) {
  if (n == 0) return true;
  bool delta_mode, all_zero = true;
  int64_t head[2] = {0, 0};
  if (!r->ReadBit(&delta_mode) || !ReadDod(r, &head[0])) return false;
  if (n >= 2 && !ReadDod(r, &head[1])) return false;
  const size_t first_residual = delta_mode ? 1 : 2;
  uint64_t width = 0;
  if (n > first_residual) {
    if (!r->ReadBit(&all_zero)) return false;
    if (!all_zero && (!r->ReadBits(7, &width) || width > 64)) return false;
  }
  v->resize(n);
  uint64_t value = static_cast<uint64_t>(head[0]), delta = static_cast<uint64_t>(head[1]);
  (*v)[0] = head[0];
  for (size_t i = 1; i < n; ++i) {
    uint64_t res = 0;
    if (i >= first_residual && !all_zero) {
      bool escaped;
      if (!r->ReadBit(&escaped)) return false;
      int nbits = escaped ? 64 : static_cast<int>(width);
      if (nbits > 0) {
        if (!r->ReadBits(nbits, &res)) return false;
        res = static_cast<uint64_t>(SignExtend(res, nbits));
      }
    }
    if (delta_mode) {
      value += static_cast<uint64_t>(head[1]) + res;
    } else {
      if (i >= 2) delta += res;
      value += delta;
    }
    (*v)[i] = static_cast<int64_t>(value);
  }
  return true;
}

// ---- float64 columns ----
// 2 bits predictor, then
// - 0 previous value, 1 linear extrapolation, 2 reference column: a flag bit '1' when every
//   value from row 2 on equals its prediction (then only rows 0 and 1 follow), else '0'; then
//   one XorWriter code per row. Row 0 is predicted as 0 by "previous" and "linear", row 1 by
//   "linear" as row 0.
// - 3 decimal: values that are short decimals (a counter in hundredths of a second, a gauge
//   with two decimals, any integer) become integers m = v * 10^e: 4 bits e, the integer
//   column of m, then the exceptions (values for which m / 10^e, one IEEE division, does not
//   give the exact bits back: NaN, -0, noise), WriteDod(count) and per exception
//   WriteDod(row - previous exception row - 1) + its 64 bits; an exception row's m repeats the
//   row before (0 in row 0).

enum Predictor : uint64_t { kPrevious = 0, kLinear = 1, kReference = 2, kDecimal = 3 };

constexpr double kPow10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
constexpr int kMaxEncodedDecimals = 9;  // more digits than this are noise: XOR does as well

uint64_t Predict(Predictor p, const std::vector<uint64_t>& bits, const std::vector<uint64_t>* ref,
                 size_t i) {
  switch (p) {
    case kPrevious:
      return i == 0 ? 0 : bits[i - 1];
    case kLinear:
      return i == 0 ? 0 : i == 1 ? bits[0] : Linear(bits[i - 1], bits[i - 2]);
    case kReference:
      return (*ref)[i];
    case kDecimal:
      break;
  }
  return 0;
}

// m with Bits(m / 10^e) == bits, if there is one (|m| < 2^53, so m is exact as a double).
bool ToDecimal(uint64_t bits, int e, int64_t* m) {
  double v = Double(bits);
  if (!std::isfinite(v)) return false;
  double scaled = std::nearbyint(v * kPow10[e]);
  if (!(std::fabs(scaled) < 9007199254740992.0)) return false;
  *m = static_cast<int64_t>(scaled);
  return Bits(static_cast<double>(*m) / kPow10[e]) == bits;
}

struct DecimalPlan {
  int e = 0;
  std::vector<int64_t> m;
  std::vector<size_t> exceptions;
  IntPlan ints;
  long cost = 0;
};

// False when the column is not decimal enough to try (the caller then uses XOR only).
bool PlanDecimal(const std::vector<uint64_t>& bits, DecimalPlan* plan) {
  // A value that is a decimal with e digits is one with any more digits too (the same real
  // number, correctly rounded by the same division), so e = the most any value needs.
  const size_t n = bits.size();
  int e = -1;
  size_t misses = 0;
  std::vector<char> miss(n, 0);
  for (size_t i = 0; i < n; ++i) {
    int64_t m;
    int k = std::max(e, 0);
    while (k <= kMaxEncodedDecimals && !ToDecimal(bits[i], k, &m)) ++k;
    if (k > kMaxEncodedDecimals) {
      // Exceptions are for NaN, infinities and -0; a finite value with more digits means
      // noise, which XOR codes as well, so stop here (a noisy column costs 10 tries, not n).
      if (std::isfinite(Double(bits[i])) && bits[i] != Bits(-0.0)) return false;
      miss[i] = 1;
      if (++misses * 4 > n) return false;
      continue;
    }
    e = k;
  }
  if (e < 0) return false;
  plan->e = e;
  plan->m.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (miss[i] || !ToDecimal(bits[i], e, &plan->m[i])) {
      plan->exceptions.push_back(i);
      plan->m[i] = i == 0 ? 0 : plan->m[i - 1];
    }
  }
  plan->ints = PlanInt(plan->m);
  plan->cost = 2 + 4 + plan->ints.cost + DodBits(static_cast<int64_t>(plan->exceptions.size()));
  size_t prev = 0;
  for (size_t row : plan->exceptions) {
    plan->cost += DodBits(static_cast<int64_t>(row - prev)) + 64;
    prev = row + 1;
  }
  return true;
}

void WriteDoubleColumn(BitWriter* w, const std::vector<uint64_t>& bits,
                       const std::vector<uint64_t>* ref) {
  Predictor best = kPrevious;
  long best_cost = -1;
  bool best_exact = false;
  // The reference first: for rollup columns it is most often exact, and an exact predictor
  // ends the search; a candidate stops being priced once it is dearer than the best so far.
  for (Predictor p : {kReference, kLinear, kPrevious}) {
    if (p == kReference && ref == nullptr) continue;
    // Steady data: a predictor exact from row 2 on is taken without pricing the rows (with
    // fewer than 3 rows every predictor is "exact": price them, decimal included).
    size_t row = 2;
    while (row < bits.size() && Predict(p, bits, ref, row) == bits[row]) ++row;
    if (bits.size() > 2 && row >= bits.size()) {
      best = p;
      best_exact = true;
      break;
    }
    XorWriter pricer;
    long cost = 3, head_cost = 3;  // all rows; rows 0 and 1 (with the 3 header bits)
    bool exact = true;             // rows 2.. equal their predictions
    for (size_t i = 0; i < bits.size(); ++i) {
      uint64_t predicted = Predict(p, bits, ref, i);
      if (i >= 2) exact = exact && predicted == bits[i];
      cost += pricer.Cost(predicted, bits[i]);
      if (i <= 1) head_cost = cost;
      if (!exact && best_cost >= 0 && cost >= best_cost) break;
    }
    if (exact) cost = head_cost;
    if (best_cost < 0 || cost < best_cost) {
      best = p;
      best_cost = cost;
      best_exact = exact;
    }
    if (best_exact) break;
  }
  DecimalPlan decimal;
  if (best_cost > 3 && PlanDecimal(bits, &decimal) && decimal.cost < best_cost) {
    w->WriteBits(kDecimal, 2);
    w->WriteBits(static_cast<uint64_t>(decimal.e), 4);
    WriteInt(w, decimal.ints, decimal.m);
    WriteDod(w, static_cast<int64_t>(decimal.exceptions.size()));
    size_t prev = 0;
    for (size_t row : decimal.exceptions) {
      WriteDod(w, static_cast<int64_t>(row - prev));
      w->WriteBits(bits[row], 64);
      prev = row + 1;
    }
    return;
  }
  w->WriteBits(best, 2);
  w->WriteBit(best_exact);
  XorWriter xw;
  for (size_t i = 0; i < bits.size() && (i < 2 || !best_exact); ++i) {
    xw.Write(w, Predict(best, bits, ref, i), bits[i]);
  }
}

bool ReadDecimalColumn(BitReader* r, size_t n, std::vector<uint64_t>* bits) {
  uint64_t e;
  std::vector<int64_t> m;
  int64_t exceptions;
  if (!r->ReadBits(4, &e) || !ReadIntColumn(r, n, &m) || !ReadDod(r, &exceptions)) return false;
  if (exceptions < 0 || static_cast<uint64_t>(exceptions) > n) return false;
  for (size_t i = 0; i < n; ++i) (*bits)[i] = Bits(static_cast<double>(m[i]) / kPow10[e]);
  uint64_t row = 0;
  for (int64_t k = 0; k < exceptions; ++k) {
    int64_t gap;
    if (!ReadDod(r, &gap) || gap < 0 || static_cast<uint64_t>(gap) >= n - row) return false;
    row += static_cast<uint64_t>(gap);
    if (!r->ReadBits(64, &(*bits)[row])) return false;
    ++row;
  }
  return true;
}

// `ref` is filled by the caller before the call only when the column may use it; it must then
// hold the values the encoder saw (the decoder computes them from columns decoded earlier).
bool ReadDoubleColumn(BitReader* r, size_t n, const std::vector<uint64_t>* ref,
                      std::vector<uint64_t>* bits) {
  if (n == 0) return true;
  uint64_t p;
  if (!r->ReadBits(2, &p)) return false;
  if (p == kReference && ref == nullptr) return false;
  bits->resize(n);
  if (p == kDecimal) return ReadDecimalColumn(r, n, bits);
  bool exact;
  if (!r->ReadBit(&exact)) return false;
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
void RollupReference(int c, const std::vector<uint64_t>& last, const std::vector<uint64_t>& first,
                     const std::vector<int64_t>& count, std::vector<uint64_t>* out) {
  const size_t n = last.size();
  std::vector<uint64_t>& ref = *out;
  ref.resize(n);
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
}

// Column vectors of one rollup block, reused by the thread's next block: a
// 90-day read at 1h decodes 2160 one-record blocks (1.0 -> 0.66 ms with the reuse).
struct RollupColumns {
  std::array<std::vector<int64_t>, 4> ints;  // start, count, first_ts, last_ts offsets
  std::array<std::vector<uint64_t>, kRollupColumns> vals;
  std::vector<uint64_t> ref;
};

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
  for (size_t i = 0; i < n; ++i) {
    out->push_back(
        {static_cast<int64_t>(static_cast<uint64_t>(window_start) + ts[i]), Double(bits[i])});
  }
  return Status::Ok();
}

std::string EncodeRollupBlock(int64_t block_start, const std::vector<rollup::Record>& records) {
  const size_t n = records.size();
  thread_local RollupColumns cols;
  auto& ints = cols.ints;
  auto& vals = cols.vals;
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
      RollupReference(c, vals[kLast], vals[kFirst], ints[1], &cols.ref);
      WriteDoubleColumn(&w, vals[c], &cols.ref);
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
  // Nothing to read; and the columns below, reused from an earlier block (perhaps one that
  // failed half-way), would still hold its sizes, which RollupReference goes by.
  if (n == 0) return Status::Ok();
  BitReader r(value);
  thread_local RollupColumns cols;
  auto& ints = cols.ints;
  auto& vals = cols.vals;
  for (auto& c : ints) {
    if (!ReadIntColumn(&r, n, &c)) return Internal("truncated rollup");
  }
  if (!ReadDoubleColumn(&r, n, nullptr, &vals[kLast])) return Internal("truncated rollup");
  for (int c = kFirst; c < kRollupColumns; ++c) {
    RollupReference(c, vals[kLast], vals[kFirst], ints[1], &cols.ref);
    if (!ReadDoubleColumn(&r, n, &cols.ref, &vals[c])) return Internal("truncated rollup");
  }
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
