// Tests for agent/collectors/proc_file.h. (It lives here because the collector test target
// takes tests/unit/agent/collectors/*/*_test.cc only.)
#include "agent/collectors/proc_file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using testing::TempTree;

TEST(ProcFileTest, ReadsFilesLargerThanItsBufferAndThenSmallerOnes) {
  TempTree tree;
  std::string big(300000, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = '\n';
  tree.Write("f", big);
  ProcFile f(tree.Path("f"), 64);
  ASSERT_TRUE(f.Read().ok());
  EXPECT_EQ(f.contents(), big);
  EXPECT_EQ(f.error_number(), 0);

  tree.Write("f", "short\n");
  ASSERT_TRUE(f.Read().ok());
  EXPECT_EQ(f.contents(), "short\n");
  tree.Write("f", "");
  ASSERT_TRUE(f.Read().ok());
  EXPECT_EQ(f.contents(), "");
}

TEST(ProcFileTest, ReadsRealProcFiles) {
  // /proc files report size 0 to stat(); only reading to EOF gets them whole.
  ProcFile f("/proc/self/status", 64);
  ASSERT_TRUE(f.Read().ok());
  EXPECT_NE(f.contents().find("\nPid:"), std::string_view::npos);
  EXPECT_EQ(f.contents().back(), '\n');
}

// Files the kernel generates whole at each read: a short read is the end, with any buffer.
TEST(ProcFileTest, ReadsWholeGeneratedFilesInOneRead) {
  for (const char* path : {"/proc/meminfo", "/proc/loadavg", "/proc/stat"}) {
    for (size_t hint : {size_t{64}, size_t{1 << 20}}) {
      ProcFile f(path, hint, ProcFile::Layout::kWhole);
      ASSERT_TRUE(f.Read().ok()) << path;
      ASSERT_TRUE(f.Read().ok()) << path;  // again, on the kept descriptor
      EXPECT_EQ(f.contents().back(), '\n') << path;
      std::string_view first_line = f.contents().substr(0, f.contents().find('\n'));
      EXPECT_FALSE(first_line.empty()) << path;
      // The last line is a whole line of the file, as a read to EOF would give it.
      ProcFile full(path, hint);
      ASSERT_TRUE(full.Read().ok());
      auto last_key = [](std::string_view s) {
        s.remove_suffix(1);
        s = s.substr(s.rfind('\n') + 1);
        return std::string(s.substr(0, s.find_first_of(" :")));
      };
      EXPECT_EQ(last_key(f.contents()), last_key(full.contents())) << path;
    }
  }
  TempTree tree;
  std::string big(300000, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = '\n';
  tree.Write("f", big);
  ProcFile f(tree.Path("f"), 64, ProcFile::Layout::kWhole);
  ASSERT_TRUE(f.Read().ok());
  EXPECT_EQ(f.contents(), big);
}

// Descriptors this process holds.
int OpenDescriptors() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

TEST(ProcFileTest, KeptAttributeThatRefusesAReadKeepsItsDescriptor) {
  // The loopback device has no link speed: the kernel answers EINVAL at every read.
  const std::string speed = "/sys/class/net/lo/speed";
  if (::access(speed.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << speed << " here";
  int before = OpenDescriptors();
  ProcFile f(speed, 64, ProcFile::Layout::kWhole);
  Status st = f.Read();
  if (st.ok()) GTEST_SKIP() << "this kernel reports a speed for lo: " << f.contents();
  EXPECT_EQ(f.error_number(), EINVAL) << st.message();
  EXPECT_EQ(OpenDescriptors(), before + 1);  // kept: the refusal is the attribute's state
  EXPECT_FALSE(f.Read().ok());
  EXPECT_EQ(f.error_number(), EINVAL);
  EXPECT_EQ(OpenDescriptors(), before + 1);  // asked again through the same descriptor

  ProcFile never("/proc/loadavg", 64, ProcFile::Layout::kWhole, ProcFile::Keep::kNever);
  ASSERT_TRUE(never.Read().ok());
  EXPECT_FALSE(never.contents().empty());
  EXPECT_EQ(OpenDescriptors(), before + 1);
  ProcFile kept("/proc/loadavg", 64, ProcFile::Layout::kWhole);
  ASSERT_TRUE(kept.Read().ok());
  EXPECT_EQ(OpenDescriptors(), before + 2);
}

TEST(ProcFileTest, MapsErrnoToStatus) {
  TempTree tree;
  ProcFile missing(tree.Path("nope"));
  Status st = missing.Read();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), tree.Path("nope") + ": No such file or directory");
  EXPECT_EQ(missing.error_number(), ENOENT);
  EXPECT_EQ(missing.contents(), "");

  tree.MakeDir("dir");
  ProcFile dir(tree.Path("dir"));
  st = dir.Read();
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_EQ(st.message(), tree.Path("dir") + ": Is a directory");
  EXPECT_EQ(dir.error_number(), EISDIR);
}

TEST(ProcFileTest, MapsEaccesToPermissionDenied) {
  TempTree tree;
  tree.Write("secret", "x");
  ::chmod(tree.Path("secret").c_str(), 0);
  if (::geteuid() == 0) GTEST_SKIP() << "root reads mode-000 files";
  ProcFile secret(tree.Path("secret"));
  Status st = secret.Read();
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), tree.Path("secret") + ": Permission denied");
}

TEST(ProcFileTest, RefusesHugeFiles) {
  // A misconfigured --path.procfs must not make the agent read a device into memory.
  ProcFile zero("/dev/zero");
  Status st = zero.Read();
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("/dev/zero: larger than 64 MiB"), std::string::npos) << st.message();
}

TEST(ProcFileTest, ParsingHelpers) {
  std::string_view rest = "a b\n\n  c\td  \nlast";
  bool terminated = false;
  EXPECT_EQ(NextLine(rest, &terminated), "a b");
  EXPECT_TRUE(terminated);
  EXPECT_EQ(NextLine(rest, &terminated), "");
  std::string_view line = NextLine(rest, &terminated);
  EXPECT_EQ(NextField(line), "c");
  EXPECT_EQ(NextField(line), "d");
  EXPECT_EQ(NextField(line), "");
  EXPECT_EQ(NextLine(rest, &terminated), "last");
  EXPECT_FALSE(terminated);
  EXPECT_TRUE(rest.empty());

  uint64_t u = 0;
  EXPECT_TRUE(ParseUint64("18446744073709551615", u));
  EXPECT_EQ(u, 18446744073709551615ull);
  EXPECT_FALSE(ParseUint64("18446744073709551616", u));
  EXPECT_FALSE(ParseUint64("-1", u));
  EXPECT_FALSE(ParseUint64("12x", u));
  EXPECT_FALSE(ParseUint64("", u));
  int64_t i = 0;
  EXPECT_TRUE(ParseInt64("-1", i));
  EXPECT_EQ(i, -1);
  EXPECT_TRUE(ParseInt64("1303", i, 16));
  EXPECT_EQ(i, 0x1303);
  double d = 0;
  EXPECT_TRUE(ParseDouble("0.21", d));
  EXPECT_EQ(d, 0.21);
  EXPECT_FALSE(ParseDouble("0.21.", d));
  EXPECT_EQ(TrimBlanks(" \tx y\n"), "x y");
  EXPECT_EQ(LineError("/proc/stat", 3, "bad"), "/proc/stat:3: bad");
}

}  // namespace
}  // namespace suanli::agent
