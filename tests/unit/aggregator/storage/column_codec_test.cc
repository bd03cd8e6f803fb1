// Tests of the column-wise codecs of closed data (format 2): exact round trips over awkward
// values, the predictors each column picks, sizes of steady data, malformed input, and
// fixtures that pin the byte formats of aggregator/storage/README.md. Regenerate the fixtures
// only on a deliberate format change:
// SUANLI_WRITE_FIXTURES=1 ./storage_tests --gtest_filter='ColumnCodecFixture*'.
#include "aggregator/storage/column_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "aggregator/storage/gorilla.h"
#include "tests/unit/aggregator/storage/fixture_files.h"

namespace suanli::storage {
namespace {

constexpr int64_t kHour = 3'600'000;

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}
double FromBits(uint64_t b) {
  double v;
  std::memcpy(&v, &b, 8);
  return v;
}

void ExpectSameBits(const std::vector<Sample>& got, const std::vector<Sample>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].timestamp_ms, want[i].timestamp_ms) << i;
    EXPECT_EQ(Bits(got[i].value), Bits(want[i].value)) << i;
  }
}

// Records compared bit for bit (operator== would call NaN != NaN and -0 == +0).
void ExpectSameRecords(const std::vector<rollup::Record>& got,
                       const std::vector<rollup::Record>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const rollup::Record &g = got[i], &w = want[i];
    EXPECT_EQ(g.start, w.start) << i;
    EXPECT_EQ(g.count, w.count) << i;
    EXPECT_EQ(g.first_ts, w.first_ts) << i;
    EXPECT_EQ(g.last_ts, w.last_ts) << i;
    for (auto [a, b] : {std::pair{g.first, w.first},
                        {g.last, w.last},
                        {g.min, w.min},
                        {g.max, w.max},
                        {g.sum, w.sum},
                        {g.increase, w.increase}}) {
      EXPECT_EQ(Bits(a), Bits(b)) << i;
    }
  }
}

std::vector<Sample> RoundTrip(int64_t window, const std::vector<Sample>& samples) {
  std::string value = EncodeClosedChunk(window, samples);
  EXPECT_EQ(static_cast<uint8_t>(value[0]), kColumnChunkFormat);
  std::vector<Sample> back;
  Status st = DecodeChunk(value, window, &back);  // the dispatching decoder the store uses
  EXPECT_TRUE(st.ok()) << st.ToString();
  return back;
}

TEST(ColumnCodecTest, ClosedChunkKeepsEveryBitAndTimestamp) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    int64_t window = kHour * (trial - 30);
    std::vector<Sample> samples;
    int64_t ts = window + static_cast<int64_t>(rng() % 1000);
    double counter = 1e6;
    for (int i = 0; i < 300 && ts < window + kHour; ++i) {
      double v;
      switch (trial % 4) {
        case 0:  // arbitrary bit patterns: NaN payloads, infinities, denormals, -0
          v = FromBits(rng());
          break;
        case 1:  // quarters
          v = static_cast<double>(rng() % 100) / 4;
          break;
        case 2:  // a counter with float increments and a reset
          counter = i == 100 ? 0.5 : counter + 14.99 + static_cast<double>(rng() % 7) / 100;
          v = counter;
          break;
        default:  // infinities next to finite values, so predictions overflow
          v = i % 3 == 0 ? std::numeric_limits<double>::infinity() : (i % 3 == 1 ? 1e308 : -1e308);
      }
      samples.push_back({ts, v});
      ts += trial % 2 ? 15'000 : 1 + static_cast<int64_t>(rng() % 30'000);
    }
    ExpectSameBits(RoundTrip(window, samples), samples);
  }
}

TEST(ColumnCodecTest, ClosedChunkAtTheEdgesOfTheTimeRange) {
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  std::vector<Sample> low = {{lowest, 1}, {lowest + 1, 2}, {lowest + 3'599'999, 3}};
  ExpectSameBits(RoundTrip(lowest, low), low);
  const int64_t top = rollup::IntervalStart(std::numeric_limits<int64_t>::max(), kHour);
  std::vector<Sample> high = {{top, 1}, {std::numeric_limits<int64_t>::max(), StaleNaN()}};
  ExpectSameBits(RoundTrip(top, high), high);
  std::vector<Sample> one = {{5, -0.0}};
  ExpectSameBits(RoundTrip(0, one), one);
}

TEST(ColumnCodecTest, SteadyDataCostsAlmostNothingPerSample) {
  // A counter at a steady rate on a steady 15 s scrape: the timestamp column is "regular" and
  // the value column "linear, every prediction exact".
  std::vector<Sample> counter, gauge;
  for (int i = 0; i < 240; ++i) {
    counter.push_back({i * 15'000, 1000.0 + 4 * i});
    gauge.push_back({i * 15'000, 42.5});
  }
  EXPECT_LE(EncodeClosedChunk(0, counter).size(), 16u);
  EXPECT_LE(EncodeClosedChunk(0, gauge).size(), 16u);
  // The same counter in the row-wise head format costs about 2 bits per sample.
  EXPECT_GT(EncodeChunk(0, counter).size(), 60u);
}

TEST(ColumnCodecTest, NoisyGaugeCostsNoMoreThanTheRowWiseFormat) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 3);
  std::vector<Sample> samples;
  double v = 400;
  for (int i = 0; i < 240; ++i) {
    v += noise(rng);
    samples.push_back({i * 15'000 + static_cast<int64_t>(rng() % 7), v});
  }
  // Per column, "previous value" is always a candidate: the row-wise code plus a few bits.
  EXPECT_LE(EncodeClosedChunk(0, samples).size(), EncodeChunk(0, samples).size() + 4);
  ExpectSameBits(RoundTrip(0, samples), samples);
}

TEST(ColumnCodecTest, ShortDecimalsAreCodedAsIntegers) {
  // /proc counters in hundredths of a second and two-decimal gauges: their binary mantissas
  // look random to XOR, but as integers of hundredths they differ by little. NaN, the stale
  // marker and -0 are exceptions kept with their exact bits.
  std::mt19937_64 rng(4);
  std::vector<Sample> counter, gauge;
  double c = 123456.78;
  for (int i = 0; i < 240; ++i) {
    c = std::round((c + 4.5 + static_cast<double>(rng() % 20) / 100) * 100) / 100;
    counter.push_back({i * 15'000, c});
    gauge.push_back({i * 15'000, static_cast<double>(400 + static_cast<int>(rng() % 50)) / 100});
  }
  gauge[7].value = std::numeric_limits<double>::quiet_NaN();
  gauge[8].value = -0.0;
  gauge[239].value = StaleNaN();
  EXPECT_LT(EncodeClosedChunk(0, counter).size() * 3, EncodeChunk(0, counter).size());
  EXPECT_LT(EncodeClosedChunk(0, gauge).size() * 3, EncodeChunk(0, gauge).size());
  ExpectSameBits(RoundTrip(0, counter), counter);
  ExpectSameBits(RoundTrip(0, gauge), gauge);
}

TEST(ColumnCodecTest, RollupBlocksRoundTripForCountersGaugesAndResets) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 1);
  for (int shape = 0; shape < 4; ++shape) {
    std::vector<Sample> samples;
    double v = 50;
    for (int i = 0; i < 240; ++i) {
      switch (shape) {
        case 0:
          v += 3;  // steady counter
          break;
        case 1:
          v = 20 + noise(rng);  // noisy gauge
          break;
        case 2:
          v = i % 37 == 0 ? 1 : v + 0.25 + static_cast<double>(rng() % 4);  // resets
          break;
        default:
          v = i % 50 == 7 ? std::numeric_limits<double>::quiet_NaN() : 1e300 * (i % 3);
      }
      samples.push_back({i * 15'000 + (shape == 2 ? static_cast<int64_t>(rng() % 500) : 0), v});
    }
    for (int64_t len : {int64_t{60'000}, int64_t{300'000}, kHour}) {
      std::vector<rollup::Record> records = rollup::Compute(samples, len);
      std::string value = EncodeRollupBlock(0, records);
      std::vector<rollup::Record> back;
      Status st = DecodeRollups(value, 0, &back);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ExpectSameRecords(back, records);
    }
  }
}

TEST(ColumnCodecTest, SteadyCounterRollupsCostAFewBytesPerWindow) {
  std::vector<Sample> samples;
  for (int i = 0; i < 240; ++i) samples.push_back({i * 15'000, 7.0 * i});
  std::vector<rollup::Record> records = rollup::Compute(samples, 60'000);
  ASSERT_EQ(records.size(), 60u);
  // 60 records of ten columns: the row-wise format 1 took about 3 bytes per record.
  EXPECT_LE(EncodeRollupBlock(0, records).size(), 40u);
}

TEST(ColumnCodecTest, MalformedValuesAreErrorsNotCrashes) {
  std::vector<Sample> samples = FixtureSamples();
  std::string chunk = EncodeClosedChunk(0, samples);
  std::vector<Sample> out;
  for (size_t cut = 0; cut < chunk.size(); ++cut) {
    out.clear();
    EXPECT_FALSE(DecodeChunk(chunk.substr(0, cut), 0, &out).ok()) << cut;
  }
  std::vector<rollup::Record> records = rollup::Compute(samples, 60'000), back;
  std::string block = EncodeRollupBlock(0, records);
  for (size_t cut = 0; cut < block.size(); ++cut) {
    back.clear();
    EXPECT_FALSE(DecodeRollups(block.substr(0, cut), 0, &back).ok()) << cut;
  }
  // A header that claims billions of rows in a few bytes is refused before any allocation.
  std::string huge(1, static_cast<char>(kColumnChunkFormat));
  AppendVarint(&huge, uint64_t{1} << 40);
  huge += std::string(4, '\xff');
  EXPECT_FALSE(DecodeChunk(huge, 0, &out).ok());
  huge[0] = static_cast<char>(kColumnRollupFormat);
  EXPECT_FALSE(DecodeRollups(huge, 0, &back).ok());
  // Random bytes after a valid header: any outcome but a crash.
  std::mt19937_64 rng(9);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(1, static_cast<char>(i % 2 ? kColumnChunkFormat : kColumnRollupFormat));
    AppendVarint(&junk, rng() % 300);
    for (int b = static_cast<int>(rng() % 64); b > 0; --b) junk.push_back(static_cast<char>(rng()));
    out.clear();
    back.clear();
    (void)DecodeChunk(junk, 0, &out);
    (void)DecodeRollups(junk, 0, &back);
  }
}

TEST(ColumnCodecFixture, ClosedChunkFormat) {
  std::vector<Sample> samples = FixtureSamples();
  int64_t window = rollup::IntervalStart(samples.front().timestamp_ms, kHour);
  CheckFixture("chunk_closed_v2.hex", EncodeClosedChunk(window, samples));
  std::vector<Sample> back;
  ASSERT_TRUE(DecodeChunk(ReadFixture("chunk_closed_v2.hex"), window, &back).ok());
  ExpectSameBits(back, samples);
}

TEST(ColumnCodecFixture, RollupBlockFormat) {
  std::vector<Sample> samples = FixtureSamples();
  int64_t window = rollup::IntervalStart(samples.front().timestamp_ms, kHour);
  std::vector<rollup::Record> records = rollup::Compute(samples, 60'000);
  CheckFixture("rollup_block_v2.hex", EncodeRollupBlock(window, records));
  std::vector<rollup::Record> back;
  ASSERT_TRUE(DecodeRollups(ReadFixture("rollup_block_v2.hex"), window, &back).ok());
  ExpectSameRecords(back, records);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].start, rollup::IntervalStart(samples[0].timestamp_ms, 60'000));
  EXPECT_EQ(back[1].start, back[0].start + 60'000);
}

}  // namespace
}  // namespace suanli::storage
