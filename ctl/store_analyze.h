// `suanlictl store analyze --storage.path=DIR`: what a store holds, as `promtool tsdb analyze`
// tells it for Prometheus: series and samples by metric and by dc, bytes and rows per
// resolution (raw chunks, 1m/5m/1h rollups, the head, the index), the labels with the most
// values and the label pairs on the most series. The store is opened read-only
// (storage/store_reader.h), beside a running aggregator or without one.
//
// Samples are those of the raw chunks, the head's checkpointed open chunks and the head log
// since the last checkpoint; an out-of-order sample that rewrote a closed chunk since then
// counts twice until the next checkpoint (a cleanly stopped aggregator leaves none).
// Thread-safety: one call at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "aggregator/storage/store_reader.h"
#include "core/status.h"

namespace suanli::ctl {

struct ResolutionFigures {
  std::string name;  // raw, 1m, 5m, 1h, head, index
  uint64_t families = 0, keys = 0, sst_bytes = 0, value_bytes = 0;
  uint64_t rows = 0;  // samples (raw, head) or rollup records (1m, 5m, 1h) or series (index)
  int64_t min_ms = std::numeric_limits<int64_t>::max();  // windows covered
  int64_t max_ms = std::numeric_limits<int64_t>::min();
};

struct GroupFigures {
  std::string name;
  uint64_t series = 0, samples = 0;
};

struct LabelFigures {
  std::string name;
  uint64_t values = 0, series = 0;
};

struct AnalyzeReport {
  std::string path;
  uint64_t series = 0;
  uint64_t samples = 0;       // raw chunks + head
  uint64_t head_samples = 0;  // of which in the head (open chunks and the head log)
  // Samples of ids the index no longer holds: series forgotten past retention whose chunks
  // wait for their partition to drop.
  uint64_t unknown_series_samples = 0;
  std::vector<ResolutionFigures> resolutions;
  std::vector<GroupFigures> metrics, dcs;  // most series first
  std::vector<LabelFigures> labels;        // most values first
  std::vector<GroupFigures> label_pairs;   // name="value", most series first
};

// progress(done, total, what): keys read of RocksDB's estimate.
using ProgressFn = std::function<void(uint64_t done, uint64_t total, const std::string& what)>;
Result<AnalyzeReport> AnalyzeStore(storage::StoreReader& reader, const ProgressFn& progress);

// The report as text: summary, then tables, each cut to `limit` rows.
std::string RenderAnalyzeReport(const AnalyzeReport& report, size_t limit);

struct AnalyzeOptions {
  std::string storage_path;
  size_t limit = 20;
  bool progress = true;
};
int RunStoreAnalyze(const AnalyzeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace suanli::ctl
