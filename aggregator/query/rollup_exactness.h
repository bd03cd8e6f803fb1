// RollupAnswersExactly: whether the samples that rollup::Emit makes of a series' records give,
// through PromQL's function at every evaluation time of a remote_read query, exactly what the
// function gives over the raw samples those records summarise. The read handler serves a
// rollup only when this holds for every series, and otherwise reads raw samples (or, past the
// raw retention, refuses the query, naming the reason).
//
// Evaluation times come from the hints as Prometheus sets them (start = first evaluation minus
// the range, then every step up to end; an instant query has one, at end). Each window is
// (t - range, t]. What must hold, with only first_ts, last_ts and count of each record:
//   - every record lies wholly inside or wholly outside every window (a window that cuts an
//     interval, or a sample exactly on a window's open start, would be miscounted);
//   - avg_over_time: the records of a window hold equally many samples (PromQL averages the
//     emitted per-interval means without weights);
//   - rate/increase: both ends of every window extrapolate to the window's edge over the raw
//     samples (closer than 1.1 x their average spacing: the emitted points are fewer, so a
//     shorter extrapolation would use another spacing), and the extrapolation towards zero
//     does not apply to the raw samples (it would use the raw first value, which the rebuilt
//     counter does not emit).
// min/max/sum_over_time need only the first rule. NaN samples are left out of rollups, as
// Prometheus leaves stale markers out of range selections.
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/remote_codec.h"

namespace suanli::aggregator {

// `records` sorted by start; `why` (optional) receives the first reason it does not hold.
bool RollupAnswersExactly(const std::vector<rollup::Record>& records, rollup::Aggregate aggregate,
                          const remote::ReadHints& hints, std::string* why = nullptr);

}  // namespace suanli::aggregator
