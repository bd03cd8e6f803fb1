// Spool: the agent's persistent queue of encoded sweeps, shared by every remote_write endpoint.
//
// Every sweep is appended here before it is sent; a record leaves the spool only once EVERY
// configured endpoint has acknowledged it (2xx) or given it up (a non-retryable 4xx). Each
// endpoint has its own read cursor, persisted in a small file (see "On disk"), so an agent
// restarted after SIGKILL resumes where it was. A record acknowledged but
// whose cursor was not yet persisted is sent again after a crash: receivers treat an exact
// duplicate (same series, timestamp and value) as a no-op, as Prometheus and our aggregator do.
//
// On disk (directory `directory`):
//   LOCK                   flock()ed while a spool is open: two agents never share a directory.
//   NNNNNNNNNNNNNNNNNNNN.seg  segment files named by their first record's sequence number: a
//                          32-byte header (magic "SUANLISP", version, CRC32C, first sequence,
//                          creation time), then records: a 40-byte header (body length, CRC32C
//                          of the rest, sequence, sample count, min and max timestamp in Unix
//                          ms) and the body (a snappy-compressed remote_write request).
//                          Little-endian; a record is appended with one pwritev.
//   cursor-HHHHHHHHHHHHHHHH   one per endpoint (hash of its URL): the next sequence it needs,
//                          its URL and a CRC-32C of both. Replaced whole (temporary name,
//                          rename) at its first write in a run, then overwritten in place (its
//                          size never changes); a torn update fails the CRC, and an unreadable
//                          cursor makes its endpoint resend everything held (never skip).
// At open every segment is read and checked; the first torn or corrupt record of a segment (a
// crash or power cut in the middle of a write) and everything after it in that segment is cut
// off (truncated), counted and logged; everything before it is kept.
// A segment whose header (magic intact) carries a format version newer than this build writes
// was left by a newer agent: after a rollback it is kept on disk untouched, never cut, deleted
// or counted against max_bytes, its records are not sent, and it is reported (a warning naming
// the file and version, and suanli_agent_spool_unreadable_segments{reason="newer_version"}), so
// that rolling forward again delivers it. To keep that backlog whole for the newer agent:
//   - sequence numbers go on past first_seq + file size of every such segment (each record takes
//     at least one byte and one sequence number), so this build's segments sort after it and
//     never reuse its name or its records' numbers;
//   - an endpoint's persisted cursor stays at the first such record it may still need
//     (max(first_seq, its cursor at open)); what this build sends past it is sent again by the
//     newer agent, duplicates that receivers drop, rather than records skipped.
//
// Bounded: when the segments would exceed max_bytes the oldest segments are deleted (the
// samples they held for an endpoint that had not sent them are counted as dropped, reason
// "cap"). When the directory cannot be used (full disk, read-only, unwritable, locked by another
// agent), appends go to memory instead (bounded by max_memory_bytes, oldest dropped first) and
// the disk is retried every disk_retry_interval; records kept in memory are written to disk,
// in order, once it works again. Memory mode is also what an empty `directory` gives.
//
// A spool that could not open its directory at start numbers its records from 2^62 + a
// time-based offset, so that once the directory opens later, what earlier runs left there
// sorts (and is sent) first.
// Units: sizes in bytes, timestamps in Unix milliseconds, sequence numbers count records from 0
// over the spool's lifetime.
// Thread-safety: every method may be called from any thread (one mutex inside); Append from the
// sampling thread and NextBatch/Ack from each endpoint's sender thread is the intended use.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <semaphore.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/crc32c.h"
#include "core/status.h"

namespace suanli::agent {

using ::suanli::Crc32c;  // core/crc32c.h: record and header checksums

// Whatever the policy, a record is in the kernel's page cache once Append returns, so a crash or
// SIGKILL of the agent loses nothing, and an outage of the endpoints loses nothing either (the
// spool holds the records until they are accepted). The policy decides what a power cut (or a
// kernel crash) may lose.
enum class FsyncPolicy {
  kAlways,    // fdatasync after every append and cursor update: a power cut loses nothing
  kInterval,  // group sync: an append fdatasyncs the segment (with every record before it) only
              // when fsync_interval has passed since the last sync AND a record written since
              // then is still held (not yet accepted by every endpoint). Records the endpoints
              // accepted before that are never synced: what a receiver holds needs no disk, and
              // a host whose receivers keep up (each sweep accepted before the next, as at the
              // default 15 s sampling) never waits on fdatasync. A segment is synced when it is
              // closed. A power cut loses at most the records of the last fsync_interval plus
              // one sample interval that no endpoint had accepted.
  kNever,     // leave it to the kernel: a power cut loses what the kernel had not written back
};
// Cursors are written at most once per fsync_interval while records are acknowledged (kAlways:
// at every acknowledgement, synced), and when the spool closes. kInterval and kNever do not
// sync a cursor's update: it only bounds what an endpoint is sent again after a restart, and
// receivers drop exact duplicates. After a crash an endpoint is sent again at most
// fsync_interval of records it had already accepted; after a power cut, at most what the kernel
// had not yet written back of the cursor file (vm.dirty_expire_centisecs: 30 s by default).

// The order in which an endpoint's backlog is sent after an outage.
enum class ReplayOrder {
  // Strictly oldest first: each series stays in time order (what Prometheus' receiver needs
  // without out_of_order_time_window); fresh samples wait until the backlog is through.
  kOldestFirst,
  // The newest sweep first whenever one is waiting, then backlog batches oldest first: fresh
  // samples arrive at once, but older samples of a series arrive after newer ones (needs a
  // receiver that accepts out-of-order samples, as our aggregator, Mimir and VictoriaMetrics do).
  kNewestFirst,
};

struct SpoolOptions {
  std::string directory;                         // empty: memory only (nothing survives a restart)
  int64_t max_bytes = int64_t{256} << 20;        // all segment files together
  int64_t segment_bytes = int64_t{4} << 20;      // a segment is closed once it would exceed this
  int64_t max_memory_bytes = int64_t{32} << 20;  // records held in memory when the disk fails
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  // kInterval: the longest time between two syncs while records are appended, and between two
  // cursor writes while records are acknowledged.
  std::chrono::milliseconds fsync_interval{1000};
  std::chrono::milliseconds disk_retry_interval{30000};  // memory mode: next try of the disk
};

// One spooled sweep (or batch of sweeps) as it was appended.
struct SpoolRecord {
  uint64_t seq = 0;
  uint32_t samples = 0;
  int64_t min_ts_ms = 0;
  int64_t max_ts_ms = 0;
  std::shared_ptr<const std::string> body;  // the encoded remote_write request
};

// Point-in-time figures, for tests and the benchmark (the same values are exported as metrics).
struct SpoolStats {
  uint64_t records = 0;              // records held (on disk or in memory)
  uint64_t samples = 0;              // samples in them
  uint64_t disk_bytes = 0;           // segment files, headers included
  uint64_t memory_bytes = 0;         // record bodies held in memory
  uint64_t segments = 0;             // segment files
  uint64_t next_seq = 0;             // sequence number the next append gets
  bool degraded = false;             // appends go to memory because the directory is unusable
  uint64_t corrupt_records = 0;      // cut off at open, or failed their check when read
  uint64_t unreadable_segments = 0;  // segment files of a newer format, kept unread
  uint64_t corrupt_bytes = 0;
  uint64_t segment_syncs = 0;                       // fdatasync of a segment file (records)
  uint64_t cursor_syncs = 0;                        // fdatasync of a cursor file
  std::map<std::string, uint64_t> dropped_samples;  // reason -> samples no endpoint got
};

// Exported metric names shared with RemoteWriteSender (per endpoint, label "endpoint").
inline constexpr const char* kSamplesDroppedMetric =
    "suanli_agent_remote_write_samples_dropped_total";
prometheus::Family<prometheus::Counter>& SamplesDroppedFamily(prometheus::Registry& registry);

class Spool {
 public:
  // Opens (creating if needed) the spool for `endpoints` (their URLs, in configuration order;
  // the index of an endpoint in this list is its id below). Never fails: a directory that cannot
  // be used puts the spool in memory mode (logged and counted) and is retried later.
  // A configured endpoint without a cursor file starts at the end of the spool (it gets every
  // sample appended from now on); the cursor files of endpoints no longer configured are
  // deleted, and the samples only they still needed are counted as dropped.
  Spool(SpoolOptions options, std::vector<std::string> endpoints, const Clock& clock,
        prometheus::Registry& registry);
  ~Spool();  // persists cursors, closes files; records in memory are lost (logged)
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends one record. Never fails: a disk error switches to memory mode.
  void Append(std::string body, uint32_t samples, int64_t min_ts_ms, int64_t max_ts_ms);

  // Waits until `endpoint` has a record to send, `stop` is set (after Interrupt()), or
  // `deadline` passes. True when a record is pending.
  bool WaitPending(size_t endpoint, const std::atomic<bool>& stop,
                   std::chrono::steady_clock::time_point deadline);
  // Wakes every WaitPending so that it rechecks its `stop` flag.
  void Interrupt();

  // The next records `endpoint` should send, in sequence order: at least one when any is
  // pending, then more while their samples stay within `max_samples` and their timestamps keep
  // increasing (a wall clock stepped back ends a batch). kNewestFirst returns the newest record
  // alone while it is unsent and older ones are pending too. `single_until`: records with a
  // sequence number below it are returned one at a time (isolating a refused one).
  // `out_of_order_window_ms` (kNewestFirst only): the newest record jumps ahead only when the
  // oldest pending one is within 90% of this of it, so that the receiver, which then measures
  // "too old" from the newest sample, still accepts the backlog behind it; older backlogs go
  // oldest first until they are that close.
  std::vector<SpoolRecord> NextBatch(size_t endpoint, ReplayOrder order, size_t max_samples,
                                     uint64_t single_until = 0,
                                     int64_t out_of_order_window_ms = INT64_MAX);

  // `endpoint` is done with these records (accepted, or given up as rejected): its cursor moves
  // past them and is persisted; records every endpoint is done with are released.
  void Ack(size_t endpoint, const std::vector<uint64_t>& seqs);

  // Samples `endpoint` still has to send.
  uint64_t PendingSamples(size_t endpoint) const;
  SpoolStats Stats() const;
  const SpoolOptions& options() const { return options_; }

 private:
  struct Segment {
    uint64_t first_seq = 0;
    std::string path;
    uint64_t size = 0;           // bytes, header included
    uint64_t live = 0;           // records of this segment still in entries_
    int write_fd = -1;           // the active (last) segment only
    bool unsynced = false;       // records written since its last fdatasync (kInterval)
    uint64_t unsynced_from = 0;  // while unsynced: the first of them that may still be held
    int read_fd = -1;            // opened on first read
  };
  // A segment file of a newer format, kept unread (see the file comment).
  struct Unreadable {
    std::string path;
    uint32_t version = 0;
    uint64_t first_seq = 0;
    uint64_t end_seq = 0;  // first_seq + file size: above every sequence number it can hold
  };
  struct Entry {
    uint64_t seq = 0;
    uint32_t samples = 0;
    int64_t min_ts_ms = 0;
    int64_t max_ts_ms = 0;
    uint64_t body_bytes = 0;
    uint64_t segment = UINT64_MAX;              // first_seq of its segment; UINT64_MAX: in memory
    uint64_t offset = 0;                        // of the record header in the segment
    std::shared_ptr<const std::string> memory;  // body, while not on disk
    // Body of a record on disk, kept from Append until it leaves the spool so that the senders
    // do not read back what was just written (bounded by kMaxCachedBytes in all).
    std::shared_ptr<const std::string> cached;
  };
  struct Endpoint {
    std::string url;
    std::string cursor_path;
    uint64_t next_seq = 0;            // every record before it is done
    std::set<uint64_t> acked_ahead;   // done records at or after next_seq (newest_first)
    uint64_t persisted = UINT64_MAX;  // next_seq as last written to the cursor file
    // The cursor file never goes past this: the first record of an unreadable (newer format)
    // segment the endpoint may still need. UINT64_MAX: no limit.
    uint64_t cursor_limit = UINT64_MAX;
    std::chrono::steady_clock::time_point persisted_at{};  // when (kInterval: at most once per)
    int cursor_fd = -1;  // the cursor file, once this run has written it: updated in place
    // Posted by Append and Interrupt; WaitPending sleeps on it (not on a condition variable,
    // whose mutex, re-locked as contended after a wait, cost a useless futex wake per record).
    std::unique_ptr<sem_t, void (*)(sem_t*)> wake{nullptr, nullptr};
    uint64_t pending_samples = 0;
    uint64_t pending_bytes = 0;
    prometheus::Counter* dropped_cap = nullptr;
    prometheus::Counter* dropped_memory = nullptr;
    prometheus::Counter* dropped_corrupt = nullptr;
    prometheus::Gauge* pending_samples_gauge = nullptr;
    prometheus::Gauge* pending_bytes_gauge = nullptr;
  };

  // All below: mu_ held.
  void OpenDirectory();
  Status LockDirectory();
  void LoadSegments();
  void LoadSegment(const std::string& path, uint64_t first_seq);
  void LoadCursors();
  // `force`: write even within fsync_interval of the last write (closing, new endpoints).
  Status PersistCursor(Endpoint& ep, bool force = true);
  // Whether the write of record `seq` to `seg` should be followed by fdatasync, per the policy
  // (kInterval: only while a record written before it since the last sync is still held).
  bool SegmentSyncDue(Segment& seg, uint64_t seq);
  // fdatasync, counted.
  int SyncSegment(Segment& seg);
  int SyncCursor(int fd);
  Status WriteToDisk(Entry& e, const std::string& body);
  Status StartSegment(uint64_t first_seq);
  void CloseActiveSegment();
  Status LateOpen();
  bool TryRecoverDisk();
  void EnterMemoryMode(const Status& why, const char* op);
  void EnforceDiskCap(uint64_t incoming);
  void EnforceMemoryCap();
  void DeleteSegment(std::map<uint64_t, Segment>::iterator it);
  // Removes entries_[i] before every endpoint had it: counted as dropped for `reason`.
  void DropEntry(size_t i, const char* reason);
  void ReleaseEntry(const Entry& e);  // accounting for an entry leaving entries_
  bool IsPending(const Endpoint& ep, const Entry& e) const;
  Result<std::shared_ptr<const std::string>> ReadBody(const Entry& e);
  size_t IndexOf(uint64_t seq) const;  // first entry with seq >= `seq`
  void AdvanceCursor(Endpoint& ep);
  void CollectGarbage();
  void UpdateGauges();
  void CountDropped(const char* reason, uint64_t samples);

  const SpoolOptions options_;
  // The log level as of the start (a reload builds a new spool): asking spdlog's registry on
  // every append showed in the sampling thread's profile.
  const bool log_debug_ = spdlog::should_log(spdlog::level::debug);
  const Clock& clock_;

  mutable std::mutex mu_;
  std::deque<Entry> entries_;             // sorted by seq
  std::map<uint64_t, Segment> segments_;  // by first_seq
  std::vector<Unreadable> unreadable_;    // in name order
  std::vector<Endpoint> endpoints_;
  uint64_t next_seq_ = 0;
  uint64_t disk_bytes_ = 0;
  uint64_t memory_bytes_ = 0;
  uint64_t cached_bytes_ = 0;  // Entry::cached bodies
  uint64_t samples_ = 0;
  int lock_fd_ = -1;                      // held while the directory is ours
  uint64_t active_segment_ = UINT64_MAX;  // the segment appends go to
  bool disk_ok_ = false;                  // appends go to disk
  bool degraded_ = false;                 // the directory is configured but unusable
  bool cursor_warned_ = false;
  std::chrono::steady_clock::time_point last_sync_{};  // kInterval: the last segment fdatasync
  uint64_t recovered_records_ = 0;  // moved from memory to disk by the last retry
  std::chrono::steady_clock::time_point next_disk_retry_{};
  uint64_t corrupt_records_ = 0, corrupt_bytes_ = 0;
  std::map<std::string, uint64_t> dropped_;
  // This spool's syncs, for Stats(); the counters below add up every spool of the process
  // (a reload opens a new one on the same registry).
  uint64_t segment_syncs_ = 0, cursor_syncs_ = 0;

  prometheus::Gauge& disk_bytes_gauge_;
  prometheus::Gauge& memory_bytes_gauge_;
  prometheus::Gauge& samples_gauge_;
  prometheus::Gauge& oldest_age_gauge_;
  prometheus::Gauge& degraded_gauge_;
  prometheus::Counter& appended_records_;
  prometheus::Counter& corrupt_records_counter_;
  prometheus::Gauge& unreadable_newer_gauge_;
  prometheus::Counter& corrupt_bytes_counter_;
  prometheus::Family<prometheus::Counter>& dropped_family_;
  prometheus::Family<prometheus::Counter>& disk_errors_family_;
  prometheus::Counter& segment_syncs_counter_;
  prometheus::Counter& cursor_syncs_counter_;
};

}  // namespace suanli::agent
