// Test support for collector tests (header-only):
//  - FixturePath(): a file of the fixture trees (tests/fixtures/README.md), and
//    SUANLI_CONFORMANCE_TEST / OnUpstreamTrees, which run a check on the project's trimmed
//    copies and again on the upstream trees they were cut from, where those are;
//  - ExpectedMetrics: a Prometheus text-format file (what node_exporter printed for a fixture
//    tree) parsed into families (HELP, TYPE) and series keyed by their label set;
//  - SweepMatches(): compares what a collector put in a Sweep with it, both ways: every emitted
//    series must be in the file with the same value (relative tolerance), type and help, and
//    every series the file has for a covered family must have been emitted;
//  - TempTree: a scratch directory for hand-made /proc and /sys trees (malformed, truncated,
//    missing files), removed at the end of the test.
// Label sets are compared as Prometheus does: sorted, and an empty value is an absent label.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collector.h"

namespace suanli::agent::testing {

// The root FixturePath() resolves against: the project's trimmed copies in tests/fixtures
// (SUANLI_TEST_FIXTURES_DIR; the environment variable of that name overrides it, which
// tests/fixtures/update.py --record uses), or the upstream trees while an UpstreamFixtures lives.
inline std::string& FixtureRoot() {
  static std::string root = [] {
    const char* env = std::getenv("SUANLI_TEST_FIXTURES_DIR");
    return std::string(env != nullptr && *env != '\0' ? env : SUANLI_TEST_FIXTURES_DIR);
  }();
  return root;
}

// A file of the fixture trees, by its path in them ("node_exporter/proc", "kepler/...").
inline std::string FixturePath(std::string_view relative) {
  return FixtureRoot() + "/" + std::string(relative);
}

// The upstream trees (node_exporter's, procfs', kepler's fixtures and DMTF's mockups, whole):
// $SUANLI_NODE_EXPORTER_FIXTURES, else the ../shared/fixtures beside the checkout as configured.
inline std::string UpstreamFixturesDir() {
  const char* env = std::getenv("SUANLI_NODE_EXPORTER_FIXTURES");
  return env != nullptr && *env != '\0' ? env : SUANLI_UPSTREAM_FIXTURES_DIR;
}

// While it lives, FixturePath() resolves in the upstream trees, if they are there (found()).
class UpstreamFixtures {
 public:
  UpstreamFixtures() : dir_(UpstreamFixturesDir()), saved_(FixtureRoot()) {
    std::error_code ec;
    found_ = std::filesystem::is_directory(dir_ + "/node_exporter", ec);
    if (found_) FixtureRoot() = dir_;
  }
  ~UpstreamFixtures() { FixtureRoot() = saved_; }
  UpstreamFixtures(const UpstreamFixtures&) = delete;
  UpstreamFixtures& operator=(const UpstreamFixtures&) = delete;

  bool found() const { return found_; }
  std::string SkipMessage() const {
    return "no upstream fixture trees at " + dir_ +
           " (this check also runs on the trimmed copies in tests/fixtures); to run it on the "
           "full trees, set SUANLI_NODE_EXPORTER_FIXTURES to a directory holding node_exporter/, "
           "procfs/, kepler/ and redfish/ as tests/fixtures/README.md describes";
  }

 private:
  std::string dir_;
  std::string saved_;
  bool found_ = false;
};

// A test fixture class run on the upstream trees: Base's SetUp and the test body resolve
// FixturePath() there; skipped, with UpstreamFixtures::SkipMessage(), when they are absent.
template <class Base>
class OnUpstreamTrees : public Base {
 protected:
  void SetUp() override {
    if (!upstream_.found()) GTEST_SKIP() << upstream_.SkipMessage();
    Base::SetUp();
  }

 private:
  UpstreamFixtures upstream_;
};

}  // namespace suanli::agent::testing

// SUANLI_CONFORMANCE_TEST(Suite, Name) { body }: a check of our output against what the
// upstream projects' fixtures say, run twice: Suite.Name on the project's trimmed copies
// (always), and SuiteOnUpstreamTrees.Name on the full upstream trees (skipped when absent).
#define SUANLI_CONFORMANCE_TEST(suite, name)                       \
  void suite##_##name##_Body();                                    \
  TEST(suite, name) { suite##_##name##_Body(); }                   \
  TEST(suite##OnUpstreamTrees, name) {                             \
    ::suanli::agent::testing::UpstreamFixtures upstream;           \
    if (!upstream.found()) GTEST_SKIP() << upstream.SkipMessage(); \
    suite##_##name##_Body();                                       \
  }                                                                \
  void suite##_##name##_Body()

namespace suanli::agent::testing {

// name{a="b",c="d"} with labels sorted, empty values and `ignored` labels left out.
inline std::string SeriesKey(std::string_view name, std::vector<Label> labels,
                             const std::set<std::string>& ignored) {
  std::sort(labels.begin(), labels.end());
  std::string key(name);
  key += '{';
  bool first = true;
  for (const Label& l : labels) {
    if (l.value.empty() || ignored.count(l.name)) continue;
    if (!first) key += ',';
    first = false;
    key += l.name + "=\"";
    for (char c : l.value) {
      if (c == '"' || c == '\\') key += '\\';
      if (c == '\n') {
        key += "\\n";
        continue;
      }
      key += c;
    }
    key += '"';
  }
  key += '}';
  return key;
}

inline const char* TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kInfo:
      return "info";
    case MetricType::kStateset:
      return "stateset";
    case MetricType::kGaugeHistogram:
      return "gaugehistogram";
    case MetricType::kUnknown:
      return "untyped";
  }
  return "untyped";
}

struct ExpectedSeries {
  std::vector<Label> labels;  // as in the file, ignored labels included
  double value = 0;
};

struct ExpectedFamily {
  std::string help;
  std::string type;
  std::vector<ExpectedSeries> series;
};

class ExpectedMetrics {
 public:
  // Parses `path`; a line that does not parse fails the calling test. `ignored_labels` are
  // dropped from every series (node_exporter's `path` label points into its own checkout).
  static ExpectedMetrics Load(const std::string& path,
                              std::set<std::string> ignored_labels = {"path"}) {
    ExpectedMetrics m;
    m.ignored_ = std::move(ignored_labels);
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        std::string rest = line.substr(7);
        size_t sp = rest.find(' ');
        std::string name = rest.substr(0, sp);
        std::string text = sp == std::string::npos ? "" : rest.substr(sp + 1);
        if (line[2] == 'H') {
          m.families_[name].help = Unescape(text);
        } else {
          m.families_[name].type = text;
        }
        continue;
      }
      if (line[0] == '#') continue;
      std::string name;
      std::vector<Label> labels;
      double value = 0;
      if (!ParseSample(line, name, labels, value)) {
        ADD_FAILURE() << path << ":" << line_no << ": cannot parse \"" << line << "\"";
        continue;
      }
      m.families_[name].series.push_back({std::move(labels), value});
    }
    return m;
  }

  const std::map<std::string, ExpectedFamily>& families() const { return families_; }
  const std::set<std::string>& ignored_labels() const { return ignored_; }

 private:
  static std::string Unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
        out += s[i] == 'n' ? '\n' : s[i];
      } else {
        out += s[i];
      }
    }
    return out;
  }

  static bool ParseSample(const std::string& line, std::string& name, std::vector<Label>& labels,
                          double& value) {
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    name = line.substr(0, i);
    if (name.empty()) return false;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
        Label l;
        l.name = line.substr(i, eq - i);
        i = eq + 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            l.value += line[i] == 'n' ? '\n' : line[i];
          } else {
            l.value += line[i];
          }
          ++i;
        }
        if (i >= line.size()) return false;
        ++i;  // closing quote
        labels.push_back(std::move(l));
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return false;
      ++i;  // '}'
    }
    std::istringstream rest(line.substr(i));
    std::string v;
    if (!(rest >> v)) return false;
    if (v == "NaN") {
      value = std::nan("");
    } else if (v == "+Inf") {
      value = HUGE_VAL;
    } else if (v == "-Inf") {
      value = -HUGE_VAL;
    } else {
      char* end = nullptr;
      value = std::strtod(v.c_str(), &end);
      if (end != v.c_str() + v.size()) return false;
    }
    return true;
  }

  std::map<std::string, ExpectedFamily> families_;
  std::set<std::string> ignored_;
};

struct CompareOptions {
  // The families under test. Emitted families outside it are not compared; expected families
  // inside it must be emitted in full.
  std::function<bool(std::string_view family)> covers;
  // Series the collector emits that the expected file lacks on purpose (say, a device the
  // reference run filtered out). They are neither compared nor reported.
  std::function<bool(std::string_view family, const std::vector<Label>& labels)> not_in_expected;
  // Labels left out of the comparison on both sides, besides the file's own ignored labels.
  std::set<std::string> ignored_labels;
  double relative_tolerance = 1e-9;
};

// Options covering the families for which `covers` is true (the common case).
inline CompareOptions Covering(std::function<bool(std::string_view family)> covers) {
  CompareOptions o;
  o.covers = std::move(covers);
  return o;
}

inline bool Close(double a, double b, double rel) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (a == b) return true;
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

inline ::testing::AssertionResult SweepMatches(const Sweep& sweep, const ExpectedMetrics& expected,
                                               const CompareOptions& opt) {
  if (!opt.covers) return ::testing::AssertionFailure() << "CompareOptions::covers is required";
  std::set<std::string> ignored = expected.ignored_labels();
  ignored.insert(opt.ignored_labels.begin(), opt.ignored_labels.end());
  std::ostringstream problems;
  int compared = 0;
  std::map<std::string, std::set<std::string>> emitted;  // family -> keys
  for (const Family& f : sweep.families()) {
    if (!opt.covers(f.name)) continue;
    auto ef = expected.families().find(f.name);
    if (ef == expected.families().end()) {
      problems << "\n  family " << f.name << " is not in the expected output";
      continue;
    }
    if (ef->second.type != TypeName(f.type)) {
      problems << "\n  " << f.name << ": type " << TypeName(f.type) << ", want " << ef->second.type;
    }
    if (ef->second.help != f.help) {
      problems << "\n  " << f.name << ": help \"" << f.help << "\", want \"" << ef->second.help
               << "\"";
    }
    std::map<std::string, double> want;
    for (const ExpectedSeries& es : ef->second.series) {
      want[SeriesKey(f.name, es.labels, ignored)] = es.value;
    }
    for (const Point& p : f.points) {
      if (opt.not_in_expected && opt.not_in_expected(f.name, p.labels)) continue;
      std::string key = SeriesKey(f.name, p.labels, ignored);
      if (!emitted[f.name].insert(key).second) {
        problems << "\n  " << key << " emitted twice";
        continue;
      }
      auto it = want.find(key);
      if (it == want.end()) {
        problems << "\n  unexpected series " << key << " = " << p.value;
        continue;
      }
      ++compared;
      if (!Close(p.value, it->second, opt.relative_tolerance)) {
        problems << "\n  " << key << " = " << p.value << ", want " << it->second;
      }
    }
  }
  for (const auto& [name, family] : expected.families()) {
    if (!opt.covers(name)) continue;
    for (const ExpectedSeries& es : family.series) {
      std::string key = SeriesKey(name, es.labels, ignored);
      if (!emitted[name].count(key)) problems << "\n  missing series " << key << " = " << es.value;
    }
  }
  std::string p = problems.str();
  if (!p.empty()) return ::testing::AssertionFailure() << p;
  if (compared == 0) return ::testing::AssertionFailure() << "nothing was compared";
  return ::testing::AssertionSuccess() << compared << " series match";
}

// The families of `sweep` by name (for direct checks).
inline const Family* FindFamily(const Sweep& sweep, std::string_view name) {
  for (const Family& f : sweep.families()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The value of the series `name` with exactly `labels` (order-insensitive); NaN if absent.
inline double ValueOf(const Sweep& sweep, std::string_view name, std::vector<Label> labels = {}) {
  const Family* f = FindFamily(sweep, name);
  if (f == nullptr) return std::nan("");
  std::string want = SeriesKey(name, std::move(labels), {});
  for (const Point& p : f->points) {
    if (SeriesKey(name, p.labels, {}) == want) return p.value;
  }
  return std::nan("");
}

// Every series of `sweep` by SeriesKey (for comparing two sweeps).
inline std::map<std::string, double> SeriesValues(const Sweep& sweep) {
  std::map<std::string, double> out;
  for (const Family& f : sweep.families()) {
    for (const Point& p : f.points) out[SeriesKey(f.name, p.labels, {})] = p.value;
  }
  return out;
}

// A scratch directory, removed with everything in it when the TempTree goes away.
class TempTree {
 public:
  TempTree() {
    std::string tmpl = ::testing::TempDir() + "suanli_collector_XXXXXX";
    char* dir = ::mkdtemp(tmpl.data());
    EXPECT_NE(dir, nullptr) << "mkdtemp " << tmpl;
    root_ = tmpl;
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::string& root() const { return root_; }
  std::string Path(std::string_view relative) const { return root_ + "/" + std::string(relative); }

  // Writes `contents` to root/relative as a new file, creating parent directories. (A new
  // file, not O_TRUNC: truncating costs ~2 ms on ext4 mounted with discard, which made the
  // truncation tests crawl.)
  void Write(std::string_view relative, std::string_view contents) const {
    std::filesystem::path p = Path(relative);
    std::filesystem::create_directories(p.parent_path());
    std::error_code ec;
    std::filesystem::remove(p, ec);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    EXPECT_TRUE(out.good()) << "cannot write " << p;
  }
  void MakeDir(std::string_view relative) const {
    std::filesystem::create_directories(Path(relative));
  }
  void Symlink(std::string_view target, std::string_view relative) const {
    std::filesystem::path p = Path(relative);
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::create_directory_symlink(std::string(target), p);
  }

 private:
  std::string root_;
};

// Reads a whole file (tests only).
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace suanli::agent::testing
