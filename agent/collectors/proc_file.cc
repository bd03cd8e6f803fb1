#include "agent/collectors/proc_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/file_util.h"

namespace suanli::agent {

namespace {
constexpr size_t kMaxFileSize = 64u << 20;
constexpr size_t kMinBuffer = 64;

// Reads from offset 0 to the end of `fd` into `buf` (see ReadWholeFile). `whole`: a read that
// fills less than the buffer is the end (ProcFile::Layout::kWhole).
Status ReadFromStart(int fd, const std::string& path, std::string& buf, size_t& size, int* err,
                     bool whole = false) {
  size = 0;
  if (buf.size() < kMinBuffer) buf.resize(std::max(buf.capacity(), kMinBuffer));
  for (;;) {
    if (size == buf.size()) {
      if (buf.size() >= kMaxFileSize) {
        size = 0;
        return ResourceExhausted(path + ": larger than " + std::to_string(kMaxFileSize >> 20) +
                                 " MiB, not a /proc or /sys file?");
      }
      // resize() zero-fills only the new half; the buffer is kept at this size for later reads.
      buf.resize(buf.size() * 2);
    }
    ssize_t n = ::pread(fd, buf.data() + size, buf.size() - size, static_cast<off_t>(size));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      size = 0;
      if (err) *err = e;
      return ErrnoStatus(e, path);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
    if (whole && size < buf.size()) break;
  }
  return Status::Ok();
}

// The errors of a read through a kept descriptor that mean its file is gone.
bool FileGone(int err) {
  return err == ENODEV || err == ENOENT || err == ESTALE || err == ENXIO || err == ESRCH;
}

// Opens `path` for reading; on failure sets *err and returns the status.
Status OpenForRead(const std::string& path, int* fd, int* err) {
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd >= 0) return Status::Ok();
  int e = errno;
  if (err) *err = e;
  return ErrnoStatus(e, path);
}

}  // namespace

Status ReadWholeFile(const std::string& path, std::string& buf, size_t& size, int* err) {
  size = 0;
  if (err) *err = 0;
  int fd = -1;
  RETURN_IF_ERROR(OpenForRead(path, &fd, err));
  Status st = ReadFromStart(fd, path, buf, size, err);
  ::close(fd);
  return st;
}

ProcFile::ProcFile(std::string path, size_t size_hint, Layout layout, Keep keep)
    : path_(std::move(path)), layout_(layout), keep_(keep) {
  buf_.resize(std::max(size_hint, kMinBuffer));
}

ProcFile::~ProcFile() {
  if (fd_ >= 0) ::close(fd_);
}

ProcFile::ProcFile(ProcFile&& other) noexcept
    : path_(std::move(other.path_)),
      layout_(other.layout_),
      keep_(other.keep_),
      fd_(std::exchange(other.fd_, -1)),
      buf_(std::move(other.buf_)),
      size_(other.size_),
      errno_(other.errno_) {}

Status ProcFile::Read() {
  errno_ = 0;
  const bool whole = layout_ == Layout::kWhole;
  if (fd_ >= 0) {
    Status st = ReadFromStart(fd_, path_, buf_, size_, &errno_, whole);
    if (st.ok() || !FileGone(errno_)) return st;
    ::close(fd_);  // gone: open the path again below
    fd_ = -1;
    errno_ = 0;
  }
  int fd = -1;
  RETURN_IF_ERROR(OpenForRead(path_, &fd, &errno_));
  Status st = ReadFromStart(fd, path_, buf_, size_, &errno_, whole);
  struct statfs fs {};
  if (keep_ == Keep::kOpen && (st.ok() || !FileGone(errno_)) && ::fstatfs(fd, &fs) == 0 &&
      (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC)) {
    fd_ = fd;  // the kernel regenerates it at every read from offset 0
  } else {
    ::close(fd);
  }
  return st;
}

std::string LineError(const std::string& path, int line, std::string_view what) {
  std::string out = path;
  out += ':';
  out += std::to_string(line);
  out += ": ";
  out += what;
  return out;
}

}  // namespace suanli::agent
