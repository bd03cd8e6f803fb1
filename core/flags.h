// Command-line flags in the Prometheus style: `--name=value` or `--name value`, booleans as
// `--name` / `--no-name`, repeatable flags, and prefix families such as `--collector.NAME` /
// `--no-collector.NAME`. Every flag mirrors a configuration key; flags given win over the file.
// Thread-safety: used once at start-up by one thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace suanli {

class FlagSet {
 public:
  explicit FlagSet(std::string program) : program_(std::move(program)) {}

  void AddString(const std::string& name, const std::string& help, const std::string& def = "");
  void AddBool(const std::string& name, const std::string& help);
  void AddRepeated(const std::string& name, const std::string& help);
  // `--PREFIXNAME` / `--no-PREFIXNAME` for any NAME in `names`.
  void AddBoolFamily(const std::string& prefix, const std::vector<std::string>& names,
                     const std::string& help);

  // Unknown flags, missing values and positional arguments are errors naming the flag.
  Status Parse(int argc, const char* const* argv);

  bool IsSet(const std::string& name) const;
  // The value given, else the default.
  std::string Get(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  // For a bool family: NAME -> true/false for each one given on the command line.
  std::map<std::string, bool> GetFamily(const std::string& prefix) const;

  std::string Help() const;

 private:
  enum class Kind { kString, kBool, kRepeated };
  struct Flag {
    Kind kind;
    std::string help;
    std::string def;
    std::vector<std::string> values;
  };
  struct Family {
    std::vector<std::string> names;
    std::string help;
    std::map<std::string, bool> given;
  };
  std::string program_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

}  // namespace suanli
