// `suanlictl store verify --storage.path=DIR`: checks a whole store and reports what is damaged,
// naming the series and the time range of each damaged value:
// - every block checksum of every SST file (RocksDB's, file by file, so every damaged file is
//   named, with the series and windows its keys span);
// - every value read with checksums verified, decoded with the store's own decoders: the
//   series index (labels), raw chunks, 1m/5m/1h rollup blocks, the head's open chunks and the
//   head log, each checked for what the format promises (timestamps inside the value's window
//   and increasing, rollup records on their resolution's grid, first <= last, ...), and that
//   each series id a value names is in the index;
// - the rollups of every raw chunk, recomputed from its samples, against the stored 1m, 5m and
//   1h blocks of the same window: chunk values carry no checksum of their own, so a flipped
//   sample value shows as a disagreement between the two (both are named).
// The store is opened read-only (storage/store_reader.h), beside a running aggregator or not.
// Thread-safety: one call at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "aggregator/storage/store_reader.h"
#include "core/status.h"

namespace suanli::ctl {

struct Damage {
  std::string what;    // "raw chunk", "1m rollup block", "head log record", "SST file", ...
  std::string series;  // labels, or "series N (not in the index)"; "" when none applies
  std::string range;   // time range, or key range of a file
  std::string family;  // column family
  std::string reason;
  std::string ToString() const;
};

struct VerifyReport {
  uint64_t series = 0, raw_chunks = 0, rollup_blocks = 0, head_chunks = 0, log_records = 0;
  uint64_t sst_files = 0, rollups_compared = 0;
  // Chunks and rollup blocks of series no longer in the index (forgotten past retention).
  uint64_t forgotten_series_values = 0;
  std::vector<Damage> damage;
};

using VerifyProgressFn = std::function<void(uint64_t done, uint64_t total, const std::string&)>;
// An error only when the store cannot be read at all; damage goes into the report.
Result<VerifyReport> VerifyStore(storage::StoreReader& reader, const VerifyProgressFn& progress);

struct VerifyOptions {
  std::string storage_path;
  bool progress = true;
};
// Exit code 0 when nothing is damaged, 1 when something is (or the store cannot be read).
int RunStoreVerify(const VerifyOptions& options, std::ostream& out, std::ostream& err);

}  // namespace suanli::ctl
