// RocksDbStore's append path: series lookup and creation, the in-order fast path and the
// general one (out-of-order windows rewritten), closing of windows, and the head log record of
// each acknowledged batch. Nothing here reads RocksDB under head_mu except the general path's
// out-of-order windows (ReadChunk, ResolveMaxTimestamp).
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
#include "core/scratch.h"

namespace suanli::storage {

Result<std::optional<std::vector<Sample>>> RocksDbStore::Impl::ReadChunk(uint64_t id,
                                                                         int64_t window) {
  WaitWritten(0);
  // Kept batches (a full disk) may hold this window's chunk: reading RocksDB would miss it.
  if (disk_full.load()) return DiskFull();
  return ReadChunkAsWritten(id, window);
}

Status RocksDbStore::Impl::ResolveMaxTimestamp(SeriesEntry* e) {
  WaitWritten(0);
  ASSIGN_OR_RETURN(int64_t on_disk, NewestRawOnDisk(e->id));
  const int64_t in_head = e->has_head && e->head.count() > 0 ? e->head.last_ts() : kNoSamples;
  e->max_ts = std::max(in_head, on_disk);
  e->max_known = true;
  return Status::Ok();
}

Result<int64_t> RocksDbStore::Impl::NewestRawOnDisk(uint64_t id) {
  std::shared_lock lock(cf_mu);
  for (auto p = parts[0].rbegin(); p != parts[0].rend(); ++p) {
    ASSIGN_OR_RETURN(std::optional<LastWindow> last, LastWindowIn(p->second, id, true));
    if (!last) continue;
    std::vector<Sample> samples;
    RETURN_IF_ERROR(DecodeChunk(last->value, last->window, &samples));
    return samples.empty() ? kNoSamples : samples.back().timestamp_ms;
  }
  return kNoSamples;
}

Result<std::optional<LastWindow>> RocksDbStore::Impl::LastWindowIn(rocksdb::ColumnFamilyHandle* cf,
                                                                   uint64_t id, bool with_value) {
  std::string lower, upper;
  PutBE64(&lower, id);
  PutBE64(&upper, id + 1);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  ro.fill_cache = with_value;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  it->SeekToLast();
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the last window of a series"));
  if (!it->Valid()) return std::optional<LastWindow>();
  if (it->key().size() != 16) return Internal("malformed chunk key");
  LastWindow last{UnflipTimestamp(GetBE64(it->key().data() + 8)), {}};
  if (with_value) last.value.assign(it->value().data(), it->value().size());
  return std::optional<LastWindow>(std::move(last));
}

Result<std::optional<std::vector<Sample>>> RocksDbStore::Impl::ReadChunkAsWritten(uint64_t id,
                                                                                  int64_t window) {
  std::shared_lock lock(cf_mu);
  rocksdb::ColumnFamilyHandle* cf = FindPartition(0, PartitionOf(0, window));
  if (cf == nullptr) return std::optional<std::vector<Sample>>();
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, ChunkKey(id, window), &value);
  if (s.IsNotFound()) return std::optional<std::vector<Sample>>();
  RETURN_IF_ERROR(FromRocks(s, "reading a chunk"));
  std::vector<Sample> samples;
  RETURN_IF_ERROR(DecodeChunk(View(value), window, &samples));
  return std::optional<std::vector<Sample>>(std::move(samples));
}

std::optional<ClosedReads> RocksDbStore::Impl::PlanClosedReads(
    const std::vector<Pending>& pending) const {
  ClosedReads reads;
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin;
    while (end < pending.size() && pending[end].entry == e) ++end;
    if (e->closing_chunk != nullptr) return std::nullopt;  // must be written first
    reads.versions.emplace_back(e, e->closed_version);
    if (!e->max_known) reads.newest[e->id] = kNoSamples;
    for (size_t i = begin; i < end; ++i) {
      const int64_t window = WindowOf(pending[i].ts);
      if (e->has_head && window == e->head.window_start()) continue;
      reads.chunks.try_emplace({e->id, window});
    }
    begin = end;
  }
  return reads;
}

Status RocksDbStore::Impl::ReadClosed(uint64_t queued_before, ClosedReads* reads) {
  WaitDone(queued_before);
  if (disk_full.load()) return DiskFull();  // kept batches are not in RocksDB
  for (auto& [key, chunk] : reads->chunks) {
    ASSIGN_OR_RETURN(chunk, ReadChunkAsWritten(key.first, key.second));
  }
  for (auto& [id, newest] : reads->newest) {
    ASSIGN_OR_RETURN(newest, NewestRawOnDisk(id));
  }
  return Status::Ok();
}

bool ClosedReads::Current() const {
  for (const auto& [e, version] : versions) {
    if (e->closing_chunk != nullptr || e->closed_version != version) return false;
  }
  return true;
}

// Writes the chunk of a closed window and its rollups; partitions past retention are skipped.
Status RocksDbStore::Impl::WriteClosedWindow(rocksdb::WriteBatch* wb, uint64_t id, int64_t window,
                                             const std::vector<Sample>& samples) {
  std::string key = ChunkKey(id, window);
  int64_t p = PartitionOf(0, window);
  if (!PartitionExpired(0, p)) {
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Partition(0, p));
    wb->Put(cf, key, EncodeClosedChunk(window, samples));
  }
  for (int res = 1; res <= rollup::kNumRollupResolutions; ++res) {
    p = PartitionOf(res, window);
    if (PartitionExpired(res, p)) continue;
    int64_t len = rollup::ResolutionMs(static_cast<Resolution>(res));
    std::vector<rollup::Record> records = rollup::Compute(samples, len);
    if (records.empty()) continue;  // only NaN / stale markers: no rollup
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Partition(res, p));
    wb->Put(cf, key, EncodeRollupBlock(window, records));
  }
  return Status::Ok();
}

Status RocksDbStore::Impl::CloseHead(rocksdb::WriteBatch* wb, SeriesEntry* e) {
  std::vector<Sample> samples;
  RETURN_IF_ERROR(DecodeChunk(e->head.Finish(), e->head.window_start(), &samples));
  RETURN_IF_ERROR(WriteClosedWindow(wb, e->id, e->head.window_start(), samples));
  ++e->closed_version;
  e->head = ChunkEncoder();
  e->has_head = false;
  e->head_dirty = false;
  head_series.fetch_sub(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status RocksDbStore::Impl::WriteClosingLocked(rocksdb::WriteBatch* wb, size_t max) {
  for (size_t n = 0; n < max && !closing.empty(); ++n) {
    Closing& c = closing.front();
    std::vector<Sample> samples;
    RETURN_IF_ERROR(DecodeChunk(c.chunk.Finish(), c.chunk.window_start(), &samples));
    RETURN_IF_ERROR(WriteClosedWindow(wb, c.entry->id, c.chunk.window_start(), samples));
    c.entry->closing_chunk = nullptr;
    ++c.entry->closed_version;
    closing.pop_front();
  }
  return Status::Ok();
}

Status RocksDbStore::Impl::FlushClosingLocked() {
  std::vector<std::unique_ptr<CommitItem>> items;
  while (!closing.empty()) {
    auto item = std::make_unique<CommitItem>();
    RETURN_IF_ERROR(WriteClosingLocked(&item->wb, 20000));
    if (item->wb.Count() == 0) continue;  // only windows past retention
    Enqueue(item);
    items.push_back(std::move(item));
  }
  if (items.empty()) return Status::Ok();
  WaitWritten(0);
  for (const auto& item : items) RETURN_IF_ERROR(item->status);
  return Status::Ok();
}

Result<bool> RocksDbStore::Impl::CloseSomeInBackground() {
  auto item = std::make_unique<CommitItem>();
  {
    // Small batches: each holds head_mu for ~2000 x 30 us, so appends interleave.
    std::lock_guard lock(head_mu);
    if (closing.empty()) return false;
    RETURN_IF_ERROR(WriteClosingLocked(&item->wb, 2000));
    if (item->wb.Count() == 0) return true;
    Enqueue(item);
  }
  RETURN_IF_ERROR(WaitCommitted(item.get()));
  return true;
}

Status RocksDbStore::Impl::DrainClosing() {
  for (;;) {
    ASSIGN_OR_RETURN(bool wrote, CloseSomeInBackground());
    if (!wrote) return Status::Ok();
  }
}

namespace {

std::vector<Sample> Merge(const std::vector<Sample>& base, const std::vector<Sample>& add) {
  std::vector<Sample> out;
  out.reserve(base.size() + add.size());
  std::merge(base.begin(), base.end(), add.begin(), add.end(), std::back_inserter(out),
             [](const Sample& a, const Sample& b) { return a.timestamp_ms < b.timestamp_ms; });
  return out;
}

Status Conflict(const Labels& labels, int64_t ts, uint64_t stored, uint64_t bits) {
  double a, b;
  std::memcpy(&a, &stored, 8);
  std::memcpy(&b, &bits, 8);
  return InvalidArgument("duplicate sample for timestamp " + std::to_string(ts) + " of series " +
                         labels.ToString() + " with a different value (" + std::to_string(a) +
                         " vs " + std::to_string(b) + ")");
}

}  // namespace

// Checks and then applies `pending` (sorted by series and time, distinct timestamps per
// series) to the heads; closed windows and their rollups go into *wb, head samples into
// *log_record. Nothing changes when a check fails. Caller holds head_mu.
Status RocksDbStore::Impl::ApplyLocked(std::vector<Pending>& pending, bool from_log,
                                       rocksdb::WriteBatch* wb, std::string* log_record,
                                       AppendStats* stats, const ClosedReads* read) {
  struct Plan {
    size_t begin, end;  // [begin, end) of pending: one series, one window
    int64_t window;
    bool fast = false;  // appends after the head's last sample
    std::optional<std::vector<Sample>> existing;
  };
  // Closed windows this batch may read or rewrite must be in RocksDB first (with `read`, they
  // were: its series had no closing chunk, and their windows are read already).
  if (read == nullptr) RETURN_IF_ERROR(FlushClosingLocked());
  std::vector<Plan> plans;
  std::vector<char> skip(pending.size(), 0);
  const int64_t ooo = options.out_of_order_window_ms;

  // Phase 1: checks.
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin;
    while (end < pending.size() && pending[end].entry == e) ++end;
    if (!e->max_known) {
      auto newest = read != nullptr ? read->newest.find(e->id) : ClosedReads::Newest::iterator();
      if (read != nullptr && newest != read->newest.end()) {
        const int64_t in_head = e->has_head && e->head.count() > 0 ? e->head.last_ts() : kNoSamples;
        e->max_ts = std::max(in_head, newest->second);
        e->max_known = true;
      } else {
        RETURN_IF_ERROR(ResolveMaxTimestamp(e));
      }
    }
    if (!from_log && e->max_ts != kNoSamples && ooo != std::numeric_limits<int64_t>::max()) {
      int64_t oldest = SatSub(e->max_ts, ooo);
      if (pending[begin].ts < oldest) {  // sorted: the first is the oldest
        rejected_too_old.fetch_add(1, std::memory_order_relaxed);
        Labels labels;
        DecodeLabels(e->labels_blob, &labels);
        return InvalidArgument(
            "out of bounds: sample at " + std::to_string(pending[begin].ts) + " of series " +
            labels.ToString() + " is older than the out-of-order window (" + std::to_string(ooo) +
            " ms before its newest sample at " + std::to_string(e->max_ts) + ")");
      }
    }
    for (size_t wb_begin = begin; wb_begin < end;) {
      int64_t window = WindowOf(pending[wb_begin].ts);
      size_t wb_end = wb_begin;
      while (wb_end < end && WindowOf(pending[wb_end].ts) == window) ++wb_end;
      Plan plan{wb_begin, wb_end, window, false, std::nullopt};
      if (e->has_head && window == e->head.window_start()) {
        if (e->head.count() == 0 || pending[wb_begin].ts > e->head.last_ts()) {
          plan.fast = true;
        } else {
          std::vector<Sample> head;
          RETURN_IF_ERROR(DecodeChunk(e->head.Finish(), window, &head));
          plan.existing = std::move(head);
        }
      } else if (e->max_ts != kNoSamples && e->max_ts >= window) {
        auto copy = read != nullptr ? read->chunks.find({e->id, window})
                                    : ClosedReads::Chunks::const_iterator();
        if (read != nullptr && copy != read->chunks.end()) {
          plan.existing = copy->second;
        } else {
          ASSIGN_OR_RETURN(plan.existing, ReadChunk(e->id, window));
        }
      }
      if (plan.existing) {
        const std::vector<Sample>& ex = *plan.existing;
        for (size_t i = wb_begin; i < wb_end; ++i) {
          auto it =
              std::lower_bound(ex.begin(), ex.end(), pending[i].ts,
                               [](const Sample& s, int64_t ts) { return s.timestamp_ms < ts; });
          if (it == ex.end() || it->timestamp_ms != pending[i].ts) continue;
          uint64_t stored = BitsOf(it->value);
          if (stored != pending[i].bits) {
            if (from_log) {
              spdlog::warn("storage: head log sample conflicts with the store; kept the store's");
            } else {
              Labels labels;
              DecodeLabels(e->labels_blob, &labels);
              return Conflict(labels, pending[i].ts, stored, pending[i].bits);
            }
          }
          skip[i] = 1;
          ++stats->duplicates;
        }
      }
      plans.push_back(std::move(plan));
      wb_begin = wb_end;
    }
    begin = end;
  }

  // Phase 2: apply.
  SeriesEntry* log_series = nullptr;
  std::vector<std::pair<int64_t, uint64_t>> log_samples;  // (ts, bits) of log_series
  std::string unused_record;
  HeadLogWriter log(log_record != nullptr ? log_record : &unused_record);
  auto flush_log = [&] {
    if (log_series != nullptr && !log_samples.empty() && log_record != nullptr) {
      log.BeginSeries(log_series->id, log_samples.size(), log_samples.front().first);
      for (const auto& [ts, bits] : log_samples) log.Sample(ts, bits);
    }
    log_series = nullptr;
    log_samples.clear();
  };
  for (Plan& plan : plans) {
    SeriesEntry* e = pending[plan.begin].entry;
    if (e != log_series) {
      flush_log();
      log_series = e;
    }
    std::vector<Sample> fresh;
    for (size_t i = plan.begin; i < plan.end; ++i) {
      if (skip[i]) continue;
      double v;
      std::memcpy(&v, &pending[i].bits, 8);
      fresh.push_back({pending[i].ts, v});
    }
    if (fresh.empty()) continue;
    stats->samples_stored += fresh.size();
    e->max_ts = std::max(e->max_ts, fresh.back().timestamp_ms);
    bool to_head = true;
    if (e->has_head && plan.window == e->head.window_start()) {
      if (plan.fast) {
        for (const Sample& s : fresh) e->head.Append(s.timestamp_ms, BitsOf(s.value));
      } else {
        std::vector<Sample> merged = Merge(*plan.existing, fresh);
        ChunkEncoder enc(plan.window);
        for (const Sample& s : merged) enc.Append(s.timestamp_ms, BitsOf(s.value));
        e->head = std::move(enc);
      }
    } else if (!e->has_head || plan.window > e->head.window_start()) {
      if (e->has_head) RETURN_IF_ERROR(CloseHead(wb, e));
      ChunkEncoder enc(plan.window);
      const std::vector<Sample>& all = plan.existing ? Merge(*plan.existing, fresh) : fresh;
      for (const Sample& s : all) enc.Append(s.timestamp_ms, BitsOf(s.value));
      e->head = std::move(enc);
      e->has_head = true;
      head_series.fetch_add(1, std::memory_order_relaxed);
    } else {
      // An older, closed window: rewrite its chunk and rollups now (rare: out of order).
      const std::vector<Sample> base = plan.existing ? *plan.existing : std::vector<Sample>{};
      RETURN_IF_ERROR(WriteClosedWindow(wb, e->id, plan.window, Merge(base, fresh)));
      ++e->closed_version;
      to_head = false;
    }
    if (!to_head) continue;
    e->head_dirty = true;
    for (const Sample& s : fresh) log_samples.emplace_back(s.timestamp_ms, BitsOf(s.value));
  }
  flush_log();
  return Status::Ok();
}

Result<bool> RocksDbStore::Impl::ApplyInOrderLocked(const std::vector<Pending>& pending,
                                                    rocksdb::WriteBatch* wb,
                                                    std::string* log_record, AppendStats* stats) {
  // Check: per series (consecutive runs), strictly increasing times after everything the
  // series holds (so no duplicate, conflict or out-of-order case), all in one window that is
  // either the open head's or a later one with nothing stored in it yet.
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    e->head.PrefetchTail();  // the apply loop below appends there
    if (!e->max_known) return false;
    const int64_t window = WindowOf(pending[begin].ts);
    if (e->max_ts != kNoSamples && pending[begin].ts <= e->max_ts) return false;
    const bool head_window = e->has_head && window == e->head.window_start();
    if (!head_window) {
      if (e->closing_chunk != nullptr) return false;  // two windows behind: the general path
      if (e->has_head && window < e->head.window_start()) return false;
      if (e->max_ts != kNoSamples && e->max_ts >= window) return false;
    }
    // Inside [window, window + kWindowMs) without a division per sample.
    const uint64_t window_offset_limit = kWindowMs - 1;
    size_t end = begin + 1;
    for (; end < pending.size() && pending[end].entry == e; ++end) {
      if (pending[end].ts <= pending[end - 1].ts ||
          static_cast<uint64_t>(pending[end].ts) - static_cast<uint64_t>(window) >
              window_offset_limit) {
        return false;
      }
    }
    begin = end;
  }
  // Apply. The log record is sized for the worst case once and written in place (every
  // series has a sample, so pending.size() bounds the series count), then cut to length.
  HeadLogWriter log(nullptr);
  const size_t record_start = log_record->size();
  log_record->resize(record_start + HeadLogWriter::kMaxStartBytes +
                     pending.size() *
                         (HeadLogWriter::kMaxSeriesBytes + HeadLogWriter::kMaxSampleBytes));
  char* out = log_record->data() + record_start;
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin + 1;
    while (end < pending.size() && pending[end].entry == e) ++end;
    const int64_t window = WindowOf(pending[begin].ts);
    if (!e->has_head || window != e->head.window_start()) {
      if (e->has_head) {
        // Written later by the background thread (see `closing`); the head count stays.
        closing.push_back({e, std::move(e->head)});
        e->closing_chunk = &closing.back().chunk;
      } else {
        head_series.fetch_add(1, std::memory_order_relaxed);
      }
      e->head = ChunkEncoder(window);
      e->head.Reserve(kHeadReserveBytes);
      e->has_head = true;
    }
    out = log.BeginSeries(out, begin == 0 && record_start == 0, e->id, end - begin,
                          pending[begin].ts);
    for (size_t i = begin; i < end; ++i) {
      e->head.Append(pending[i].ts, pending[i].bits);
      out = log.Sample(out, pending[i].ts, pending[i].bits);
    }
    e->head_dirty = true;
    e->max_ts = pending[end - 1].ts;
    stats->samples_stored += end - begin;
    begin = end;
  }
  log_record->resize(static_cast<size_t>(out - log_record->data()));
  return true;
}

Result<AppendStats> RocksDbStore::AppendViews(std::span<const SeriesView> batch,
                                              const NewSeriesCheck* check_new_series) {
  Impl& d = *impl_;
  if (d.write_failed.load(std::memory_order_acquire)) {
    return IoError("storage at " + d.options.path +
                   " refuses writes after a failed write; restart the aggregator");
  }
  if (d.disk_full.load(std::memory_order_acquire)) return d.DiskFull();
  // Entries found below stay allocated until this call returns (ForgetExpiredSeries).
  const EntryPins::Pin pin = d.pins.Enter();
  for (;;) {  // once, unless a series looked up was forgotten before it was applied
    const uint64_t removals_before = d.removals.load(std::memory_order_acquire);
    AppendStats stats;

    // 1. Look each series up by the hash of its labels as sent. A match compares equal to the
    // stored canonical blob, so the labels were sent canonical (sorted, no empty value), and
    // no Labels object is built. Only a series not found is canonicalized and checked.
    struct Ref {
      std::span<const LabelView> labels;  // as sent; canonical once step 2 ran
      bool used = false;                  // false: the series has no samples (ignored)
      uint64_t hash = 0;
      SeriesEntry* entry = nullptr;
    };
    // Per-thread scratch, reused by the next batch: allocating and faulting in these per
    // request costs as much as the lookups.
    thread_local std::vector<Ref> refs;
    ScratchReleaser release_refs(refs, kMaxKeptScratchBytes);
    refs.assign(batch.size(), Ref{});
    size_t total_samples = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const SeriesView& series = batch[i];
      if (series.samples.empty()) continue;
      total_samples += series.samples.size();
      Ref& r = refs[i];
      r.used = true;
      r.labels = series.labels;
      r.hash = d.LookupHash(r.labels);
    }
    bool missing = false;
    {
      // A lookup misses the cache in its slot, then in its entry (labels included). In groups,
      // the group's slots, then their entries are prefetched together, so that the misses
      // overlap instead of queuing one by one. The span covers typical label blobs and the
      // head state the apply step below reads.
      constexpr size_t kGroup = 16, kEntrySpan = sizeof(SeriesEntry) + 128;
      std::shared_lock lock(d.index_mu);
      for (size_t begin = 0; begin < refs.size(); begin += kGroup) {
        const size_t end = std::min(refs.size(), begin + kGroup);
        for (size_t i = begin; i < end; ++i) {
          if (refs[i].used) d.by_hash.PrefetchSlot(refs[i].hash);
        }
        for (size_t i = begin; i < end; ++i) {
          if (!refs[i].used) continue;
          const char* p = reinterpret_cast<const char*>(d.by_hash.FirstCandidate(refs[i].hash));
          if (p == nullptr) continue;
          for (size_t off = 0; off < kEntrySpan; off += 64) __builtin_prefetch(p + off);
        }
        for (size_t i = begin; i < end; ++i) {
          Ref& r = refs[i];
          if (!r.used) continue;
          r.entry = d.Find(r.labels, r.hash);
          missing = missing || r.entry == nullptr;
        }
      }
    }

    // 2. Series ids for the others. New ids are allocated under the unique lock and published
    // at once, so a concurrent batch with the same new series finds this entry and uses the
    // same id. Limits are checked for all new series of the batch before any is created.
    // A series sent in canonical form (the usual case) is checked and created from the views
    // into the request; only the others are rebuilt, here.
    std::deque<Labels> rebuilt_labels;
    std::deque<std::vector<LabelView>> rebuilt;  // views of rebuilt_labels
    if (missing) {
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        if (IsCanonical(r.labels) && !r.labels.empty()) {
          if (check_new_series != nullptr) RETURN_IF_ERROR((*check_new_series)(i, r.labels));
          continue;
        }
        Labels sent = LabelsOf(r.labels);  // sorted by name, duplicates kept
        if (check_new_series != nullptr) RETURN_IF_ERROR((*check_new_series)(i, ViewsOf(sent)));
        rebuilt_labels.push_back(CanonicalLabels(sent));
        rebuilt.push_back(ViewsOf(rebuilt_labels.back()));
        r.labels = rebuilt.back();
        r.hash = d.LookupHash(r.labels);
      }
      std::unique_lock lock(d.index_mu);
      std::unordered_map<std::string_view, uint64_t> new_per_dc;
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        r.entry = d.Find(r.labels, r.hash);
        if (r.entry != nullptr) continue;
        const std::span<const LabelView> labels = r.labels;
        if (d.limits.max_labels_per_series > 0 && labels.size() > d.limits.max_labels_per_series) {
          d.rejected_labels_limit.fetch_add(1, std::memory_order_relaxed);
          return ResourceExhausted("limit max_labels_per_series (" +
                                   std::to_string(d.limits.max_labels_per_series) +
                                   ") exceeded by series " + LabelsOf(labels).ToString() +
                                   " with " + std::to_string(labels.size()) + " labels");
        }
        std::string_view dc = ValueOf(labels, "dc");
        uint64_t n = ++new_per_dc[dc];
        auto have = d.dc_series.find(dc);
        uint64_t existing = have == d.dc_series.end() ? 0 : have->second;
        if (d.limits.max_series_per_dc > 0 && existing + n > d.limits.max_series_per_dc) {
          d.rejected_series_limit.fetch_add(1, std::memory_order_relaxed);
          return ResourceExhausted("limit max_series_per_dc (" +
                                   std::to_string(d.limits.max_series_per_dc) +
                                   ") reached for dc=\"" + std::string(dc) + "\"; series " +
                                   LabelsOf(labels).ToString() + " refused");
        }
      }
      std::string blob;
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        r.entry = d.Find(r.labels, r.hash);
        if (r.entry == nullptr) {
          blob.clear();
          EncodeLabelsTo(r.labels, &blob);
          r.entry = d.Insert(SeriesEntry::Create(d.entry_arena, d.next_id++, r.hash, blob, false));
          r.entry->max_known = true;  // a new series has no samples yet
          d.CountSeriesOfDc(ValueOf(r.labels, "dc"));
          d.AddPostings(r.labels, r.entry->id);
        }
      }
    }

    // 3. Samples grouped by series in time order; duplicates within the batch collapse,
    // conflicts refuse it. Usually each series comes once with sorted samples: then the batch
    // order already is such a grouping and no sort is needed.
    thread_local std::vector<Pending> pending;
    ScratchReleaser release_pending(pending, kMaxKeptScratchBytes);
    pending.clear();
    pending.reserve(total_samples);
    bool grouped = true;
    {
      // Open-addressing set of the batch's entries: a series that comes twice needs the sort.
      size_t slots = 16;
      while (slots < batch.size() * 2) slots <<= 1;
      std::vector<SeriesEntry*> seen(slots, nullptr);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!refs[i].used) continue;
        SeriesEntry* e = refs[i].entry;
        if (grouped) {
          size_t h = (reinterpret_cast<uintptr_t>(e) >> 4) * 0x9E3779B97F4A7C15ULL >> 20;
          for (size_t k = h & (slots - 1);; k = (k + 1) & (slots - 1)) {
            if (seen[k] == e) {
              grouped = false;
              break;
            }
            if (seen[k] == nullptr) {
              seen[k] = e;
              break;
            }
          }
        }
        const std::span<const Sample> samples = batch[i].samples;
        for (size_t j = 0; j < samples.size(); ++j) {
          if (j > 0 && samples[j].timestamp_ms <= samples[j - 1].timestamp_ms) grouped = false;
          pending.push_back({e, samples[j].timestamp_ms, BitsOf(samples[j].value)});
        }
      }
    }
    if (!grouped) {
      std::stable_sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
        if (a.entry->id != b.entry->id) return a.entry->id < b.entry->id;
        return a.ts < b.ts;
      });
      size_t kept = 0;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (kept > 0 && pending[kept - 1].entry == pending[i].entry &&
            pending[kept - 1].ts == pending[i].ts) {
          if (pending[kept - 1].bits != pending[i].bits) {
            Labels labels;
            DecodeLabels(pending[i].entry->labels_blob, &labels);
            return Conflict(labels, pending[i].ts, pending[kept - 1].bits, pending[i].bits);
          }
          ++stats.duplicates;
          continue;
        }
        pending[kept++] = pending[i];
      }
      pending.resize(kept);
    }

    // 4. Check and apply to the heads, and queue the batch, under head_mu; commit outside it.
    // Sized for the usual case (the head log record, a few bytes per sample) so that the batch
    // is not regrown several times.
    auto item = std::make_unique<CommitItem>(pending.size() * 8 + 256);
    std::vector<SeriesEntry*> unconfirmed;
    bool want_checkpoint = false, wake_closer = false;
    uint64_t duplicates_of = 0;  // all duplicates: the last batch queued before this one
    {
      std::unique_lock lock(d.head_mu);
      thread_local std::string record;  // scratch, as `refs`
      ScratchReleaser release_record(record, kMaxKeptScratchBytes);
      record.clear();
      // A series forgotten since the lookups: look up again (it is created anew).
      auto forgotten = [&] {
        return d.removals.load(std::memory_order_relaxed) != removals_before &&
               std::any_of(pending.begin(), pending.end(),
                           [](const Pending& p) { return p.entry->removed; });
      };
      if (forgotten()) continue;
      size_t closing_before = d.closing.size();
      ASSIGN_OR_RETURN(bool applied, d.ApplyInOrderLocked(pending, &item->wb, &record, &stats));
      if (!applied && !d.closing.empty()) {
        // The general path writes the closing queue first (all of it after an hour boundary):
        // write it in the closer's small batches outside the lock, so that other appends go on,
        // then look again (the in-order check changes nothing when it fails).
        lock.unlock();
        RETURN_IF_ERROR(d.DrainClosing());
        lock.lock();
        if (forgotten()) continue;
        closing_before = d.closing.size();
        ASSIGN_OR_RETURN(applied, d.ApplyInOrderLocked(pending, &item->wb, &record, &stats));
      }
      if (!applied) {
        // The general path (out of order, or a series whose newest sample is unknown) may
        // read closed windows. Read them outside the lock, once every batch queued so far is
        // written (a WAL sync), then apply with those copies if no closed window of these
        // series was written meanwhile; else (rare) read under the lock.
        std::optional<ClosedReads> read = d.PlanClosedReads(pending);
        if (read && (!read->chunks.empty() || !read->newest.empty())) {
          const uint64_t queued = d.next_seq - 1;
          lock.unlock();
          Status st = d.ReadClosed(queued, &*read);
          lock.lock();
          if (forgotten()) continue;
          if (!st.ok() || !read->Current()) read.reset();
        }
        closing_before = d.closing.size();
        RETURN_IF_ERROR(d.ApplyLocked(pending, /*from_log=*/false, &item->wb, &record, &stats,
                                      read ? &*read : nullptr));
      }
      wake_closer = d.closing.size() > closing_before;
      for (size_t i = 0; i < pending.size(); ++i) {
        SeriesEntry* e = pending[i].entry;
        if (i > 0 && pending[i - 1].entry == e) continue;
        e->last_log_seq = d.next_seq;  // the seq Enqueue gives this batch, if it holds samples
        if (!e->durable.load(std::memory_order_acquire)) {
          d.AddSeriesToBatch(&item->wb, *e);
          unconfirmed.push_back(e);
        }
      }
      if (item->wb.Count() == 0 && record.empty()) {
        // All duplicates, maybe of a batch still being committed: acknowledged only once every
        // batch queued before this one is durable, as its own batch would be.
        duplicates_of = d.next_seq - 1;
      } else {
        uint64_t seq = d.next_seq;  // Enqueue assigns it
        if (!record.empty()) {
          item->wb.Put(d.head_cf, LogKey(seq), record);
          d.log_bytes_since_checkpoint += record.size();
          want_checkpoint = d.log_bytes_since_checkpoint > d.options.head_log_bytes;
        }
        d.Enqueue(item);
      }
    }
    if (item->seq == 0) {  // not queued
      RETURN_IF_ERROR(d.WaitDurable(duplicates_of));
      return stats;
    }
    Status st = d.WaitCommitted(item.get());
    if (!st.ok()) return st;

    // 5. Publish: durable series.
    for (SeriesEntry* e : unconfirmed) {
      if (!e->durable.exchange(true, std::memory_order_acq_rel)) {
        ++stats.new_series;
        d.series_count.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (want_checkpoint) {
      std::lock_guard lock(d.bg_mu);
      d.checkpoint_wanted = true;
    }
    if (want_checkpoint || wake_closer) d.bg_cv.notify_all();
    return stats;
  }
}

}  // namespace suanli::storage
