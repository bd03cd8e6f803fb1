// Column-wise codecs of closed data (format 2): the raw chunk of a closed window and a block of
// rollup records. The open head keeps the incremental row-wise chunk of gorilla.h (format 1);
// when a window closes its samples are re-encoded here, one column after the other, each
// column with the predictor that costs the fewest bits for it:
// - an integer column (timestamps, counts, offsets) is delta-of-delta coded, with one flag bit
//   for "regular" (every later delta-of-delta is 0: a steady scrape interval, a constant count);
// - a float64 column is XOR coded (Gorilla) against one of: the previous value, the linear
//   extrapolation of the two previous values (a counter at a steady rate), or a reference that
//   another column gives (min against min(first, last), increase against last - first, ...),
//   with one flag bit for "every value equals its prediction".
// Values keep their exact bits. Byte formats: aggregator/storage/README.md; fixtures in
// tests/unit/aggregator/storage/fixtures/.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/rollup/rollup.h"
#include "core/sample.h"
#include "core/status.h"

namespace suanli::storage {

inline constexpr uint8_t kColumnChunkFormat = 2;   // first byte of a closed raw chunk
inline constexpr uint8_t kColumnRollupFormat = 2;  // first byte of a rollup block
// Bounds a decoder's allocation: a few column bits can describe many rows.
inline constexpr uint64_t kMaxColumnRows = uint64_t{1} << 22;

// Sorted, distinct samples of one closed window, all >= window_start.
std::string EncodeClosedChunk(int64_t window_start, const std::vector<Sample>& samples);
// Format 2 only (DecodeChunk in gorilla.h reads both formats); appends to *out.
Status DecodeClosedChunk(std::string_view value, int64_t window_start, std::vector<Sample>* out);

// Records sorted by start, distinct starts, all >= block_start.
std::string EncodeRollupBlock(int64_t block_start, const std::vector<rollup::Record>& records);
// Format 2 only (DecodeRollups in gorilla.h reads both formats); appends to *out.
Status DecodeRollupBlock(std::string_view value, int64_t block_start,
                         std::vector<rollup::Record>* out);

}  // namespace suanli::storage
