#include "agent/collectors/network/device_filter.h"

namespace suanli::agent {

Result<std::shared_ptr<const std::regex>> CompileDevicePattern(const std::string& pattern) {
  try {
    return std::shared_ptr<const std::regex>(
        std::make_shared<const std::regex>(pattern, std::regex::ECMAScript));
  } catch (const std::regex_error& e) {
    return InvalidArgument("invalid regular expression \"" + pattern + "\": " + e.what());
  }
}

Result<DeviceFilter> DeviceFilter::Make(const std::string& include, const std::string& exclude) {
  if (!include.empty() && !exclude.empty()) {
    return InvalidArgument("an include and an exclude pattern are mutually exclusive");
  }
  DeviceFilter f;
  if (!include.empty()) {
    ASSIGN_OR_RETURN(f.include_, CompileDevicePattern(include));
  }
  if (!exclude.empty()) {
    ASSIGN_OR_RETURN(f.exclude_, CompileDevicePattern(exclude));
  }
  return f;
}

Result<DeviceFilter> DeviceFilter::FromOptions(ConfigMap& options) {
  std::string include, exclude;
  RETURN_IF_ERROR(options.Get(kIncludeKey, &include));
  RETURN_IF_ERROR(options.Get(kExcludeKey, &exclude));
  if (!include.empty() && !exclude.empty()) {
    return options.Error(
        kExcludeKey, std::string("mutually exclusive with ") + kIncludeKey + " (set one of them)");
  }
  DeviceFilter f;
  if (!include.empty()) {
    auto re = CompileDevicePattern(include);
    if (!re.ok()) return options.Error(kIncludeKey, re.status().message());
    f.include_ = std::move(re).value();
  }
  if (!exclude.empty()) {
    auto re = CompileDevicePattern(exclude);
    if (!re.ok()) return options.Error(kExcludeKey, re.status().message());
    f.exclude_ = std::move(re).value();
  }
  return f;
}

bool DeviceFilter::Accepts(std::string_view name) const {
  if (exclude_ && std::regex_search(name.begin(), name.end(), *exclude_)) return false;
  if (include_ && !std::regex_search(name.begin(), name.end(), *include_)) return false;
  return true;
}

}  // namespace suanli::agent
