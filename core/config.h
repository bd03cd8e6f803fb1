// Configuration reading helpers on top of yaml-cpp. Every error names the file, the line and
// the key ("agent.yml:7: remote_write[0].url: expected a string"), so `--config.check` can print
// something a person can fix. Unknown keys are errors (a typo must not silently keep a default).
// Thread-safety: ConfigMap is a short-lived value used by one thread while loading.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace suanli {

// Parses a Prometheus-style duration: "500ms", "15s", "1m30s", "2h", "7d", "1w", "1y".
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// Formats a duration the same way (largest units first: 90000ms -> "1m30s").
std::string FormatDuration(std::chrono::milliseconds d);

// A YAML mapping being read. Reading a key marks it as known; Finish() reports the rest.
class ConfigMap {
 public:
  // `file` names the source in messages ("<embedded default>" for built-in configs);
  // `path` is the key path of this map ("" at the root, "remote_write[0]" below).
  ConfigMap(std::string file, YAML::Node node, std::string path);

  // Parses text (a file's contents) into a root map. A YAML syntax error gives file:line:col.
  static Result<ConfigMap> Parse(const std::string& file, const std::string& text);
  // Reads and parses a file; a missing or unreadable file is an error naming the path.
  static Result<ConfigMap> Load(const std::string& path);

  bool Has(std::string_view key) const;

  // Each Get leaves *out unchanged when the key is absent (so defaults stay) and returns an
  // error naming file, line and key for a wrong type or value.
  Status Get(std::string_view key, std::string* out);
  Status Get(std::string_view key, bool* out);
  Status Get(std::string_view key, int64_t* out);
  Status Get(std::string_view key, double* out);
  Status Get(std::string_view key, std::chrono::milliseconds* out);  // a duration string
  Status Get(std::string_view key, std::vector<std::string>* out);
  Status Get(std::string_view key, std::map<std::string, std::string>* out);

  // A nested mapping (absent: an empty map) or a list of mappings (absent: empty).
  Result<ConfigMap> Map(std::string_view key);
  Result<std::vector<ConfigMap>> List(std::string_view key);

  // Error for every key present in this map and never read.
  Status Finish() const;

  // An error located at `key` of this map (or at the map itself when key is empty).
  Status Error(std::string_view key, std::string_view message) const;

  const std::string& file() const { return file_; }
  // Keys present in this map, in file order.
  std::vector<std::string> Keys() const;

 private:
  YAML::Node Lookup(std::string_view key);
  std::string KeyPath(std::string_view key) const;
  int LineOf(const YAML::Node& node) const;

  std::string file_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace suanli
