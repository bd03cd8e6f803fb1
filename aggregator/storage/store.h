// Store: the aggregator's narrow storage interface. Ingest, remote_read and the capacity model
// talk only to this; the implementation behind it (RocksDbStore: in-memory head, Gorilla chunks,
// 1m/5m/1h rollups, time partitions) can change without touching callers. No RocksDB header is
// reachable from here.
//
// Units: timestamps are Unix milliseconds (int64, negative allowed), values float64 kept
// bit-exact (NaN payloads and the Prometheus stale marker survive).
// Label sets are canonical in the store: a label with an empty value is the same as an absent
// one (Prometheus semantics), so {a="x",b=""} and {a="x"} are one series.
// Thread-safety: Store implementations are thread-safe; LabelMatcher is immutable once compiled
// and may be shared between threads; the plain structs are values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/labels.h"
#include "core/remote_write_fast_decoder.h"
#include "core/sample.h"
#include "core/status.h"

namespace suanli::storage {

struct AppendStats {
  size_t samples_stored = 0;  // samples written by this call
  size_t new_series = 0;      // series that became durable with this call
  size_t duplicates = 0;      // samples already stored with the same value bits (skipped)
};

struct StoreStats {
  uint64_t series = 0;                 // durable series
  uint64_t disk_bytes = 0;             // bytes the store occupies on disk (see the implementation)
  uint64_t head_series = 0;            // series with an open (in-memory) chunk
  uint64_t rejected_too_old = 0;       // samples refused: older than the out-of-order window
  uint64_t rejected_series_limit = 0;  // batches refused by max_series_per_dc
  uint64_t rejected_labels_limit = 0;  // batches refused by max_labels_per_series
  uint64_t partitions_dropped = 0;     // time partitions dropped by retention
  uint64_t checkpoints = 0;            // head checkpoints written
  uint64_t series_forgotten = 0;       // series removed: no sample inside any retention
};

// Limits checked by Append; 0 means no limit. Changing them (SetLimits) takes effect at once.
struct StoreLimits {
  uint64_t max_series_per_dc = 0;      // series with the same `dc` label value (absent = "")
  uint64_t max_labels_per_series = 0;  // labels of a series, __name__ included
};

// A series of a batch to append, as views into memory the caller owns for the call (the
// decoded remote_write body): no Labels object is built for a series the store already holds.
// The decoder's own type (name and value views), so the ingest path passes the decoded
// labels as they are, with no copy per label.
using LabelView = remote::LabelRef;
struct SeriesView {
  std::span<const LabelView> labels;  // any order; empty values allowed (dropped as usual)
  std::span<const Sample> samples;    // any order
};

// Called by Append for each series of a batch that the store does not hold yet (or that does
// not come in canonical form: labels not strictly sorted by name, or an empty value), before
// anything is stored, with its index in the batch and its labels as sent, sorted by name
// (duplicates and empty values kept; views valid during the call). An error refuses the whole
// batch and is returned as is. A label set the store holds in canonical form was checked when
// it was created, and the same bytes give the same answer.
using NewSeriesCheck = std::function<Status(size_t index, std::span<const LabelView> labels)>;

struct SeriesRecords {
  Labels labels;
  std::vector<rollup::Record> records;  // sorted by start
};

// One sample of a log batch (Store::ReadLog).
struct LogSample {
  uint64_t series_id = 0;
  int64_t timestamp_ms = 0;
  double value = 0;
};

struct LogRead {
  std::vector<LogSample> samples;
  uint64_t batches = 0;    // log batches read
  uint64_t next_seq = 0;   // resume from here
  bool caught_up = false;  // every durable batch was read
};

enum class CursorKind : uint8_t { kLog = 1, kTime = 2 };
struct Cursor {
  CursorKind kind = CursorKind::kTime;
  int64_t value = 0;
  bool operator==(const Cursor&) const = default;
};

struct SeriesSamples {
  Labels labels;                // canonical: no empty-valued labels
  std::vector<Sample> samples;  // sorted by timestamp, one per timestamp
};

struct MatcherSpec {
  enum Type { kEqual, kNotEqual, kRegex, kNotRegex } type = kEqual;
  std::string name;
  std::string value;  // for kRegex/kNotRegex: a fully anchored ECMAScript regex (RE2-like)
  bool operator==(const MatcherSpec&) const = default;
};

// A MatcherSpec ready to evaluate. Regexes are compiled once and fully anchored (as Prometheus'
// "^(?:re)$"); literal patterns and alternations of literals ("a|b|c", as Grafana sends) are
// matched without a regex engine; so are such alternations wrapped in one group ("(a|b)", as
// Grafana writes multi-value variables). The regex engine runs in linear-memory (Thompson NFA)
// mode, so long label values cannot overflow the stack; other patterns are limited to 8 KiB and
// 128 nested groups (libstdc++ compiles recursively).
class LabelMatcher {
 public:
  // InvalidArgument for a regex std::regex cannot compile (RE2-only syntax such as "(?i)"
  // included) or one past the limits above.
  static Result<LabelMatcher> Compile(const MatcherSpec& spec);

  const MatcherSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  // True when a series whose value for name() is `value` ("" when absent) matches.
  bool Matches(std::string_view value) const;

 private:
  struct Pattern;  // defined in store.cc: literal set or std::regex
  MatcherSpec spec_;
  std::shared_ptr<const Pattern> pattern_;
};

// Compiles `specs` and applies Prometheus' selector rule: at least one matcher must not match
// the empty string (e.g. a non-empty equality), else InvalidArgument.
Result<std::vector<LabelMatcher>> CompileMatchers(const std::vector<MatcherSpec>& specs);

// The label set the store keys a series by: `labels` without the empty-valued labels.
Labels CanonicalLabels(const Labels& labels);

class Store {
 public:
  virtual ~Store() = default;

  // Stores all samples of the batch atomically and returns only once they are durable in the
  // write-ahead log (concurrent writers share one sync: group commit). Either everything is
  // stored or nothing. Series with no samples are ignored. A sample whose series and timestamp
  // already hold the same value bits is a duplicate: skipped and counted, so a retried batch is
  // idempotent; a batch of duplicates only returns once every batch before it is durable (the
  // one it duplicates may still be committing), with that commit's error if it failed. A sample
  // whose timestamp already holds different value bits (in the store or earlier in the batch)
  // refuses the whole batch with kInvalidArgument, as Prometheus does
  // ("duplicate sample for timestamp"); this check is exact except between batches in flight at
  // the same moment, where the last write wins. Out-of-order timestamps are accepted within
  // the implementation's out-of-order window (counted from the newest sample of the series);
  // an older sample refuses the whole batch with kInvalidArgument (as Prometheus answers "out
  // of bounds"). A new series past StoreLimits refuses the batch with kResourceExhausted and a
  // message naming the limit. kUnavailable while the disk is full: nothing of the batch is
  // stored; retry later. kIoError after a failed write: the store then refuses all further
  // Appends until it is reopened; reads still work and may show the refused batch (it reached
  // the in-memory head before the write failed; a restart drops it).
  // `check_new_series` (may be null) vets each series the store does not hold yet.
  virtual Result<AppendStats> AppendViews(std::span<const SeriesView> batch,
                                          const NewSeriesCheck* check_new_series) = 0;

  // Append of Labels/TimeSeries values (tests, tools): the same, without a check.
  Result<AppendStats> Append(const std::vector<TimeSeries>& batch) {
    std::vector<LabelView> labels;
    for (const TimeSeries& ts : batch) {
      for (const Label& l : ts.labels.items()) labels.push_back({l.name, l.value});
    }
    std::vector<SeriesView> views;
    views.reserve(batch.size());
    const LabelView* next = labels.data();
    for (const TimeSeries& ts : batch) {
      views.push_back({{next, ts.labels.size()}, ts.samples});
      next += ts.labels.size();
    }
    return AppendViews(views, nullptr);
  }

  // Series whose labels match all matchers (see CompileMatchers for the rule; a label absent
  // from a series matches as ""), with their samples in [min_ms, max_ms] sorted by time. Series
  // without samples in the range are left out; the result is sorted by labels and is one
  // consistent snapshot. kResourceExhausted past the implementation's sample limit.
  virtual Result<std::vector<SeriesSamples>> Select(const std::vector<MatcherSpec>& matchers,
                                                    int64_t min_ms, int64_t max_ms) = 0;

  // As Select, but from the rollups at `resolution` (kRaw: same as Select), each interval
  // turned into samples by `aggregate` (rollup::Emit): e.g. kMax gives one sample per interval
  // at its last raw sample's time; kCounter gives the rebuilt, reset-free counter.
  virtual Result<std::vector<SeriesSamples>> SelectRollup(const std::vector<MatcherSpec>& matchers,
                                                          int64_t min_ms, int64_t max_ms,
                                                          rollup::Resolution resolution,
                                                          rollup::Aggregate aggregate) = 0;

  // The rollup records at `resolution` (not kRaw) of every matching series whose intervals
  // hold a sample in [min_ms, max_ms], sorted by start; the open hour is rolled up on the fly.
  // Series without such records are left out; sorted by labels.
  virtual Result<std::vector<SeriesRecords>> SelectRecords(const std::vector<MatcherSpec>& matchers,
                                                           int64_t min_ms, int64_t max_ms,
                                                           rollup::Resolution resolution) = 0;

  // Oldest sample time (Unix ms) that retention still keeps at `resolution`; INT64_MIN when
  // kept forever. Data older than this is neither returned nor kept.
  virtual int64_t RetentionCutoff(rollup::Resolution resolution) const = 0;

  virtual void SetLimits(const StoreLimits& limits) = 0;

  virtual StoreStats Stats() const = 0;

  // False once the store refuses writes (after a failed write); for /-/ready.
  virtual bool Healthy() const = 0;

  // ---- The log: the store as the forwarding queue (exporters/remote_write) ----
  // Every Append that stored samples is one log batch with a sequence number increasing in
  // commit order, readable once it is durable. Batches are kept from the lowest log cursor on
  // (CursorKind::kLog), so a forwarder behind by hours still finds its backlog; without log
  // cursors they go at the next checkpoint, as before.

  // Durable batches with from_seq <= seq < end_seq in seq order, whole, until at least
  // max_samples samples are read or the durable end is reached. Within a batch samples are
  // grouped by series, in time order per series. next_seq: where the next read starts.
  virtual Result<LogRead> ReadLog(uint64_t from_seq, size_t max_samples,
                                  uint64_t end_seq = UINT64_MAX) = 0;
  // The seq after the newest durable batch: a reader starting here sees only what comes next.
  virtual uint64_t LogEnd() = 0;
  // The canonical labels of a series a log batch names; NotFound for an unknown id.
  virtual Result<Labels> SeriesLabels(uint64_t series_id) = 0;

  // ---- Cursors: small named positions kept durably beside the data ----
  // kLog cursors hold a log seq (the next batch to read) and keep the log from there on;
  // kTime cursors hold a timestamp and keep nothing. SetCursor and DeleteCursor return once
  // durable.
  virtual Result<std::optional<Cursor>> GetCursor(std::string_view name) = 0;
  virtual Status SetCursor(std::string_view name, Cursor cursor) = 0;
  virtual Status DeleteCursor(std::string_view name) = 0;
  virtual std::vector<std::string> CursorNames() = 0;
};

struct RocksDbStoreOptions {
  std::string path;  // directory of the database; created (with parents) if missing
  // Retention per resolution in ms (raw, 1m, 5m, 1h); 0 keeps forever. Enforced by dropping
  // whole time partitions, and exactly on reads (older samples are not returned).
  int64_t retention_ms[4] = {0, 0, 0, 0};
  // A sample older than (newest sample of its series - window) is refused; INT64_MAX: any.
  int64_t out_of_order_window_ms = INT64_MAX;
  StoreLimits limits;
  // The head (open chunks) is checkpointed to RocksDB this often, or when the head log has
  // grown by head_log_bytes, so the head log can be truncated; 0 disables the timer.
  int64_t checkpoint_interval_ms = 60'000;
  uint64_t head_log_bytes = uint64_t{64} << 20;
  // How often retention runs (drops expired partitions); 0: only at Open.
  int64_t retention_interval_ms = 60'000;
  // Wall clock (Unix ms) for retention and for the checkpoint, which closes the open chunks of
  // windows before the clock's previous hour; empty: the system clock. A test seam.
  std::function<int64_t()> now_ms;
  // LRU block cache shared by both column families.
  size_t block_cache_bytes = size_t{64} << 20;
  // Memtable size of the raw column family (RocksDB keeps up to two per family); the index
  // family gets a quarter of it.
  size_t write_buffer_bytes = size_t{64} << 20;
  // RocksDB's max_total_wal_size: past it RocksDB flushes the family that pins the oldest WAL
  // file (the rarely written index family), so the WAL cannot grow without bound.
  uint64_t max_wal_bytes = uint64_t{512} << 20;
  // Select refuses with kResourceExhausted when a query would return more samples (as
  // Prometheus' --query.max-samples).
  uint64_t max_select_samples = 50'000'000;
  // Test seam: the label-set hash used by the series index (called concurrently); empty means
  // Labels::Hash(). A database must always be opened with the same function (Open refuses
  // otherwise).
  std::function<uint64_t(const Labels&)> label_hash;
  // Called once, on the thread whose write failed, when the store turns to refusing every
  // write (a fatal write error, not a full disk): the daemon logs it and exits, so that its
  // service manager restarts it and the reopened store recovers from the WAL.
  std::function<void(const Status&)> on_write_failed;
  // Test seam: called by the commit leader after it wrote a group of batches and before it
  // syncs the WAL for them; an error fails the group as a failed sync would (fatal), and
  // kResourceExhausted as a full disk (ENOSPC) would.
  std::function<Status()> before_sync;
  // Test seam: a std::shared_ptr<rocksdb::FileSystem> (held as void: no RocksDB header is
  // reachable from here) that every file of the database goes through; empty: the default.
  std::shared_ptr<void> file_system;
};

// Opens (creating if missing) the RocksDB-backed store at options.path.
Result<std::unique_ptr<Store>> OpenRocksDbStore(const RocksDbStoreOptions& options);

}  // namespace suanli::storage
