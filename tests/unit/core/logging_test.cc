#include "core/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace suanli {
namespace {

// Captures what spdlog writes to stderr (fd 2) while `fn` runs.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  fflush(stderr);
  char path[] = "/tmp/suanli-log-XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  spdlog::default_logger()->flush();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  close(fd);
  unlink(path);
  return out;
}

TEST(LoggingTest, LogfmtEscapesAndFiltersByLevel) {
  ASSERT_TRUE(ConfigureLogging("info", "logfmt").ok());
  std::string out = CaptureStderr([] {
    spdlog::debug("hidden");
    spdlog::warn("disk \"full\" path={}", "/var/lib/x");
  });
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_EQ(out.rfind("ts=", 0), 0u) << out;
  EXPECT_NE(out.find(R"(level=warn msg="disk \"full\" path=/var/lib/x")"), std::string::npos)
      << out;
}

TEST(LoggingTest, JsonLines) {
  ASSERT_TRUE(ConfigureLogging("debug", "json").ok());
  std::string out = CaptureStderr([] { spdlog::debug("a\tb"); });
  EXPECT_NE(out.find(R"("level":"debug","msg":"a\tb"})"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("{\"ts\":\"", 0), 0u) << out;
  ASSERT_TRUE(ConfigureLogging("info", "logfmt").ok());
}

TEST(LoggingTest, RejectsUnknownNames) {
  EXPECT_EQ(ConfigureLogging("verbose", "logfmt").message(),
            "--log.level: unknown level \"verbose\" (use debug, info, warn or error)");
  EXPECT_FALSE(ConfigureLogging("info", "xml").ok());
}

}  // namespace
}  // namespace suanli
