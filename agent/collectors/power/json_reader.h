// JsonValue and ParseJson: a small, strict JSON (RFC 8259) reader for what a BMC sends
// (Redfish documents of a few kilobytes).
//
// Why our own: Debian 12's Boost is 1.74, which has no Boost.JSON (it came with 1.75), and
// Boost.PropertyTree's JSON parser turns numbers into strings, cannot tell null (a Redfish
// reading the BMC does not have) from the string "null", and recurses without a bound, so a
// deeply nested document from a broken or hostile BMC overflows the stack. This reader is
// strict (no comments, trailing commas, NaN, or bytes that are not UTF-8), bounded (nesting
// depth and input size), reports the line and column of the first error, and never throws or
// crashes on malformed input. Numbers are doubles (readings and counts fit).
// Thread-safety: values are plain data; ParseJson is reentrant.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace suanli::agent {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<JsonValue>;
  using Object = std::vector<std::pair<std::string, JsonValue>>;  // in document order

  JsonValue() = default;  // null
  explicit JsonValue(bool b) : v_(b) {}
  explicit JsonValue(double d) : v_(d) {}
  explicit JsonValue(std::string s) : v_(std::move(s)) {}
  explicit JsonValue(Array a) : v_(std::move(a)) {}
  explicit JsonValue(Object o) : v_(std::move(o)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::kNull; }

  // The value when it has that type; nullptr / nullopt otherwise.
  std::optional<bool> boolean() const;
  std::optional<double> number() const;
  const std::string* string() const;
  const Array* array() const;
  const Object* object() const;

  // An object's member by name (the last one when a name repeats, as JavaScript's JSON.parse);
  // nullptr when absent or when this is not an object.
  const JsonValue* Find(std::string_view key) const;
  // Members of nested objects: Find(a), then its Find(b), ...; nullptr when any step fails.
  const JsonValue* FindPath(std::initializer_list<std::string_view> keys) const;

 private:
  std::variant<std::monostate, bool, double, std::string, Array, Object> v_;
};

struct JsonLimits {
  size_t max_bytes = 8 << 20;  // larger documents are refused before parsing
  int max_depth = 64;          // arrays and objects nested deeper are refused
};

// Parses one JSON text (whitespace around it allowed; a leading UTF-8 byte-order mark ignored).
// Errors are kInvalidArgument: "line 3, column 17: expected ',' or '}'".
Result<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits = {});

}  // namespace suanli::agent
