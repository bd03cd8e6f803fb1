// What the scheduler endpoints need around rapidjson's Writer (Debian's rapidjson-dev, header
// only): a streaming writer, chosen over nlohmann::json's document-then-dump because building a
// document costs /api/v1/capacity for 1,000 dcs several times the time (docs/dependencies.md).
// Only the Writer is used: documents from outside are read with nlohmann::json.
// Thread-safety: a Writer is owned by one thread.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace suanli::exporters::json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

inline void Key(Writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

// Bytes are passed through as they are (callers hand it UTF-8); control characters are escaped.
inline void String(Writer& w, std::string_view value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// Text that reads back as the same double (rapidjson's Grisu2; integral values keep a ".0":
// 50.0 where the Go encoders of load-watcher write 50, which JSON readers take as the same
// number). JSON has no NaN or Infinity: those are written as null (rapidjson's Writer would
// refuse them and leave the document broken).
inline void Number(Writer& w, double value) {
  if (std::isfinite(value)) {
    w.Double(value);
  } else {
    w.Null();
  }
}

// Key and value in one call, for the many members that are one number or string.
inline void NumberMember(Writer& w, std::string_view key, double value) {
  Key(w, key);
  Number(w, value);
}
inline void IntMember(Writer& w, std::string_view key, int64_t value) {
  Key(w, key);
  w.Int64(value);
}
inline void StringMember(Writer& w, std::string_view key, std::string_view value) {
  Key(w, key);
  String(w, value);
}

inline std::string Text(const rapidjson::StringBuffer& out) {
  return std::string(out.GetString(), out.GetSize());
}

}  // namespace suanli::exporters::json
