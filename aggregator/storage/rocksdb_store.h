// RocksDbStore: the first Store implementation, one RocksDB key per sample. The byte formats
// of its keys and values are in aggregator/storage/README.md. Callers should hold it as a
// Store (OpenRocksDbStore); this header exists for tests and debugging tools that need the
// persistent series ids. It includes no RocksDB header.
//
// Durability: an Append returns after its WriteBatch is synced to the WAL (WriteOptions.sync;
// RocksDB group-commits concurrent writers). A failed write is fatal for writing: the store
// logs it, returns kIoError, and refuses every later Append with kIoError until reopened,
// because after a WAL error RocksDB cannot promise what reached the disk.
// Memory: every series' labels and id are kept in memory (loaded at Open).
// Thread-safety: all methods may be called concurrently; the destructor must not race them.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "aggregator/storage/store.h"

namespace suanli::storage {

class RocksDbStore final : public Store {
 public:
  static Result<std::unique_ptr<RocksDbStore>> Open(const RocksDbStoreOptions& options);
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  Result<AppendStats> Append(const std::vector<TimeSeries>& batch) override;
  Result<std::vector<SeriesSamples>> Select(const std::vector<MatcherSpec>& matchers,
                                            int64_t min_ms, int64_t max_ms) override;
  // disk_bytes = the "rocksdb.total-sst-files-size" property of every column family plus the
  // size of the live WAL files (what is not yet flushed to SST files lives there).
  StoreStats Stats() const override;

  // False once a write failed: Append is refused from then on.
  bool Healthy() const override;

  // The persistent id of the durable series with these labels (canonicalized), or NotFound.
  Result<uint64_t> SeriesId(const Labels& labels) const;

 private:
  struct Impl;
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace suanli::storage
