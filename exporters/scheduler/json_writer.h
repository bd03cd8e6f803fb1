// JsonWriter: a small streaming JSON (RFC 8259) writer for the scheduler endpoints. It keeps
// commas and nesting straight; strings are escaped (control characters as \u00XX; other bytes
// are passed through, so callers hand it UTF-8); non-finite numbers are written as null, since
// JSON has no NaN or Infinity.
// Thread-safety: a value owned by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace suanli::exporters {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The next value's key; only inside an object.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  // Shortest text that reads back as the same double; NaN and infinities as null.
  JsonWriter& Number(double value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  const std::string& str() const { return out_; }
  std::string Take() && { return std::move(out_); }

  // Appends `s` as a quoted, escaped JSON string.
  static void AppendQuoted(std::string_view s, std::string* out);

 private:
  void BeforeValue();

  std::string out_;
  std::vector<bool> has_items_;  // per open container: whether a comma is due
  bool after_key_ = false;
};

}  // namespace suanli::exporters
