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
  Status Validate() const;  // ValidateLabels(items())

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

namespace labels_internal {
Status CheckMetricName(std::string_view metric);
// One label of a series named `metric`; previous: the name of the label before it, if any.
Status CheckLabel(std::string_view metric, std::string_view name, std::string_view value,
                  const std::string_view* previous);
}  // namespace labels_internal

// Labels::Validate's rules for a label set held elsewhere (e.g. views into a decoded
// request), sorted by name: a range of items with .name and .value.
template <typename Range>
Status ValidateLabels(const Range& labels) {
  std::string_view metric;
  for (const auto& l : labels) {
    if (std::string_view(l.name) == "__name__") {
      metric = l.value;
      break;
    }
  }
  RETURN_IF_ERROR(labels_internal::CheckMetricName(metric));
  std::string_view previous;
  bool first = true;
  for (const auto& l : labels) {
    RETURN_IF_ERROR(
        labels_internal::CheckLabel(metric, l.name, l.value, first ? nullptr : &previous));
    previous = l.name;
    first = false;
  }
  return Status::Ok();
}

}  // namespace suanli
