// Zero-copy WriteRequest parser; see remote_write_fast_decoder.h for the rules it follows.
#include "core/remote_write_fast_decoder.h"

#include <cstring>

#include "core/remote_codec.h"

namespace suanli::remote {
namespace {

constexpr int kWireVarint = 0, kWireFixed64 = 1, kWireLen = 2, kWireStartGroup = 3,
              kWireEndGroup = 4, kWireFixed32 = 5;
// libprotobuf's default recursion limit: nested messages and groups below the top level.
constexpr int kMaxDepth = 100;

// A bounded view being parsed; every read checks the bound.
struct Cursor {
  const char* p;
  const char* end;
  bool done() const { return p >= end; }
};

// Up to 10 bytes; bits past 64 are dropped (libprotobuf does the same).
inline bool ReadVarint(Cursor& c, uint64_t* v) {
  if (c.p < c.end && static_cast<unsigned char>(*c.p) < 0x80) {
    *v = static_cast<unsigned char>(*c.p++);
    return true;
  }
  uint64_t result = 0;
  for (int i = 0; i < 10 && c.p < c.end; ++i) {
    auto b = static_cast<unsigned char>(*c.p++);
    result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *v = result;
      return true;
    }
  }
  return false;
}

// Up to 5 bytes, kept modulo 2^32.
inline bool ReadTag(Cursor& c, uint32_t* tag) {
  if (c.p < c.end && static_cast<unsigned char>(*c.p) < 0x80) {
    *tag = static_cast<unsigned char>(*c.p++);
    return true;
  }
  uint32_t result = 0;
  for (int i = 0; i < 5 && c.p < c.end; ++i) {
    auto b = static_cast<unsigned char>(*c.p++);
    result += static_cast<uint32_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *tag = result;
      return true;
    }
  }
  return false;
}

// A length prefix (at most 5 bytes, below 2 GiB) and that many bytes, all inside the cursor.
inline bool ReadLengthDelimited(Cursor& c, std::string_view* out) {
  uint64_t len;
  if (c.p < c.end && static_cast<unsigned char>(*c.p) < 0x80) {
    len = static_cast<unsigned char>(*c.p++);
  } else {
    len = 0;
    int i = 0;
    for (;; ++i) {
      if (i == 5 || c.p >= c.end) return false;
      auto b = static_cast<unsigned char>(*c.p++);
      if (i == 4 && b >= 8) return false;  // 2 GiB or more
      len |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) break;
    }
  }
  if (len > static_cast<uint64_t>(c.end - c.p)) return false;
  *out = std::string_view(c.p, len);
  c.p += len;
  return true;
}

inline bool ReadFixed64(Cursor& c, uint64_t* v) {
  if (c.end - c.p < 8) return false;
  std::memcpy(v, c.p, 8);  // little-endian host (x86-64, aarch64)
  c.p += 8;
  return true;
}

bool SkipField(Cursor& c, uint32_t tag, int depth);

// The fields of a group up to its end-group tag of the same number.
bool SkipGroup(Cursor& c, uint32_t start_tag, int depth) {
  if (depth <= 0) return false;
  while (!c.done()) {
    uint32_t tag;
    if (!ReadTag(c, &tag)) return false;
    if ((tag & 7) == kWireEndGroup) return tag == start_tag + 1;
    if (!SkipField(c, tag, depth - 1)) return false;
  }
  return false;  // no end-group tag
}

// Skips one unknown field (or a known field sent with another wire type) whose tag was read.
bool SkipField(Cursor& c, uint32_t tag, int depth) {
  if ((tag >> 3) == 0) return false;
  switch (tag & 7) {
    case kWireVarint: {
      uint64_t v;
      return ReadVarint(c, &v);
    }
    case kWireFixed64:
      if (c.end - c.p < 8) return false;
      c.p += 8;
      return true;
    case kWireLen: {
      std::string_view v;
      return ReadLengthDelimited(c, &v);
    }
    case kWireStartGroup:
      return SkipGroup(c, tag, depth);
    case kWireFixed32:
      if (c.end - c.p < 4) return false;
      c.p += 4;
      return true;
    default:  // end-group without a start, wire types 6 and 7
      return false;
  }
}

// Reads the next tag of a message; false at the message's end or on an error (*ok tells).
// Tag 0 and end-group end a message early in libprotobuf, which then fails the parse.
inline bool NextTag(Cursor& c, uint32_t* tag, bool* ok) {
  if (c.done()) return false;
  if (!ReadTag(c, tag) || *tag == 0 || (*tag & 7) == kWireEndGroup) {
    *ok = false;
    return false;
  }
  return true;
}

bool ParseLabel(std::string_view bytes, LabelRef* out, int depth) {
  // What every sender writes: name (field 1) then value (field 2), one-byte lengths.
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 4 && b[0] == (1 << 3 | kWireLen) && b[1] < 0x80) {
    const size_t name_len = b[1];
    if (name_len + 4 <= bytes.size() && b[2 + name_len] == (2 << 3 | kWireLen) &&
        b[3 + name_len] < 0x80 && name_len + 4 + b[3 + name_len] == bytes.size()) {
      out->name = bytes.substr(2, name_len);
      out->value = bytes.substr(4 + name_len);
      return true;
    }
  }
  Cursor c{bytes.data(), bytes.data() + bytes.size()};
  uint32_t tag;
  bool ok = true;
  *out = LabelRef{};
  while (NextTag(c, &tag, &ok)) {
    if (tag == (1 << 3 | kWireLen)) {
      if (!ReadLengthDelimited(c, &out->name)) return false;
    } else if (tag == (2 << 3 | kWireLen)) {
      if (!ReadLengthDelimited(c, &out->value)) return false;
    } else if (!SkipField(c, tag, depth)) {
      return false;
    }
  }
  return ok;
}

bool ParseSample(std::string_view bytes, Sample* out, int depth) {
  // What every sender writes: value (fixed64, field 1) then timestamp (varint, field 2).
  if (bytes.size() >= 11 && bytes[0] == (1 << 3 | kWireFixed64) &&
      bytes[9] == (2 << 3 | kWireVarint)) {
    Cursor c{bytes.data() + 10, bytes.data() + bytes.size()};
    uint64_t ts;
    if (ReadVarint(c, &ts) && c.done()) {
      std::memcpy(&out->value, bytes.data() + 1, 8);
      out->timestamp_ms = static_cast<int64_t>(ts);
      return true;
    }
  }
  Cursor c{bytes.data(), bytes.data() + bytes.size()};
  uint32_t tag;
  bool ok = true;
  *out = Sample{};
  while (NextTag(c, &tag, &ok)) {
    if (tag == (1 << 3 | kWireFixed64)) {
      uint64_t bits;
      if (!ReadFixed64(c, &bits)) return false;
      std::memcpy(&out->value, &bits, 8);
    } else if (tag == (2 << 3 | kWireVarint)) {
      uint64_t v;
      if (!ReadVarint(c, &v)) return false;
      out->timestamp_ms = static_cast<int64_t>(v);
    } else if (!SkipField(c, tag, depth)) {
      return false;
    }
  }
  return ok;
}

// Exemplar {repeated Label labels = 1; double value = 2; int64 timestamp = 3}: checked only.
bool CheckExemplar(std::string_view bytes, int depth) {
  Cursor c{bytes.data(), bytes.data() + bytes.size()};
  uint32_t tag;
  bool ok = true;
  while (NextTag(c, &tag, &ok)) {
    if (tag == (1 << 3 | kWireLen)) {
      std::string_view sub;
      LabelRef ignored;
      if (depth <= 0 || !ReadLengthDelimited(c, &sub) || !ParseLabel(sub, &ignored, depth - 1)) {
        return false;
      }
    } else if (!SkipField(c, tag, depth)) {  // value and timestamp: skipping checks them
      return false;
    }
  }
  return ok;
}

// MetricMetadata {type = 1 (varint); bytes 2, 4, 5}: checked only; skipping checks them all.
bool CheckMetadata(std::string_view bytes, int depth) {
  Cursor c{bytes.data(), bytes.data() + bytes.size()};
  uint32_t tag;
  bool ok = true;
  while (NextTag(c, &tag, &ok)) {
    if (!SkipField(c, tag, depth)) return false;
  }
  return ok;
}

bool ParseTimeSeries(std::string_view bytes, WriteRequestView* out, int depth) {
  Cursor c{bytes.data(), bytes.data() + bytes.size()};
  SeriesRef ref;
  ref.first_label = static_cast<uint32_t>(out->labels.size());
  ref.first_sample = static_cast<uint32_t>(out->samples.size());
  uint32_t tag;
  bool ok = true;
  while (NextTag(c, &tag, &ok)) {
    std::string_view sub;
    if (tag == (1 << 3 | kWireLen)) {
      if (depth <= 0 || !ReadLengthDelimited(c, &sub)) return false;
      if (!ParseLabel(sub, &out->labels.emplace_back(), depth - 1)) return false;
    } else if (tag == (2 << 3 | kWireLen)) {
      if (depth <= 0 || !ReadLengthDelimited(c, &sub)) return false;
      if (!ParseSample(sub, &out->samples.emplace_back(), depth - 1)) return false;
    } else if (tag == (3 << 3 | kWireLen)) {
      if (depth <= 0 || !ReadLengthDelimited(c, &sub) || !CheckExemplar(sub, depth - 1)) {
        return false;
      }
      ++out->exemplar_count;
    } else if (tag == (4 << 3 | kWireLen)) {
      // A native histogram (prompb.Histogram): not supported, skipped as unknown (the length
      // is checked), counted.
      if (!SkipField(c, tag, depth)) return false;
      ++out->histogram_count;
    } else if (!SkipField(c, tag, depth)) {
      return false;
    }
  }
  if (!ok) return false;
  ref.label_count = static_cast<uint32_t>(out->labels.size()) - ref.first_label;
  ref.sample_count = static_cast<uint32_t>(out->samples.size()) - ref.first_sample;
  out->series.push_back(ref);
  return true;
}

}  // namespace

Status ParseWriteRequestView(std::string_view raw, WriteRequestView* out) {
  out->Clear();
  // A series takes at least ~40 wire bytes with its labels and a sample: reserving by size
  // avoids most regrowth without over-allocating for small requests.
  out->series.reserve(raw.size() / 64);
  out->samples.reserve(raw.size() / 64);
  out->labels.reserve(raw.size() / 24);
  Cursor c{raw.data(), raw.data() + raw.size()};
  uint32_t tag;
  bool ok = true;
  const int depth = kMaxDepth;
  while (NextTag(c, &tag, &ok)) {
    std::string_view sub;
    if (tag == (1 << 3 | kWireLen)) {
      if (!ReadLengthDelimited(c, &sub) || !ParseTimeSeries(sub, out, depth - 1)) {
        ok = false;
        break;
      }
    } else if (tag == (3 << 3 | kWireLen)) {
      if (!ReadLengthDelimited(c, &sub) || !CheckMetadata(sub, depth - 1)) {
        ok = false;
        break;
      }
      ++out->metadata_count;
    } else if (!SkipField(c, tag, depth)) {
      ok = false;
      break;
    }
  }
  if (!ok) return InvalidArgument("protobuf: cannot parse WriteRequest");
  return Status::Ok();
}

Status DecodeWriteRequestView(std::string_view body, size_t max_decoded_bytes,
                              DecodedWriteRequest* out) {
  RETURN_IF_ERROR(
      SnappyDecompress(body, max_decoded_bytes, &out->buffer, &out->size, &out->capacity));
  return ParseWriteRequestView(std::string_view(out->buffer.get(), out->size), &out->view);
}

}  // namespace suanli::remote
