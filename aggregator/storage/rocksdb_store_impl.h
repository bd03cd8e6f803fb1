// RocksDbStore's shared internals: the Impl that its parts (rocksdb_store.cc: open, stats,
// log and cursors; commit_queue.cc; head_append.cc; head_read.cc; maintenance.cc) implement,
// and the commit queue's items. Included by those files only. Lock order: checkpoint_mu, then
// head_mu, then index_mu or cf_mu; commit_mu is taken alone or last.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/series_index.h"
#include "aggregator/storage/store_keys.h"

namespace suanli::storage {

using rollup::Resolution;

inline std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

inline Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string msg = what + ": " + s.ToString();
  if (s.IsIOError() || s.IsCorruption()) return IoError(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgument(std::move(msg));
  if (s.IsNotFound()) return NotFound(std::move(msg));
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Unavailable(std::move(msg));
  return Internal(std::move(msg));
}

inline uint64_t BitsOf(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Merges sorted, distinct `add` (whose timestamps are not in `base`) into sorted `base`.

class SnapshotGuard {
 public:
  explicit SnapshotGuard(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotGuard() { db_->ReleaseSnapshot(snap_); }
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// A WriteBatch waiting for the commit leader. Items are queued in seq order under head_mu
// and written in that order, so a later batch never overtakes an earlier one (a checkpoint
// cannot overwrite a closed chunk with an older copy).
struct CommitItem {
  explicit CommitItem(size_t reserved_bytes = 0) : wb(reserved_bytes) {}
  uint64_t seq = 0;
  rocksdb::WriteBatch wb;
  Status status;
  bool done = false;
};

// Bytes reserved for a new open chunk: its first ~20-40 samples, so that the chunks of every
// series do not regrow (malloc and copy) at the second, fourth and eighth sample of each
// window; a one-hour chunk at 15 s holds 240 samples (~360-720 bytes) anyway.
constexpr size_t kHeadReserveBytes = 64;

// One sample of a batch being appended.
struct Pending {
  SeriesEntry* entry;
  int64_t ts;
  uint64_t bits;
};

struct LastWindow {
  int64_t window;
  std::string value;
};

// Closed windows the general append path will read, read outside head_mu (ReadClosed) and
// used under it only while Current().
struct ClosedReads {
  using Chunks = std::map<std::pair<uint64_t, int64_t>, std::optional<std::vector<Sample>>>;
  using Newest = std::unordered_map<uint64_t, int64_t>;
  Chunks chunks;  // (series id, window) -> its closed chunk, if any
  Newest newest;  // series id -> newest raw sample on disk, for series whose max is unknown
  std::vector<std::pair<const SeriesEntry*, uint32_t>> versions;
  // No closed window of these series was written or queued since the plan (head_mu held).
  bool Current() const;
};

struct RocksDbStore::Impl {
  RocksDbStoreOptions options;
  std::function<uint64_t(const Labels&)> hash_fn;
  std::function<int64_t()> now_fn;
  std::unique_ptr<rocksdb::Env> env;  // over options.file_system, when set
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyOptions part_cf_options[4];          // per resolution
  std::vector<rocksdb::ColumnFamilyHandle*> fixed_handles;  // default, index, head
  rocksdb::ColumnFamilyHandle* index_cf = nullptr;
  rocksdb::ColumnFamilyHandle* head_cf = nullptr;

  // Time partitions: resolution -> partition index -> handle. Lock order: head_mu, cf_mu.
  mutable std::shared_mutex cf_mu;
  std::map<int64_t, rocksdb::ColumnFamilyHandle*> parts[4];

  mutable std::shared_mutex index_mu;
  SeriesTable by_hash;
  EntryArena entry_arena;  // declared before by_id: outlives it
  IdTable by_id;
  EntryPins pins;
  // Bumped under head_mu each time series are forgotten: an append whose lookups came before
  // checks its entries for `removed` only then.
  std::atomic<uint64_t> removals{0};
  // Series per `dc` value.
  std::unordered_map<std::string, uint64_t, StringViewHash, std::equal_to<>> dc_series;
  // Postings: label name -> value -> ids in increasing order (ids are allocated in order under
  // index_mu). In memory only, rebuilt at Open from the `s` keys: writing them as RocksDB keys
  // cost four random memtable inserts per new series, most of the CPU of creating one. Values
  // are hashed, not ordered (string compares down a tree were most of AddPostings' time);
  // matchers visit every value of a name either way.
  std::map<std::string, ValuePostings, std::less<>> postings;
  StoreLimits limits;
  uint64_t next_id = 1;  // 0 is never a series id

  // Head: every SeriesEntry head field, seq assignment and the commit queue's order.
  std::mutex head_mu;
  uint64_t next_seq = 1;
  uint64_t log_bytes_since_checkpoint = 0;
  std::atomic<uint64_t> head_series{0};
  // Chunks of windows the in-order path left behind, not yet written as closed windows. At an
  // hour boundary every series moves on at once, and closing ~30 us per chunk inline would
  // stall ingest for many seconds at 1M series: the background thread writes them in small
  // batches instead. Anything that rewrites closed windows or reads them under head_mu (the
  // general Append path, checkpoint, retention) first writes them all (FlushClosingLocked), so
  // it sees what it saw before; checkpoint and retention first drain the queue in the
  // closer's small batches (DrainClosing), so that the lock is held for what is left only;
  // Select copies them instead (SeriesEntry::closing_chunk). Their
  // samples stay in the head log and checkpoint until written.
  struct Closing {
    SeriesEntry* entry;
    ChunkEncoder chunk;
  };
  std::deque<Closing> closing;

  // Group commit.
  std::mutex commit_mu;
  std::condition_variable commit_cv;
  std::deque<CommitItem*> queue;
  bool leader_busy = false;
  uint64_t written_seq = 0;  // every item with seq <= this is written (commit_mu)
  uint64_t done_seq = 0;     // every item with seq <= this is done: written, kept or failed
  // The first seq of the first group whose write failed, and its error (commit_mu).
  uint64_t failed_seq = std::numeric_limits<uint64_t>::max();
  Status failed_status;
  // A full disk (ENOSPC) is not fatal: the batches that could not be written (already applied
  // to the heads) are kept here in seq order, with every batch queued after them, and written
  // again in that order once RocksDB resumes; until then Append answers kUnavailable before
  // touching the heads (commit_mu; disk_full mirrors `!unwritten.empty()` for lock-free reads).
  std::deque<std::pair<uint64_t, rocksdb::WriteBatch>> unwritten;
  std::atomic<bool> disk_full{false};
  Status DiskFull() const {
    return Unavailable("storage at " + options.path +
                       " is out of disk space; nothing of this request was stored; retry later");
  }
  // The background thread's share while the disk is full: resume RocksDB and write the
  // unwritten batches; true once done.
  bool TryResume();

  // First log seq Replay applies (head_mu); written with each checkpoint.
  uint64_t replay_from = 0;
  // Named cursors (Store::SetCursor), as on disk; log cursors keep the log (cursor_mu).
  std::mutex cursor_mu;
  std::map<std::string, Cursor, std::less<>> cursors;
  // The lowest kLog cursor value, or UINT64_MAX (caller holds cursor_mu).
  uint64_t LowestLogCursorLocked() const {
    uint64_t low = std::numeric_limits<uint64_t>::max();
    for (const auto& [name, c] : cursors) {
      if (c.kind == CursorKind::kLog) low = std::min(low, static_cast<uint64_t>(c.value));
    }
    return low;
  }
  Status CommitCursorBatch(std::unique_ptr<CommitItem> item);

  std::mutex checkpoint_mu;  // one checkpoint or retention pass at a time
  std::thread background;
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  bool stopping = false;
  bool checkpoint_wanted = false;

  std::atomic<uint64_t> series_count{0};
  std::atomic<bool> write_failed{false};
  std::atomic<uint64_t> rejected_too_old{0}, rejected_series_limit{0}, rejected_labels_limit{0},
      partitions_dropped{0}, checkpoints{0}, series_forgotten{0};

  ~Impl() {
    if (db == nullptr) return;
    for (auto& m : parts) {
      for (auto& [p, h] : m) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    for (rocksdb::ColumnFamilyHandle* h : fixed_handles) {
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    rocksdb::Status s = db->Close();
    if (!s.ok()) spdlog::warn("storage: closing {}: {}", options.path, s.ToString());
    delete db;
  }

  // Caller holds index_mu (shared or unique). `labels` canonical.
  SeriesEntry* Find(std::span<const LabelView> labels, uint64_t hash) const {
    return by_hash.Find(
        hash, [&](const SeriesEntry& e) { return BlobEqualsViews(e.labels_blob, labels); });
  }
  SeriesEntry* Find(const Labels& labels, uint64_t hash) const {
    return Find(ViewsOf(labels), hash);
  }
  // The lookup hash of canonical labels; the seam, when set, replaces it (tests of collisions).
  uint64_t LookupHash(std::span<const LabelView> labels) const {
    return options.label_hash ? options.label_hash(LabelsOf(labels)) : HashViews(labels);
  }
  uint64_t LookupHash(const Labels& labels) const {
    return options.label_hash ? options.label_hash(labels) : HashViews(ViewsOf(labels));
  }
  SeriesEntry* ById(uint64_t id) const { return by_id.Get(id); }

  // Caller holds index_mu unique.
  SeriesEntry* Insert(std::unique_ptr<SeriesEntry> entry) {
    SeriesEntry* e = entry.get();
    by_hash.Insert(e->hash, e);
    by_id.Put(std::move(entry));
    return e;
  }

  int64_t Now() const { return now_fn(); }
  int64_t Cutoff(int res) const {
    int64_t keep = options.retention_ms[res];
    return keep <= 0 ? kNoSamples : SatSub(Now(), keep);
  }
  bool PartitionExpired(int res, int64_t p) const {
    int64_t c = Cutoff(res);
    return c != kNoSamples && PartitionEnd(res, p) <= c;
  }

  Status Load();
  Status OpenPartitions(const std::vector<std::string>& names);
  Result<rocksdb::ColumnFamilyHandle*> Partition(int res, int64_t p);    // creates if missing
  rocksdb::ColumnFamilyHandle* FindPartition(int res, int64_t p) const;  // caller: cf_mu
  void AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e);
  // Caller holds index_mu unique; labels canonical.
  void AddPostings(std::span<const LabelView> labels, uint64_t id);
  // One more series of `dc` (caller holds index_mu unique); a key is built only for a new dc.
  void CountSeriesOfDc(std::string_view dc) {
    auto have = dc_series.find(dc);
    if (have == dc_series.end()) have = dc_series.emplace(dc, 0).first;
    ++have->second;
  }
  // Durable series with label name = value / whose value of matcher.name() matches; sorted.
  std::vector<uint64_t> PostingsForValue(const std::string& name, const std::string& value);
  std::vector<uint64_t> PostingsForName(const LabelMatcher& matcher);

  // Head (caller holds head_mu).
  Status ResolveMaxTimestamp(SeriesEntry* e);
  Result<std::optional<std::vector<Sample>>> ReadChunk(uint64_t id, int64_t window);
  // What the general path of `pending` will read (caller holds head_mu); nullopt when one of
  // its series has a closing chunk (the path then writes it first, under the lock).
  std::optional<ClosedReads> PlanClosedReads(const std::vector<Pending>& pending) const;
  // Reads them once every batch queued up to `queued_before` is done (no lock held).
  Status ReadClosed(uint64_t queued_before, ClosedReads* reads);
  // RocksDB as written so far, no wait (no lock needed).
  Result<std::optional<std::vector<Sample>>> ReadChunkAsWritten(uint64_t id, int64_t window);
  Result<int64_t> NewestRawOnDisk(uint64_t id);
  // The newest window of series `id` in partition `cf` (its value too when `with_value`);
  // nullopt when it has none there. Caller holds cf_mu.
  Result<std::optional<LastWindow>> LastWindowIn(rocksdb::ColumnFamilyHandle* cf, uint64_t id,
                                                 bool with_value);
  Status WriteClosedWindow(rocksdb::WriteBatch* wb, uint64_t id, int64_t window,
                           const std::vector<Sample>& samples);
  Status CloseHead(rocksdb::WriteBatch* wb, SeriesEntry* e);
  // Writes up to `max` queued closing chunks into *wb (caller holds head_mu).
  Status WriteClosingLocked(rocksdb::WriteBatch* wb, size_t max);
  // Writes every queued closing chunk and waits until RocksDB has them (caller holds head_mu).
  Status FlushClosingLocked();
  // The background thread's share: a batch of closing chunks, committed. False when none.
  Result<bool> CloseSomeInBackground();
  // Writes the whole closing queue in those small batches, so that appends interleave; what
  // is queued meanwhile is left to the caller (FlushClosingLocked, then short).
  Status DrainClosing();
  // With `read` (ReadClosed, still Current()), closed windows come from it instead of RocksDB.
  Status ApplyLocked(std::vector<Pending>& pending, bool from_log, rocksdb::WriteBatch* wb,
                     std::string* log_record, AppendStats* stats,
                     const ClosedReads* read = nullptr);
  // The common case of ApplyLocked: every series' samples are newer than all it holds and
  // fall in one window. Returns false, changing nothing, when the batch is not like that.
  Result<bool> ApplyInOrderLocked(const std::vector<Pending>& pending, rocksdb::WriteBatch* wb,
                                  std::string* log_record, AppendStats* stats);

  // Commit: queue (caller holds head_mu) and wait (caller holds no lock).
  CommitItem* Enqueue(std::unique_ptr<CommitItem>& item);
  Status WaitCommitted(CommitItem* item);
  // Returns once every item with seq <= `seq` is written and synced (caller holds no lock);
  // the error of a failed group among them.
  Status WaitDurable(uint64_t seq);
  void WaitWritten(uint64_t seq);
  // Waits until every batch queued with a seq <= `seq` is done (written, kept while the disk
  // is full, or failed), leading a group if none is led. Needs no head_mu: reads wait here
  // for batches queued before they copied the heads, while appends go on.
  void WaitDone(uint64_t seq);
  void Lead(std::unique_lock<std::mutex>& lock);
  Status Fail(const rocksdb::Status& s);

  Status Checkpoint();
  Status EnforceRetention();
  // Series lifecycle: forgets every series with no sample inside any retention (and none in
  // the head log that a log cursor or replay still reads); see the definition.
  Status ForgetExpiredSeries();
  // An upper bound of the newest sample of a series without a head, from its newest closed
  // window on disk at any resolution (kNoSamples: none). Reads RocksDB; takes no lock.
  Result<int64_t> NewestOnDisk(uint64_t id);
  // Range-deletes the chunks and rollup blocks of forgotten series `ids` in every partition,
  // and compacts their span when `compact`.
  Status DeleteChunksOf(std::vector<uint64_t> ids, bool compact);
  // Per series loaded at Open and not written since (max_ts unknown): NewestOnDisk, found once
  // (ForgetExpiredSeries, under checkpoint_mu).
  std::unordered_map<uint64_t, int64_t> newest_on_disk;
  Status Replay();
  void BackgroundLoop();
  // Flushes every family's memtable to SST files (the WAL that held them is then deleted).
  Status FlushAll();
};

}  // namespace suanli::storage
