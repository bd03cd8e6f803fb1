// RocksDbStore: the Store implementation. An in-memory head per series (the open Gorilla chunk
// of the current one-hour window) in front of RocksDB, which holds the series index, closed
// chunks and their 1m/5m/1h rollups in column families per time partition (raw: a day, 1m: a
// week, 5m: 30 days, 1h: 90 days), so retention drops whole families. Byte formats are in
// aggregator/storage/README.md. Callers should hold it as a Store (OpenRocksDbStore); this
// header exists for tests, benchmarks and tools that need the ids or maintenance calls.
// It includes no RocksDB header.
//
// Durability: an Append returns once its WriteBatch (the head-log record of its samples, any
// chunks and rollups it closed, index entries of new series) is in the WAL on disk. Batches
// are written in the order they were applied to the head and share one WAL sync per group
// (group commit). A failed write is fatal for writing: the store logs it, returns kIoError,
// calls RocksDbStoreOptions::on_write_failed, and refuses every later Append until reopened,
// because after a WAL error RocksDB cannot promise what reached the disk. A full disk
// (ENOSPC) is not fatal: the batches that could not be written are kept in order, every
// Append is refused with kUnavailable, and once RocksDB resumes (room for a memtable flush)
// the kept batches are written first and writing goes on. After a crash, Open rebuilds the
// heads from the last checkpoint plus the head log.
// Memory: per series its entry (id, lookup hash, head state, open chunk), encoded labels, a
// lookup-table slot and its postings: ~700 B of RSS per series measured with 1M series at
// 8 samples each, RocksDB's memtables included; the open chunk grows over its hour. A series
// with no sample inside any retention is forgotten by the retention pass (memory, index key,
// postings; its id is never reused), so that series churn does not grow memory or start-up.
// Thread-safety: all methods may be called concurrently; the destructor must not race them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aggregator/storage/store.h"

namespace rocksdb {
class DB;
}

namespace suanli::storage {

class RocksDbStore final : public Store {
 public:
  static Result<std::unique_ptr<RocksDbStore>> Open(const RocksDbStoreOptions& options);
  // Checkpoints the head (a clean shutdown replays little at the next Open).
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  using Store::Append;
  Result<AppendStats> AppendViews(std::span<const SeriesView> batch,
                                  const NewSeriesCheck* check_new_series) override;
  Result<std::vector<SeriesSamples>> Select(const std::vector<MatcherSpec>& matchers,
                                            int64_t min_ms, int64_t max_ms) override;
  Result<std::vector<SeriesSamples>> SelectRollup(const std::vector<MatcherSpec>& matchers,
                                                  int64_t min_ms, int64_t max_ms,
                                                  rollup::Resolution resolution,
                                                  rollup::Aggregate aggregate) override;
  Result<std::vector<SeriesRecords>> SelectRecords(const std::vector<MatcherSpec>& matchers,
                                                   int64_t min_ms, int64_t max_ms,
                                                   rollup::Resolution resolution) override;
  int64_t RetentionCutoff(rollup::Resolution resolution) const override;
  void SetLimits(const StoreLimits& limits) override;
  // disk_bytes = the "rocksdb.total-sst-files-size" property of every column family plus the
  // size of the live WAL files (what is not yet flushed to SST files lives there).
  StoreStats Stats() const override;

  // False once a write failed: Append is refused from then on.
  bool Healthy() const override;

  Result<LogRead> ReadLog(uint64_t from_seq, size_t max_samples,
                          uint64_t end_seq = UINT64_MAX) override;
  uint64_t LogEnd() override;
  Result<Labels> SeriesLabels(uint64_t series_id) override;
  Result<std::optional<Cursor>> GetCursor(std::string_view name) override;
  Status SetCursor(std::string_view name, Cursor cursor) override;
  Status DeleteCursor(std::string_view name) override;
  std::vector<std::string> CursorNames() override;

  // The persistent id of the durable series with these labels (canonicalized), or NotFound.
  Result<uint64_t> SeriesId(const Labels& labels) const;

  // Maintenance, also run by a background thread: write the open chunks and truncate the head
  // log (closing chunks a window or more behind the wall clock's); drop expired partitions.
  Status Checkpoint();
  Status EnforceRetention();
  // Flushes memtables and compacts every family fully (benchmarks: bytes after compaction).
  Status CompactAll();
  // SST bytes per kind of family: "index", "head", "default", "raw", "1m", "5m", "1h".
  std::map<std::string, uint64_t> DiskBytesByFamily() const;
  // The database, for operations on it as a whole (snapshot.h); never write through it.
  rocksdb::DB* db() const;

 private:
  Result<std::vector<SeriesSamples>> SelectImpl(const std::vector<MatcherSpec>& matchers,
                                                int64_t min_ms, int64_t max_ms,
                                                rollup::Resolution resolution,
                                                rollup::Aggregate aggregate,
                                                std::vector<SeriesRecords>* records);
  struct Impl;
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace suanli::storage
