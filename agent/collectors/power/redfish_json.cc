#include "agent/collectors/power/redfish_json.h"

namespace suanli::agent {
namespace {

// What the parser is not asked to see: arrays or objects nested deeper than `max_depth`, and NUL
// bytes (nlohmann's lexer takes one for the end of the input and would not read on). The first
// one's place and what it is ("line L, column C: ..."), or "" when there is none. Brackets inside
// strings do not count; the rest of the syntax is left to the parser.
std::string PreScan(std::string_view text, int max_depth) {
  int depth = 0;
  size_t line = 1, column = 0;
  bool in_string = false, escaped = false;
  auto place = [&] {
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  };
  for (char c : text) {
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
    } else if (c == '\0') {
      return place() + ": a NUL byte (JSON text has none; in a string it is written \\u0000)";
    }
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return place() + ": arrays and objects nested deeper than " + std::to_string(max_depth) +
               " levels";
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return "";
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 3, column 1: ...";
// the message starts at the place. Its "last read: '...'" quotes the input, which may be long
// and not UTF-8: the message is cut and bytes outside printable ASCII become '?', as it goes
// to logs and to the status the agent reports.
std::string MessageOf(const Json::exception& e) {
  constexpr size_t kMaxMessage = 300;
  std::string_view what = e.what();
  if (size_t at = what.find("parse error at "); at != std::string_view::npos) {
    what.remove_prefix(at + sizeof("parse error at ") - 1);
  } else if (size_t end = what.find("] ");
             what.starts_with("[json.exception.") && end != what.npos) {
    what.remove_prefix(end + 2);
  }
  std::string out(what.substr(0, kMaxMessage));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (what.size() > kMaxMessage) out += "...";
  return out;
}

}  // namespace

Result<Json> ParseRedfishJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return InvalidArgument("a document of " + std::to_string(text.size()) + " bytes is over the " +
                           std::to_string(limits.max_bytes) + "-byte limit");
  }
  if (std::string refused = PreScan(text, limits.max_depth); !refused.empty()) {
    return InvalidArgument(refused);
  }
  try {
    // Strict: no comments (ignore_comments = false); the byte-order mark is skipped.
    return Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    return InvalidArgument(MessageOf(e));
  }
}

const Json* Member(const Json& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  auto it = v.find(key);
  return it == v.end() ? nullptr : &*it;
}

const Json* MemberPath(const Json& v, std::initializer_list<std::string_view> keys) {
  const Json* at = &v;
  for (std::string_view k : keys) {
    at = Member(*at, k);
    if (at == nullptr) return nullptr;
  }
  return at;
}

const std::string* AsString(const Json* v) {
  return v == nullptr ? nullptr : v->get_ptr<const Json::string_t*>();
}

const Json::array_t* AsArray(const Json* v) {
  return v == nullptr ? nullptr : v->get_ptr<const Json::array_t*>();
}

std::optional<double> AsNumber(const Json* v) {
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::optional<bool> AsBool(const Json* v) {
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

}  // namespace suanli::agent
