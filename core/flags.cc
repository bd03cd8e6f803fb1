#include "core/flags.h"

#include <algorithm>

namespace suanli {

void FlagSet::AddString(const std::string& name, const std::string& help, const std::string& def) {
  flags_[name] = Flag{Kind::kString, help, def, {}};
  order_.push_back(name);
}

void FlagSet::AddBool(const std::string& name, const std::string& help) {
  flags_[name] = Flag{Kind::kBool, help, "false", {}};
  order_.push_back(name);
}

void FlagSet::AddRepeated(const std::string& name, const std::string& help) {
  flags_[name] = Flag{Kind::kRepeated, help, "", {}};
  order_.push_back(name);
}

void FlagSet::AddBoolFamily(const std::string& prefix, const std::vector<std::string>& names,
                            const std::string& help) {
  families_[prefix] = Family{names, help, {}};
}

Status FlagSet::Parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      return InvalidArgument("unexpected argument \"" + arg + "\" (flags start with --)");
    }
    std::string body = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    // Bool families: --collector.cpu / --no-collector.cpu.
    bool negated = body.rfind("no-", 0) == 0;
    std::string plain = negated ? body.substr(3) : body;
    bool matched_family = false;
    for (auto& [prefix, fam] : families_) {
      if (plain.rfind(prefix, 0) == 0) {
        std::string name = plain.substr(prefix.size());
        if (std::find(fam.names.begin(), fam.names.end(), name) == fam.names.end()) {
          std::string known;
          for (const auto& n : fam.names) known += (known.empty() ? "" : ", ") + n;
          return InvalidArgument("unknown flag --" + body + " (known " + prefix + "NAME: " + known +
                                 ")");
        }
        bool on = !negated;
        if (value) {
          if (*value == "true") {
            on = !negated;
          } else if (*value == "false") {
            on = negated;
          } else {
            return InvalidArgument("flag --" + body + " takes true or false");
          }
        }
        fam.given[name] = on;
        matched_family = true;
        break;
      }
    }
    if (matched_family) continue;

    auto it = flags_.find(body);
    if (it == flags_.end() && negated) {
      auto neg = flags_.find(plain);
      if (neg != flags_.end() && neg->second.kind == Kind::kBool) {
        neg->second.values = {"false"};
        continue;
      }
    }
    if (it == flags_.end()) return InvalidArgument("unknown flag --" + body + " (see --help)");
    Flag& f = it->second;
    if (f.kind == Kind::kBool) {
      std::string v = value.value_or("true");
      if (v != "true" && v != "false") {
        return InvalidArgument("flag --" + body + " takes true or false, got \"" + v + "\"");
      }
      f.values = {v};
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return InvalidArgument("flag --" + body + " needs a value");
      value = argv[++i];
    }
    if (f.kind == Kind::kString) {
      f.values = {*value};
    } else {
      f.values.push_back(*value);
    }
  }
  return Status::Ok();
}

bool FlagSet::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && !it->second.values.empty();
}

std::string FlagSet::Get(const std::string& name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return "";
  return it->second.values.empty() ? it->second.def : it->second.values.back();
}

bool FlagSet::GetBool(const std::string& name) const { return Get(name) == "true"; }

std::vector<std::string> FlagSet::GetAll(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? std::vector<std::string>{} : it->second.values;
}

std::map<std::string, bool> FlagSet::GetFamily(const std::string& prefix) const {
  auto it = families_.find(prefix);
  return it == families_.end() ? std::map<std::string, bool>{} : it->second.given;
}

std::string FlagSet::Help() const {
  std::string out = "usage: " + program_ + " [flags]\n\nFlags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = "  --" + name;
    if (f.kind == Kind::kString) left += "=VALUE";
    if (f.kind == Kind::kRepeated) left += "=VALUE (repeatable)";
    if (f.kind == Kind::kBool) left = "  --[no-]" + name;
    out += left;
    out += std::string(left.size() < 40 ? 40 - left.size() : 1, ' ');
    out += f.help;
    if (f.kind == Kind::kString && !f.def.empty()) out += " (default: " + f.def + ")";
    out += "\n";
  }
  for (const auto& [prefix, fam] : families_) {
    out += "  --[no-]" + prefix + "NAME" +
           std::string(40 > 12 + prefix.size() ? 40 - 12 - prefix.size() : 1, ' ') + fam.help +
           "\n      NAME: ";
    for (size_t i = 0; i < fam.names.size(); ++i) out += (i ? ", " : "") + fam.names[i];
    out += "\n";
  }
  return out;
}

}  // namespace suanli
