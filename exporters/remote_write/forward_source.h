// Where a forwarding target's samples come from, one class per `select`, each reading the
// store from a durable cursor (the store is the queue: nothing is copied aside to be sent):
//   raw       the store's log (every accepted batch in commit order); the cursor is a log seq
//             and keeps the log from there on (CursorKind::kLog)
//   rollups   closed rollup intervals as <metric>:<resolution>_<output> series, stamped at
//             the interval's end; the cursor is the start of the next interval to send
//   capacity  the capacity evaluations recorded in the store (CapacityRecorder); the cursor is
//             the time of the last evaluation sent
// A batch is a bounded unit of work: memory follows batches in flight, not the backlog.
// Units: Unix ms. Thread-safety: a source belongs to its target's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/storage/store.h"
#include "core/sample.h"
#include "exporters/remote_write/forward_config.h"
#include "exporters/remote_write/request_encoder.h"

namespace suanli::exporters {

// One unit of forwarding work: delivered (or dropped) whole before the cursor moves to `next`.
struct ForwardBatch {
  storage::Cursor next;  // the cursor once every sample of the unit is delivered or dropped
  int64_t oldest_ms = std::numeric_limits<int64_t>::max();  // oldest sample time in the unit
  bool caught_up = false;                                   // nothing more is ready after this unit
  // Skipped because older than max_backlog: samples (raw) and the span of history skipped.
  uint64_t skipped_samples = 0;
  int64_t skipped_ms = 0;
  // Hands out the unit's series a part at a time, about max_samples samples per call (each
  // series' samples in time order; a series never split across parts); false once all are out.
  std::function<bool(size_t max_samples, std::vector<EncodedSeries>* out)> take;
};

class ForwardSource {
 public:
  virtual ~ForwardSource() = default;
  // The cursor of a target that has none yet: it starts from now.
  virtual storage::Cursor Start(int64_t now_ms) = 0;
  // Whether `cursor` (found in the store) belongs to this source (else it starts from now).
  virtual bool Accepts(const storage::Cursor& cursor) const = 0;
  // The next unit from `cursor`, about `max_samples` samples for raw (a few intervals for
  // rollups and capacity); one whose `next` equals `cursor` (caught_up) when nothing is ready.
  // Backlog older than max_backlog is skipped and counted in the unit.
  // `until` (after a restart): the unit in flight when it stopped, re-read to end exactly
  // there, so that every request goes again byte for byte (a receiver such as Prometheus
  // refuses a request whole when part of it is already stored: only identical requests make
  // a resend harmless).
  virtual Result<ForwardBatch> Next(const storage::Cursor& cursor, int64_t now_ms,
                                    size_t max_samples,
                                    std::optional<storage::Cursor> until = std::nullopt) = 0;
};

// Counters by Prometheus' naming conventions (_total; a histogram's or summary's _count, _sum,
// _bucket): their rollups also carry `increase`.
bool IsCounterName(std::string_view metric_name);

// Newest capacity evaluation durable in the store (written by CapacityRecorder), shared with the
// capacity sources; INT64_MIN until the first one.
struct CapacityProgress {
  std::atomic<int64_t> last_recorded_ms{std::numeric_limits<int64_t>::min()};
};

std::unique_ptr<ForwardSource> MakeForwardSource(const ForwardTarget& target, storage::Store& store,
                                                 const CapacityProgress* capacity);

}  // namespace suanli::exporters
