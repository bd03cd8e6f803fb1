#include "agent/collectors/power/json_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace suanli::agent {

std::optional<bool> JsonValue::boolean() const {
  if (const bool* b = std::get_if<bool>(&v_)) return *b;
  return std::nullopt;
}

std::optional<double> JsonValue::number() const {
  if (const double* d = std::get_if<double>(&v_)) return *d;
  return std::nullopt;
}

const std::string* JsonValue::string() const { return std::get_if<std::string>(&v_); }
const JsonValue::Array* JsonValue::array() const { return std::get_if<Array>(&v_); }
const JsonValue::Object* JsonValue::object() const { return std::get_if<Object>(&v_); }

const JsonValue* JsonValue::Find(std::string_view key) const {
  const Object* o = object();
  if (o == nullptr) return nullptr;
  for (auto it = o->rbegin(); it != o->rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

const JsonValue* JsonValue::FindPath(std::initializer_list<std::string_view> keys) const {
  const JsonValue* v = this;
  for (std::string_view k : keys) {
    v = v->Find(k);
    if (v == nullptr) return nullptr;
  }
  return v;
}

namespace {

// Recursive descent over a bounded depth; positions are byte offsets into text_.
class Parser {
 public:
  Parser(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  Result<JsonValue> ParseDocument() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    SkipSpace();
    JsonValue v;
    if (!ParseValue(v, 0)) return Error();
    SkipSpace();
    if (pos_ != text_.size()) {
      Fail("unexpected data after the JSON value");
      return Error();
    }
    return v;
  }

 private:
  bool Fail(std::string what) {
    if (error_.empty()) {
      error_ = std::move(what);
      error_pos_ = pos_;
    }
    return false;
  }

  Status Error() const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < error_pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return InvalidArgument("line " + std::to_string(line) + ", column " + std::to_string(column) +
                           ": " + error_);
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  void SkipSpace() {
    while (!AtEnd()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  std::string Describe() const {
    if (AtEnd()) return "end of input";
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof(buf), "byte 0x%02X", c);
    return buf;
  }

  bool ParseValue(JsonValue& out, int depth) {
    switch (Peek()) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case '"': {
        std::string s;
        if (!ParseString(s)) return false;
        out = JsonValue(std::move(s));
        return true;
      }
      case 't':
        return ParseLiteral("true", JsonValue(true), out);
      case 'f':
        return ParseLiteral("false", JsonValue(false), out);
      case 'n':
        return ParseLiteral("null", JsonValue(), out);
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) return ParseNumber(out);
        return Fail("expected a value, found " + Describe());
    }
  }

  bool ParseLiteral(std::string_view word, JsonValue value, JsonValue& out) {
    if (text_.substr(pos_, word.size()) != word)
      return Fail("expected a value, found " + Describe());
    pos_ += word.size();
    out = std::move(value);
    return true;
  }

  bool ParseObject(JsonValue& out, int depth) {
    if (depth > max_depth_) return Fail("nested deeper than " + std::to_string(max_depth_));
    ++pos_;  // '{'
    JsonValue::Object members;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      out = JsonValue(std::move(members));
      return true;
    }
    for (;;) {
      SkipSpace();
      if (Peek() != '"') return Fail("expected a member name in quotes, found " + Describe());
      std::string key;
      if (!ParseString(key)) return false;
      SkipSpace();
      if (Peek() != ':') return Fail("expected ':' after a member name, found " + Describe());
      ++pos_;
      SkipSpace();
      JsonValue value;
      if (!ParseValue(value, depth)) return false;
      members.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        out = JsonValue(std::move(members));
        return true;
      }
      return Fail("expected ',' or '}', found " + Describe());
    }
  }

  bool ParseArray(JsonValue& out, int depth) {
    if (depth > max_depth_) return Fail("nested deeper than " + std::to_string(max_depth_));
    ++pos_;  // '['
    JsonValue::Array items;
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      out = JsonValue(std::move(items));
      return true;
    }
    for (;;) {
      SkipSpace();
      JsonValue value;
      if (!ParseValue(value, depth)) return false;
      items.push_back(std::move(value));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        out = JsonValue(std::move(items));
        return true;
      }
      return Fail("expected ',' or ']', found " + Describe());
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, converted without the C locale's help.
  bool ParseNumber(JsonValue& out) {
    size_t start = pos_;
    auto digits = [this] {
      size_t n = 0;
      while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        ++pos_;
        ++n;
      }
      return n;
    };
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return Fail("expected a digit, found " + Describe());
    }
    if (Peek() == '.') {
      ++pos_;
      if (digits() == 0) return Fail("expected a digit after '.', found " + Describe());
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (digits() == 0) return Fail("expected a digit in the exponent, found " + Describe());
    }
    double d = 0;
    auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, d);
    if (ec == std::errc::result_out_of_range && !Overflows(text_.substr(start, pos_ - start))) {
      out = JsonValue(0.0);  // underflow: as good as zero for any reading
      return true;
    }
    if (ec != std::errc() || end != text_.data() + pos_ || !std::isfinite(d)) {
      pos_ = start;
      return Fail("number out of range");
    }
    out = JsonValue(d);
    return true;
  }

  // Whether a valid number token too large or too small for a double is too large: the decimal
  // exponent of its first significant digit is positive. (from_chars leaves the value unset
  // either way.)
  static bool Overflows(std::string_view token) {
    int64_t magnitude = 0;
    bool significant = false;
    size_t i = token[0] == '-' ? 1 : 0;
    for (; i < token.size() && token[i] >= '0' && token[i] <= '9'; ++i) {
      if (significant || token[i] != '0') {
        significant = true;
        ++magnitude;
      }
    }
    if (i < token.size() && token[i] == '.') {
      for (++i; i < token.size() && token[i] >= '0' && token[i] <= '9'; ++i) {
        if (significant) continue;
        if (token[i] != '0') {
          significant = true;
        } else {
          --magnitude;
        }
      }
    }
    if (!significant) return false;
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
      ++i;
      bool negative = token[i] == '-';
      if (token[i] == '+' || token[i] == '-') ++i;
      int64_t exponent = 0;
      for (; i < token.size(); ++i) {
        exponent = std::min<int64_t>(exponent * 10 + (token[i] - '0'), int64_t{1} << 40);
      }
      magnitude += negative ? -exponent : exponent;
    }
    return magnitude > 0;
  }

  bool Hex4(uint32_t& value) {
    if (text_.size() - pos_ < 4) return Fail("expected four hex digits after \\u");
    value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_];
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return Fail("expected four hex digits after \\u, found " + Describe());
      }
      value = value * 16 + digit;
      ++pos_;
    }
    return true;
  }

  static void AppendUtf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // The length of the well-formed UTF-8 sequence at pos_ (no overlong forms, no surrogates,
  // nothing past U+10FFFF), or 0.
  size_t Utf8Length() const {
    auto byte = [this](size_t i) -> unsigned {
      return pos_ + i < text_.size() ? static_cast<unsigned char>(text_[pos_ + i]) : 0u;
    };
    auto cont = [&](size_t i) { return (byte(i) & 0xC0) == 0x80; };
    unsigned b0 = byte(0);
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
      unsigned b1 = byte(1);
      if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
      if (b0 == 0xED && b1 >= 0xA0) return 0;  // surrogate
      return cont(1) && cont(2) ? 3 : 0;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
      unsigned b1 = byte(1);
      if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
      if (b0 == 0xF4 && b1 >= 0x90) return 0;  // past U+10FFFF
      return cont(1) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  }

  bool ParseString(std::string& out) {
    ++pos_;  // '"'
    for (;;) {
      if (AtEnd()) return Fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail("control character in a string (escape it)");
      if (c == '\\') {
        ++pos_;
        if (AtEnd()) return Fail("unterminated string");
        char e = text_[pos_++];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out += e;
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            uint32_t cp = 0;
            if (!Hex4(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (text_.substr(pos_, 2) != "\\u") return Fail("high surrogate without its pair");
              pos_ += 2;
              uint32_t low = 0;
              if (!Hex4(low)) return false;
              if (low < 0xDC00 || low > 0xDFFF) return Fail("high surrogate without its pair");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            AppendUtf8(out, cp);
            break;
          }
          default:
            --pos_;
            return Fail("invalid escape \\" + Describe());
        }
        continue;
      }
      if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      size_t n = Utf8Length();
      if (n == 0) return Fail("invalid UTF-8 in a string");
      out.append(text_.substr(pos_, n));
      pos_ += n;
    }
  }

  std::string_view text_;
  int max_depth_;
  size_t pos_ = 0;
  std::string error_;
  size_t error_pos_ = 0;
};

}  // namespace

Result<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return InvalidArgument("document of " + std::to_string(text.size()) + " bytes, over the " +
                           std::to_string(limits.max_bytes) + "-byte limit");
  }
  return Parser(text, limits.max_depth).ParseDocument();
}

}  // namespace suanli::agent
