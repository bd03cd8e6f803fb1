#include "core/scratch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace suanli {
namespace {

TEST(ScratchReleaserTest, KeepsScratchUpToTheBoundAndFreesBeyondIt) {
  std::vector<uint64_t> scratch;
  {
    ScratchReleaser release(scratch, 1024);
    scratch.resize(128);  // exactly 1024 bytes
  }
  EXPECT_EQ(scratch.size(), 128u);  // kept whole for the next request
  EXPECT_GE(scratch.capacity(), 128u);
  {
    ScratchReleaser release(scratch, 1024);
    scratch.resize(129);
  }
  EXPECT_EQ(scratch.capacity(), 0u);

  std::string text;
  {
    ScratchReleaser release(text, 100);
    text.assign(1000, 'x');
  }
  EXPECT_TRUE(text.empty());
  EXPECT_LE(text.capacity(), 15u);  // back to the inline buffer
}

}  // namespace
}  // namespace suanli
