// The Store interface's helpers that do not depend on the implementation: matcher compilation
// and evaluation, and the canonical form of a label set.
#include "aggregator/storage/store.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace suanli::storage {
namespace {

// Linear-memory NFA mode: libstdc++'s default backtracking executor recurses once per input
// character and overflows the stack on label values of some tens of kilobytes.
#if defined(__GLIBCXX__)
constexpr auto kRegexFlags = std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
constexpr auto kRegexFlags = std::regex::ECMAScript;
#endif

bool IsRegexMeta(char c) {
  return c != '\0' && std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos;
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// libstdc++ compiles and matches recursively: its stack use grows with the pattern's length and
// nesting. Within these limits a pattern needs well under 512 KiB of stack.
constexpr size_t kMaxRegexBytes = 8192;
constexpr int kMaxRegexNesting = 128;

int NestingDepth(std::string_view pattern) {
  int depth = 0, max_depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
    } else if (pattern[i] == '(') {
      max_depth = std::max(max_depth, ++depth);
    } else if (pattern[i] == ')') {
      --depth;
    }
  }
  return max_depth;
}

// If `pattern` is an alternation of literals (escaped punctuation such as "\." allowed), maybe
// wrapped in one group as Grafana writes multi-value variables ("(a|b)"), returns the literals;
// else nullopt, and the pattern goes to the regex engine.
std::optional<std::vector<std::string>> LiteralAlternatives(std::string_view pattern) {
  for (std::string_view open : {"(?:", "("}) {
    if (pattern.size() > open.size() && pattern.starts_with(open) && pattern.ends_with(')') &&
        !pattern.ends_with("\\)")) {
      pattern = pattern.substr(open.size(), pattern.size() - open.size() - 1);
      break;
    }
  }
  std::vector<std::string> out(1);
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '|') {
      out.emplace_back();
    } else if (c == '\\') {
      // "\d", "\w", "\1" ... are classes or references: not literals.
      if (i + 1 >= pattern.size() || IsAsciiAlnum(pattern[i + 1])) return std::nullopt;
      out.back() += pattern[++i];
    } else if (IsRegexMeta(c)) {
      return std::nullopt;
    } else {
      out.back() += c;
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

struct LabelMatcher::Pattern {
  std::vector<std::string> literals;  // sorted; used when `regex` is empty
  std::optional<std::regex> regex;

  bool Matches(std::string_view v) const {
    if (!regex) return std::binary_search(literals.begin(), literals.end(), v);
    // regex_match is anchored at both ends: the whole value must match.
    return std::regex_match(v.begin(), v.end(), *regex);
  }
};

Result<LabelMatcher> LabelMatcher::Compile(const MatcherSpec& spec) {
  LabelMatcher m;
  m.spec_ = spec;
  if (spec.type == MatcherSpec::kRegex || spec.type == MatcherSpec::kNotRegex) {
    auto pattern = std::make_shared<Pattern>();
    if (auto literals = LiteralAlternatives(spec.value)) {
      pattern->literals = std::move(*literals);
    } else if (spec.value.size() > kMaxRegexBytes || NestingDepth(spec.value) > kMaxRegexNesting) {
      return InvalidArgument(
          "regex for label " + spec.name + " is longer than " + std::to_string(kMaxRegexBytes) +
          " bytes or nests groups deeper than " + std::to_string(kMaxRegexNesting));
    } else {
      try {
        pattern->regex.emplace(spec.value, kRegexFlags);
      } catch (const std::regex_error& e) {
        return InvalidArgument("invalid regex for label " + spec.name + ": \"" + spec.value +
                               "\": " + e.what());
      }
    }
    m.pattern_ = std::move(pattern);
  } else if (spec.type != MatcherSpec::kEqual && spec.type != MatcherSpec::kNotEqual) {
    return InvalidArgument("unknown matcher type for label " + spec.name);
  }
  return m;
}

bool LabelMatcher::Matches(std::string_view value) const {
  switch (spec_.type) {
    case MatcherSpec::kEqual:
      return value == spec_.value;
    case MatcherSpec::kNotEqual:
      return value != spec_.value;
    case MatcherSpec::kRegex:
      return pattern_->Matches(value);
    case MatcherSpec::kNotRegex:
      return !pattern_->Matches(value);
  }
  return false;
}

Result<std::vector<LabelMatcher>> CompileMatchers(const std::vector<MatcherSpec>& specs) {
  std::vector<LabelMatcher> out;
  out.reserve(specs.size());
  bool selective = false;
  for (const MatcherSpec& spec : specs) {
    ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Compile(spec));
    selective = selective || !m.Matches("");
    out.push_back(std::move(m));
  }
  // Without such a matcher the query would select every series in the store.
  if (!selective) {
    return InvalidArgument(
        "a selector needs at least one matcher that does not match the empty string "
        "(e.g. a non-empty equality such as __name__=\"...\")");
  }
  return out;
}

Labels CanonicalLabels(const Labels& labels) {
  std::vector<Label> kept;
  kept.reserve(labels.size());
  for (const Label& l : labels.items()) {
    if (!l.value.empty()) kept.push_back(l);
  }
  return Labels(std::move(kept));
}

}  // namespace suanli::storage
