// DeviceFilter: which network devices the netdev and netclass collectors export, as
// node_exporter's device filters (collector/device_filter.go): an include pattern or an exclude
// pattern, never both. Like node_exporter, a pattern matches anywhere in the name (a search, not
// anchored: "eth0" also matches "veth0a"); write "^eth0$" for exactly eth0. Patterns are
// ECMAScript regular expressions (std::regex); the ones node_exporter's documentation and
// deployments use ("^(veth.*|cali.*|[a-f0-9]{15})$") mean the same in Go's RE2 syntax. RE2's
// inline flags ("(?i)") are not supported and are reported as errors.
//
// Configuration: `device_include` and `device_exclude` in the collector's section of
// collector_config (both set is an error naming the file, line and key).
// Thread-safety: immutable after construction; Accepts() may be called from any thread.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/status.h"

namespace suanli::agent {

class DeviceFilter {
 public:
  // Accepts every device.
  DeviceFilter() = default;

  // From the patterns themselves; an empty pattern is unset. Errors say which pattern is wrong
  // and why, without a location (the caller adds the key or the flag).
  static Result<DeviceFilter> Make(const std::string& include, const std::string& exclude);
  // From a collector's options: `device_include`, `device_exclude`.
  static Result<DeviceFilter> FromOptions(ConfigMap& options);

  // Whether a device of this name is exported.
  bool Accepts(std::string_view name) const;
  // True when a pattern is set.
  bool active() const { return include_ != nullptr || exclude_ != nullptr; }
  bool include_set() const { return include_ != nullptr; }

  static constexpr const char* kIncludeKey = "device_include";
  static constexpr const char* kExcludeKey = "device_exclude";

 private:
  // Shared: a collector and the checks of --config.check copy filters freely.
  std::shared_ptr<const std::regex> include_, exclude_;
};

// Compiles one pattern as DeviceFilter does; the error text says what is wrong with it.
Result<std::shared_ptr<const std::regex>> CompileDevicePattern(const std::string& pattern);

}  // namespace suanli::agent
