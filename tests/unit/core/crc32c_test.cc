#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace suanli {
namespace {

TEST(Crc32cTest, KnownVectorAndIncremental) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  std::string data(1000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  uint32_t one = Crc32c(data);
  EXPECT_EQ(Crc32c(std::string_view(data).substr(13), Crc32c(std::string_view(data).substr(0, 13))),
            one);
}

// RFC 3720 (iSCSI) B.4's vectors and the check value, through both implementations.
TEST(Crc32cTest, KnownVectorsSoftwareAndHardware) {
  std::string zeros(32, '\0'), ones(32, '\xff'), up(32, '\0'), down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<char>(i);
    down[i] = static_cast<char>(31 - i);
  }
  const std::vector<std::pair<std::string, uint32_t>> vectors = {
      {"123456789", 0xE3069283u}, {zeros, 0x8A9136AAu}, {ones, 0x62A8AB43u},
      {up, 0x46DD794Eu},          {down, 0x113FDB5Cu},  {"", 0u}};
  for (const auto& [data, want] : vectors) {
    EXPECT_EQ(Crc32cSoftware(data), want) << data.size();
    if (HaveHardwareCrc32c()) {
      EXPECT_EQ(Crc32cHardware(data), want) << data.size();
    }
  }
#if defined(__x86_64__)
  // Every x86-64 this runs on (SSE4.2 since 2008); a false here would silently test nothing.
  EXPECT_TRUE(HaveHardwareCrc32c());
#endif
}

// The two agree on every length and alignment, whole and continued from a prefix.
TEST(Crc32cTest, HardwareMatchesSoftware) {
  if (!HaveHardwareCrc32c()) GTEST_SKIP() << "no hardware CRC32C on this CPU";
  std::string data(4096 + 64, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15},
                       size_t{40}, size_t{63}, size_t{1000}, size_t{4096}}) {
      std::string_view v = std::string_view(data).substr(offset, len);
      EXPECT_EQ(Crc32cHardware(v), Crc32cSoftware(v)) << offset << " " << len;
      EXPECT_EQ(Crc32cHardware(v.substr(len / 3), Crc32cHardware(v.substr(0, len / 3))),
                Crc32cSoftware(v))
          << offset << " " << len;
      EXPECT_EQ(Crc32cHardware(v, 0x12345678u), Crc32cSoftware(v, 0x12345678u));
    }
  }
}

}  // namespace
}  // namespace suanli
