#include "core/labels.h"

#include <algorithm>

namespace suanli {

Labels::Labels(std::vector<Label> labels) : labels_(std::move(labels)) {
  auto by_name = [](const Label& a, const Label& b) { return a.name < b.name; };
  // Senders almost always send sorted labels; checking first is cheaper than sorting.
  if (!std::is_sorted(labels_.begin(), labels_.end(), by_name)) {
    std::stable_sort(labels_.begin(), labels_.end(), by_name);
  }
}

Labels::Labels(std::initializer_list<Label> labels)
    : Labels(std::vector<Label>(labels.begin(), labels.end())) {}

std::string_view Labels::Get(std::string_view name) const {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != labels_.end() && it->name == name) return it->value;
  return {};
}

void Labels::Set(std::string_view name, std::string_view value) {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != labels_.end() && it->name == name) {
    it->value = std::string(value);
  } else {
    labels_.insert(it, Label{std::string(name), std::string(value)});
  }
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

namespace labels_internal {

Status CheckMetricName(std::string_view metric) {
  if (metric.empty()) return InvalidArgument("series has no metric name (__name__ label)");
  if (!IsValidMetricName(metric)) {
    return InvalidArgument("invalid metric name \"" + std::string(metric) + "\"");
  }
  return Status::Ok();
}

Status CheckLabel(std::string_view metric, std::string_view name, std::string_view value,
                  const std::string_view* previous) {
  auto error = [&](const std::string& what) {
    return InvalidArgument("series " + std::string(metric) + what);
  };
  if (name.empty()) return error(" has a label with an empty name");
  if (!IsValidLabelName(name) && name != "__name__") {
    return error(" has an invalid label name \"" + std::string(name) + "\"");
  }
  if (!IsValidUtf8(value)) {
    return error(" label \"" + std::string(name) + "\" has a value that is not valid UTF-8");
  }
  if (previous != nullptr && *previous == name) {
    return error(" has label \"" + std::string(name) + "\" twice");
  }
  return Status::Ok();
}

}  // namespace labels_internal

Status Labels::Validate() const { return ValidateLabels(labels_); }

uint64_t Labels::Hash() const {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  for (const Label& l : labels_) {
    mix(l.name);
    mix(l.value);
  }
  return h;
}

std::string Labels::ToString() const {
  std::string out(MetricName());
  out += '{';
  bool first = true;
  for (const Label& l : labels_) {
    if (l.name == "__name__") continue;
    if (!first) out += ',';
    first = false;
    out += l.name;
    out += "=\"";
    for (char c : l.value) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace suanli
