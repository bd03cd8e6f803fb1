// StoreReader: a read-only view of a store directory for tools (`suanlictl store analyze` and
// `store verify`), beside or without a running aggregator. The database is opened with RocksDB's
// OpenForReadOnly: no lock is taken, nothing is written under the store's directory, and every
// SST file is opened at once and held, so a running aggregator's compactions cannot pull files
// from under a long scan. The view is the store as of the moment it was opened (a running
// aggregator's writes since are not seen). Paranoid checks are off, so that a damaged SST file
// does not refuse the open but shows as a read error where it is read.
//
// The key layout and byte formats are those of RocksDbStore (docs/architecture.md, "Aggregator
// store"), read with the store's own functions (store_keys.h); values are decoded with its own
// decoders (gorilla.h, column_codec.h, head_log.h). The functions below give tools what they
// need of store_keys.h without its internals.
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/labels.h"
#include "core/status.h"

namespace suanli::storage {

// Every raw chunk and rollup block covers one UTC hour (the store's window, store_keys.h).
inline constexpr int64_t kStoreWindowMs = 3'600'000;

enum class FamilyKind { kDefault, kIndex, kHead, kPartition, kUnknown };

struct FamilyInfo {
  std::string name;
  FamilyKind kind = FamilyKind::kUnknown;
  // Partitions only: the resolution (kRaw for raw chunks), the partition number and the time
  // range [start_ms, end_ms) it holds.
  rollup::Resolution resolution = rollup::Resolution::kRaw;
  int64_t partition = 0;
  int64_t start_ms = 0, end_ms = 0;
  uint64_t sst_bytes = 0;       // RocksDB's total-sst-files-size
  uint64_t estimated_keys = 0;  // RocksDB's estimate-num-keys
};

struct SstFileInfo {
  std::string family;
  std::string path;  // absolute
  uint64_t bytes = 0;
  std::string smallest_key, largest_key;
};

// What a `head` family key is.
enum class HeadKeyKind { kLog, kHeadChunk, kCursor, kMeta, kUnknown };

class StoreReader {
 public:
  // NotFound when `path` holds no store; InvalidArgument for a store format this build does
  // not read (the store's kFormatVersion).
  static Result<std::unique_ptr<StoreReader>> Open(const std::string& path);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  const std::string& path() const { return path_; }
  // Every column family, the fixed ones first, partitions by resolution then time.
  const std::vector<FamilyInfo>& families() const { return families_; }
  // The head log seq that the store's next Open replays from (its last checkpoint's).
  uint64_t replay_from() const { return replay_from_; }

  // Calls fn for every key of `family` in key order with checksums verified; fn returns false
  // to stop. An error (a damaged block included) names the family and the last key read.
  Status ForEach(const FamilyInfo& family,
                 const std::function<bool(std::string_view key, std::string_view value)>& fn);
  // The value of `key` in `family`; nullopt when absent.
  Result<std::optional<std::string>> Get(const FamilyInfo& family, std::string_view key);

  // The live SST files, and a check of every block checksum of one of them.
  std::vector<SstFileInfo> SstFiles() const;
  Status VerifySstFile(const SstFileInfo& file) const;

 private:
  struct Impl;
  StoreReader(std::string path, std::unique_ptr<Impl> impl);
  Status Load();

  std::string path_;
  std::unique_ptr<Impl> impl_;
  std::vector<FamilyInfo> families_;
  uint64_t replay_from_ = 0;
};

// ---- the store's key layout (docs/architecture.md, "Keys") ----

// Index: 's' id (8, big-endian) -> labels blob.
bool ParseSeriesKey(std::string_view key, uint64_t* id);
// Partitions: id (8) + window_start with its sign bit flipped (8).
bool ParsePartitionKey(std::string_view key, uint64_t* id, int64_t* window_start);
std::string PartitionKey(uint64_t id, int64_t window_start);
// Head: 'l' seq, 'h' id, 'c' name, 'm' name.
HeadKeyKind HeadKeyKindOf(std::string_view key);
bool ParseLogKey(std::string_view key, uint64_t* seq);
// An 'h' id entry: the open chunk of series id for the window starting at *window_start.
bool ParseHeadChunk(std::string_view key, std::string_view value, uint64_t* id,
                    int64_t* window_start, std::string_view* chunk);
// A partition family name ("raw_20427", "1m_2918", ...).
bool ParsePartitionName(std::string_view name, rollup::Resolution* resolution, int64_t* partition);
// The partition that holds time `ms` at `resolution`, and its family's name.
int64_t PartitionNumber(rollup::Resolution resolution, int64_t ms);
std::string PartitionFamilyName(rollup::Resolution resolution, int64_t partition);

// The labels blob of an index entry: count, then length-prefixed names and values.
bool DecodeLabelsBlob(std::string_view blob, Labels* labels);
// The number of samples (chunks) or records (rollup blocks) a value's header announces.
std::optional<uint64_t> ValueRowCount(std::string_view value);

// "2026-12-05T14:00:00Z" (UTC, seconds; milliseconds when not whole).
std::string FormatUtc(int64_t ms);

}  // namespace suanli::storage
