#include "agent/collectors/proc_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/file_util.h"

namespace suanli::agent {

namespace {
constexpr size_t kMaxFileSize = 64u << 20;
constexpr size_t kMinBuffer = 64;
}  // namespace

Status ReadWholeFile(const std::string& path, std::string& buf, size_t& size, int* err) {
  size = 0;
  if (err) *err = 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (err) *err = e;
    return ErrnoStatus(e, path);
  }
  if (buf.size() < kMinBuffer) buf.resize(std::max(buf.capacity(), kMinBuffer));
  for (;;) {
    if (size == buf.size()) {
      if (buf.size() >= kMaxFileSize) {
        ::close(fd);
        size = 0;
        return ResourceExhausted(path + ": larger than " + std::to_string(kMaxFileSize >> 20) +
                                 " MiB, not a /proc or /sys file?");
      }
      // resize() zero-fills only the new half; the buffer is kept at this size for later reads.
      buf.resize(buf.size() * 2);
    }
    ssize_t n = ::read(fd, buf.data() + size, buf.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      size = 0;
      if (err) *err = e;
      return ErrnoStatus(e, path);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::Ok();
}

ProcFile::ProcFile(std::string path, size_t size_hint) : path_(std::move(path)) {
  buf_.resize(std::max(size_hint, kMinBuffer));
}

Status ProcFile::Read() { return ReadWholeFile(path_, buf_, size_, &errno_); }

std::string LineError(const std::string& path, int line, std::string_view what) {
  std::string out = path;
  out += ':';
  out += std::to_string(line);
  out += ": ";
  out += what;
  return out;
}

}  // namespace suanli::agent
