// RocksDbStore: see rocksdb_store.h; key and value formats are drawn in README.md.
#include "aggregator/storage/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace suanli::storage {
namespace {

constexpr char kIndexCf[] = "index";
constexpr char kRawCf[] = "raw";

// First byte of every key in the index column family.
constexpr char kSeriesTag = 's';   // s id -> labels
constexpr char kHashTag = 'h';     // h hash id -> ""
constexpr char kPostingTag = 'p';  // p name\0 value\0 id -> ""
constexpr std::string_view kFormatKey = "mformat_version";
constexpr uint32_t kFormatVersion = 1;

constexpr size_t kTimestampStripes = 64;
constexpr int64_t kNoSamples = std::numeric_limits<int64_t>::min();

// ---- byte encodings (README.md) ----

void PutBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t GetBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Flipping the sign bit makes the unsigned big-endian order equal the signed order.
uint64_t FlipTimestamp(int64_t ts) { return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63); }
int64_t UnflipTimestamp(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }

uint64_t DoubleBits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

double BitsDouble(uint64_t bits) {
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

std::string RawKey(uint64_t id, int64_t ts) {
  std::string k;
  k.reserve(16);
  PutBE64(&k, id);
  PutBE64(&k, FlipTimestamp(ts));
  return k;
}

std::string RawValue(uint64_t bits) {
  std::string v;
  v.reserve(8);
  PutBE64(&v, bits);
  return v;
}

// 0x00 -> 01 01, 0x01 -> 01 02, then a 0x00 terminator: label text may hold any byte, the
// terminator stays unambiguous, and byte order is preserved.
void PutEscaped(std::string* out, std::string_view s) {
  for (char c : s) {
    if (c == '\0') {
      out->append("\x01\x01", 2);
    } else if (c == '\x01') {
      out->append("\x01\x02", 2);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\0');
}

// Consumes one escaped, terminated string from *in.
bool GetEscaped(std::string_view* in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in->size(); ++i) {
    char c = (*in)[i];
    if (c == '\0') {
      in->remove_prefix(i + 1);
      return true;
    }
    if (c == '\x01') {
      if (i + 1 >= in->size()) return false;
      char n = (*in)[++i];
      if (n == '\x01') {
        out->push_back('\0');
      } else if (n == '\x02') {
        out->push_back('\x01');
      } else {
        return false;
      }
    } else {
      out->push_back(c);
    }
  }
  return false;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

bool GetLengthPrefixed(std::string_view* in, std::string* out) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

std::string EncodeLabels(const Labels& labels) {
  std::string out;
  PutVarint(&out, labels.size());
  for (const Label& l : labels.items()) {
    PutVarint(&out, l.name.size());
    out += l.name;
    PutVarint(&out, l.value.size());
    out += l.value;
  }
  return out;
}

bool DecodeLabels(std::string_view in, Labels* labels) {
  uint64_t n;
  if (!GetVarint(&in, &n) || n > in.size()) return false;  // each label takes >= 2 bytes
  std::vector<Label> items(n);
  for (Label& l : items) {
    if (!GetLengthPrefixed(&in, &l.name) || !GetLengthPrefixed(&in, &l.value)) return false;
  }
  if (!in.empty()) return false;
  *labels = Labels(std::move(items));
  return true;
}

std::string SeriesKey(uint64_t id) {
  std::string k(1, kSeriesTag);
  PutBE64(&k, id);
  return k;
}

std::string HashKey(uint64_t hash, uint64_t id) {
  std::string k(1, kHashTag);
  PutBE64(&k, hash);
  PutBE64(&k, id);
  return k;
}

std::string PostingNamePrefix(std::string_view name) {
  std::string k(1, kPostingTag);
  PutEscaped(&k, name);
  return k;
}

std::string PostingValuePrefix(std::string_view name, std::string_view value) {
  std::string k = PostingNamePrefix(name);
  PutEscaped(&k, value);
  return k;
}

// Smallest key greater than every key starting with `prefix`. Our prefixes end in a tag
// letter or a 0x00 terminator, never 0xff, so incrementing the last byte is enough.
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string msg = what + ": " + s.ToString();
  if (s.IsIOError() || s.IsCorruption()) return IoError(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgument(std::move(msg));
  if (s.IsNotFound()) return NotFound(std::move(msg));
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Unavailable(std::move(msg));
  return Internal(std::move(msg));
}

// One series as kept in memory. id, hash and labels never change after creation.
struct SeriesEntry {
  SeriesEntry(uint64_t id, uint64_t hash, Labels labels, bool durable, bool max_known)
      : id(id), hash(hash), labels(std::move(labels)), durable(durable), max_known(max_known) {}

  const uint64_t id;
  const uint64_t hash;
  const Labels labels;
  // Next entry with the same hash (collision chain); set before publication under the unique
  // index lock.
  SeriesEntry* next_same_hash = nullptr;
  // True once a WriteBatch holding the index entries committed. Until then every batch that
  // uses the series writes them again (same bytes), so no sample ever lacks its index.
  std::atomic<bool> durable;
  // Guarded by the timestamp stripe of `id`: an upper bound of the stored timestamps (when
  // max_known), so in-order samples need no read to rule out a duplicate.
  bool max_known;
  int64_t max_ts = kNoSamples;
};

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

}  // namespace

struct RocksDbStore::Impl {
  RocksDbStoreOptions options;
  std::function<uint64_t(const Labels&)> hash_fn;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, index, raw
  rocksdb::ColumnFamilyHandle* index_cf = nullptr;
  rocksdb::ColumnFamilyHandle* raw_cf = nullptr;

  mutable std::shared_mutex index_mu;
  std::unordered_map<uint64_t, SeriesEntry*> by_hash;  // head of each collision chain
  std::unordered_map<uint64_t, std::unique_ptr<SeriesEntry>> by_id;
  uint64_t next_id = 1;  // 0 is never a series id

  std::array<std::mutex, kTimestampStripes> ts_mu;
  std::atomic<uint64_t> series_count{0};
  std::atomic<bool> write_failed{false};

  ~Impl() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* h : handles)
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    rocksdb::Status s = db->Close();
    if (!s.ok()) spdlog::warn("storage: closing {}: {}", options.path, s.ToString());
    delete db;
  }

  std::mutex& StripeOf(uint64_t id) { return ts_mu[id % kTimestampStripes]; }

  // Caller holds index_mu (shared or unique).
  SeriesEntry* Find(const Labels& labels, uint64_t hash) const {
    auto it = by_hash.find(hash);
    for (SeriesEntry* e = it == by_hash.end() ? nullptr : it->second; e; e = e->next_same_hash) {
      if (e->labels == labels) return e;
    }
    return nullptr;
  }

  // Caller holds index_mu unique.
  SeriesEntry* Insert(std::unique_ptr<SeriesEntry> entry) {
    SeriesEntry* e = entry.get();
    SeriesEntry*& head = by_hash[e->hash];
    e->next_same_hash = head;
    head = e;
    by_id.emplace(e->id, std::move(entry));
    return e;
  }

  Status Load();
  Status ResolveMaxTimestamp(SeriesEntry* e);  // caller holds StripeOf(e->id)
  void AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e);
  Result<std::vector<uint64_t>> PostingsForValue(const rocksdb::ReadOptions& ro,
                                                 const std::string& name, const std::string& value);
  Result<std::vector<uint64_t>> PostingsForName(const rocksdb::ReadOptions& ro,
                                                const LabelMatcher& matcher);
};

namespace {

rocksdb::ColumnFamilyOptions MakeCfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           size_t write_buffer_bytes, bool bloom,
                                           rocksdb::CompressionType upper,
                                           rocksdb::CompressionType bottom) {
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
  // Point lookups (the duplicate check) mostly ask for keys that do not exist.
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

bool Supported(const std::vector<rocksdb::CompressionType>& list, rocksdb::CompressionType t) {
  return std::find(list.begin(), list.end(), t) != list.end();
}

}  // namespace

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbStore::~RocksDbStore() = default;

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbStoreOptions& options) {
  if (options.path.empty()) return InvalidArgument("storage path is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return IoError("creating storage directory " + options.path + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->hash_fn =
      options.label_hash
          ? options.label_hash
          : std::function<uint64_t(const Labels&)>([](const Labels& l) { return l.Hash(); });

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_total_wal_size = options.max_wal_bytes;
  db_options.keep_log_file_num = 5;  // RocksDB's own info LOG files
  db_options.max_log_file_size = 16 << 20;
  // kPointInTimeRecovery (the default): after a crash, replay stops at the first torn record;
  // every synced batch before it is recovered whole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

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

  rocksdb::Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, MakeCfOptions(cache, 4 << 20, false, upper, bottom)},
        {kIndexCf, MakeCfOptions(cache, std::max<size_t>(options.write_buffer_bytes / 4, 1 << 20),
                                 false, upper, bottom)},
        {kRawCf, MakeCfOptions(cache, options.write_buffer_bytes, true, upper, bottom)},
    };
    s = rocksdb::DB::Open(db_options, options.path, cfs, &impl->handles, &impl->db);
    bool compression_refused = (s.IsInvalidArgument() || s.IsNotSupported()) &&
                               s.ToString().find("ompression") != std::string::npos;
    if (!compression_refused || upper == rocksdb::kNoCompression) break;
    spdlog::warn("storage: RocksDB refused compression ({}); opening {} without compression",
                 s.ToString(), options.path);
    upper = bottom = rocksdb::kNoCompression;
  }
  if (!s.ok()) return FromRocks(s, "opening storage at " + options.path);
  impl->index_cf = impl->handles[1];
  impl->raw_cf = impl->handles[2];

  RETURN_IF_ERROR(impl->Load().WithContext("opening storage at " + options.path));
  spdlog::info("storage: opened {} with {} series", options.path, impl->series_count.load());
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
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    if (key.size() != 9) return Internal("malformed series key in the index");
    uint64_t id = GetBE64(key.data() + 1);
    Labels labels;
    if (!DecodeLabels(View(it->value()), &labels)) {
      return Internal("malformed labels of series " + std::to_string(id));
    }
    uint64_t hash = hash_fn(labels);
    if (SeriesEntry* dup = Find(labels, hash)) {
      return Internal("series " + labels.ToString() + " has two ids (" + std::to_string(dup->id) +
                      ", " + std::to_string(id) + ")");
    }
    Insert(std::make_unique<SeriesEntry>(id, hash, std::move(labels), /*durable=*/true,
                                         /*max_known=*/false));
    next_id = std::max(next_id, id + 1);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the series index"));

  // label-set hash -> id: must agree with the hash this process computes, else lookups would
  // miss and create a second id for an existing series.
  lower.assign(1, kHashTag);
  upper = PrefixEnd(lower);
  lower_s = lower;
  upper_s = upper;
  it.reset(db->NewIterator(ro, index_cf));
  size_t hash_keys = 0;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    if (key.size() != 17) return Internal("malformed hash key in the index");
    uint64_t hash = GetBE64(key.data() + 1), id = GetBE64(key.data() + 9);
    auto found = by_id.find(id);
    if (found == by_id.end()) {
      return Internal("hash index names series " + std::to_string(id) + ", which has no labels");
    }
    if (found->second->hash != hash) {
      return InvalidArgument(
          "the label hash function differs from the one that wrote this database (series " +
          found->second->labels.ToString() + ")");
    }
    ++hash_keys;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the hash index"));
  if (hash_keys != by_id.size()) {
    return Internal("index holds " + std::to_string(by_id.size()) + " series but " +
                    std::to_string(hash_keys) + " hash entries");
  }
  series_count = by_id.size();
  return Status::Ok();
}

Status RocksDbStore::Impl::ResolveMaxTimestamp(SeriesEntry* e) {
  std::string lower, upper;
  PutBE64(&lower, e->id);
  PutBE64(&upper, e->id + 1);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, raw_cf));
  it->SeekToLast();
  int64_t max_ts = kNoSamples;
  if (it->Valid()) {
    if (it->key().size() != 16) return Internal("malformed sample key");
    max_ts = UnflipTimestamp(GetBE64(it->key().data() + 8));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the last sample of a series"));
  e->max_ts = max_ts;
  e->max_known = true;
  return Status::Ok();
}

void RocksDbStore::Impl::AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e) {
  wb->Put(index_cf, SeriesKey(e.id), EncodeLabels(e.labels));
  wb->Put(index_cf, HashKey(e.hash, e.id), rocksdb::Slice());
  for (const Label& l : e.labels.items()) {
    std::string key = PostingValuePrefix(l.name, l.value);
    PutBE64(&key, e.id);
    wb->Put(index_cf, key, rocksdb::Slice());
  }
}

Result<AppendStats> RocksDbStore::Append(const std::vector<TimeSeries>& batch) {
  Impl& d = *impl_;
  if (d.write_failed.load(std::memory_order_acquire)) {
    return IoError("storage at " + d.options.path +
                   " refuses writes after a failed write; restart the aggregator");
  }
  AppendStats stats;

  // 1. Canonical label sets and their hashes.
  struct Ref {
    const Labels* labels = nullptr;  // null: the series has no samples
    uint64_t hash = 0;
    SeriesEntry* entry = nullptr;
  };
  std::vector<Ref> refs(batch.size());
  std::vector<Labels> canonical;
  canonical.reserve(batch.size());  // no reallocation: refs point into it
  size_t total_samples = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const TimeSeries& ts = batch[i];
    if (ts.samples.empty()) continue;
    total_samples += ts.samples.size();
    const Labels* labels = &ts.labels;
    bool has_empty = std::any_of(ts.labels.items().begin(), ts.labels.items().end(),
                                 [](const Label& l) { return l.value.empty(); });
    if (has_empty) {
      canonical.push_back(CanonicalLabels(ts.labels));
      labels = &canonical.back();
    }
    refs[i].labels = labels;
    refs[i].hash = d.hash_fn(*labels);
  }

  // 2. Series ids. New ids are allocated under the unique lock and published at once, so a
  // concurrent batch with the same new series finds this entry and uses the same id.
  bool missing = false;
  {
    std::shared_lock lock(d.index_mu);
    for (Ref& r : refs) {
      if (r.labels == nullptr) continue;
      r.entry = d.Find(*r.labels, r.hash);
      missing = missing || r.entry == nullptr;
    }
  }
  if (missing) {
    std::unique_lock lock(d.index_mu);
    for (Ref& r : refs) {
      if (r.labels == nullptr || r.entry != nullptr) continue;
      r.entry = d.Find(*r.labels, r.hash);
      if (r.entry == nullptr) {
        r.entry = d.Insert(std::make_unique<SeriesEntry>(d.next_id++, r.hash, *r.labels,
                                                         /*durable=*/false, /*max_known=*/true));
      }
    }
  }

  // 3. Samples in key order; duplicates within the batch collapse, conflicts refuse it.
  struct Pending {
    SeriesEntry* entry;
    int64_t ts;
    uint64_t bits;
    bool skip = false;  // already stored with the same bits
  };
  std::vector<Pending> pending;
  pending.reserve(total_samples);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (refs[i].labels == nullptr) continue;
    for (const Sample& s : batch[i].samples) {
      pending.push_back({refs[i].entry, s.timestamp_ms, DoubleBits(s.value)});
    }
  }
  std::stable_sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
    if (a.entry->id != b.entry->id) return a.entry->id < b.entry->id;
    return a.ts < b.ts;
  });
  auto conflict = [](const Pending& p, uint64_t stored_bits) {
    return InvalidArgument("duplicate sample for timestamp " + std::to_string(p.ts) +
                           " of series " + p.entry->labels.ToString() +
                           " with a different value (" + std::to_string(BitsDouble(stored_bits)) +
                           " vs " + std::to_string(BitsDouble(p.bits)) + ")");
  };
  size_t kept = 0;
  for (size_t i = 0; i < pending.size(); ++i) {
    if (kept > 0 && pending[kept - 1].entry == pending[i].entry &&
        pending[kept - 1].ts == pending[i].ts) {
      if (pending[kept - 1].bits != pending[i].bits) {
        return conflict(pending[i], pending[kept - 1].bits);
      }
      ++stats.duplicates;
      continue;
    }
    pending[kept++] = pending[i];
  }
  pending.resize(kept);

  // 4. Rule out duplicates of stored samples: only samples at or below the series' highest
  // stored timestamp need a read.
  std::vector<size_t> to_check;
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin;
    while (end < pending.size() && pending[end].entry == e) ++end;
    int64_t max_ts;
    {
      std::lock_guard lock(d.StripeOf(e->id));
      if (!e->max_known) RETURN_IF_ERROR(d.ResolveMaxTimestamp(e));
      max_ts = e->max_ts;
    }
    for (size_t i = begin; i < end && pending[i].ts <= max_ts; ++i) to_check.push_back(i);
    begin = end;
  }
  if (!to_check.empty()) {
    std::vector<std::string> keys;
    std::vector<rocksdb::Slice> slices;
    keys.reserve(to_check.size());
    slices.reserve(to_check.size());
    for (size_t i : to_check) {
      keys.push_back(RawKey(pending[i].entry->id, pending[i].ts));
      slices.emplace_back(keys.back());
    }
    std::vector<rocksdb::PinnableSlice> values(to_check.size());
    std::vector<rocksdb::Status> statuses(to_check.size());
    d.db->MultiGet(rocksdb::ReadOptions(), d.raw_cf, slices.size(), slices.data(), values.data(),
                   statuses.data(), /*sorted_input=*/true);
    for (size_t k = 0; k < to_check.size(); ++k) {
      Pending& p = pending[to_check[k]];
      if (statuses[k].IsNotFound()) continue;
      RETURN_IF_ERROR(FromRocks(statuses[k], "checking for duplicate samples"));
      if (values[k].size() != 8) return Internal("malformed sample value");
      uint64_t stored = GetBE64(values[k].data());
      if (stored != p.bits) return conflict(p, stored);
      p.skip = true;
      ++stats.duplicates;
    }
  }

  // 5. One WriteBatch: index entries of series not yet durable, then the samples.
  rocksdb::WriteBatch wb;
  std::vector<SeriesEntry*> unconfirmed;
  for (size_t i = 0; i < pending.size(); ++i) {
    const Pending& p = pending[i];
    if ((i == 0 || pending[i - 1].entry != p.entry) &&
        !p.entry->durable.load(std::memory_order_acquire)) {
      d.AddSeriesToBatch(&wb, *p.entry);
      unconfirmed.push_back(p.entry);
    }
    if (p.skip) continue;
    wb.Put(d.raw_cf, RawKey(p.entry->id, p.ts), RawValue(p.bits));
    ++stats.samples_stored;
  }
  if (wb.Count() == 0) return stats;  // all duplicates: already durable
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = d.db->Write(wo, &wb);
  if (!s.ok()) {
    // After a WAL error RocksDB cannot tell what reached the disk: stop writing.
    d.write_failed.store(true, std::memory_order_release);
    spdlog::error("storage: write to {} failed, refusing further writes: {}", d.options.path,
                  s.ToString());
    return IoError("storage write failed (further writes refused until restart): " + s.ToString());
  }

  // 6. Publish: durable series, and the new highest timestamps.
  for (SeriesEntry* e : unconfirmed) {
    if (!e->durable.exchange(true, std::memory_order_acq_rel)) {
      ++stats.new_series;
      d.series_count.fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    int64_t written_max = kNoSamples;
    size_t end = begin;
    for (; end < pending.size() && pending[end].entry == e; ++end) {
      if (!pending[end].skip) written_max = std::max(written_max, pending[end].ts);
    }
    std::lock_guard lock(d.StripeOf(e->id));
    // When unknown, the next resolve reads the store, which already holds this write.
    if (e->max_known) e->max_ts = std::max(e->max_ts, written_max);
    begin = end;
  }
  return stats;
}

Result<std::vector<uint64_t>> RocksDbStore::Impl::PostingsForValue(const rocksdb::ReadOptions& base,
                                                                   const std::string& name,
                                                                   const std::string& value) {
  std::string lower = PostingValuePrefix(name, value), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro = base;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, index_cf));
  std::vector<uint64_t> ids;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    if (it->key().size() != lower.size() + 8) return Internal("malformed posting key");
    ids.push_back(GetBE64(it->key().data() + lower.size()));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading postings"));
  return ids;  // sorted: the id is the last key component
}

Result<std::vector<uint64_t>> RocksDbStore::Impl::PostingsForName(const rocksdb::ReadOptions& base,
                                                                  const LabelMatcher& matcher) {
  std::string lower = PostingNamePrefix(matcher.name()), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro = base;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, index_cf));
  std::vector<uint64_t> ids;
  std::string last_escaped, value;
  bool have_last = false, last_matched = false;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view rest = View(it->key()).substr(lower.size());
    if (rest.size() < 9) return Internal("malformed posting key");
    std::string_view escaped = rest.substr(0, rest.size() - 8);
    // Keys are grouped by value: evaluate the matcher once per distinct value.
    if (!have_last || escaped != last_escaped) {
      std::string_view parse = escaped;
      if (!GetEscaped(&parse, &value) || !parse.empty()) return Internal("malformed posting key");
      last_escaped.assign(escaped);
      have_last = true;
      last_matched = matcher.Matches(value);
    }
    if (last_matched) ids.push_back(GetBE64(rest.data() + rest.size() - 8));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading postings"));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<std::vector<SeriesSamples>> RocksDbStore::Select(const std::vector<MatcherSpec>& matchers,
                                                        int64_t min_ms, int64_t max_ms) {
  Impl& d = *impl_;
  ASSIGN_OR_RETURN(std::vector<LabelMatcher> compiled, CompileMatchers(matchers));
  std::vector<SeriesSamples> out;
  if (min_ms > max_ms) return out;

  SnapshotGuard snapshot(d.db);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();

  // Candidates: intersect the postings of the non-empty equalities; failing those, every
  // series holding the label of the first matcher that rejects "" (it requires the label).
  std::optional<std::vector<uint64_t>> ids;
  for (const LabelMatcher& m : compiled) {
    if (m.spec().type != MatcherSpec::kEqual || m.spec().value.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<uint64_t> posting,
                     d.PostingsForValue(ro, m.name(), m.spec().value));
    if (ids) {
      std::vector<uint64_t> both;
      std::set_intersection(ids->begin(), ids->end(), posting.begin(), posting.end(),
                            std::back_inserter(both));
      ids = std::move(both);
    } else {
      ids = std::move(posting);
    }
    if (ids->empty()) return out;
  }
  if (!ids) {
    for (const LabelMatcher& m : compiled) {
      if (m.Matches("")) continue;
      ASSIGN_OR_RETURN(ids, d.PostingsForName(ro, m));
      break;
    }
  }
  if (!ids) return Internal("no selective matcher after CompileMatchers");

  // Filter by every matcher on the in-memory labels (a label absent reads as "").
  std::vector<std::pair<uint64_t, Labels>> series;
  {
    std::shared_lock lock(d.index_mu);
    for (uint64_t id : *ids) {
      auto it = d.by_id.find(id);
      if (it == d.by_id.end()) {
        return Internal("postings name series " + std::to_string(id) + ", which is unknown");
      }
      const Labels& labels = it->second->labels;
      bool match = std::all_of(compiled.begin(), compiled.end(), [&](const LabelMatcher& m) {
        return m.Matches(labels.Get(m.name()));
      });
      if (match) series.emplace_back(id, labels);
    }
  }

  uint64_t total = 0;
  for (auto& [id, labels] : series) {
    std::string lower = RawKey(id, min_ms);
    // Keys are exactly 16 bytes, so appending 0x00 makes the bound include max_ms itself.
    std::string upper = RawKey(id, max_ms);
    upper.push_back('\0');
    rocksdb::Slice lower_s(lower), upper_s(upper);
    rocksdb::ReadOptions sro = ro;
    sro.iterate_lower_bound = &lower_s;
    sro.iterate_upper_bound = &upper_s;
    std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(sro, d.raw_cf));
    SeriesSamples result;
    for (it->Seek(lower_s); it->Valid(); it->Next()) {
      if (it->key().size() != 16 || it->value().size() != 8) {
        return Internal("malformed sample of series " + std::to_string(id));
      }
      if (++total > d.options.max_select_samples) {
        return ResourceExhausted("query selects more than " +
                                 std::to_string(d.options.max_select_samples) + " samples");
      }
      result.samples.push_back({UnflipTimestamp(GetBE64(it->key().data() + 8)),
                                BitsDouble(GetBE64(it->value().data()))});
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading samples"));
    if (result.samples.empty()) continue;
    result.labels = std::move(labels);
    out.push_back(std::move(result));
  }
  std::sort(out.begin(), out.end(),
            [](const SeriesSamples& a, const SeriesSamples& b) { return a.labels < b.labels; });
  return out;
}

StoreStats RocksDbStore::Stats() const {
  const Impl& d = *impl_;
  StoreStats stats;
  stats.series = d.series_count.load(std::memory_order_relaxed);
  for (rocksdb::ColumnFamilyHandle* h : d.handles) {
    uint64_t bytes = 0;
    if (d.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
      stats.disk_bytes += bytes;
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

Result<uint64_t> RocksDbStore::SeriesId(const Labels& labels) const {
  const Impl& d = *impl_;
  Labels canonical = CanonicalLabels(labels);
  uint64_t hash = d.hash_fn(canonical);
  std::shared_lock lock(d.index_mu);
  SeriesEntry* e = d.Find(canonical, hash);
  if (e == nullptr || !e->durable.load(std::memory_order_acquire)) {
    return NotFound("no series " + canonical.ToString());
  }
  return e->id;
}

bool RocksDbStore::Healthy() const { return !impl_->write_failed.load(std::memory_order_acquire); }

}  // namespace suanli::storage
