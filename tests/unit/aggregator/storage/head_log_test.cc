// Head log record codec: the checked-in fixture pins format 2 byte for byte (README.md "head
// family"), both formats decode, and malformed records are refused.
#include "aggregator/storage/head_log.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "fixture_files.h"

namespace suanli::storage {
namespace {

using Entry = std::tuple<uint64_t, int64_t, uint64_t>;  // id, ts, bits

constexpr uint64_t k523 = 0x4080580000000000;    // 523.0: three significant bytes
constexpr uint64_t kStale = 0x7ff0000000000002;  // Prometheus' stale marker: all eight

std::vector<Entry> Read(const std::string& record, bool* ok) {
  std::vector<Entry> out;
  *ok = ReadHeadLog(record, [&](uint64_t id, int64_t ts, uint64_t bits) {
    out.emplace_back(id, ts, bits);
    return true;
  });
  return out;
}

TEST(HeadLogTest, Format2MatchesTheFixture) {
  std::string record;
  HeadLogWriter w(&record);
  w.BeginSeries(7, 2, 1000);
  w.Sample(1000, k523);
  w.Sample(16000, kStale);
  w.BeginSeries(3, 1, 1000);
  w.Sample(1000, 0);
  // 00 02 | first ts 1000 | id +7, 2 samples | +0, 3 bytes of 523.0 | +15000, 8 bytes |
  // id -4, 1 sample | +0, no bytes (0.0)
  EXPECT_EQ(ToHex(record),
            "00 02 d0 0f 0e 02 00 03 40 80 58 b0 ea 01 08 7f f0 00 00 00 00 00 02 07 01 00 00\n");
  CheckFixture("head_log_v2.hex", record);

  bool ok = false;
  EXPECT_EQ(Read(ReadFixture("head_log_v2.hex"), &ok),
            (std::vector<Entry>{{7, 1000, k523}, {7, 16000, kStale}, {3, 1000, 0}}));
  EXPECT_TRUE(ok);
}

TEST(HeadLogTest, NegativeAndExtremeTimestampsRoundTrip) {
  const std::vector<Entry> in = {{1, INT64_MIN, 1},
                                 {1, -1, 2},
                                 {1, INT64_MAX, ~uint64_t{0}},
                                 {uint64_t{1} << 40, 0, 0x8000000000000000}};
  std::string record;
  HeadLogWriter w(&record);
  w.BeginSeries(1, 3, INT64_MIN);
  for (int i = 0; i < 3; ++i) w.Sample(std::get<1>(in[i]), std::get<2>(in[i]));
  w.BeginSeries(uint64_t{1} << 40, 1, 0);
  w.Sample(0, 0x8000000000000000);
  bool ok = false;
  EXPECT_EQ(Read(record, &ok), in);
  EXPECT_TRUE(ok);
}

// The in-place writer (the ingest path's) gives the fixture's bytes, and extreme ids,
// timestamps and values within its kMax*Bytes bounds.
TEST(HeadLogTest, InPlaceWriterMatchesTheAppendingOne) {
  std::string want;
  HeadLogWriter a(&want);
  std::string buf(HeadLogWriter::kMaxStartBytes +
                      3 * (HeadLogWriter::kMaxSeriesBytes + HeadLogWriter::kMaxSampleBytes),
                  '\xff');
  HeadLogWriter b(nullptr);
  char* p = buf.data();
  a.BeginSeries(7, 2, 1000);
  p = b.BeginSeries(p, true, 7, 2, 1000);
  a.Sample(1000, k523);
  p = b.Sample(p, 1000, k523);
  a.Sample(INT64_MAX, kStale);
  p = b.Sample(p, INT64_MAX, kStale);
  a.BeginSeries(~uint64_t{0}, ~uint64_t{0}, INT64_MIN);
  p = b.BeginSeries(p, false, ~uint64_t{0}, ~uint64_t{0}, INT64_MIN);
  a.Sample(INT64_MIN, ~uint64_t{0});
  p = b.Sample(p, INT64_MIN, ~uint64_t{0});
  buf.resize(static_cast<size_t>(p - buf.data()));
  EXPECT_EQ(ToHex(buf), ToHex(want));
  EXPECT_EQ(ToHex(buf).substr(0, 3 * 11), "00 02 d0 0f 0e 02 00 03 40 80 58 ");
}

TEST(HeadLogTest, ReadsFormat1) {
  // id 5, 2 samples: ts 1000 (zigzag 2000), bits BE64; ts 1000 + 15000 (zigzag 30000).
  const std::string record =
      FromHex("05 02 d0 0f 40 80 58 00 00 00 00 00 b0 ea 01 7f f0 00 00 00 00 00 02");
  bool ok = false;
  EXPECT_EQ(Read(record, &ok), (std::vector<Entry>{{5, 1000, k523}, {5, 16000, kStale}}));
  EXPECT_TRUE(ok);
}

TEST(HeadLogTest, RefusesMalformedRecords) {
  std::string record;
  HeadLogWriter w(&record);
  w.BeginSeries(7, 2, 1000);
  w.Sample(1000, k523);
  w.Sample(16000, kStale);
  bool ok = true;
  for (size_t len = 1; len < record.size(); ++len) {
    Read(record.substr(0, len), &ok);
    // Cut after the first timestamp: a record of no series, which is well-formed.
    EXPECT_EQ(ok, len == 4) << "truncated to " << len;
  }
  Read(std::string("\0\3", 2) + record.substr(2), &ok);  // unknown version
  EXPECT_FALSE(ok);
  Read(FromHex("00 02 00 02 01 00 09"), &ok);  // 9 value bytes
  EXPECT_FALSE(ok);
  Read(FromHex("05 01 00 01 02"), &ok);  // format 1 with a short value
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace suanli::storage
