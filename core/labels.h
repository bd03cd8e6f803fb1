// Labels: a series' identity, a label set sorted by name (Prometheus semantics: `__name__` is
// the metric name; an empty value is the same as an absent label).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace suanli {

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
  auto operator<=>(const Label&) const = default;
};

class Labels {
 public:
  Labels() = default;
  // Sorts by name; duplicates are kept (Validate() reports them).
  explicit Labels(std::vector<Label> labels);
  Labels(std::initializer_list<Label> labels);

  const std::vector<Label>& items() const { return labels_; }
  size_t size() const { return labels_.size(); }
  bool empty() const { return labels_.empty(); }

  // Value of `name`, or an empty view when absent.
  std::string_view Get(std::string_view name) const;
  std::string_view MetricName() const { return Get("__name__"); }

  // Sets or replaces `name` (keeps the order sorted).
  void Set(std::string_view name, std::string_view value);

  // Checks the remote_write rules: a metric name, no empty or duplicate label names, valid
  // label-name characters. The message names the offending label.
  Status Validate() const;

  // Stable 64-bit hash of the label set (FNV-1a over name\xffvalue\xff...).
  uint64_t Hash() const;

  // Prometheus text form: name{a="b",c="d"}.
  std::string ToString() const;

  bool operator==(const Labels&) const = default;
  auto operator<=>(const Labels&) const = default;

 private:
  std::vector<Label> labels_;
};

// True when `name` matches [a-zA-Z_][a-zA-Z0-9_]*.
bool IsValidLabelName(std::string_view name);
// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view s);
// True when `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(std::string_view name);

}  // namespace suanli
