// A minimal protobuf wire writer for tests, independent of libprotobuf, so decoders are checked
// against bytes written by hand from the wire format, not only against our own encoder.
#pragma once

#include <snappy.h>

#include <cstdint>
#include <string>

namespace suanli::wire {

inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}
inline std::string Tag(int field, int wire_type) {
  return Varint((static_cast<uint64_t>(field) << 3) | wire_type);
}
// A length-delimited field (bytes, string or sub-message).
inline std::string Bytes(int field, const std::string& payload) {
  return Tag(field, 2) + Varint(payload.size()) + payload;
}
inline std::string Int(int field, uint64_t v) { return Tag(field, 0) + Varint(v); }
inline std::string Fixed64(int field, uint64_t v) {
  std::string out = Tag(field, 1);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}
// Snappy block format: what a remote_write body is.
inline std::string Compress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

}  // namespace suanli::wire
