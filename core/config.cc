#include "core/config.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/file_util.h"

namespace suanli {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty duration");
  if (text == "0") return std::chrono::milliseconds(0);
  int64_t total_ms = 0;
  size_t i = 0;
  // Units must appear in decreasing order, each at most once (as Prometheus requires).
  int last_rank = 100;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) {
      return InvalidArgument("bad duration \"" + std::string(text) +
                             "\": expected a number, e.g. 15s, 1m30s, 500ms");
    }
    int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data() + start, text.data() + i, n);
    if (ec != std::errc()) return InvalidArgument("bad duration \"" + std::string(text) + "\"");
    size_t ustart = i;
    while (i < text.size() && !(text[i] >= '0' && text[i] <= '9')) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    int64_t mult;
    int rank;
    if (unit == "y") {
      mult = 365LL * 24 * 3600 * 1000;
      rank = 7;
    } else if (unit == "w") {
      mult = 7LL * 24 * 3600 * 1000;
      rank = 6;
    } else if (unit == "d") {
      mult = 24LL * 3600 * 1000;
      rank = 5;
    } else if (unit == "h") {
      mult = 3600LL * 1000;
      rank = 4;
    } else if (unit == "m") {
      mult = 60LL * 1000;
      rank = 3;
    } else if (unit == "s") {
      mult = 1000;
      rank = 2;
    } else if (unit == "ms") {
      mult = 1;
      rank = 1;
    } else {
      return InvalidArgument("bad duration \"" + std::string(text) + "\": unknown unit \"" +
                             std::string(unit) + "\" (use ms, s, m, h, d, w, y)");
    }
    if (rank >= last_rank) {
      return InvalidArgument("bad duration \"" + std::string(text) +
                             "\": units must go from largest to smallest");
    }
    last_rank = rank;
    if (n > INT64_MAX / mult || total_ms > INT64_MAX - n * mult) {
      return InvalidArgument("duration \"" + std::string(text) + "\" is too large");
    }
    total_ms += n * mult;
  }
  return std::chrono::milliseconds(total_ms);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const std::pair<int64_t, const char*> units[] = {
      {3600LL * 1000, "h"}, {60LL * 1000, "m"}, {1000, "s"}, {1, "ms"}};
  for (auto [mult, name] : units) {
    if (ms >= mult) {
      out += std::to_string(ms / mult) + name;
      ms %= mult;
    }
  }
  return out;
}

ConfigMap::ConfigMap(std::string file, YAML::Node node, std::string path)
    : file_(std::move(file)), node_(std::move(node)), path_(std::move(path)) {}

Result<ConfigMap> ConfigMap::Parse(const std::string& file, const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);  // empty file: all defaults
  if (!root.IsMap()) {
    return InvalidArgument(file + ":" + std::to_string(root.Mark().line + 1) +
                           ": the configuration must be a mapping of keys to values");
  }
  return ConfigMap(file, root, "");
}

Result<ConfigMap> ConfigMap::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return Parse(path, text);
}

int ConfigMap::LineOf(const YAML::Node& node) const {
  YAML::Mark m = node.Mark();
  return m.line >= 0 ? m.line + 1 : 0;
}

std::string ConfigMap::KeyPath(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return path_ + "." + std::string(key);
}

Status ConfigMap::Error(std::string_view key, std::string_view message) const {
  int line = 0;
  if (!key.empty() && node_.IsMap()) {
    // Prefer the line of the key itself.
    for (const auto& kv : node_) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) {
        line = LineOf(kv.first);
        break;
      }
    }
  }
  if (line == 0) line = LineOf(node_);
  std::string where = file_;
  if (line > 0) where += ":" + std::to_string(line);
  std::string k = KeyPath(key);
  return InvalidArgument(where + ": " + (k.empty() ? "" : k + ": ") + std::string(message));
}

bool ConfigMap::Has(std::string_view key) const {
  if (!node_.IsMap()) return false;
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return true;
  }
  return false;
}

YAML::Node ConfigMap::Lookup(std::string_view key) {
  read_.insert(std::string(key));
  if (!node_.IsMap()) return YAML::Node();
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node();
}

Status ConfigMap::Get(std::string_view key, std::string* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsScalar()) return Error(key, "expected a string");
  *out = n.Scalar();
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, bool* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  if (s == "true") {
    *out = true;
  } else if (s == "false") {
    *out = false;
  } else {
    return Error(key, "expected true or false, got \"" + s + "\"");
  }
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, int64_t* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsScalar()) return Error(key, "expected an integer");
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return Error(key, "expected an integer, got \"" + s + "\"");
  }
  *out = v;
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, double* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsScalar()) return Error(key, "expected a number");
  const std::string& s = n.Scalar();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
    return Error(key, "expected a number, got \"" + s + "\"");
  }
  *out = v;
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, std::chrono::milliseconds* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsScalar()) return Error(key, "expected a duration such as 15s or 1m30s");
  auto d = ParseDuration(n.Scalar());
  if (!d.ok()) return Error(key, d.status().message());
  *out = *d;
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, std::vector<std::string>* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsSequence()) return Error(key, "expected a list of strings");
  std::vector<std::string> v;
  for (const auto& item : n) {
    if (!item.IsScalar()) return Error(key, "expected a list of strings");
    v.push_back(item.Scalar());
  }
  *out = std::move(v);
  return Status::Ok();
}

Status ConfigMap::Get(std::string_view key, std::map<std::string, std::string>* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  if (!n.IsMap()) return Error(key, "expected a mapping of names to strings");
  std::map<std::string, std::string> v;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      return Error(key, "expected a mapping of names to strings");
    }
    v[kv.first.Scalar()] = kv.second.Scalar();
  }
  *out = std::move(v);
  return Status::Ok();
}

Result<ConfigMap> ConfigMap::Map(std::string_view key) {
  YAML::Node n = Lookup(key);
  std::string path = KeyPath(key);
  if (!n.IsDefined() || n.IsNull()) {
    return ConfigMap(file_, YAML::Node(YAML::NodeType::Map), path);
  }
  if (!n.IsMap()) return Error(key, "expected a mapping");
  return ConfigMap(file_, n, path);
}

Result<std::vector<ConfigMap>> ConfigMap::List(std::string_view key) {
  YAML::Node n = Lookup(key);
  std::vector<ConfigMap> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence()) return Error(key, "expected a list");
  size_t i = 0;
  for (const auto& item : n) {
    std::string path = KeyPath(key) + "[" + std::to_string(i++) + "]";
    if (!item.IsMap()) {
      return InvalidArgument(file_ + ":" + std::to_string(LineOf(item)) + ": " + path +
                             ": expected a mapping");
    }
    out.emplace_back(file_, item, path);
  }
  return out;
}

std::vector<std::string> ConfigMap::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsMap()) return keys;
  for (const auto& kv : node_) {
    if (kv.first.IsScalar()) keys.push_back(kv.first.Scalar());
  }
  return keys;
}

Status ConfigMap::Finish() const {
  if (!node_.IsMap()) return Status::Ok();
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (read_.find(k) == read_.end()) {
      return InvalidArgument(file_ + ":" + std::to_string(LineOf(kv.first)) + ": " + KeyPath(k) +
                             ": unknown key");
    }
  }
  return Status::Ok();
}

}  // namespace suanli
