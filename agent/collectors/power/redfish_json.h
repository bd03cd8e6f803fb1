// ParseRedfishJson: what a BMC sends (Redfish documents of a few kilobytes), read by nlohmann::json
// (Debian's nlohmann-json3-dev) within bounds, and the lookups the collector makes in it.
//
// nlohmann::json is strict (no comments, trailing commas, NaN, or strings that are not UTF-8) and
// reports the line and column of the first error; this layer adds what it lacks for input from a
// device on the network: a size limit, a nesting limit (checked before parsing, so a hostile
// "[[[[..." costs neither stack nor memory), and no exceptions (every error is a Status). The
// lookups never throw either: they answer nullptr / nullopt where a value is absent or has
// another type. Repeated member names keep the last value, as JavaScript's JSON.parse does.
// Thread-safety: free functions over values.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace suanli::agent {

using Json = nlohmann::json;

struct JsonLimits {
  size_t max_bytes = 8 << 20;  // larger documents are refused before parsing
  int max_depth = 64;          // arrays and objects nested deeper are refused
};

// Parses one JSON text (whitespace around it allowed; a leading UTF-8 byte-order mark ignored).
// Errors are kInvalidArgument and start with the place: "line 3, column 1: syntax error ...".
Result<Json> ParseRedfishJson(std::string_view text, const JsonLimits& limits = {});

// An object's member by name; nullptr when absent or when `v` is not an object.
const Json* Member(const Json& v, std::string_view key);
// Members of nested objects: Member(a), then its Member(b), ...; nullptr when any step fails.
const Json* MemberPath(const Json& v, std::initializer_list<std::string_view> keys);

// The value when it has that type; nullptr / nullopt otherwise (also for a nullptr `v`).
const std::string* AsString(const Json* v);
const Json::array_t* AsArray(const Json* v);
std::optional<double> AsNumber(const Json* v);
std::optional<bool> AsBool(const Json* v);

}  // namespace suanli::agent
