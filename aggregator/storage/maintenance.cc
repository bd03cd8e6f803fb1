// RocksDbStore's maintenance: checkpoints of the head, retention (partitions dropped, series
// forgotten), the replay of the head log at Open, and the background thread that runs them.
#include <malloc.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "aggregator/storage/rocksdb_store_impl.h"

namespace suanli::storage {

// Persists every changed open chunk to the head family (closing those a window or more behind
// the wall clock's window), then truncates the head log before the first batch not yet covered.
// Idleness follows the clock, not the newest sample seen: one sample from a sender whose clock
// runs ahead must not close every other series' open chunk.
Status RocksDbStore::Impl::Checkpoint() {
  std::lock_guard cp(checkpoint_mu);
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  uint64_t cut;
  std::vector<SeriesEntry*> heads;
  // Chunks still waiting to be closed lose their head log below: write them first, in small
  // batches (after an hour boundary that is every series), then under the lock what came since.
  RETURN_IF_ERROR(DrainClosing());
  {
    std::lock_guard lock(head_mu);
    RETURN_IF_ERROR(FlushClosingLocked());
    cut = next_seq;  // every batch before it is applied to the heads
    log_bytes_since_checkpoint = 0;
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) {
      if (e->has_head) heads.push_back(e);
    });
  }
  constexpr size_t kPerBatch = 20000;  // bounds head_mu hold time and batch size
  std::vector<std::unique_ptr<CommitItem>> items;
  for (size_t begin = 0; begin < heads.size(); begin += kPerBatch) {
    auto item = std::make_unique<CommitItem>();
    std::lock_guard lock(head_mu);
    const int64_t newest_window = WindowOf(Now());
    for (size_t i = begin; i < std::min(heads.size(), begin + kPerBatch); ++i) {
      SeriesEntry* e = heads[i];
      if (!e->has_head) continue;
      bool idle = e->head.window_start() < SatSub(newest_window, kWindowMs);
      if (idle) {
        RETURN_IF_ERROR(CloseHead(&item->wb, e));
        item->wb.Delete(head_cf, HeadKey(e->id));
      } else if (e->head_dirty) {
        std::string v;
        PutBE64(&v, FlipTimestamp(e->head.window_start()));
        v += e->head.Finish();
        item->wb.Put(head_cf, HeadKey(e->id), v);
        e->head_dirty = false;
      }
    }
    if (item->wb.Count() == 0) continue;
    Enqueue(item);
    items.push_back(std::move(item));
  }
  {
    // Batches a log cursor still needs stay (forwarding reads them); Replay starts at `cut`.
    uint64_t keep_from;
    {
      std::lock_guard lock(cursor_mu);
      keep_from = std::min(cut, LowestLogCursorLocked());
    }
    auto item = std::make_unique<CommitItem>();
    std::lock_guard lock(head_mu);
    if (keep_from > 0) item->wb.DeleteRange(head_cf, LogKey(0), LogKey(keep_from));
    std::string v;
    PutBE64(&v, cut);
    item->wb.Put(head_cf, rocksdb::Slice(kReplayFromKey.data(), kReplayFromKey.size()), v);
    replay_from = cut;
    Enqueue(item);
    items.push_back(std::move(item));
  }
  for (auto& item : items) RETURN_IF_ERROR(WaitCommitted(item.get()));
  checkpoints.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status RocksDbStore::Impl::EnforceRetention() {
  std::lock_guard cp(checkpoint_mu);
  RETURN_IF_ERROR(DrainClosing());  // as Checkpoint: not all of it under the lock
  std::lock_guard lock(head_mu);
  RETURN_IF_ERROR(FlushClosingLocked());
  WaitWritten(0);  // no queued batch may name a family dropped below
  std::unique_lock cfs(cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (auto it = parts[res].begin(); it != parts[res].end();) {
      if (!PartitionExpired(res, it->first)) {
        ++it;
        continue;
      }
      std::string name = it->second->GetName();
      RETURN_IF_ERROR(FromRocks(db->DropColumnFamily(it->second), "dropping partition " + name));
      db->DestroyColumnFamilyHandle(it->second).PermitUncheckedError();
      it = parts[res].erase(it);
      partitions_dropped.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("storage: retention dropped partition {}", name);
    }
  }
  return Status::Ok();
}

Result<int64_t> RocksDbStore::Impl::NewestOnDisk(uint64_t id) {
  int64_t newest = kNoSamples;
  std::shared_lock lock(cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (auto p = parts[res].rbegin(); p != parts[res].rend(); ++p) {
      ASSIGN_OR_RETURN(std::optional<LastWindow> last, LastWindowIn(p->second, id, false));
      if (!last) continue;
      // Every resolution keys its blocks by the raw window: its end bounds every sample.
      newest = std::max(newest, SatSub(last->window + kWindowMs, 1));
      break;
    }
  }
  return newest;
}

// A series is forgotten when it has no head, no chunk waiting to close, its newest sample is
// older than every resolution's retention cutoff (so no read can return anything of it), and
// no head log batch that replay or a log cursor still reads holds its samples. Its index key
// goes, its memory (entry, postings, lookup slot) is freed, and its id is never reused: its
// chunks stay on disk until retention drops their partitions, and nothing reads them.
Status RocksDbStore::Impl::ForgetExpiredSeries() {
  int64_t keep_after = std::numeric_limits<int64_t>::max();
  for (int res = 0; res < 4; ++res) {
    if (options.retention_ms[res] <= 0) return Status::Ok();  // one resolution keeps forever
    keep_after = std::min(keep_after, Cutoff(res));
  }
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  // Candidates, then for series loaded at Open and idle since, their newest window on disk
  // (outside every lock; once per series).
  std::vector<uint64_t> candidates, unknown;
  uint64_t queued = 0;
  {
    std::lock_guard head(head_mu);
    queued = next_seq - 1;
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) {
      if (e->has_head || e->closing_chunk != nullptr) return;
      if (e->max_known) {
        if (e->max_ts < keep_after) candidates.push_back(e->id);
        if (!newest_on_disk.empty()) newest_on_disk.erase(e->id);
      } else if (auto it = newest_on_disk.find(e->id); it == newest_on_disk.end()) {
        unknown.push_back(e->id);
      } else if (it->second < keep_after) {
        candidates.push_back(e->id);
      }
    });
  }
  if (!unknown.empty()) WaitDone(queued);  // closed windows queued so far are on disk
  for (uint64_t id : unknown) {
    ASSIGN_OR_RETURN(int64_t newest, NewestOnDisk(id));
    newest_on_disk[id] = newest;
    if (newest < keep_after) candidates.push_back(id);
  }
  if (candidates.empty()) return Status::Ok();

  uint64_t log_keep_from;
  {
    std::lock_guard lock(cursor_mu);
    log_keep_from = LowestLogCursorLocked();
  }
  constexpr size_t kPerBatch = 10000;  // bounds the time appends wait for the locks
  size_t forgotten = 0;
  std::vector<std::unique_ptr<SeriesEntry>> freed;
  std::vector<uint64_t> gone_ids;
  std::vector<std::unique_ptr<CommitItem>> items;
  for (size_t begin = 0; begin < candidates.size(); begin += kPerBatch) {
    auto item = std::make_unique<CommitItem>();
    std::lock_guard head(head_mu);
    const uint64_t keep_from = std::min(log_keep_from, replay_from);
    std::unique_lock index(index_mu);
    // name -> value -> ids to remove from that posting list (sorted: candidates are).
    std::map<std::string, std::map<std::string, std::vector<uint64_t>>> unposted;
    for (size_t i = begin; i < std::min(candidates.size(), begin + kPerBatch); ++i) {
      SeriesEntry* e = ById(candidates[i]);
      if (e == nullptr || e->has_head || e->closing_chunk != nullptr) continue;
      if (e->last_log_seq >= keep_from) continue;
      if (e->max_known) {
        if (e->max_ts >= keep_after) continue;
      } else {
        auto it = newest_on_disk.find(e->id);
        if (it == newest_on_disk.end() || it->second >= keep_after) continue;
      }
      e->removed = true;
      Labels labels;
      DecodeLabels(e->labels_blob, &labels);
      for (const Label& l : labels.items()) unposted[l.name][l.value].push_back(e->id);
      if (auto dc = dc_series.find(labels.Get("dc")); dc != dc_series.end()) {
        if (--dc->second == 0) dc_series.erase(dc);
      }
      if (e->durable.load(std::memory_order_acquire)) {
        item->wb.Delete(index_cf, SeriesKey(e->id));
        series_count.fetch_sub(1, std::memory_order_relaxed);
      }
      newest_on_disk.erase(e->id);
      by_hash.Remove(e->hash, e);
      gone_ids.push_back(e->id);
      freed.push_back(by_id.Take(e->id));
      ++forgotten;
    }
    for (auto& [name, values] : unposted) {
      auto by_name = postings.find(name);
      if (by_name == postings.end()) continue;
      for (auto& value_and_gone : values) {
        // Named, not a structured binding: clang 14 (the fuzz build) cannot capture one.
        const std::string& value = value_and_gone.first;
        std::vector<uint64_t>& gone = value_and_gone.second;
        auto list = by_name->second.find(value);
        if (list == by_name->second.end()) continue;
        std::vector<uint64_t>& ids = list->second;
        std::sort(gone.begin(), gone.end());
        ids.erase(std::remove_if(ids.begin(), ids.end(),
                                 [&](uint64_t id) {
                                   return std::binary_search(gone.begin(), gone.end(), id);
                                 }),
                  ids.end());
        if (ids.empty()) {
          by_name->second.erase(list);
        } else if (ids.capacity() > 2 * ids.size() + 16) {
          ids.shrink_to_fit();
        }
      }
      if (by_name->second.empty()) postings.erase(by_name);
    }
    removals.fetch_add(1, std::memory_order_release);
    if (item->wb.Count() == 0) continue;
    std::string v;
    PutBE64(&v, next_id);
    item->wb.Put(index_cf, rocksdb::Slice(kNextIdKey.data(), kNextIdKey.size()), v);
    Enqueue(item);
    items.push_back(std::move(item));
  }
  for (auto& item : items) RETURN_IF_ERROR(WaitCommitted(item.get()));
  pins.WaitForEarlierPins();  // appends and selects that may still hold them
  freed.clear();
  RETURN_IF_ERROR(DeleteChunksOf(std::move(gone_ids), forgotten >= 10000));
  series_forgotten.fetch_add(forgotten, std::memory_order_relaxed);
  if (forgotten > 0) {
    spdlog::info("storage: forgot {} series with no sample inside any retention", forgotten);
  }
  if (forgotten >= 10000) {
    // Their index keys are tombstones now: compact the index, so that the next start-up reads
    // only live series; flush the memtables, so that it replays no WAL of them; and give the
    // heap that held their open chunks and postings back to the kernel (glibc keeps freed
    // memory otherwise).
    RETURN_IF_ERROR(
        FromRocks(db->CompactRange(rocksdb::CompactRangeOptions(), index_cf, nullptr, nullptr),
                  "compacting the series index"));
    RETURN_IF_ERROR(FlushAll());
    malloc_trim(0);
  }
  return Status::Ok();
}

// Forgotten series' chunks and rollup blocks are never read again (all older than every
// cutoff); left in place they would stay until retention drops their partitions (90 days for
// 1h), opened and cached at every start-up. Ids of series created together are consecutive
// (churn comes in waves): each run of forgotten ids is one range deletion per partition, and,
// after many, the span is compacted so that the space and the files go now.
Status RocksDbStore::Impl::DeleteChunksOf(std::vector<uint64_t> ids, bool compact) {
  if (ids.empty()) return Status::Ok();
  std::sort(ids.begin(), ids.end());
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // [first, last + 1)
  for (uint64_t id : ids) {
    if (!runs.empty() && runs.back().second == id) {
      runs.back().second = id + 1;
    } else {
      runs.emplace_back(id, id + 1);
    }
  }
  // Many short runs (ids interleaved with live series): the largest only; the rest waits for
  // retention, as before.
  constexpr size_t kMaxRuns = 4096;
  if (runs.size() > kMaxRuns) {
    std::nth_element(
        runs.begin(), runs.begin() + kMaxRuns, runs.end(),
        [](const auto& a, const auto& b) { return a.second - a.first > b.second - b.first; });
    runs.resize(kMaxRuns);
  }
  auto key = [](uint64_t id) {  // before every key of series id (ChunkKey sorts by id first)
    std::string k;
    PutBE64(&k, id);
    PutBE64(&k, 0);
    return k;
  };
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  auto item = std::make_unique<CommitItem>();
  {
    std::lock_guard head(head_mu);  // queued after every batch that wrote their windows
    std::shared_lock cfs(cf_mu);
    for (const auto& m : parts) {
      for (const auto& [p, h] : m) {
        families.push_back(h);
        for (const auto& [first, end] : runs) item->wb.DeleteRange(h, key(first), key(end));
      }
    }
    if (item->wb.Count() == 0) return Status::Ok();
    Enqueue(item);
  }
  RETURN_IF_ERROR(WaitCommitted(item.get()));
  if (!compact) return Status::Ok();
  uint64_t lo = runs.front().first, hi = runs.front().second;
  for (const auto& [first, end] : runs) {
    lo = std::min(lo, first);
    hi = std::max(hi, end);
  }
  const std::string begin = key(lo), end = key(hi);
  const rocksdb::Slice begin_s(begin), end_s(end);
  for (rocksdb::ColumnFamilyHandle* h : families) {
    // A partition retention dropped meanwhile: nothing to compact there.
    rocksdb::Status st = db->CompactRange(rocksdb::CompactRangeOptions(), h, &begin_s, &end_s);
    if (!st.ok() && !st.IsColumnFamilyDropped()) {
      return FromRocks(st, "compacting the chunks of forgotten series");
    }
  }
  return Status::Ok();
}

// Rebuilds the heads after Open: the checkpointed open chunks, then every batch of the head
// log since the last checkpoint, in order.
Status RocksDbStore::Impl::Replay() {
  std::lock_guard lock(head_mu);
  rocksdb::ReadOptions ro;
  std::string lower(1, kHeadTag), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, head_cf));
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    if (it->key().size() != 9 || it->value().size() < 8) return Internal("malformed head key");
    SeriesEntry* e = ById(GetBE64(it->key().data() + 1));
    if (e == nullptr) continue;
    int64_t window = UnflipTimestamp(GetBE64(it->value().data()));
    // A closed chunk of the same window (closed after this checkpoint) holds everything.
    ASSIGN_OR_RETURN(std::optional<std::vector<Sample>> closed, ReadChunk(e->id, window));
    std::vector<Sample> samples;
    if (closed) {
      samples = std::move(*closed);
    } else {
      RETURN_IF_ERROR(DecodeChunk(View(it->value()).substr(8), window, &samples));
    }
    e->head = ChunkEncoder(window);
    for (const Sample& s : samples) e->head.Append(s.timestamp_ms, BitsOf(s.value));
    if (!e->has_head) head_series.fetch_add(1, std::memory_order_relaxed);
    e->has_head = true;
    e->max_known = false;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading checkpointed heads"));

  // Cursors, and where the last checkpoint left the head log.
  lower.assign(1, kCursorTag);
  upper = PrefixEnd(lower);
  lower_s = lower;
  upper_s = upper;
  it.reset(db->NewIterator(ro, head_cf));
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view v = View(it->value());
    if (v.size() != 9 || (v[0] != static_cast<char>(CursorKind::kLog) &&
                          v[0] != static_cast<char>(CursorKind::kTime))) {
      return Internal("malformed cursor " + std::string(View(it->key()).substr(1)));
    }
    Cursor c{static_cast<CursorKind>(v[0]), static_cast<int64_t>(GetBE64(v.data() + 1))};
    std::lock_guard cl(cursor_mu);
    cursors[std::string(View(it->key()).substr(1))] = c;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading cursors"));
  std::string from;
  rocksdb::Status fs = db->Get(rocksdb::ReadOptions(), head_cf,
                               rocksdb::Slice(kReplayFromKey.data(), kReplayFromKey.size()), &from);
  if (fs.ok() && from.size() == 8) {
    replay_from = GetBE64(from.data());
  } else if (!fs.ok() && !fs.IsNotFound()) {
    return FromRocks(fs, "reading the head log start");
  }

  lower.assign(1, kLogTag);
  upper = PrefixEnd(lower);
  lower_s = lower;
  upper_s = upper;
  it.reset(db->NewIterator(ro, head_cf));
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 9) next_seq = GetBE64(it->key().data() + 1) + 1;
  // Never hand out a seq a cursor or the last checkpoint has already passed.
  next_seq = std::max(next_seq, replay_from);
  {
    std::lock_guard cl(cursor_mu);
    for (const auto& [name, c] : cursors) {
      if (c.kind == CursorKind::kLog) next_seq = std::max(next_seq, static_cast<uint64_t>(c.value));
    }
  }
  {
    std::lock_guard cl(commit_mu);
    written_seq = next_seq - 1;
  }
  const std::string replay_start = LogKey(replay_from);
  lower_s = replay_start;
  size_t batches = 0, samples = 0;
  CommitItem* last = nullptr;
  std::vector<std::unique_ptr<CommitItem>> items;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::vector<Pending> pending;
    uint64_t unknown_id = 0;
    bool well_formed = ReadHeadLog(View(it->value()), [&](uint64_t id, int64_t ts, uint64_t bits) {
      SeriesEntry* e = ById(id);
      if (e == nullptr) {
        unknown_id = id;
        return false;
      }
      pending.push_back({e, ts, bits});
      return true;
    });
    if (unknown_id != 0) {
      return Internal("head log names unknown series " + std::to_string(unknown_id));
    }
    if (!well_formed) return Internal("malformed head log");
    samples += pending.size();
    AppendStats ignored;
    auto item = std::make_unique<CommitItem>();
    RETURN_IF_ERROR(ApplyLocked(pending, /*from_log=*/true, &item->wb, nullptr, &ignored));
    ++batches;
    if (item->wb.Count() == 0) continue;
    last = Enqueue(item);
    items.push_back(std::move(item));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the head log"));
  if (last != nullptr) RETURN_IF_ERROR(WaitCommitted(last));
  // Batches before replay_from that a log cursor still reads may name any series: none is
  // forgotten before the log has moved past what it holds now.
  {
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) { e->last_log_seq = next_seq - 1; });
  }
  if (batches > 0) {
    spdlog::info("storage: replayed {} head log batches ({} samples)", batches, samples);
  }
  return Status::Ok();
}

void RocksDbStore::Impl::BackgroundLoop() {
  using Clock = std::chrono::steady_clock;
  auto last_checkpoint = Clock::now(), last_retention = Clock::now();
  std::unique_lock lock(bg_mu);
  while (!stopping) {
    bg_cv.wait_for(lock, std::chrono::seconds(1));
    if (stopping) break;
    auto now = Clock::now();
    bool cp = checkpoint_wanted ||
              (options.checkpoint_interval_ms > 0 &&
               now - last_checkpoint >= std::chrono::milliseconds(options.checkpoint_interval_ms));
    bool ret = options.retention_interval_ms > 0 &&
               now - last_retention >= std::chrono::milliseconds(options.retention_interval_ms);
    checkpoint_wanted = false;
    lock.unlock();
    // A full disk: try to resume every second; nothing else is written until it did.
    if (disk_full.load() && !TryResume()) {
      lock.lock();
      continue;
    }
    // Closed windows first, in small batches (a checkpoint would write them all at once under
    // head_mu); the checkpoint waits for them.
    while (!write_failed.load()) {
      Result<bool> more = CloseSomeInBackground();
      if (!more.ok())
        spdlog::error("storage: closing windows failed: {}", more.status().ToString());
      if (!more.ok() || !*more) break;
      std::lock_guard stop(bg_mu);
      if (stopping) break;
    }
    if (cp && !write_failed.load()) {
      Status st = Checkpoint();
      if (!st.ok()) spdlog::error("storage: checkpoint failed: {}", st.ToString());
      last_checkpoint = Clock::now();
    }
    if (ret && !write_failed.load()) {
      Status st = EnforceRetention();
      if (!st.ok()) spdlog::error("storage: retention failed: {}", st.ToString());
      if (st.ok()) {
        std::lock_guard one(checkpoint_mu);
        st = ForgetExpiredSeries();
        if (!st.ok()) spdlog::error("storage: forgetting expired series failed: {}", st.ToString());
      }
      last_retention = Clock::now();
    }
    lock.lock();
  }
}

Status RocksDbStore::Checkpoint() { return impl_->Checkpoint(); }
Status RocksDbStore::EnforceRetention() {
  RETURN_IF_ERROR(impl_->EnforceRetention());
  std::lock_guard one(impl_->checkpoint_mu);
  return impl_->ForgetExpiredSeries();
}

}  // namespace suanli::storage
