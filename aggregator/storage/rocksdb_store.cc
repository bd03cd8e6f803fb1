// RocksDbStore: open and recovery of the database, statistics, the head log as a queue, and
// cursors. The other parts: commit_queue.cc, head_append.cc, head_read.cc, maintenance.cc;
// keys and byte formats in store_keys.h, the in-memory index in series_index.h.
#include "aggregator/storage/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "aggregator/storage/rocksdb_store_impl.h"
#include "core/scratch.h"

namespace suanli::storage {
namespace {

// RocksDB's info log in the aggregator's log, not in a LOG file in the database directory: on
// a full disk a LOG write fails, and RocksDB's next line to that file aborts the process (an
// assertion in WritableFileWriter that Debian's build of RocksDB 7.8 keeps). Its INFO lines
// (options, flushes, compactions) are at debug level, warnings and errors as such.
class InfoLogToSpdlog final : public rocksdb::Logger {
 public:
  InfoLogToSpdlog() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum to =
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                     : spdlog::level::debug;
    if (!spdlog::should_log(to)) return;
    char line[2048];
    std::vsnprintf(line, sizeof line, format, ap);
    spdlog::log(to, "rocksdb: {}", line);
  }
};

rocksdb::ColumnFamilyOptions MakeCfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           size_t write_buffer_bytes, bool bloom,
                                           rocksdb::CompressionType upper,
                                           rocksdb::CompressionType bottom,
                                           size_t block_bytes = 4096) {
  rocksdb::ColumnFamilyOptions cf;
  // Default level-style compaction (never FIFO: it expires by write time and deletes past its
  // size cap). max_successive_merges stays 0: in 7.8.3 it can block writes.
  cf.level_compaction_dynamic_level_bytes = true;
  cf.write_buffer_size = write_buffer_bytes;
  cf.compression = upper;
  cf.bottommost_compression = bottom;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  table.block_size = block_bytes;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

bool Supported(const std::vector<rocksdb::CompressionType>& list, rocksdb::CompressionType t) {
  return std::find(list.begin(), list.end(), t) != list.end();
}

}  // namespace

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.bg_mu);
    d.stopping = true;
  }
  d.bg_cv.notify_all();
  if (d.background.joinable()) d.background.join();
  // A clean shutdown leaves a short head log and no WAL, so the next Open replays little.
  if (!d.write_failed.load()) {
    Status st = d.Checkpoint();
    if (st.ok() && !d.disk_full.load()) st = d.FlushAll();
    if (!st.ok()) spdlog::warn("storage: final checkpoint: {}", st.ToString());
  }
}

Status RocksDbStore::Impl::FlushAll() {
  std::vector<rocksdb::ColumnFamilyHandle*> all(fixed_handles);
  {
    std::shared_lock lock(cf_mu);
    for (const auto& m : parts) {
      for (const auto& [p, h] : m) all.push_back(h);
    }
  }
  return FromRocks(db->Flush(rocksdb::FlushOptions(), all), "flushing memtables");
}

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbStoreOptions& options) {
  if (options.path.empty()) return InvalidArgument("storage path is empty");
  if (options.out_of_order_window_ms < 0) return InvalidArgument("out-of-order window < 0");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return IoError("creating storage directory " + options.path + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->limits = options.limits;
  impl->hash_fn =
      options.label_hash
          ? options.label_hash
          : std::function<uint64_t(const Labels&)>([](const Labels& l) { return l.Hash(); });
  impl->now_fn = options.now_ms ? options.now_ms : std::function<int64_t()>([] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  });

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  if (options.file_system) {
    impl->env = rocksdb::NewCompositeEnv(
        std::static_pointer_cast<rocksdb::FileSystem>(options.file_system));
    db_options.env = impl->env.get();
  }
  db_options.create_missing_column_families = true;
  db_options.max_total_wal_size = options.max_wal_bytes;
  // RocksDB's info log goes to ours, not to a LOG file beside the data (InfoLogToSpdlog).
  db_options.info_log = std::make_shared<InfoLogToSpdlog>();
  db_options.info_log_level = rocksdb::InfoLogLevel::INFO_LEVEL;
  db_options.max_background_jobs = 2;
  // kPointInTimeRecovery (the default): after a crash, replay stops at the first torn record;
  // every synced batch before it is recovered whole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // One thread writes at a time (the commit leader), and the index's vector memtable does not
  // take concurrent inserts.
  db_options.allow_concurrent_memtable_write = false;

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  bool lz4 = Supported(supported, rocksdb::kLZ4Compression);
  bool zstd = Supported(supported, rocksdb::kZSTD);
  rocksdb::CompressionType upper = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  rocksdb::CompressionType bottom = zstd ? rocksdb::kZSTD : upper;
  if (!lz4 || !zstd) {
    spdlog::warn("storage: this RocksDB lacks {}{}; using {} and {} bottommost", lz4 ? "" : "LZ4 ",
                 zstd ? "" : "ZSTD ", lz4 ? "LZ4" : "no compression",
                 zstd ? "ZSTD" : (lz4 ? "LZ4" : "no compression"));
  }

  std::vector<std::string> existing;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing);
  if (!ls.ok()) existing.clear();  // a new database

  rocksdb::Status s;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Partitions hold closed, column-coded data, written once and read by range: 16 KiB blocks
    // (fewer index entries, more context for ZSTD at the bottom level, which still takes the
    // keys' shared prefixes). Raw chunks keep a bloom filter (opening a head for a window
    // probes for a closed chunk that mostly does not exist); rollups are only ever scanned, so
    // a filter would be 1.25 bytes per key for nothing.
    for (int res = 0; res < 4; ++res) {
      impl->part_cf_options[res] = MakeCfOptions(cache, options.write_buffer_bytes,
                                                 /*bloom=*/res == 0, upper, bottom, 32 << 10);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, MakeCfOptions(cache, 4 << 20, false, upper, bottom)},
        {kIndexCf, MakeCfOptions(cache, std::max<size_t>(options.write_buffer_bytes / 4, 1 << 20),
                                 false, upper, bottom)},
        {kHeadCf, MakeCfOptions(cache, options.write_buffer_bytes, false, upper, bottom)},
    };
    // The index is written in id order and read only by whole-family scans at Open: an
    // append-only vector memtable (sorted once, at flush or scan) instead of the skiplist,
    // whose search and key compares were a sixth of the CPU of creating a series.
    cfs[1].options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();

    for (const std::string& name : existing) {
      int res;
      int64_t p;
      if (ParsePartitionName(name, &res, &p)) cfs.push_back({name, impl->part_cf_options[res]});
    }
    handles.clear();
    s = rocksdb::DB::Open(db_options, options.path, cfs, &handles, &impl->db);
    bool compression_refused = (s.IsInvalidArgument() || s.IsNotSupported()) &&
                               s.ToString().find("ompression") != std::string::npos;
    if (!compression_refused || upper == rocksdb::kNoCompression) break;
    spdlog::warn("storage: RocksDB refused compression ({}); opening {} without compression",
                 s.ToString(), options.path);
    upper = bottom = rocksdb::kNoCompression;
  }
  if (!s.ok()) return FromRocks(s, "opening storage at " + options.path);
  impl->fixed_handles.assign(handles.begin(), handles.begin() + 3);
  impl->index_cf = handles[1];
  impl->head_cf = handles[2];
  for (size_t i = 3; i < handles.size(); ++i) {
    int res;
    int64_t p;
    ParsePartitionName(handles[i]->GetName(), &res, &p);
    impl->parts[res][p] = handles[i];
  }

  std::string where = "opening storage at " + options.path;
  RETURN_IF_ERROR(impl->Load().WithContext(where));
  RETURN_IF_ERROR(impl->EnforceRetention().WithContext(where));
  RETURN_IF_ERROR(impl->Replay().WithContext(where));
  RETURN_IF_ERROR(impl->Checkpoint().WithContext(where));
  spdlog::info("storage: opened {} with {} series, {} open chunks", options.path,
               impl->series_count.load(), impl->head_series.load());
  Impl* raw = impl.get();
  impl->background = std::thread([raw] { raw->BackgroundLoop(); });
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::move(impl)));
}

Result<std::unique_ptr<Store>> OpenRocksDbStore(const RocksDbStoreOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<RocksDbStore> store, RocksDbStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

Status RocksDbStore::Impl::Load() {
  rocksdb::ReadOptions ro;
  std::string version;
  rocksdb::Status s =
      db->Get(ro, index_cf, rocksdb::Slice(kFormatKey.data(), kFormatKey.size()), &version);
  if (s.IsNotFound()) {
    std::string v;
    PutBE64(&v, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(
        FromRocks(db->Put(wo, index_cf, rocksdb::Slice(kFormatKey.data(), kFormatKey.size()), v),
                  "writing format version"));
  } else if (!s.ok()) {
    return FromRocks(s, "reading format version");
  } else if (version.size() != 8 || GetBE64(version.data()) != kFormatVersion) {
    return InvalidArgument("unknown storage format version (this build reads version " +
                           std::to_string(kFormatVersion) + ")");
  }

  // id -> labels: rebuild the in-memory index.
  std::string lower(1, kSeriesTag), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, index_cf));
  size_t loaded = 0;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    if (key.size() != 9) return Internal("malformed series key in the index");
    uint64_t id = GetBE64(key.data() + 1);
    Labels labels;
    if (!DecodeLabels(View(it->value()), &labels)) {
      return Internal("malformed labels of series " + std::to_string(id));
    }
    uint64_t hash = LookupHash(labels);
    if (SeriesEntry* dup = Find(labels, hash)) {
      return Internal("series " + labels.ToString() + " has two ids (" + std::to_string(dup->id) +
                      ", " + std::to_string(id) + ")");
    }
    CountSeriesOfDc(labels.Get("dc"));
    AddPostings(ViewsOf(labels), id);
    Insert(SeriesEntry::Create(entry_arena, id, hash, View(it->value()), /*durable=*/true));
    next_id = std::max(next_id, id + 1);
    ++loaded;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the series index"));
  std::string floor;
  s = db->Get(rocksdb::ReadOptions(), index_cf,
              rocksdb::Slice(kNextIdKey.data(), kNextIdKey.size()), &floor);
  if (s.ok() && floor.size() == 8) {
    next_id = std::max(next_id, GetBE64(floor.data()));
  } else if (!s.ok() && !s.IsNotFound()) {
    return FromRocks(s, "reading the next series id");
  }

  series_count = loaded;
  return Status::Ok();
}

rocksdb::ColumnFamilyHandle* RocksDbStore::Impl::FindPartition(int res, int64_t p) const {
  auto it = parts[res].find(p);
  return it == parts[res].end() ? nullptr : it->second;
}

Result<rocksdb::ColumnFamilyHandle*> RocksDbStore::Impl::Partition(int res, int64_t p) {
  {
    std::shared_lock lock(cf_mu);
    if (auto* h = FindPartition(res, p)) return h;
  }
  std::unique_lock lock(cf_mu);
  if (auto* h = FindPartition(res, p)) return h;
  rocksdb::ColumnFamilyHandle* h = nullptr;
  RETURN_IF_ERROR(FromRocks(db->CreateColumnFamily(part_cf_options[res], PartitionName(res, p), &h),
                            "creating partition " + PartitionName(res, p)));
  parts[res][p] = h;
  return h;
}

// Only `s id -> labels`: the lookup hash and the postings live in memory, rebuilt at Open.
void RocksDbStore::Impl::AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e) {
  wb->Put(index_cf, SeriesKey(e.id), e.labels_blob);
}

void RocksDbStore::Impl::AddPostings(std::span<const LabelView> labels, uint64_t id) {
  for (const LabelView& l : labels) {
    auto by_name = postings.find(l.name);
    if (by_name == postings.end()) by_name = postings.try_emplace(std::string(l.name)).first;
    ValuePostings& values = by_name->second;
    auto by_value = values.find(l.value);
    if (by_value == values.end()) by_value = values.try_emplace(std::string(l.value)).first;
    by_value->second.push_back(id);
  }
}

int64_t RocksDbStore::RetentionCutoff(Resolution resolution) const {
  return impl_->Cutoff(static_cast<int>(resolution));
}

void RocksDbStore::SetLimits(const StoreLimits& limits) {
  std::unique_lock lock(impl_->index_mu);
  impl_->limits = limits;
}

StoreStats RocksDbStore::Stats() const {
  const Impl& d = *impl_;
  StoreStats stats;
  stats.series = d.series_count.load(std::memory_order_relaxed);
  stats.head_series = d.head_series.load(std::memory_order_relaxed);
  stats.rejected_too_old = d.rejected_too_old.load(std::memory_order_relaxed);
  stats.rejected_series_limit = d.rejected_series_limit.load(std::memory_order_relaxed);
  stats.rejected_labels_limit = d.rejected_labels_limit.load(std::memory_order_relaxed);
  stats.partitions_dropped = d.partitions_dropped.load(std::memory_order_relaxed);
  stats.checkpoints = d.checkpoints.load(std::memory_order_relaxed);
  stats.series_forgotten = d.series_forgotten.load(std::memory_order_relaxed);
  auto add = [&](rocksdb::ColumnFamilyHandle* h) {
    uint64_t bytes = 0;
    if (d.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
      stats.disk_bytes += bytes;
    }
  };
  for (rocksdb::ColumnFamilyHandle* h : d.fixed_handles) add(h);
  {
    std::shared_lock lock(d.cf_mu);
    for (const auto& m : d.parts) {
      for (const auto& [p, h] : m) add(h);
    }
  }
  rocksdb::VectorLogPtr wals;
  if (d.db->GetSortedWalFiles(wals).ok()) {
    for (const auto& wal : wals) {
      if (wal->Type() == rocksdb::kAliveLogFile) stats.disk_bytes += wal->SizeFileBytes();
    }
  }
  return stats;
}

std::map<std::string, uint64_t> RocksDbStore::DiskBytesByFamily() const {
  const Impl& d = *impl_;
  std::map<std::string, uint64_t> out;
  auto add = [&](const std::string& key, rocksdb::ColumnFamilyHandle* h) {
    uint64_t bytes = 0;
    if (d.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
      out[key] += bytes;
    }
  };
  for (rocksdb::ColumnFamilyHandle* h : d.fixed_handles) add(h->GetName(), h);
  std::shared_lock lock(d.cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (const auto& [p, h] : d.parts[res]) add(ResolutionName(static_cast<Resolution>(res)), h);
  }
  return out;
}

Status RocksDbStore::CompactAll() {
  Impl& d = *impl_;
  RETURN_IF_ERROR(d.FlushAll());
  std::vector<rocksdb::ColumnFamilyHandle*> all(d.fixed_handles);
  {
    std::shared_lock lock(d.cf_mu);
    for (const auto& m : d.parts) {
      for (const auto& [p, h] : m) all.push_back(h);
    }
  }
  for (rocksdb::ColumnFamilyHandle* h : all) {
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    RETURN_IF_ERROR(FromRocks(d.db->CompactRange(o, h, nullptr, nullptr), "compaction"));
  }
  return Status::Ok();
}

Result<uint64_t> RocksDbStore::SeriesId(const Labels& labels) const {
  const Impl& d = *impl_;
  Labels canonical = CanonicalLabels(labels);
  uint64_t hash = d.LookupHash(canonical);
  std::shared_lock lock(d.index_mu);
  SeriesEntry* e = d.Find(canonical, hash);
  if (e == nullptr || !e->durable.load(std::memory_order_acquire)) {
    return NotFound("no series " + canonical.ToString());
  }
  return e->id;
}

bool RocksDbStore::Healthy() const { return !impl_->write_failed.load(std::memory_order_acquire); }

// ---- the log and cursors ----

Result<LogRead> RocksDbStore::ReadLog(uint64_t from_seq, size_t max_samples, uint64_t end_seq) {
  Impl& d = *impl_;
  uint64_t durable;
  {
    std::lock_guard lock(d.commit_mu);
    durable = d.written_seq;
  }
  const bool bounded = end_seq != UINT64_MAX && end_seq > 0 && end_seq - 1 < durable;
  if (bounded) durable = end_seq - 1;
  LogRead out;
  out.next_seq = from_seq;
  if (from_seq > durable) {
    out.caught_up = true;
    return out;
  }
  std::string lower = LogKey(from_seq), upper = LogKey(durable + 1);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  ro.fill_cache = false;  // read once, in order
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, d.head_cf));
  bool stopped_early = false;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    if (out.samples.size() >= max_samples && out.batches > 0) {
      stopped_early = true;
      break;
    }
    if (it->key().size() != 9) return Internal("malformed head log key");
    uint64_t seq = GetBE64(it->key().data() + 1);
    bool well_formed = ReadHeadLog(View(it->value()), [&](uint64_t id, int64_t ts, uint64_t bits) {
      out.samples.push_back({id, ts, std::bit_cast<double>(bits)});
      return true;
    });
    if (!well_formed) return Internal("malformed head log batch " + std::to_string(seq));
    ++out.batches;
    out.next_seq = seq + 1;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the head log"));
  if (!stopped_early) {
    // Every batch up to the durable end (or end_seq) is read; later ones get larger seqs.
    out.next_seq = std::max(out.next_seq, durable + 1);
    out.caught_up = !bounded;
  }
  return out;
}

uint64_t RocksDbStore::LogEnd() {
  std::lock_guard lock(impl_->commit_mu);
  return impl_->written_seq + 1;
}

Result<Labels> RocksDbStore::SeriesLabels(uint64_t series_id) {
  const Impl& d = *impl_;
  std::shared_lock lock(d.index_mu);
  SeriesEntry* e = d.ById(series_id);
  Labels labels;
  if (e == nullptr || !DecodeLabels(e->labels_blob, &labels)) {
    return NotFound("no series with id " + std::to_string(series_id));
  }
  return labels;
}

Result<std::optional<Cursor>> RocksDbStore::GetCursor(std::string_view name) {
  std::lock_guard lock(impl_->cursor_mu);
  auto it = impl_->cursors.find(name);
  if (it == impl_->cursors.end()) return std::optional<Cursor>();
  return std::optional<Cursor>(it->second);
}

Status RocksDbStore::Impl::CommitCursorBatch(std::unique_ptr<CommitItem> item) {
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  {
    std::lock_guard lock(head_mu);
    Enqueue(item);
  }
  return WaitCommitted(item.get());
}

Status RocksDbStore::SetCursor(std::string_view name, Cursor cursor) {
  if (name.empty()) return InvalidArgument("cursor name must not be empty");
  Impl& d = *impl_;
  auto item = std::make_unique<CommitItem>();
  std::string v(1, static_cast<char>(cursor.kind));
  PutBE64(&v, static_cast<uint64_t>(cursor.value));
  item->wb.Put(d.head_cf, CursorKey(name), v);
  // A new log cursor, or one moved back, keeps the log from its place before the write, so
  // that a checkpoint running meanwhile cannot cut below it; one moved forward releases the
  // log only once durable.
  {
    std::lock_guard lock(d.cursor_mu);
    auto it = d.cursors.find(name);
    if (it == d.cursors.end() || cursor.value < it->second.value)
      d.cursors[std::string(name)] = cursor;
  }
  RETURN_IF_ERROR(d.CommitCursorBatch(std::move(item)));
  std::lock_guard lock(d.cursor_mu);
  d.cursors[std::string(name)] = cursor;
  return Status::Ok();
}

Status RocksDbStore::DeleteCursor(std::string_view name) {
  Impl& d = *impl_;
  auto item = std::make_unique<CommitItem>();
  item->wb.Delete(d.head_cf, CursorKey(name));
  RETURN_IF_ERROR(d.CommitCursorBatch(std::move(item)));
  std::lock_guard lock(d.cursor_mu);
  auto it = d.cursors.find(name);
  if (it != d.cursors.end()) d.cursors.erase(it);
  return Status::Ok();
}

std::vector<std::string> RocksDbStore::CursorNames() {
  std::lock_guard lock(impl_->cursor_mu);
  std::vector<std::string> names;
  for (const auto& [name, c] : impl_->cursors) names.push_back(name);
  return names;
}

rocksdb::DB* RocksDbStore::db() const { return impl_->db; }

}  // namespace suanli::storage
