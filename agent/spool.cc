#include "agent/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>

#include "core/file_util.h"

namespace suanli::agent {
namespace {

static_assert(std::endian::native == std::endian::little, "spool files are little-endian");

// ---- file layout

constexpr char kSegmentMagic[8] = {'S', 'U', 'A', 'N', 'L', 'I', 'S', 'P'};
constexpr uint32_t kSegmentVersion = 1;
constexpr size_t kSegmentHeaderBytes = 32;  // magic, version, crc, first_seq, created_ms
constexpr size_t kRecordHeaderBytes = 40;   // len, crc, seq, samples, reserved, min_ts, max_ts
constexpr uint64_t kMaxBodyBytes = uint64_t{256} << 20;
constexpr uint64_t kNoSegment = UINT64_MAX;
// Sequence numbers stay below this, far above any the spool gives (memory mode starts at
// 2^62 + ms * 1024), so that counting on never wraps to 0 (which would sort first): a record
// or cursor past it is corrupt, and a newer agent's segment named past it does not move the
// numbering.
constexpr uint64_t kMaxSequence = uint64_t{1} << 63;
// Recent records' bodies kept in memory beside their disk copy (Entry::cached): the steady
// state (a sweep or two waiting) never reads the disk; a backlog beyond this is read back.
constexpr uint64_t kMaxCachedBytes = 1 << 20;
constexpr const char* kCursorMagic = "suanli-spool-cursor 1";

// Sequence numbers of a spool that could not open its directory at start: far above anything a
// directory could hold from earlier runs, so that once the directory opens later its records
// sort before the ones kept in memory meanwhile. Time-based, so that two such runs never
// collide (records are at least 100 ms apart; 1024 per ms is far more than can happen).
uint64_t MemoryModeBaseSeq(const Clock& clock) {
  return (uint64_t{1} << 62) +
         static_cast<uint64_t>(std::max<int64_t>(clock.NowUnixMs(), 0)) * 1024;
}

void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string SegmentName(uint64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".seg", first_seq);
  return buf;
}

// FNV-1a 64: a stable file name for an endpoint URL (the URL itself is inside the file).
std::string CursorName(const std::string& url) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : url) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "cursor-%016" PRIx64, h);
  return buf;
}

// A cursor file: the magic line, the endpoint's next sequence number, its URL, then (since the
// cursor is updated in place) a CRC-32C of those three lines and '\n' padding to a size that
// depends on the URL only, so that an update never changes the file's size. Agents before the
// CRC line read the first three lines and ignore the rest.
std::string CursorText(uint64_t next_seq, const std::string& url) {
  std::string text =
      std::string(kCursorMagic) + "\n" + std::to_string(next_seq) + "\n" + url + "\n";
  char crc[24];
  std::snprintf(crc, sizeof crc, "crc32c %08" PRIx32 "\n", Crc32c(text));
  text += crc;
  // The longest sequence number has 20 digits.
  const size_t size = std::strlen(kCursorMagic) + 1 + 20 + 1 + url.size() + 1 + 16;
  text.resize(std::max(size, text.size()), '\n');
  return text;
}

// Reads a cursor file's sequence number and URL. False when it is malformed, or when its CRC
// line is missing or wrong while anything follows the URL line (a torn in-place update: the
// caller then resends everything, never skips). A file that ends after the URL line was written
// by an earlier agent, which replaced it whole (write, rename): no CRC to check.
bool ParseCursor(const std::string& text, uint64_t* next_seq, std::string* url) {
  unsigned long long n = 0;
  char u[4096] = {};
  if (std::sscanf(text.c_str(), "suanli-spool-cursor 1\n%llu\n%4095s", &n, u) != 2) return false;
  *next_seq = n;
  *url = u;
  size_t end = 0;
  for (int line = 0; line < 3; ++line) {
    end = text.find('\n', end);
    if (end == std::string::npos) return false;
    ++end;
  }
  if (end == text.size()) return true;
  unsigned crc = 0;
  char nl = 0;
  return std::sscanf(text.c_str() + end, "crc32c %8x%c", &crc, &nl) == 2 && nl == '\n' &&
         crc == Crc32c(std::string_view(text).substr(0, end));
}

// A record header with its CRC over everything after the CRC field, body included.
void EncodeRecordHeader(char* h, uint64_t seq, uint32_t samples, int64_t min_ts, int64_t max_ts,
                        std::string_view body) {
  PutU32(h, static_cast<uint32_t>(body.size()));
  PutU64(h + 8, seq);
  PutU32(h + 16, samples);
  PutU32(h + 20, 0);
  PutU64(h + 24, static_cast<uint64_t>(min_ts));
  PutU64(h + 32, static_cast<uint64_t>(max_ts));
  uint32_t crc = Crc32c(std::string_view(h + 8, kRecordHeaderBytes - 8));
  PutU32(h + 4, Crc32c(body, crc));
}

Status ReadFully(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read " + path);
    }
    if (r == 0) return IoError("read " + path + ": unexpected end of file");
    buf += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Status WriteFully(int fd, const struct iovec* iov_in, int iovcnt, uint64_t offset,
                  const std::string& path) {
  std::vector<struct iovec> iov(iov_in, iov_in + iovcnt);
  size_t idx = 0;
  while (idx < iov.size()) {
    ssize_t w = ::pwritev(fd, iov.data() + idx, static_cast<int>(iov.size() - idx),
                          static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path);
    }
    if (w == 0) return IoError("write " + path + ": no progress");
    offset += static_cast<uint64_t>(w);
    size_t left = static_cast<size_t>(w);
    while (idx < iov.size() && left >= iov[idx].iov_len) {
      left -= iov[idx].iov_len;
      ++idx;
    }
    if (idx < iov.size()) {
      iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
      iov[idx].iov_len -= left;
    }
  }
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, "fsync " + dir);
  return Status::Ok();
}

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

const char* const kDropReasons[] = {"cap", "memory_cap", "corrupt", "endpoint_removed"};
const char* const kDiskOps[] = {"open", "write", "sync", "read", "cursor"};

}  // namespace

prometheus::Family<prometheus::Counter>& SamplesDroppedFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name(kSamplesDroppedMetric)
      .Help(
          "Samples an endpoint will never receive, by reason: rejected (a non-retryable 4xx), "
          "cap (spool max_bytes reached), memory_cap (spool in memory mode and full), "
          "corrupt (a spooled record failed its checksum).")
      .Register(registry);
}

Spool::Spool(SpoolOptions options, std::vector<std::string> endpoints, const Clock& clock,
             prometheus::Registry& registry)
    : options_(std::move(options)),
      clock_(clock),
      disk_bytes_gauge_(prometheus::BuildGauge()
                            .Name("suanli_agent_spool_bytes")
                            .Help("Bytes the spool holds: segment files on disk, or record bodies "
                                  "in memory (memory mode).")
                            .Register(registry)
                            .Add({{"medium", "disk"}})),
      memory_bytes_gauge_(prometheus::BuildGauge()
                              .Name("suanli_agent_spool_bytes")
                              .Help("")
                              .Register(registry)
                              .Add({{"medium", "memory"}})),
      samples_gauge_(prometheus::BuildGauge()
                         .Name("suanli_agent_spool_samples")
                         .Help("Samples held in the spool (not yet sent to every endpoint).")
                         .Register(registry)
                         .Add({})),
      oldest_age_gauge_(prometheus::BuildGauge()
                            .Name("suanli_agent_spool_oldest_sample_age_seconds")
                            .Help("Age of the oldest sample held in the spool; 0 when empty.")
                            .Register(registry)
                            .Add({})),
      degraded_gauge_(prometheus::BuildGauge()
                          .Name("suanli_agent_spool_degraded")
                          .Help("1 while the spool directory cannot be written (full disk, "
                                "read-only, unwritable or locked) and records are kept in memory.")
                          .Register(registry)
                          .Add({})),
      appended_records_(prometheus::BuildCounter()
                            .Name("suanli_agent_spool_appended_records_total")
                            .Help("Sweeps appended to the spool.")
                            .Register(registry)
                            .Add({})),
      corrupt_records_counter_(prometheus::BuildCounter()
                                   .Name("suanli_agent_spool_corrupt_records_total")
                                   .Help("Torn or corrupt spool records cut off at open, or "
                                         "failing their checksum when read.")
                                   .Register(registry)
                                   .Add({})),
      unreadable_newer_gauge_(prometheus::BuildGauge()
                                  .Name("suanli_agent_spool_unreadable_segments")
                                  .Help("Segment files the spool keeps on disk without reading "
                                        "them, by reason: newer_version (left by a newer agent; "
                                        "sent once it runs again).")
                                  .Register(registry)
                                  .Add({{"reason", "newer_version"}})),
      corrupt_bytes_counter_(prometheus::BuildCounter()
                                 .Name("suanli_agent_spool_corrupt_bytes_total")
                                 .Help("Bytes of spool files cut off as torn or corrupt.")
                                 .Register(registry)
                                 .Add({})),
      dropped_family_(prometheus::BuildCounter()
                          .Name("suanli_agent_spool_dropped_samples_total")
                          .Help("Samples removed from the spool before every endpoint had them, "
                                "by reason (cap, memory_cap, corrupt, endpoint_removed).")
                          .Register(registry)),
      disk_errors_family_(prometheus::BuildCounter()
                              .Name("suanli_agent_spool_disk_errors_total")
                              .Help("Failed spool file operations, by operation (open, write, "
                                    "sync, read, cursor).")
                              .Register(registry)),
      segment_syncs_counter_(prometheus::BuildCounter()
                                 .Name("suanli_agent_spool_syncs_total")
                                 .Help("fdatasync calls on spool files, by file: segment "
                                       "(records) or cursor.")
                                 .Register(registry)
                                 .Add({{"file", "segment"}})),
      cursor_syncs_counter_(prometheus::BuildCounter()
                                .Name("suanli_agent_spool_syncs_total")
                                .Help("")
                                .Register(registry)
                                .Add({{"file", "cursor"}})) {
  for (const char* r : kDropReasons) dropped_family_.Add({{"reason", r}});
  for (const char* op : kDiskOps) disk_errors_family_.Add({{"op", op}});
  auto& dropped = SamplesDroppedFamily(registry);
  auto& pending_samples = prometheus::BuildGauge()
                              .Name("suanli_agent_remote_write_pending_samples")
                              .Help("Samples spooled for an endpoint and not yet sent.")
                              .Register(registry);
  auto& pending_bytes = prometheus::BuildGauge()
                            .Name("suanli_agent_remote_write_pending_bytes")
                            .Help("Encoded bytes spooled for an endpoint and not yet sent.")
                            .Register(registry);
  for (auto& url : endpoints) {
    Endpoint ep;
    ep.wake = {new sem_t, [](sem_t* sem) {
                 ::sem_destroy(sem);
                 delete sem;
               }};
    ::sem_init(ep.wake.get(), /*pshared=*/0, 0);
    ep.url = std::move(url);
    ep.cursor_path =
        options_.directory.empty() ? "" : options_.directory + "/" + CursorName(ep.url);
    ep.dropped_cap = &dropped.Add({{"endpoint", ep.url}, {"reason", "cap"}});
    ep.dropped_memory = &dropped.Add({{"endpoint", ep.url}, {"reason", "memory_cap"}});
    ep.dropped_corrupt = &dropped.Add({{"endpoint", ep.url}, {"reason", "corrupt"}});
    ep.pending_samples_gauge = &pending_samples.Add({{"endpoint", ep.url}});
    ep.pending_bytes_gauge = &pending_bytes.Add({{"endpoint", ep.url}});
    endpoints_.push_back(std::move(ep));
  }

  std::lock_guard lock(mu_);
  if (options_.directory.empty()) {
    spdlog::info("spool: memory only (spool.directory is empty); up to {} bytes, lost on restart",
                 options_.max_memory_bytes);
  } else {
    OpenDirectory();
  }
  UpdateGauges();
}

Spool::~Spool() {
  std::lock_guard lock(mu_);
  for (auto& ep : endpoints_) PersistCursor(ep).IgnoreError();  // failures are logged
  CloseActiveSegment();  // syncs what kInterval had not synced yet
  uint64_t records = 0, samples = 0;
  for (const auto& e : entries_) {
    if (e.memory) {
      ++records;
      samples += e.samples;
    }
  }
  if (records > 0 && !options_.directory.empty()) {
    spdlog::warn("spool: closing with {} records ({} samples) held only in memory; they are lost",
                 records, samples);
  }
  for (auto& [seq, seg] : segments_) {
    CloseFd(&seg.write_fd);
    CloseFd(&seg.read_fd);
  }
  for (auto& ep : endpoints_) CloseFd(&ep.cursor_fd);
  CloseFd(&lock_fd_);
}

// ---------------------------------------------------------------- opening

Status Spool::LockDirectory() {
  std::string path = options_.directory + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Unavailable(options_.directory + " is in use by another agent (LOCK is held)");
    }
    return ErrnoStatus(err, "flock " + path);
  }
  lock_fd_ = fd;
  return Status::Ok();
}

void Spool::OpenDirectory() {
  Status st = MakeDirectories(options_.directory);
  if (st.ok()) st = LockDirectory();
  if (st.ok()) {
    LoadSegments();
    // A read error (not a checksum mismatch) leaves the spool unopened: retried later.
    if (lock_fd_ < 0) st = IoError("cannot read the spool segments in " + options_.directory);
  }
  if (!st.ok()) {
    for (auto& [seq, seg] : segments_) CloseFd(&seg.read_fd);
    segments_.clear();
    unreadable_.clear();
    entries_.clear();
    disk_bytes_ = samples_ = 0;
    CloseFd(&lock_fd_);
    next_seq_ = MemoryModeBaseSeq(clock_);
    for (auto& ep : endpoints_) ep.next_seq = next_seq_;
    EnterMemoryMode(st, "open");
    return;
  }
  LoadCursors();
  disk_ok_ = true;
  CollectGarbage();
  uint64_t samples = 0;
  for (const auto& e : entries_) samples += e.samples;
  spdlog::info(
      "spool: opened {} segments={} records={} samples={} bytes={} next_seq={} max_bytes={} "
      "unreadable_segments={}",
      options_.directory, segments_.size(), entries_.size(), samples, disk_bytes_, next_seq_,
      options_.max_bytes, unreadable_.size());
}

void Spool::LoadSegments() {
  DIR* d = ::opendir(options_.directory.c_str());
  if (d == nullptr) {
    spdlog::warn("spool: cannot list {}: {}", options_.directory, std::strerror(errno));
    CloseFd(&lock_fd_);
    return;
  }
  std::vector<std::pair<uint64_t, std::string>> found;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name.size() == 24 && name.compare(20, 4, ".seg") == 0 &&
        std::all_of(name.begin(), name.begin() + 20, ::isdigit)) {
      found.emplace_back(std::strtoull(name.c_str(), nullptr, 10), options_.directory + "/" + name);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      ::unlink((options_.directory + "/" + name).c_str());  // an interrupted cursor update
    }
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  unreadable_.clear();
  for (const auto& [first_seq, path] : found) {
    LoadSegment(path, first_seq);
    if (lock_fd_ < 0) return;  // read error
  }
  // Past every sequence number a kept newer-format segment can hold (see spool.h).
  for (const Unreadable& u : unreadable_) {
    if (u.end_seq <= kMaxSequence) next_seq_ = std::max(next_seq_, u.end_seq);
  }
}

void Spool::LoadSegment(const std::string& path, uint64_t first_seq) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat sb {};
  if (fd < 0 || ::fstat(fd, &sb) != 0) {
    spdlog::warn("spool: cannot open {}: {}", path, std::strerror(errno));
    disk_errors_family_.Add({{"op", "read"}}).Increment();
    if (fd >= 0) ::close(fd);
    CloseFd(&lock_fd_);
    return;
  }
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  const uint64_t min_seq = entries_.empty() ? 0 : entries_.back().seq + 1;
  uint64_t good = 0;  // bytes of the file known good
  std::string why;
  char header[kSegmentHeaderBytes];
  if (size < kSegmentHeaderBytes) {
    why = "torn segment header";
  } else if (Status st = ReadFully(fd, header, sizeof header, 0, path); !st.ok()) {
    spdlog::warn("spool: {}", st.message());
    disk_errors_family_.Add({{"op", "read"}}).Increment();
    ::close(fd);
    CloseFd(&lock_fd_);
    return;
  } else if (std::memcmp(header, kSegmentMagic, 8) == 0 && GetU32(header + 8) > kSegmentVersion) {
    // Left by a newer agent: kept whole and unread, for that agent to send (see spool.h).
    ::close(fd);
    Unreadable u;
    u.path = path;
    u.version = GetU32(header + 8);
    u.first_seq = first_seq;
    u.end_seq = first_seq + std::max<uint64_t>(size, 1);
    if (u.end_seq < first_seq) u.end_seq = UINT64_MAX;  // a name near 2^64: no room above it
    spdlog::warn(
        "spool: {}: segment format version {} is newer than this agent's ({}); kept on disk "
        "unread ({} bytes) for a newer agent to send, and not counted against max_bytes",
        path, u.version, kSegmentVersion, size);
    unreadable_.push_back(std::move(u));
    return;
  } else {
    uint32_t stored_crc = GetU32(header + 12);
    PutU32(header + 12, 0);
    if (std::memcmp(header, kSegmentMagic, 8) != 0) {
      why = "not a spool segment (bad magic)";
    } else if (GetU32(header + 8) != kSegmentVersion) {
      why = "unsupported segment version " + std::to_string(GetU32(header + 8));
    } else if (Crc32c(std::string_view(header, sizeof header)) != stored_crc) {
      why = "segment header checksum mismatch";
    } else if (GetU64(header + 16) != first_seq || first_seq < min_seq) {
      why = "segment sequence does not match its name or overlaps the previous one";
    } else {
      good = kSegmentHeaderBytes;
    }
  }

  Segment seg;
  seg.first_seq = first_seq;
  seg.path = path;
  std::vector<Entry> loaded;
  if (good > 0) {
    uint64_t expect_min = std::max(first_seq, min_seq);
    std::string body;
    char h[kRecordHeaderBytes];
    while (good < size) {
      if (size - good < kRecordHeaderBytes) {
        why = "torn record header";
        break;
      }
      if (Status st = ReadFully(fd, h, sizeof h, good, path); !st.ok()) {
        spdlog::warn("spool: {}", st.message());
        disk_errors_family_.Add({{"op", "read"}}).Increment();
        ::close(fd);
        CloseFd(&lock_fd_);
        return;
      }
      uint64_t len = GetU32(h);
      if (len > kMaxBodyBytes || good + kRecordHeaderBytes + len > size) {
        why = "torn record (length past the end of the file)";
        break;
      }
      body.resize(len);
      if (Status st = ReadFully(fd, body.data(), len, good + kRecordHeaderBytes, path); !st.ok()) {
        spdlog::warn("spool: {}", st.message());
        disk_errors_family_.Add({{"op", "read"}}).Increment();
        ::close(fd);
        CloseFd(&lock_fd_);
        return;
      }
      uint32_t crc = Crc32c(std::string_view(h + 8, kRecordHeaderBytes - 8));
      if (Crc32c(body, crc) != GetU32(h + 4)) {
        why = "record checksum mismatch";
        break;
      }
      uint64_t seq = GetU64(h + 8);
      if (seq < expect_min) {
        why = "record sequence out of order";
        break;
      }
      if (seq >= kMaxSequence) {
        why = "record sequence out of range";
        break;
      }
      Entry e;
      e.seq = seq;
      e.samples = GetU32(h + 16);
      e.min_ts_ms = static_cast<int64_t>(GetU64(h + 24));
      e.max_ts_ms = static_cast<int64_t>(GetU64(h + 32));
      e.body_bytes = len;
      e.segment = first_seq;
      e.offset = good;
      loaded.push_back(std::move(e));
      expect_min = seq + 1;
      good += kRecordHeaderBytes + len;
    }
  }
  ::close(fd);

  if (good < size) {
    // Everything from the first bad byte on is cut: a torn write leaves nothing useful after it.
    uint64_t cut = size - good;
    ++corrupt_records_;
    corrupt_bytes_ += cut;
    corrupt_records_counter_.Increment();
    corrupt_bytes_counter_.Increment(static_cast<double>(cut));
    spdlog::warn("spool: {}: {} at offset {}; cut off {} bytes, kept {} records before it", path,
                 why, good, cut, loaded.size());
    if (loaded.empty()) {
      ::unlink(path.c_str());
      return;
    }
    if (::truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
      // Harmless: the same cut happens at the next open; we never append to old segments.
      spdlog::warn("spool: cannot truncate {}: {}", path, std::strerror(errno));
    }
  }
  if (loaded.empty()) {
    ::unlink(path.c_str());  // header only: nothing to keep
    return;
  }
  seg.size = good;
  seg.live = loaded.size();
  disk_bytes_ += good;
  for (auto& e : loaded) {
    samples_ += e.samples;
    entries_.push_back(std::move(e));
  }
  next_seq_ = std::max(next_seq_, entries_.back().seq + 1);
  segments_.emplace(first_seq, std::move(seg));
}

void Spool::LoadCursors() {
  // Cursor files of endpoints no longer configured: what only they needed is dropped.
  std::set<std::string> configured;
  for (const auto& ep : endpoints_) configured.insert(CursorName(ep.url));
  if (DIR* d = ::opendir(options_.directory.c_str())) {
    std::vector<std::string> stale;
    while (dirent* de = ::readdir(d)) {
      std::string name = de->d_name;
      if (name.rfind("cursor-", 0) == 0 && name.size() == 23 && configured.count(name) == 0) {
        stale.push_back(name);
      }
    }
    ::closedir(d);
    for (const auto& name : stale) {
      std::string path = options_.directory + "/" + name;
      auto text = ReadFileToString(path);
      uint64_t next = 0;
      std::string url = "?";
      if (text.ok() && !ParseCursor(*text, &next, &url)) {
        next = 0;
        url = "?";
      }
      uint64_t samples = 0;
      for (const auto& e : entries_) samples += e.seq >= next ? e.samples : 0;
      if (samples > 0) {
        spdlog::warn(
            "spool: endpoint {} is no longer configured; its {} unsent samples are dropped", url,
            samples);
        CountDropped("endpoint_removed", samples);
      }
      ::unlink(path.c_str());
    }
  }

  std::vector<std::optional<uint64_t>> cursors;
  for (auto& ep : endpoints_) {
    CloseFd(&ep.cursor_fd);  // the next write replaces the file whole, then updates it in place
    std::optional<uint64_t> cursor;
    auto text = ReadFileToString(ep.cursor_path);
    if (text.ok()) {
      uint64_t n = 0;
      std::string u;
      if (ParseCursor(*text, &n, &u) && ep.url == u && n <= kMaxSequence) {
        cursor = n;
      } else {
        // Resend everything held: duplicates are harmless, a hole is not.
        spdlog::warn("spool: cursor file {} of endpoint {} is unreadable; resending all it holds",
                     ep.cursor_path, ep.url);
        disk_errors_family_.Add({{"op", "cursor"}}).Increment();
        cursor = 0;
      }
    } else if (text.status().code() != StatusCode::kNotFound) {
      spdlog::warn("spool: {}; resending all it holds", text.status().message());
      disk_errors_family_.Add({{"op", "cursor"}}).Increment();
      cursor = 0;
    }
    if (cursor) next_seq_ = std::max(next_seq_, *cursor);
    cursors.push_back(cursor);
  }
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    Endpoint& ep = endpoints_[i];
    // A new endpoint gets every sample appended from now on, not what was spooled before it.
    ep.next_seq = cursors[i].value_or(next_seq_);
    // Records of kept newer-format segments this endpoint may still need hold its cursor file
    // back, so that the newer agent sends them (see spool.h).
    ep.cursor_limit = UINT64_MAX;
    if (cursors[i]) {
      for (const Unreadable& u : unreadable_) {
        if (u.end_seq > *cursors[i]) {
          ep.cursor_limit = std::min(ep.cursor_limit, std::max(u.first_seq, *cursors[i]));
        }
      }
    }
    ep.acked_ahead.clear();
    AdvanceCursor(ep);
    ep.pending_samples = ep.pending_bytes = 0;
    for (const auto& e : entries_) {
      if (IsPending(ep, e)) {
        ep.pending_samples += e.samples;
        ep.pending_bytes += e.body_bytes;
      }
    }
    if (!cursors[i]) spdlog::info("spool: new endpoint {} starts at seq {}", ep.url, ep.next_seq);
    PersistCursor(ep).IgnoreError();  // logged
  }
}

// ---------------------------------------------------------------- writing

Status Spool::StartSegment(uint64_t first_seq) {
  std::string path = options_.directory + "/" + SegmentName(first_seq);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "create " + path);
  char h[kSegmentHeaderBytes] = {};
  std::memcpy(h, kSegmentMagic, 8);
  PutU32(h + 8, kSegmentVersion);
  PutU64(h + 16, first_seq);
  PutU64(h + 24, static_cast<uint64_t>(clock_.NowUnixMs()));
  PutU32(h + 12, Crc32c(std::string_view(h, sizeof h)));
  struct iovec iov = {h, sizeof h};
  Status st = WriteFully(fd, &iov, 1, 0, path);
  if (st.ok() && options_.fsync != FsyncPolicy::kNever) {  // once per segment
    ++segment_syncs_;
    segment_syncs_counter_.Increment();
    if (::fdatasync(fd) != 0) st = ErrnoStatus(errno, "fdatasync " + path);
    if (st.ok()) st = SyncDirectory(options_.directory);  // the new name survives a power cut
    last_sync_ = clock_.SteadyNow();
  }
  if (!st.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  }
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = path;
  seg.size = kSegmentHeaderBytes;
  seg.write_fd = fd;
  segments_[first_seq] = std::move(seg);
  active_segment_ = first_seq;
  disk_bytes_ += kSegmentHeaderBytes;
  return Status::Ok();
}

bool Spool::SegmentSyncDue(Segment& seg, uint64_t seq) {
  if (options_.fsync == FsyncPolicy::kNever) return false;
  if (options_.fsync == FsyncPolicy::kAlways) return true;
  auto now = clock_.SteadyNow();
  if (now - last_sync_ < options_.fsync_interval) return false;
  // Record `seq` is not in entries_ yet, so every entry at or after unsynced_from is an earlier
  // record written since the last sync that an endpoint still needs.
  if (IndexOf(seg.unsynced_from) == entries_.size()) {
    // All accepted already: they need no disk. The interval stays due, so that the next append
    // syncs if this record is still held then.
    seg.unsynced_from = seq;
    return false;
  }
  last_sync_ = now;
  return true;
}

int Spool::SyncSegment(Segment& seg) {
  ++segment_syncs_;
  segment_syncs_counter_.Increment();
  seg.unsynced = false;
  return ::fdatasync(seg.write_fd);
}

int Spool::SyncCursor(int fd) {
  ++cursor_syncs_;
  cursor_syncs_counter_.Increment();
  return ::fdatasync(fd);
}

void Spool::CloseActiveSegment() {
  if (active_segment_ == kNoSegment) return;
  auto it = segments_.find(active_segment_);
  if (it != segments_.end()) {
    // The records not yet synced go to disk before their segment is left behind.
    if (it->second.unsynced && it->second.write_fd >= 0 && options_.fsync != FsyncPolicy::kNever) {
      SyncSegment(it->second);  // best effort: a failure here is the next write's
    }
    CloseFd(&it->second.write_fd);
  }
  active_segment_ = kNoSegment;
}

Status Spool::WriteToDisk(Entry& e, const std::string& body) {
  const uint64_t rec = kRecordHeaderBytes + body.size();
  auto active = segments_.find(active_segment_);
  bool roll = active == segments_.end() ||
              (active->second.size + rec > static_cast<uint64_t>(options_.segment_bytes) &&
               active->second.size > kSegmentHeaderBytes);
  EnforceDiskCap(rec + (roll ? kSegmentHeaderBytes : 0));
  if (roll) {
    CloseActiveSegment();
    RETURN_IF_ERROR(StartSegment(e.seq));
    active = segments_.find(active_segment_);
  }
  Segment& seg = active->second;
  char h[kRecordHeaderBytes];
  EncodeRecordHeader(h, e.seq, e.samples, e.min_ts_ms, e.max_ts_ms, body);
  struct iovec iov[2] = {{h, sizeof h}, {const_cast<char*>(body.data()), body.size()}};
  Status st = WriteFully(seg.write_fd, iov, 2, seg.size, seg.path);
  if (st.ok()) {
    if (!seg.unsynced) seg.unsynced_from = e.seq;
    seg.unsynced = true;
    if (SegmentSyncDue(seg, e.seq) && SyncSegment(seg) != 0) {
      st = ErrnoStatus(errno, "fdatasync " + seg.path);
    }
  }
  if (!st.ok()) {
    // Cut the partial record so that the file ends on a record boundary (if this fails too,
    // the next open cuts it as a torn tail).
    if (::ftruncate(seg.write_fd, static_cast<off_t>(seg.size)) != 0) {
      spdlog::debug("spool: ftruncate {}: {}", seg.path, std::strerror(errno));
    }
    return st;
  }
  e.segment = seg.first_seq;
  e.offset = seg.size;
  seg.size += rec;
  ++seg.live;
  disk_bytes_ += rec;
  return Status::Ok();
}

void Spool::EnterMemoryMode(const Status& why, const char* op) {
  disk_errors_family_.Add({{"op", op}}).Increment();
  next_disk_retry_ = clock_.SteadyNow() + options_.disk_retry_interval;
  if (!disk_ok_ && degraded_) return;  // already degraded: counted, not logged again
  disk_ok_ = false;
  degraded_ = true;
  CloseActiveSegment();
  for (auto& ep : endpoints_) CloseFd(&ep.cursor_fd);  // replaced whole once the disk works
  spdlog::warn(
      "spool: cannot use {} ({}); keeping new records in memory (up to {} bytes) and retrying "
      "the disk every {}s",
      options_.directory, why.message(), options_.max_memory_bytes,
      options_.disk_retry_interval.count() / 1000.0);
}

Status Spool::LateOpen() {
  // The directory could not be opened at start; what it holds from earlier runs sorts before
  // the records kept in memory since (see MemoryModeBaseSeq).
  RETURN_IF_ERROR(MakeDirectories(options_.directory));
  RETURN_IF_ERROR(LockDirectory());
  std::deque<Entry> memory = std::move(entries_);
  entries_.clear();
  uint64_t memory_samples = samples_;
  samples_ = 0;
  LoadSegments();
  bool interleave =
      !memory.empty() && !entries_.empty() && entries_.back().seq >= memory.front().seq;
  for (const Unreadable& u : unreadable_) {
    interleave = interleave || (!memory.empty() && u.end_seq > memory.front().seq);
  }
  if (lock_fd_ < 0 || interleave) {
    // A read error, or sequence numbers that would interleave: stay in memory.
    for (auto& [seq, seg] : segments_) CloseFd(&seg.read_fd);
    segments_.clear();
    unreadable_.clear();
    disk_bytes_ = 0;
    entries_ = std::move(memory);
    samples_ = memory_samples;
    CloseFd(&lock_fd_);
    return IoError("cannot load the segments already in " + options_.directory);
  }
  // An endpoint's progress through the memory records is kept as "done ahead" of its cursor.
  std::vector<std::pair<uint64_t, std::set<uint64_t>>> progress;
  for (auto& ep : endpoints_) {
    std::set<uint64_t> done = ep.acked_ahead;
    for (const auto& e : memory) {
      if (e.seq < ep.next_seq) done.insert(e.seq);
    }
    progress.emplace_back(ep.next_seq, std::move(done));
  }
  const uint64_t memory_next = next_seq_;
  for (auto& e : memory) {
    samples_ += e.samples;
    entries_.push_back(std::move(e));
  }
  LoadCursors();  // sets next_seq from the files (new endpoints: the end of the old records)
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    Endpoint& ep = endpoints_[i];
    // LoadCursors put a new endpoint at next_seq_, which is past the memory records now.
    ep.next_seq = std::min(ep.next_seq, progress[i].first);
    ep.acked_ahead = progress[i].second;
    AdvanceCursor(ep);
    ep.pending_samples = ep.pending_bytes = 0;
    for (const auto& e : entries_) {
      if (IsPending(ep, e)) {
        ep.pending_samples += e.samples;
        ep.pending_bytes += e.body_bytes;
      }
    }
  }
  next_seq_ = std::max(next_seq_, memory_next);
  spdlog::info("spool: opened {} late; {} records from earlier runs", options_.directory,
               entries_.size() - memory.size());
  return Status::Ok();
}

bool Spool::TryRecoverDisk() {
  next_disk_retry_ = clock_.SteadyNow() + options_.disk_retry_interval;
  if (lock_fd_ < 0) {
    Status st = LateOpen();
    if (!st.ok()) {
      disk_errors_family_.Add({{"op", "open"}}).Increment();
      spdlog::debug("spool: disk still unusable: {}", st.message());
      return false;
    }
  }
  std::vector<uint64_t> in_memory;
  for (const auto& e : entries_) {
    if (e.memory) in_memory.push_back(e.seq);
  }
  for (uint64_t seq : in_memory) {
    size_t i = IndexOf(seq);
    if (i >= entries_.size() || entries_[i].seq != seq || !entries_[i].memory) continue;
    Entry& e = entries_[i];
    std::shared_ptr<const std::string> body = e.memory;
    Status st = WriteToDisk(e, *body);
    if (!st.ok()) {
      disk_errors_family_.Add({{"op", "write"}}).Increment();
      CloseActiveSegment();
      spdlog::debug("spool: disk still unusable: {}", st.message());
      return false;
    }
    // WriteToDisk may have dropped old segments (cap): find the entry again.
    i = IndexOf(seq);
    entries_[i].memory.reset();
    memory_bytes_ -= entries_[i].body_bytes;
  }
  disk_ok_ = true;
  recovered_records_ = in_memory.size();
  return true;
}

void Spool::Append(std::string body, uint32_t samples, int64_t min_ts_ms, int64_t max_ts_ms) {
  {
    std::lock_guard lock(mu_);
    Entry e;
    e.seq = next_seq_++;
    e.samples = samples;
    e.min_ts_ms = min_ts_ms;
    e.max_ts_ms = max_ts_ms;
    e.body_bytes = body.size();
    bool on_disk = false;
    if (!options_.directory.empty()) {
      const bool retry = !disk_ok_ && clock_.SteadyNow() >= next_disk_retry_;
      if (retry) TryRecoverDisk();
      if (disk_ok_) {
        Status st = WriteToDisk(e, body);
        if (st.ok()) {
          on_disk = true;
          if (degraded_) {
            degraded_ = false;
            spdlog::info("spool: {} is writable again; {} records moved from memory to disk",
                         options_.directory, recovered_records_);
          }
        } else if (retry) {
          // Still (or again) full right after a retry: stay degraded without a new warning.
          disk_ok_ = false;
          CloseActiveSegment();
          disk_errors_family_.Add({{"op", "write"}}).Increment();
          spdlog::debug("spool: disk still unusable: {}", st.message());
        } else {
          EnterMemoryMode(st, "write");
        }
      }
    }
    if (!on_disk) {
      e.memory = std::make_shared<const std::string>(std::move(body));
      memory_bytes_ += e.body_bytes;
    } else if (cached_bytes_ + e.body_bytes <= kMaxCachedBytes) {
      e.cached = std::make_shared<const std::string>(std::move(body));
      cached_bytes_ += e.body_bytes;
    }
    samples_ += samples;
    for (auto& ep : endpoints_) {
      ep.pending_samples += samples;
      ep.pending_bytes += e.body_bytes;
    }
    if (log_debug_) {
      spdlog::debug("spool append seq={} samples={} min_ts={} max_ts={} medium={}", e.seq, samples,
                    min_ts_ms, max_ts_ms, on_disk ? "disk" : "memory");
    }
    entries_.push_back(std::move(e));
    appended_records_.Increment();
    if (!on_disk) EnforceMemoryCap();
    if (endpoints_.empty()) CollectGarbage();
    UpdateGauges();
  }
  // A futex wake only for a sender that sleeps in WaitPending.
  for (auto& ep : endpoints_) ::sem_post(ep.wake.get());
}

// ---------------------------------------------------------------- bounds and release

void Spool::CountDropped(const char* reason, uint64_t samples) {
  if (samples == 0) return;
  dropped_[reason] += samples;
  dropped_family_.Add({{"reason", reason}}).Increment(static_cast<double>(samples));
}

bool Spool::IsPending(const Endpoint& ep, const Entry& e) const {
  return e.seq >= ep.next_seq && ep.acked_ahead.count(e.seq) == 0;
}

void Spool::ReleaseEntry(const Entry& e) {
  samples_ -= e.samples;
  if (e.memory) memory_bytes_ -= e.body_bytes;
  if (e.cached) cached_bytes_ -= e.body_bytes;
  if (e.segment != kNoSegment) {
    auto it = segments_.find(e.segment);
    if (it != segments_.end() && it->second.live > 0) --it->second.live;
  }
}

void Spool::DropEntry(size_t i, const char* reason) {
  const Entry& e = entries_[i];
  bool needed = false;
  for (auto& ep : endpoints_) {
    if (IsPending(ep, e)) {
      needed = true;
      ep.pending_samples -= e.samples;
      ep.pending_bytes -= e.body_bytes;
      prometheus::Counter* c = std::strcmp(reason, "cap") == 0          ? ep.dropped_cap
                               : std::strcmp(reason, "memory_cap") == 0 ? ep.dropped_memory
                                                                        : ep.dropped_corrupt;
      c->Increment(e.samples);
    } else {
      ep.acked_ahead.erase(e.seq);
    }
  }
  if (needed) CountDropped(reason, e.samples);
  ReleaseEntry(e);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  for (auto& ep : endpoints_) AdvanceCursor(ep);
}

void Spool::DeleteSegment(std::map<uint64_t, Segment>::iterator it) {
  const uint64_t id = it->first;
  uint64_t records = 0, samples = 0;
  for (size_t i = 0; i < entries_.size();) {
    if (entries_[i].segment != id) {
      ++i;
      continue;
    }
    ++records;
    samples += entries_[i].samples;
    DropEntry(i, "cap");
  }
  Segment& seg = it->second;
  CloseFd(&seg.write_fd);
  CloseFd(&seg.read_fd);
  if (::unlink(seg.path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("spool: cannot delete {}: {}", seg.path, std::strerror(errno));
  }
  disk_bytes_ -= std::min(disk_bytes_, seg.size);
  if (active_segment_ == id) active_segment_ = kNoSegment;
  segments_.erase(it);
  if (records > 0) {
    spdlog::warn(
        "spool: max_bytes {} reached; deleted the oldest segment with {} records ({} samples) "
        "not yet sent everywhere",
        options_.max_bytes, records, samples);
  }
}

void Spool::EnforceDiskCap(uint64_t incoming) {
  while (disk_bytes_ + incoming > static_cast<uint64_t>(options_.max_bytes) && !segments_.empty() &&
         segments_.begin()->first != active_segment_) {
    DeleteSegment(segments_.begin());
  }
}

void Spool::EnforceMemoryCap() {
  uint64_t dropped_records = 0, dropped_samples = 0;
  while (memory_bytes_ > static_cast<uint64_t>(options_.max_memory_bytes)) {
    // The oldest record held in memory, keeping the newest one whatever its size.
    size_t i = 0;
    while (i < entries_.size() && !entries_[i].memory) ++i;
    if (i + 1 >= entries_.size()) break;
    ++dropped_records;
    dropped_samples += entries_[i].samples;
    DropEntry(i, "memory_cap");
  }
  if (dropped_records > 0) {
    spdlog::warn(
        "spool: max_memory_bytes {} reached; dropped the {} oldest records ({} samples) held in "
        "memory",
        options_.max_memory_bytes, dropped_records, dropped_samples);
  }
}

size_t Spool::IndexOf(uint64_t seq) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                             [](const Entry& e, uint64_t s) { return e.seq < s; });
  return static_cast<size_t>(it - entries_.begin());
}

void Spool::AdvanceCursor(Endpoint& ep) {
  size_t i = IndexOf(ep.next_seq);
  while (i < entries_.size() && ep.acked_ahead.erase(entries_[i].seq) > 0) ++i;
  ep.next_seq = i < entries_.size() ? entries_[i].seq : std::max(ep.next_seq, next_seq_);
  ep.acked_ahead.erase(ep.acked_ahead.begin(), ep.acked_ahead.lower_bound(ep.next_seq));
}

void Spool::CollectGarbage() {
  uint64_t done = next_seq_;
  for (const auto& ep : endpoints_) done = std::min(done, ep.next_seq);
  while (!entries_.empty() && entries_.front().seq < done) {
    ReleaseEntry(entries_.front());
    entries_.pop_front();
  }
  for (auto it = segments_.begin(); it != segments_.end();) {
    if (it->second.live == 0 && it->first != active_segment_) {
      CloseFd(&it->second.read_fd);
      if (::unlink(it->second.path.c_str()) != 0 && errno != ENOENT) {
        spdlog::warn("spool: cannot delete {}: {}", it->second.path, std::strerror(errno));
      }
      disk_bytes_ -= std::min(disk_bytes_, it->second.size);
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Spool::PersistCursor(Endpoint& ep, bool force) {
  const uint64_t cursor = std::min(ep.next_seq, ep.cursor_limit);
  if (lock_fd_ < 0 || ep.cursor_path.empty() || ep.persisted == cursor) return Status::Ok();
  const auto now = clock_.SteadyNow();
  if (!force && options_.fsync != FsyncPolicy::kAlways &&
      now - ep.persisted_at < options_.fsync_interval) {
    return Status::Ok();  // a crash now resends at most fsync_interval of records
  }
  const std::string text = CursorText(cursor, ep.url);
  struct iovec iov = {const_cast<char*>(text.data()), text.size()};
  Status st;
  if (ep.cursor_fd >= 0) {
    // Overwritten in place (same size, so fdatasync writes the data block only), rather than
    // written to a new file and renamed over the old one every fsync_interval: creating and
    // renaming a file was most of the sender thread's disk work. A torn write fails the CRC
    // and makes the next start resend everything the spool holds, never skip a record.
    // Synced for kAlways only (see FsyncPolicy): a cursor bounds duplicates, it loses nothing.
    st = WriteFully(ep.cursor_fd, &iov, 1, 0, ep.cursor_path);
    if (st.ok() && options_.fsync == FsyncPolicy::kAlways && SyncCursor(ep.cursor_fd) != 0) {
      st = ErrnoStatus(errno, "fdatasync " + ep.cursor_path);
    }
    if (!st.ok()) CloseFd(&ep.cursor_fd);  // next time: replaced whole
  } else {
    // The first write of this run replaces the file whole (earlier agents wrote it shorter).
    std::string tmp = ep.cursor_path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      st = ErrnoStatus(errno, "create " + tmp);
    } else {
      st = WriteFully(fd, &iov, 1, 0, tmp);
      // Synced before the rename, so that a power cut never leaves an empty cursor file.
      if (st.ok() && options_.fsync != FsyncPolicy::kNever && SyncCursor(fd) != 0) {
        st = ErrnoStatus(errno, "fdatasync " + tmp);
      }
      if (st.ok() && ::rename(tmp.c_str(), ep.cursor_path.c_str()) != 0) {
        st = ErrnoStatus(errno, "rename " + tmp);
      }
      if (st.ok()) {
        ep.cursor_fd = fd;  // the renamed file: later updates go here
      } else {
        ::close(fd);
      }
    }
  }
  if (!st.ok()) {
    disk_errors_family_.Add({{"op", "cursor"}}).Increment();
    // Harmless for delivery (after a restart the endpoint is sent some records again): warn once.
    if (!cursor_warned_) {
      spdlog::warn("spool: cannot persist the cursor of {}: {}", ep.url, st.message());
      cursor_warned_ = true;
    }
    return st;
  }
  cursor_warned_ = false;
  ep.persisted = cursor;
  ep.persisted_at = now;
  return Status::Ok();
}

void Spool::UpdateGauges() {
  disk_bytes_gauge_.Set(static_cast<double>(disk_bytes_));
  memory_bytes_gauge_.Set(static_cast<double>(memory_bytes_));
  samples_gauge_.Set(static_cast<double>(samples_));
  double age = 0;
  if (!entries_.empty()) {
    age = std::max<double>(0, (clock_.NowUnixMs() - entries_.front().min_ts_ms) / 1000.0);
  }
  oldest_age_gauge_.Set(age);
  degraded_gauge_.Set(degraded_ ? 1 : 0);
  unreadable_newer_gauge_.Set(static_cast<double>(unreadable_.size()));
  for (auto& ep : endpoints_) {
    ep.pending_samples_gauge->Set(static_cast<double>(ep.pending_samples));
    ep.pending_bytes_gauge->Set(static_cast<double>(ep.pending_bytes));
  }
}

// ---------------------------------------------------------------- reading

bool Spool::WaitPending(size_t endpoint, const std::atomic<bool>& stop,
                        std::chrono::steady_clock::time_point deadline) {
  const Endpoint& ep = endpoints_.at(endpoint);  // the vector never changes after construction
  auto pending = [&] {
    std::lock_guard lock(mu_);
    if (ep.pending_samples > 0) return true;
    for (size_t i = IndexOf(ep.next_seq); i < entries_.size(); ++i) {
      if (IsPending(ep, entries_[i])) return true;  // records without samples
    }
    return false;
  };
  // std::chrono::steady_clock is CLOCK_MONOTONIC.
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  for (;;) {
    // Posts from before this check are consumed: their records are seen by it. A post after
    // it (Append, Interrupt) wakes the wait below, or makes it return at once.
    while (::sem_trywait(ep.wake.get()) == 0) continue;
    if (stop.load()) return false;
    if (pending()) return true;
    if (::sem_clockwait(ep.wake.get(), CLOCK_MONOTONIC, &ts) != 0 && errno == ETIMEDOUT) {
      return !stop.load() && pending();
    }
  }
}

void Spool::Interrupt() {
  for (auto& ep : endpoints_) ::sem_post(ep.wake.get());
}

Result<std::shared_ptr<const std::string>> Spool::ReadBody(const Entry& e) {
  if (e.memory) return e.memory;
  if (e.cached) return e.cached;  // written by this process: read back only after a restart
  auto it = segments_.find(e.segment);
  if (it == segments_.end()) return Internal("spool: record of a deleted segment");
  Segment& seg = it->second;
  if (seg.read_fd < 0) {
    seg.read_fd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (seg.read_fd < 0) return ErrnoStatus(errno, "open " + seg.path);
  }
  std::string buf(kRecordHeaderBytes + e.body_bytes, '\0');
  RETURN_IF_ERROR(ReadFully(seg.read_fd, buf.data(), buf.size(), e.offset, seg.path));
  std::string_view body(buf.data() + kRecordHeaderBytes, e.body_bytes);
  uint32_t crc = Crc32c(std::string_view(buf.data() + 8, kRecordHeaderBytes - 8));
  if (GetU32(buf.data()) != e.body_bytes || GetU64(buf.data() + 8) != e.seq ||
      Crc32c(body, crc) != GetU32(buf.data() + 4)) {
    return InvalidArgument(seg.path + ": record " + std::to_string(e.seq) + " at offset " +
                           std::to_string(e.offset) + " fails its checksum");
  }
  buf.erase(0, kRecordHeaderBytes);
  return std::make_shared<const std::string>(std::move(buf));
}

std::vector<SpoolRecord> Spool::NextBatch(size_t endpoint, ReplayOrder order, size_t max_samples,
                                          uint64_t single_until, int64_t out_of_order_window_ms) {
  std::lock_guard lock(mu_);
  Endpoint& ep = endpoints_.at(endpoint);
  std::vector<size_t> picked;
  size_t i = IndexOf(ep.next_seq);
  while (i < entries_.size() && !IsPending(ep, entries_[i])) ++i;
  if (i >= entries_.size()) return {};
  const size_t newest = entries_.size() - 1;
  // Within 90% of the window: the replay itself takes time while newer sweeps arrive.
  const bool within_window =
      out_of_order_window_ms == INT64_MAX ||
      entries_[newest].max_ts_ms - entries_[i].min_ts_ms <= out_of_order_window_ms / 10 * 9;
  if (order == ReplayOrder::kNewestFirst && newest != i && IsPending(ep, entries_[newest]) &&
      within_window) {
    picked.push_back(newest);
  } else {
    picked.push_back(i);
    uint64_t samples = entries_[i].samples;
    int64_t max_ts = entries_[i].max_ts_ms;
    if (entries_[i].seq >= single_until) {
      for (size_t j = i + 1; j < entries_.size(); ++j) {
        const Entry& e = entries_[j];
        if (!IsPending(ep, e)) continue;
        if (samples + e.samples > max_samples || e.min_ts_ms <= max_ts) break;
        picked.push_back(j);
        samples += e.samples;
        max_ts = e.max_ts_ms;
      }
    }
  }
  std::vector<SpoolRecord> out;
  std::vector<uint64_t> corrupt;
  for (size_t k : picked) {
    const Entry& e = entries_[k];
    auto body = ReadBody(e);
    if (!body.ok()) {
      spdlog::warn("spool: dropping an unreadable record: {}", body.status().message());
      disk_errors_family_.Add({{"op", "read"}}).Increment();
      corrupt.push_back(e.seq);
      continue;
    }
    SpoolRecord r;
    r.seq = e.seq;
    r.samples = e.samples;
    r.min_ts_ms = e.min_ts_ms;
    r.max_ts_ms = e.max_ts_ms;
    r.body = std::move(body).value();
    out.push_back(std::move(r));
  }
  for (uint64_t seq : corrupt) {
    size_t k = IndexOf(seq);
    ++corrupt_records_;
    corrupt_records_counter_.Increment();
    DropEntry(k, "corrupt");
  }
  if (!corrupt.empty()) {
    CollectGarbage();
    UpdateGauges();
  }
  return out;
}

void Spool::Ack(size_t endpoint, const std::vector<uint64_t>& seqs) {
  std::lock_guard lock(mu_);
  Endpoint& ep = endpoints_.at(endpoint);
  for (uint64_t seq : seqs) {
    if (seq < ep.next_seq || ep.acked_ahead.count(seq) != 0) continue;
    size_t i = IndexOf(seq);
    if (i >= entries_.size() || entries_[i].seq != seq) continue;  // dropped meanwhile
    ep.acked_ahead.insert(seq);
    ep.pending_samples -= entries_[i].samples;
    ep.pending_bytes -= entries_[i].body_bytes;
  }
  AdvanceCursor(ep);
  CollectGarbage();
  PersistCursor(ep, /*force=*/false).IgnoreError();  // logged and counted; costs only resends
  UpdateGauges();
}

uint64_t Spool::PendingSamples(size_t endpoint) const {
  std::lock_guard lock(mu_);
  return endpoints_.at(endpoint).pending_samples;
}

SpoolStats Spool::Stats() const {
  std::lock_guard lock(mu_);
  SpoolStats s;
  s.records = entries_.size();
  s.samples = samples_;
  s.disk_bytes = disk_bytes_;
  s.memory_bytes = memory_bytes_;
  s.segments = segments_.size();
  s.next_seq = next_seq_;
  s.degraded = degraded_;
  s.corrupt_records = corrupt_records_;
  s.unreadable_segments = unreadable_.size();
  s.corrupt_bytes = corrupt_bytes_;
  s.dropped_samples = dropped_;
  s.segment_syncs = segment_syncs_;
  s.cursor_syncs = cursor_syncs_;
  return s;
}

}  // namespace suanli::agent
