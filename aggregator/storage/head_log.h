// The head log record: the samples of one acknowledged Append, written to the `head` column
// family in the Append's WriteBatch (so they are in the WAL before the ack) and replayed into
// the in-memory heads at Open. Byte format in README.md ("head family"); fixtures in
// tests/unit/aggregator/storage/fixtures/head_log_*.hex.
// Thread-safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace suanli::storage {

// Format 2: 0x00 (no format-1 record starts with it: ids start at 1), the version byte, the
// first timestamp; per series the id as a zigzag delta from the previous series' id and the
// sample count; per sample the zigzag time delta (from the record's first timestamp, then
// from the series' previous sample) and the value bits without their low zero bytes.
inline constexpr uint8_t kHeadLogFormat = 2;

// Appends series after series to *out; each series' samples follow its BeginSeries.
class HeadLogWriter {
 public:
  // Most bytes the record start, a series header and a sample take in the buffer.
  static constexpr size_t kMaxStartBytes = 2 + 10, kMaxSeriesBytes = 10 + 10,
                          kMaxSampleBytes = 10 + 1 + 8;

  explicit HeadLogWriter(std::string* out) : out_(out) {}
  void BeginSeries(uint64_t id, uint64_t count, int64_t first_ts);
  void Sample(int64_t ts, uint64_t bits);

  // The same bytes written at p, which has room for the kMax*Bytes above (the record start
  // only when `first`: the record is empty so far); each returns the end of what it wrote.
  // The ingest path sizes the record once and writes through these, with no append per
  // sample. out is not used.
  char* BeginSeries(char* p, bool first, uint64_t id, uint64_t count, int64_t first_ts);
  char* Sample(char* p, int64_t ts, uint64_t bits);

 private:
  std::string* out_;
  int64_t base_ts_ = 0, prev_ts_ = 0;
  uint64_t prev_id_ = 0;
};

// Calls add(id, ts, bits) for each sample of a record of format 1 or 2, in order. False when
// the record is malformed or add returned false.
bool ReadHeadLog(std::string_view record,
                 const std::function<bool(uint64_t id, int64_t ts, uint64_t bits)>& add);

}  // namespace suanli::storage
