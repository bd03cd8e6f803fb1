// StoreReader: see store_reader.h.
#include "aggregator/storage/store_reader.h"

#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <tuple>

#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/store_keys.h"

namespace suanli::storage {
namespace {

static_assert(kStoreWindowMs == kWindowMs);

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound() || s.IsPathNotFound()) return NotFound(std::move(msg));
  if (s.IsInvalidArgument()) return InvalidArgument(std::move(msg));
  return IoError(std::move(msg));
}

// RocksDB's own messages would go to a LOG file in the store's folder; a tool writes nothing
// there and prints only what it finds.
class SilentLogger final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// Saturating product, for partition ranges at the ends of the int64 range.
int64_t PartitionStart(int res, int64_t p) {
  if (p <= std::numeric_limits<int64_t>::min() / kPartitionMs[res]) {
    return std::numeric_limits<int64_t>::min();
  }
  if (p >= std::numeric_limits<int64_t>::max() / kPartitionMs[res]) {
    return std::numeric_limits<int64_t>::max();
  }
  return p * kPartitionMs[res];
}

}  // namespace

struct StoreReader::Impl {
  std::shared_ptr<rocksdb::Logger> logger = std::make_shared<SilentLogger>();
  rocksdb::Options options;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // parallel to families_ before sorting
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;

  ~Impl() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  rocksdb::ColumnFamilyHandle* Handle(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }
};

StoreReader::StoreReader(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

StoreReader::~StoreReader() = default;

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    return NotFound(path + ": no such directory");
  }
  if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) {
    return NotFound(path + ": not a store (no RocksDB CURRENT file)");
  }
  auto impl = std::make_unique<Impl>();
  impl->options.info_log = impl->logger;
  impl->options.max_open_files = -1;  // every file opened now and kept: see the header
  impl->options.create_if_missing = false;

  // A damaged SST file must show as an error where it is read, not refuse the whole open
  // (paranoid checks) nor vanish from the view (as it does from a secondary instance's).
  impl->options.paranoid_checks = false;

  std::vector<std::string> names;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::ListColumnFamilies(impl->options, path, &names),
                            "listing the column families of " + path));
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
  RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::OpenForReadOnly(impl->options, path, cfs, &impl->handles, &impl->db),
                "opening " + path + " read-only"));
  auto reader = std::unique_ptr<StoreReader>(new StoreReader(path, std::move(impl)));
  RETURN_IF_ERROR(reader->Load());
  return reader;
}

Status StoreReader::Load() {
  Impl& d = *impl_;
  for (rocksdb::ColumnFamilyHandle* h : d.handles) {
    FamilyInfo f;
    f.name = h->GetName();
    d.by_name[f.name] = h;
    if (f.name == rocksdb::kDefaultColumnFamilyName) {
      f.kind = FamilyKind::kDefault;
    } else if (f.name == kIndexCf) {
      f.kind = FamilyKind::kIndex;
    } else if (f.name == kHeadCf) {
      f.kind = FamilyKind::kHead;
    } else if (ParsePartitionName(std::string_view(f.name), &f.resolution, &f.partition)) {
      f.kind = FamilyKind::kPartition;
      int res = static_cast<int>(f.resolution);
      f.start_ms = PartitionStart(res, f.partition);
      f.end_ms = PartitionStart(res, f.partition + 1);
    }
    d.db->GetIntProperty(h, "rocksdb.total-sst-files-size", &f.sst_bytes);
    d.db->GetIntProperty(h, "rocksdb.estimate-num-keys", &f.estimated_keys);
    families_.push_back(std::move(f));
  }
  std::sort(families_.begin(), families_.end(), [](const FamilyInfo& a, const FamilyInfo& b) {
    return std::tie(a.kind, a.resolution, a.partition, a.name) <
           std::tie(b.kind, b.resolution, b.partition, b.name);
  });

  rocksdb::ColumnFamilyHandle* index = d.Handle(kIndexCf);
  rocksdb::ColumnFamilyHandle* head = d.Handle(kHeadCf);
  if (index == nullptr || head == nullptr) {
    return InvalidArgument(path_ + ": not a Suanli store (no index or head column family)");
  }
  std::string v;
  rocksdb::Status s = d.db->Get(rocksdb::ReadOptions(), index, kFormatKey, &v);
  if (!s.ok()) return FromRocks(s, path_ + ": reading the store format version");
  if (v.size() != 8 || GetBE64(v.data()) != kFormatVersion) {
    return InvalidArgument(path_ + ": unknown store format version (this build reads version " +
                           std::to_string(kFormatVersion) + ")");
  }
  s = d.db->Get(rocksdb::ReadOptions(), head, kReplayFromKey, &v);
  if (s.ok() && v.size() == 8) {
    replay_from_ = GetBE64(v.data());
  } else if (!s.ok() && !s.IsNotFound()) {
    return FromRocks(s, path_ + ": reading the head log's replay position");
  }
  return Status::Ok();
}

Status StoreReader::ForEach(
    const FamilyInfo& family,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) {
  rocksdb::ColumnFamilyHandle* h = impl_->Handle(family.name);
  if (h == nullptr) return NotFound("no column family " + family.name);
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, h));
  std::string last;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(View(it->key()), View(it->value()))) return Status::Ok();
    last.assign(it->key().data(), it->key().size());
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(),
                     "reading family " + family.name +
                         (last.empty() ? std::string(" from its start")
                                       : " after key " + rocksdb::Slice(last).ToString(true)));
  }
  return Status::Ok();
}

Result<std::optional<std::string>> StoreReader::Get(const FamilyInfo& family,
                                                    std::string_view key) {
  rocksdb::ColumnFamilyHandle* h = impl_->Handle(family.name);
  if (h == nullptr) return NotFound("no column family " + family.name);
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string v;
  rocksdb::Status s = impl_->db->Get(ro, h, rocksdb::Slice(key.data(), key.size()), &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "reading family " + family.name));
  return std::optional<std::string>(std::move(v));
}

std::vector<SstFileInfo> StoreReader::SstFiles() const {
  std::vector<rocksdb::LiveFileMetaData> meta;
  impl_->db->GetLiveFilesMetaData(&meta);
  std::vector<SstFileInfo> out;
  for (const auto& m : meta) {
    SstFileInfo f;
    f.family = m.column_family_name;
    f.path = m.db_path + (m.name.starts_with("/") ? "" : "/") + m.name;
    f.bytes = m.size;
    f.smallest_key = m.smallestkey;
    f.largest_key = m.largestkey;
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(),
            [](const SstFileInfo& a, const SstFileInfo& b) { return a.path < b.path; });
  return out;
}

Status StoreReader::VerifySstFile(const SstFileInfo& file) const {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  return FromRocks(
      rocksdb::VerifySstFileChecksum(impl_->options, rocksdb::EnvOptions(), ro, file.path),
      file.path);
}

bool ParseSeriesKey(std::string_view key, uint64_t* id) {
  if (key.size() != 9 || key[0] != kSeriesTag) return false;
  *id = GetBE64(key.data() + 1);
  return true;
}

bool ParsePartitionKey(std::string_view key, uint64_t* id, int64_t* window_start) {
  if (key.size() != 16) return false;
  *id = GetBE64(key.data());
  *window_start = UnflipTimestamp(GetBE64(key.data() + 8));
  return true;
}

std::string PartitionKey(uint64_t id, int64_t window_start) { return ChunkKey(id, window_start); }

HeadKeyKind HeadKeyKindOf(std::string_view key) {
  if (key.empty()) return HeadKeyKind::kUnknown;
  switch (key[0]) {
    case kLogTag:
      return key.size() == 9 ? HeadKeyKind::kLog : HeadKeyKind::kUnknown;
    case kHeadTag:
      return key.size() == 9 ? HeadKeyKind::kHeadChunk : HeadKeyKind::kUnknown;
    case kCursorTag:
      return HeadKeyKind::kCursor;
    case 'm':
      return HeadKeyKind::kMeta;
    default:
      return HeadKeyKind::kUnknown;
  }
}

bool ParseLogKey(std::string_view key, uint64_t* seq) {
  if (HeadKeyKindOf(key) != HeadKeyKind::kLog) return false;
  *seq = GetBE64(key.data() + 1);
  return true;
}

bool ParseHeadChunk(std::string_view key, std::string_view value, uint64_t* id,
                    int64_t* window_start, std::string_view* chunk) {
  if (HeadKeyKindOf(key) != HeadKeyKind::kHeadChunk || value.size() < 8) return false;
  *id = GetBE64(key.data() + 1);
  *window_start = UnflipTimestamp(GetBE64(value.data()));
  *chunk = value.substr(8);
  return true;
}

bool ParsePartitionName(std::string_view name, rollup::Resolution* resolution, int64_t* partition) {
  int res;
  if (!ParsePartitionName(std::string(name), &res, partition)) return false;
  *resolution = static_cast<rollup::Resolution>(res);
  return true;
}

int64_t PartitionNumber(rollup::Resolution resolution, int64_t ms) {
  return PartitionOf(static_cast<int>(resolution), ms);
}

std::string PartitionFamilyName(rollup::Resolution resolution, int64_t partition) {
  return PartitionName(static_cast<int>(resolution), partition);
}

bool DecodeLabelsBlob(std::string_view blob, Labels* labels) { return DecodeLabels(blob, labels); }

std::optional<uint64_t> ValueRowCount(std::string_view value) {
  if (value.empty()) return std::nullopt;
  value.remove_prefix(1);  // the format byte
  uint64_t n;
  if (!ConsumeVarint(&value, &n)) return std::nullopt;
  return n;
}

std::string FormatUtc(int64_t ms) {
  int64_t secs = rollup::FloorDiv(ms, 1000);
  int64_t rem = ms - secs * 1000;
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(ms) + "ms";
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (rem != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(rem));
    out += frac;
  }
  return out + "Z";
}

}  // namespace suanli::storage
