// Checked-in hex fixtures of the storage byte formats (aggregator/storage/README.md): read,
// compare, and rewrite on a deliberate format change with SUANLI_WRITE_FIXTURES=1.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/sample.h"

namespace suanli::storage {

inline std::string FixturePath(const std::string& name) {
  return std::string(SUANLI_SOURCE_DIR) + "/tests/unit/aggregator/storage/fixtures/" + name;
}

inline std::string ToHex(const std::string& bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    unsigned char c = bytes[i];
    out += kHex[c >> 4];
    out += kHex[c & 15];
    out += (i % 32 == 31) ? '\n' : ' ';
  }
  if (!out.empty() && out.back() == ' ') out.back() = '\n';
  return out;
}

inline std::string FromHex(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string byte;
  while (in >> byte) out.push_back(static_cast<char>(std::stoi(byte, nullptr, 16)));
  return out;
}

// Compares `bytes` with the fixture file (or writes it when asked to).
inline void CheckFixture(const std::string& name, const std::string& bytes) {
  if (std::getenv("SUANLI_WRITE_FIXTURES") != nullptr) {
    std::ofstream(FixturePath(name)) << ToHex(bytes);
  }
  std::ifstream f(FixturePath(name));
  ASSERT_TRUE(f.good()) << "missing fixture " << name;
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(ToHex(FromHex(text.str())), ToHex(bytes))
      << "the byte format of " << name << " changed; see README.md";
}

// The bytes of a fixture file.
inline std::string ReadFixture(const std::string& name) {
  std::ifstream f(FixturePath(name));
  std::stringstream text;
  text << f.rdbuf();
  return FromHex(text.str());
}

// The samples every format fixture encodes: a 15 s scrape with jitter, a counter with a
// reset, NaN and a stale marker.
inline std::vector<Sample> FixtureSamples() {
  std::vector<Sample> s;
  double v = 100;
  for (int i = 0; i < 12; ++i) {
    int64_t ts = 1'700'000'000'000 + 7'000 + i * 15'000 + (i == 5 ? 3 : 0);
    v = i == 8 ? 2 : v + 3.5 * (i % 3);
    s.push_back({ts, v});
  }
  s[10].value = std::numeric_limits<double>::quiet_NaN();
  s[11].value = StaleNaN();
  return s;
}

}  // namespace suanli::storage
