#include "agent/write_request_encoder.h"

#include <snappy.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "core/varint.h"

namespace suanli::agent {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLen = 2;

constexpr char Tag(uint32_t field, uint32_t wire_type) {
  return static_cast<char>((field << 3) | wire_type);  // every field number here is < 16
}

// A length-delimited field's size: tag, length, bytes.
size_t LenFieldSize(size_t len) { return 1 + VarintSize(len) + len; }

void PutLenField(std::string& out, uint32_t field, const std::string& bytes) {
  out += Tag(field, kLen);
  PutVarint(out, bytes.size());
  out += bytes;
}

// A Label message's body size (proto3: an empty name or value is left out).
size_t LabelBodySize(const std::string& name, const std::string& value) {
  return (name.empty() ? 0 : LenFieldSize(name.size())) +
         (value.empty() ? 0 : LenFieldSize(value.size()));
}

// Snappy's block format (github.com/google/snappy, format_description.txt): the uncompressed
// length as a varint, then elements: a literal (tag (length - 1) << 2, or 60-63 << 2 and the
// length - 1 in 1-4 bytes, then the bytes) or a copy with a 2-byte offset (tag
// (length - 1) << 2 | 2, 1 to 64 bytes, then the offset, 1 to 65535 bytes back, little-endian).
// Writes `v` as a varint at `out`; returns its size.
size_t PutVarintAt(char* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

// Shortest match worth a copy (3 bytes of element).
constexpr size_t kMinMatch = 4;
constexpr size_t kMaxCopy = 64;
// How many series before a series its label bytes are matched against.
constexpr size_t kTemplateWindow = 16;

uint64_t DoubleBits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

}  // namespace

WriteRequestEncoder::WriteRequestEncoder(const std::map<std::string, std::string>& static_labels,
                                         bool cached_shape)
    : cached_shape_(cached_shape) {
  for (const auto& [name, value] : static_labels) static_labels_.push_back({name, value});
  // std::map is already sorted by name; kept explicit for the reader.
  std::stable_sort(static_labels_.begin(), static_labels_.end(),
                   [](const Label& a, const Label& b) { return a.name < b.name; });
}

void WriteRequestEncoder::EncodeLabels(const std::string& metric_name, const Point& point,
                                       std::string& out) {
  labels_.clear();
  labels_.push_back({&name_label_, &metric_name});
  for (const Label& l : point.labels) {
    if (l.value.empty()) continue;
    bool overridden = std::any_of(static_labels_.begin(), static_labels_.end(),
                                  [&](const Label& s) { return s.name == l.name; });
    if (!overridden) labels_.push_back({&l.name, &l.value});
  }
  for (const Label& s : static_labels_) labels_.push_back({&s.name, &s.value});
  // Stable, as Labels' constructor: a handful of labels, so insertion sort.
  for (size_t i = 1; i < labels_.size(); ++i) {
    LabelRef cur = labels_[i];
    size_t j = i;
    while (j > 0 && *cur.name < *labels_[j - 1].name) {
      labels_[j] = labels_[j - 1];
      --j;
    }
    labels_[j] = cur;
  }
  out.clear();
  for (const LabelRef& l : labels_) {
    out += Tag(1, kLen);  // TimeSeries.labels
    PutVarint(out, LabelBodySize(*l.name, *l.value));
    if (!l.name->empty()) PutLenField(out, 1, *l.name);
    if (!l.value->empty()) PutLenField(out, 2, *l.value);
  }
}

const std::string& WriteRequestEncoder::LabelBytes(size_t index, const std::string& metric_name,
                                                   const Point& point) {
  if (index >= resolved_.size()) resolved_.resize(index + 1);
  Resolved& r = resolved_[index];
  if (r.label_bytes.empty() || r.metric_name != metric_name || r.labels != point.labels) {
    r.metric_name = metric_name;
    r.labels = point.labels;
    EncodeLabels(metric_name, point, r.label_bytes);
    resolved_changed_ = true;
  }
  return r.label_bytes;
}

void WriteRequestEncoder::EncodeSeries(const std::string& label_bytes, double value,
                                       int64_t timestamp_ms) {
  const uint64_t value_bits = DoubleBits(value);
  const size_t sample_size =
      (value_bits != 0 ? 1 + 8 : 0) +
      (timestamp_ms != 0 ? 1 + VarintSize(static_cast<uint64_t>(timestamp_ms)) : 0);
  raw_ += Tag(1, kLen);  // WriteRequest.timeseries
  PutVarint(raw_, label_bytes.size() + LenFieldSize(sample_size));
  raw_ += label_bytes;
  raw_ += Tag(2, kLen);  // TimeSeries.samples
  PutVarint(raw_, sample_size);
  if (value_bits != 0) {
    raw_ += Tag(1, kFixed64);
    char le[8];
    std::memcpy(le, &value_bits, 8);  // x86-64 and arm64 Linux: little-endian, as the wire
    raw_.append(le, 8);
  }
  if (timestamp_ms != 0) {
    raw_ += Tag(2, kVarint);
    PutVarint(raw_, static_cast<uint64_t>(timestamp_ms));
  }
}

std::string WriteRequestEncoder::Encode(const Sweep& sweep, int64_t timestamp_ms,
                                        uint32_t* series) {
  raw_.clear();
  uint32_t count = 0;
  const auto& families = sweep.families();
  const uint64_t shape = sweep.shape_id();
  bool changed = false;  // the families' metadata differs from sent_families_
  if (shape == known_shapes_[0] || shape == known_shapes_[1]) {
    // A shape resolved_ and sent_families_ already describe: no name or label to compare.
    count = static_cast<uint32_t>(resolved_count_);
  } else {
    resolved_changed_ = false;
    for (const Family& f : families) {
      for (const Point& p : f.points) LabelBytes(count++, f.name, p);
    }
    changed = families.size() != sent_families_.size();
    for (size_t i = 0; !changed && i < families.size(); ++i) {
      const SentFamily& sf = sent_families_[i];
      changed =
          sf.name != families[i].name || sf.type != families[i].type || sf.help != families[i].help;
    }
    // resolved_ (its first `count` entries) and sent_families_ now describe this shape; the
    // shapes known before still match them unless either had to change.
    if (resolved_changed_ || changed || count != resolved_count_) {
      known_shapes_ = {shape, 0};
    } else {
      known_shapes_ = {shape, known_shapes_[0]};
    }
    if (resolved_changed_ || count != resolved_count_) ++resolved_generation_;
    resolved_count_ = count;
  }
  if (series != nullptr) *series = count;
  // Metadata: first time, on any change of the families, then once per interval.
  const bool due = !metadata_sent_ || changed || timestamp_ms < metadata_sent_ms_ ||
                   timestamp_ms - metadata_sent_ms_ >= kMetadataIntervalMs;
  if (changed) {
    sent_families_.clear();
    for (const Family& f : families) sent_families_.push_back({f.name, f.help, f.type});
  }
  if (cached_shape_ && !due && count > 0) return EncodeFromTemplate(sweep, timestamp_ms);

  size_t index = 0;
  for (const Family& f : families) {
    for (const Point& p : f.points) {
      EncodeSeries(resolved_[index++].label_bytes, p.value, timestamp_ms);
    }
  }
  if (due) {
    metadata_sent_ = true;
    metadata_sent_ms_ = timestamp_ms;
    for (const Family& f : families) {
      // Counters stay counters; everything else is sent as a gauge (as SweepToWriteRequest).
      const uint64_t type = f.type == MetricType::kCounter
                                ? static_cast<uint64_t>(MetricType::kCounter)
                                : static_cast<uint64_t>(MetricType::kGauge);
      size_t size = 1 + VarintSize(type);
      if (!f.name.empty()) size += LenFieldSize(f.name.size());
      if (!f.help.empty()) size += LenFieldSize(f.help.size());
      raw_ += Tag(3, kLen);  // WriteRequest.metadata
      PutVarint(raw_, size);
      raw_ += Tag(1, kVarint);
      PutVarint(raw_, type);
      if (!f.name.empty()) PutLenField(raw_, 2, f.name);
      if (!f.help.empty()) PutLenField(raw_, 4, f.help);
    }
  }
  // Into a kept buffer, then an exact copy: a body sized for the worst case was zero-filled
  // every sweep, and the spool kept its unused capacity for as long as it cached the body.
  const size_t max = snappy::MaxCompressedLength(raw_.size());
  if (compressed_.size() < max) compressed_.resize(max);
  size_t n = 0;
  snappy::RawCompress(raw_.data(), raw_.size(), compressed_.data(), &n);
  return std::string(compressed_.data(), n);
}

void WriteRequestEncoder::BuildTemplate() {
  template_ops_.clear();
  template_begin_.clear();
  for (size_t i = 0; i < resolved_count_; ++i) {
    template_begin_.push_back(static_cast<uint32_t>(template_ops_.size()));
    const std::string& cur = resolved_[i].label_bytes;
    const size_t n = cur.size();
    size_t p = 0, literal_from = 0;
    auto flush_literal = [&](size_t end) {
      if (end > literal_from) {
        template_ops_.push_back({static_cast<uint32_t>(literal_from),
                                 static_cast<uint32_t>(end - literal_from), 0, true});
      }
    };
    while (p < n) {
      // Greedy: the longest match at p, in this series' bytes before p (a copy may overlap
      // what it writes, as snappy allows) or in the label bytes of the kTemplateWindow series
      // before it (the same labels in the previous family, the same family's previous point).
      size_t best = 0, best_from = 0, best_back = 0;
      if (n - p >= kMinMatch) {
        for (size_t back = 0; back <= std::min(i, kTemplateWindow); ++back) {
          const std::string& src = resolved_[i - back].label_bytes;
          const size_t m = back == 0 ? p : src.size();  // own bytes: only those before p
          for (size_t q = 0; q < m; ++q) {
            if (src[q] != cur[p]) continue;
            size_t l = 1;
            while (p + l < n && (back == 0 || q + l < m) && src[q + l] == cur[p + l]) ++l;
            if (l > best) best = l, best_from = q, best_back = back;
          }
        }
      }
      if (best < kMinMatch) {
        ++p;
        continue;
      }
      flush_literal(p);
      for (size_t done = 0; done < best; done += kMaxCopy) {
        template_ops_.push_back({static_cast<uint32_t>(best_from + done),
                                 static_cast<uint32_t>(std::min(kMaxCopy, best - done)),
                                 static_cast<uint32_t>(best_back), false});
      }
      p += best;
      literal_from = p;
    }
    flush_literal(n);
  }
  template_begin_.push_back(static_cast<uint32_t>(template_ops_.size()));
  template_generation_ = resolved_generation_;
}

std::string WriteRequestEncoder::EncodeFromTemplate(const Sweep& sweep, int64_t timestamp_ms) {
  if (template_generation_ != resolved_generation_) BuildTemplate();
  // The sample's timestamp field, the same for every series.
  char ts_field[11];
  size_t ts_size = 0;
  if (timestamp_ms != 0) {
    ts_field[0] = Tag(2, kVarint);
    ts_size = 1 + PutVarintAt(ts_field + 1, static_cast<uint64_t>(timestamp_ms));
  }
  auto sample_size = [&](double value) { return (DoubleBits(value) != 0 ? 1 + 8 : 0) + ts_size; };
  // The uncompressed length comes first in a snappy block.
  size_t total = 0, index = 0;
  for (const Family& f : sweep.families()) {
    for (const Point& p : f.points) {
      const size_t len = resolved_[index++].label_bytes.size() + LenFieldSize(sample_size(p.value));
      total += LenFieldSize(len);
    }
  }
  // Written through a pointer into a buffer sized for the worst case: a literal's tag takes at
  // most 5 bytes, a copy 3 for at least 1 byte, and there is a literal at most per op and series.
  const size_t bound = 16 + total + 8 * (template_ops_.size() + 2 * index + 1);
  if (template_out_.size() < bound) template_out_.resize(bound);
  if (label_positions_.size() < index) label_positions_.resize(index);
  char* const base = template_out_.data();
  char* w = base + PutVarintAt(base, total);
  // The open literal: its tag byte is reserved where it starts, written when it ends.
  char* literal_tag = nullptr;
  auto append = [&](const void* data, size_t n) {
    if (n == 0) return;
    if (literal_tag == nullptr) literal_tag = w++;
    std::memcpy(w, data, n);
    w += n;
  };
  auto close_literal = [&] {
    if (literal_tag == nullptr) return;
    char* const start = literal_tag + 1;
    const size_t m = static_cast<size_t>(w - start) - 1;  // snappy stores length - 1
    if (m < 60) {
      *literal_tag = static_cast<char>(m << 2);
    } else {
      const int extra = m < (1u << 8) ? 1 : m < (1u << 16) ? 2 : m < (1u << 24) ? 3 : 4;
      std::memmove(start + extra, start, m + 1);
      *literal_tag = static_cast<char>((59 + extra) << 2);
      for (int i = 0; i < extra; ++i) start[i] = static_cast<char>(m >> (8 * i));
      w += extra;
    }
    literal_tag = nullptr;
  };
  // A copy of `len` (1 to 64) bytes from `distance` (at most 65535) bytes back: in two bytes
  // where snappy allows (4 to 11 bytes from less than 2048 back), else in three.
  auto copy = [&](size_t len, size_t distance) {
    close_literal();
    if (len >= 4 && len <= 11 && distance < 2048) {
      w[0] = static_cast<char>(((distance >> 8) << 5) | ((len - 4) << 2) | 1);
      w[1] = static_cast<char>(distance);
      w += 2;
      return;
    }
    w[0] = static_cast<char>(((len - 1) << 2) | 2);
    w[1] = static_cast<char>(distance);
    w[2] = static_cast<char>(distance >> 8);
    w += 3;
  };
  // Positions in the uncompressed request: copies are placed by them.
  size_t pos = 0;
  size_t prev_ts_pos = SIZE_MAX;  // the previous series' timestamp field
  index = 0;
  for (const Family& f : sweep.families()) {
    for (const Point& p : f.points) {
      const std::string& labels = resolved_[index].label_bytes;
      const size_t ss = sample_size(p.value);
      char field[16];  // WriteRequest.timeseries tag and length; then TimeSeries.samples'
      field[0] = Tag(1, kLen);
      const size_t header_bytes = 1 + PutVarintAt(field + 1, labels.size() + LenFieldSize(ss));
      append(field, header_bytes);
      pos += header_bytes;
      label_positions_[index] = pos;
      size_t written = 0;  // of this series' label bytes
      for (uint32_t k = template_begin_[index]; k < template_begin_[index + 1]; ++k) {
        const TemplateOp& op = template_ops_[k];
        const size_t distance = pos + written - (label_positions_[index - op.back] + op.from);
        if (op.literal || distance > 0xffff) {
          append(labels.data() + written, op.len);  // the same bytes as the source's
        } else {
          copy(op.len, distance);
        }
        written += op.len;
      }
      pos += labels.size();
      field[0] = Tag(2, kLen);
      size_t n = 1 + PutVarintAt(field + 1, ss);
      const uint64_t bits = DoubleBits(p.value);
      if (bits != 0) {
        field[n] = Tag(1, kFixed64);
        std::memcpy(field + n + 1, &bits, 8);  // little-endian, as the wire
        n += 9;
      }
      append(field, n);
      pos += n;
      // Every series has the same timestamp field: a copy of the previous one's.
      if (ts_size > 0 && prev_ts_pos != SIZE_MAX && pos - prev_ts_pos <= 0xffff) {
        copy(ts_size, pos - prev_ts_pos);
      } else {
        append(ts_field, ts_size);
      }
      prev_ts_pos = pos;
      pos += ts_size;
      ++index;
    }
  }
  close_literal();
  return std::string(base, static_cast<size_t>(w - base));
}

// ---- merging ----

namespace {

// A protobuf field read from a message: its number, wire type, the whole field's bytes (tag
// included) and, for length-delimited fields, the payload.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  std::string_view whole;
  std::string_view payload;
};

bool ReadVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Splits the next field off `in`; false on malformed input.
bool NextField(std::string_view& in, Field& f) {
  const char* start = in.data();
  uint64_t tag = 0;
  if (!ReadVarint(in, tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) return false;
  f.number = static_cast<uint32_t>(tag >> 3);
  f.wire_type = static_cast<uint32_t>(tag & 7);
  uint64_t v = 0;
  switch (f.wire_type) {
    case kVarint:
      if (!ReadVarint(in, v)) return false;
      break;
    case kFixed64:
      if (in.size() < 8) return false;
      in.remove_prefix(8);
      break;
    case kLen:
      if (!ReadVarint(in, v) || v > in.size()) return false;
      f.payload = in.substr(0, v);
      in.remove_prefix(v);
      break;
    case 5:  // fixed32
      if (in.size() < 4) return false;
      in.remove_prefix(4);
      break;
    default:
      return false;  // groups: not in remote_write
  }
  f.whole = std::string_view(start, static_cast<size_t>(in.data() - start));
  return true;
}

struct MergedSeries {
  std::string_view labels;             // the label fields, as sent (into a decoded body)
  std::vector<std::string_view> rest;  // samples (and any other field), in order
  size_t rest_bytes = 0;
};

// Views into the decoded bodies, not copies: the sender merges ten sweeps a second at 100 ms
// sampling, and a string per series per sweep was most of its time. Returns the merged
// WriteRequest uncompressed: the decoded bodies are freed before it is compressed.
Result<std::string> MergeDecoded(const std::vector<std::string_view>& bodies,
                                 size_t max_decoded_bytes, size_t* series) {
  std::vector<MergedSeries> merged;
  std::unordered_map<std::string_view, size_t> by_labels;
  std::vector<std::string_view> metadata;
  std::unordered_set<std::string_view> families;
  std::vector<std::string> raws(bodies.size());
  std::deque<std::string> owned;  // label fields that were not contiguous in their series
  for (size_t b = 0; b < bodies.size(); ++b) {
    const std::string_view body = bodies[b];
    size_t len = 0;
    if (!snappy::GetUncompressedLength(body.data(), body.size(), &len)) {
      return InvalidArgument("body " + std::to_string(b) + ": not snappy block format");
    }
    if (len > max_decoded_bytes) {
      return ResourceExhausted("body " + std::to_string(b) + ": decompresses to " +
                               std::to_string(len) + " bytes");
    }
    std::string& raw = raws[b];
    if (!snappy::Uncompress(body.data(), body.size(), &raw)) {
      return InvalidArgument("body " + std::to_string(b) + ": corrupt snappy data");
    }
    auto malformed = [b](const char* what) {
      return InvalidArgument("body " + std::to_string(b) + ": malformed " + what);
    };
    std::string_view in(raw);
    Field f;
    size_t position = 0;  // of the series that follows the last one seen in this body
    while (!in.empty()) {
      if (!NextField(in, f)) return malformed("WriteRequest");
      if (f.number == 1 && f.wire_type == kLen) {  // TimeSeries
        // Our encoder writes the labels first, contiguous: a view; otherwise a joined copy.
        const char* first = nullptr;
        const char* end = nullptr;
        bool contiguous = true;
        std::string_view ts = f.payload;
        Field g;
        while (!ts.empty()) {
          if (!NextField(ts, g)) return malformed("TimeSeries");
          if (g.number != 1) continue;
          if (first == nullptr) {
            first = g.whole.data();
          } else if (end != g.whole.data()) {
            contiguous = false;
          }
          end = g.whole.data() + g.whole.size();
        }
        std::string_view labels;
        if (first != nullptr && contiguous) {
          labels = std::string_view(first, static_cast<size_t>(end - first));
        } else if (first != nullptr) {
          std::string joined;
          for (ts = f.payload; !ts.empty() && NextField(ts, g);) {
            if (g.number == 1) joined.append(g.whole);
          }
          labels = owned.emplace_back(std::move(joined));
        }
        // Consecutive sweeps list the same series in the same order: try the series at this
        // position first (one comparison), hashing the labels only when it is another.
        size_t index;
        if (position < merged.size() && merged[position].labels == labels) {
          index = position;
        } else {
          auto [it, added] = by_labels.try_emplace(labels, merged.size());
          if (added) merged.push_back({labels, {}, 0});
          index = it->second;
        }
        position = index + 1;
        MergedSeries& m = merged[index];
        const char* payload_end = f.payload.data() + f.payload.size();
        if (first == nullptr || (contiguous && first == f.payload.data())) {
          // Labels first (or none): everything after them, in order, is the rest. One view.
          const char* from = first == nullptr ? f.payload.data() : end;
          if (from != payload_end) {
            m.rest.emplace_back(from, static_cast<size_t>(payload_end - from));
            m.rest_bytes += static_cast<size_t>(payload_end - from);
          }
        } else {
          for (ts = f.payload; !ts.empty() && NextField(ts, g);) {
            if (g.number == 1) continue;
            m.rest.push_back(g.whole);
            m.rest_bytes += g.whole.size();
          }
        }
      } else if (f.number == 3 && f.wire_type == kLen) {  // MetricMetadata
        std::string_view md = f.payload, name;
        Field g;
        while (!md.empty()) {
          if (!NextField(md, g)) return malformed("MetricMetadata");
          if (g.number == 2 && g.wire_type == kLen) name = g.payload;
        }
        if (families.emplace(name).second) metadata.push_back(f.whole);
      }
      // Anything else (field 2 is reserved by Prometheus) is left out, as libprotobuf's
      // decoder into our WriteRequest would.
    }
  }
  std::string out;
  size_t total = 0;
  for (const MergedSeries& m : merged) total += 12 + m.labels.size() + m.rest_bytes;
  for (std::string_view md : metadata) total += md.size();
  out.reserve(total);
  for (const MergedSeries& m : merged) {
    out += Tag(1, kLen);
    PutVarint(out, m.labels.size() + m.rest_bytes);
    out += m.labels;
    for (std::string_view r : m.rest) out += r;
  }
  for (std::string_view md : metadata) out += md;
  if (series != nullptr) *series = merged.size();
  return out;
}

}  // namespace

Result<std::string> MergeWriteRequests(const std::vector<std::string_view>& bodies,
                                       size_t max_decoded_bytes, size_t* series) {
  auto out = MergeDecoded(bodies, max_decoded_bytes, series);
  if (!out.ok()) return out.status();
  std::string compressed;
  snappy::Compress(out->data(), out->size(), &compressed);
  return compressed;
}

}  // namespace suanli::agent
