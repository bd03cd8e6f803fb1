// ProcFile: reads a whole /proc or /sys file into a buffer it keeps between reads, so a collector
// that samples every second allocates only when a file outgrows the largest size seen so far
// (/proc/stat's intr line alone can be 132 KB). A file on procfs or sysfs is opened once and
// read again from offset 0 with pread (the kernel regenerates it each time): open and close
// were most of the cost of reading a small file. Files elsewhere (test fixtures under a
// --path.procfs) are opened for every read, so that a replaced file is seen. A kept descriptor
// stays kept when a read is refused (EINVAL from the speed of a link that is down, EIO from a
// sensor): that is the attribute's state, and the next read asks again. Only a file that went
// away (ENODEV, ENOENT, ESTALE, ENXIO, ESRCH: its device or process is gone) is closed and its
// path opened once more. Also the small,
// allocation-free parsing helpers the collectors share (std::string_view + std::from_chars; no
// regex, no iostreams).
//
// Errors: ENOENT/ENOTDIR -> kNotFound, EACCES/EPERM -> kPermissionDenied, anything else ->
// kIoError; the message is "path: strerror". error_number() keeps the errno for callers whose
// policy depends on it (EOPNOTSUPP from /proc/pressure means "PSI disabled", EINVAL from a sysfs
// attribute means "not applicable to this device").
//
// Thread-safety: not thread-safe; a collector keeps its ProcFile members to itself.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "core/status.h"

namespace suanli::agent {

// Reads the whole file at `path` into `buf`, growing it (never shrinking) as needed; on success
// the first `size` bytes of `buf` are the file. Refuses files over 64 MiB (a misconfigured path
// pointing at a device must not eat the agent's memory). On failure `size` is 0 and `*err` (when
// given) is the errno.
Status ReadWholeFile(const std::string& path, std::string& buf, size_t& size, int* err = nullptr);

class ProcFile {
 public:
  // How the kernel produces the file.
  enum class Layout {
    // A seq_file of records (/proc/net/dev): a read may return part of it although more
    // follows, so the file is read until a read returns 0.
    kRecords,
    // Generated whole at each read (single_open: /proc/stat, meminfo, loadavg, pressure/*): a
    // read that fills less than the buffer has returned the end, which saves the read that
    // would return 0 (one syscall per file and sweep). Also true of regular files.
    kWhole,
  };
  // Whether a file on procfs or sysfs keeps its descriptor between reads.
  enum class Keep { kOpen, kNever };
  // `size_hint`: the first buffer size in bytes; it doubles until the file fits. kNever: for
  // callers that read more files than they may hold descriptors for.
  explicit ProcFile(std::string path, size_t size_hint = 4096, Layout layout = Layout::kRecords,
                    Keep keep = Keep::kOpen);
  ~ProcFile();
  ProcFile(ProcFile&& other) noexcept;
  ProcFile& operator=(ProcFile&&) = delete;
  ProcFile(const ProcFile&) = delete;

  // Reads the whole file; contents() is valid until the next Read().
  Status Read();

  std::string_view contents() const { return {buf_.data(), size_}; }
  const std::string& path() const { return path_; }
  // errno of the last failed Read(), 0 after a successful one.
  int error_number() const { return errno_; }

 private:
  std::string path_;
  Layout layout_;
  Keep keep_;
  int fd_ = -1;      // kept open on procfs and sysfs
  std::string buf_;  // sized to its capacity; only the first size_ bytes are the file
  size_t size_ = 0;
  int errno_ = 0;
};

// ---- Parsing helpers ------------------------------------------------------------------------

// Splits off the next line (without its '\n'). `terminated` says whether a '\n' ended it: the
// kernel ends every line of the files we read, so an unterminated last line was cut short.
inline std::string_view NextLine(std::string_view& rest, bool* terminated = nullptr) {
  size_t nl = rest.find('\n');
  std::string_view line;
  if (nl == std::string_view::npos) {
    line = rest;
    rest = {};
    if (terminated) *terminated = false;
  } else {
    line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (terminated) *terminated = true;
  }
  return line;
}

inline bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Splits off the next blank-separated field; empty when none is left.
inline std::string_view NextField(std::string_view& rest) {
  size_t i = 0;
  while (i < rest.size() && IsBlank(rest[i])) ++i;
  size_t j = i;
  while (j < rest.size() && !IsBlank(rest[j])) ++j;
  std::string_view field = rest.substr(i, j - i);
  rest.remove_prefix(j);
  return field;
}

inline std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Whole-field parses: true only when all of `s` is a number.
inline bool ParseUint64(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

inline bool ParseInt64(std::string_view s, int64_t& out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

inline bool ParseDouble(std::string_view s, double& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "path:line: what" — the form of every parse error a collector reports.
std::string LineError(const std::string& path, int line, std::string_view what);

}  // namespace suanli::agent
