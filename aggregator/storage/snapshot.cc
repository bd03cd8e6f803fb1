// Snapshots: see snapshot.h.
#include "aggregator/storage/snapshot.h"

#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>

#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <system_error>

#include "aggregator/storage/rocksdb_store.h"

namespace suanli::storage {

std::string NewSnapshotName(int64_t now_ms) {
  time_t t = static_cast<time_t>(now_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  char name[64];
  std::snprintf(name, sizeof name, "%s-%016llx", when, static_cast<unsigned long long>(r));
  return name;
}

Status CreateSnapshot(Store& store, const std::string& dir, const std::string& name) {
  auto* rocks = dynamic_cast<RocksDbStore*>(&store);
  if (rocks == nullptr) return Internal("snapshots need the RocksDB store");
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("bad snapshot name \"" + name + "\"");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("creating " + dir + ": " + ec.message());
  const std::string target = dir + "/" + name;
  if (std::filesystem::exists(target, ec)) return InvalidArgument(target + " exists");

  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(rocks->db(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: flush the memtables first, so the snapshot holds SST files (hard
  // links) and a short WAL rather than copies of up to max_total_wal_size of WAL. RocksDB
  // builds it in <target>.tmp and renames it: a snapshot folder is always whole.
  if (s.ok()) s = checkpoint->CreateCheckpoint(target, /*log_size_for_flush=*/0);
  if (!s.ok()) return IoError("snapshot " + target + ": " + s.ToString());
  return Status::Ok();
}

}  // namespace suanli::storage
