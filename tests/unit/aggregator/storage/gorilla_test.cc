// Tests of the Gorilla chunk and rollup codecs: round trips over awkward values and
// timestamps, and checked-in fixtures (fixtures/*.hex) that pin the byte formats of
// aggregator/storage/README.md. Regenerate them only on a deliberate format change:
// SUANLI_WRITE_FIXTURES=1 ./storage_tests --gtest_filter='GorillaFixture*'.
#include "aggregator/storage/gorilla.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "aggregator/storage/column_codec.h"
#include "tests/unit/aggregator/storage/fixture_files.h"

namespace suanli::storage {
namespace {

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

bool SameBits(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return false;
  }
  return true;
}

TEST(GorillaTest, BitWriterReaderRoundTrip) {
  BitWriter w;
  w.WriteBit(true);
  w.WriteBits(0x2a, 7);
  w.WriteBits(~uint64_t{0}, 64);
  w.WriteBits(5, 3);
  BitReader r(w.bytes());
  bool b;
  uint64_t v;
  ASSERT_TRUE(r.ReadBit(&b));
  EXPECT_TRUE(b);
  ASSERT_TRUE(r.ReadBits(7, &v));
  EXPECT_EQ(v, 0x2au);
  ASSERT_TRUE(r.ReadBits(64, &v));
  EXPECT_EQ(v, ~uint64_t{0});
  ASSERT_TRUE(r.ReadBits(3, &v));
  EXPECT_EQ(v, 5u);
  EXPECT_FALSE(r.ReadBits(8, &v));
}

TEST(GorillaTest, DodBucketsRoundTrip) {
  std::vector<int64_t> values = {0,      1,      -1,      8191,   -8192,     8192,     65535,
                                 -65536, 524287, -524288, 524288, INT64_MAX, INT64_MIN};
  BitWriter w;
  for (int64_t v : values) WriteDod(&w, v);
  BitReader r(w.bytes());
  for (int64_t v : values) {
    int64_t got;
    ASSERT_TRUE(ReadDod(&r, &got));
    EXPECT_EQ(got, v);
  }
}

TEST(GorillaTest, ChunkRoundTripKeepsBits) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    int64_t window = 3'600'000 * (trial - 25);
    std::vector<Sample> samples;
    int64_t ts = window + static_cast<int64_t>(rng() % 1000);
    for (int i = 0; i < 300 && ts < window + 3'600'000; ++i) {
      uint64_t bits = trial % 3 == 0 ? rng() : Bits(static_cast<double>(rng() % 100) / 4);
      double v;
      std::memcpy(&v, &bits, 8);
      samples.push_back({ts, v});
      ts += 1 + static_cast<int64_t>(rng() % 30'000);
    }
    std::string chunk = EncodeChunk(window, samples);
    std::vector<Sample> back;
    ASSERT_TRUE(DecodeChunk(chunk, window, &back).ok());
    EXPECT_TRUE(SameBits(back, samples)) << "trial " << trial;
  }
}

// ChunkEncoder writes the timestamp and value codes of a sample in one WriteBits call where they
// fit: its bytes must equal the codes written one after the other (WriteDod, then XorWriter),
// over every dod bucket, equal values, reused and new XOR windows and full 64-bit windows.
TEST(GorillaTest, ChunkEncoderMatchesCodesWrittenOneByOne) {
  std::mt19937_64 rng(11);
  const int64_t steps[] = {0, 1, 100, 8191, 8192, 65535, 70000, 524287, 600000, 3'000'000};
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t window = 7'200'000;
    ChunkEncoder enc(window);
    BitWriter ref;
    XorWriter xor_ref;
    int64_t ts = window + static_cast<int64_t>(rng() % 100), prev_ts = 0, prev_delta = 0;
    int64_t delta = 1000;
    uint64_t bits = Bits(1.5), prev_bits = 0;
    for (int i = 0; i < 200 && ts < window + 3'600'000; ++i) {
      enc.Append(ts, bits);
      if (i == 0) {
        WriteDod(&ref, ts - window);
        ref.WriteBits(bits, 64);
      } else {
        const int64_t d = ts - prev_ts;
        WriteDod(&ref, i == 1 ? d : d - prev_delta);
        prev_delta = d;
        xor_ref.Write(&ref, prev_bits, bits);
      }
      prev_ts = ts;
      prev_bits = bits;
      if (rng() % 4 == 0) delta = 1 + static_cast<int64_t>(steps[rng() % 10] % 400'000);
      ts += delta;
      switch (rng() % 5) {
        case 0:
          break;  // same value: XOR 0
        case 1:
          bits ^= uint64_t{1} << (rng() % 64);
          break;  // one bit
        case 2:
          bits = rng();
          break;  // full-width window
        case 3:
          bits ^= rng() & 0xff00;
          break;  // narrow window
        default:
          bits = Bits(static_cast<double>(rng() % 1000) / 8);
      }
    }
    std::string want;
    want.push_back(static_cast<char>(kChunkFormat));
    AppendVarint(&want, enc.count());
    want += ref.bytes();
    EXPECT_EQ(enc.Finish(), want) << "trial " << trial;
  }
}

TEST(GorillaTest, RegularSeriesCompressesWell) {
  std::vector<Sample> samples;
  double v = 1000;
  for (int i = 0; i < 240; ++i) samples.push_back({i * 15'000, v += 4});
  std::string chunk = EncodeChunk(0, samples);
  // A steady counter at 15 s: about 2 bytes per sample (vs 16 for one key per sample).
  EXPECT_LT(chunk.size(), 240u * 2.5);
}

TEST(GorillaTest, TruncatedChunkIsAnError) {
  std::string chunk = EncodeChunk(0, FixtureSamples());
  std::vector<Sample> out;
  EXPECT_FALSE(DecodeChunk(chunk.substr(0, chunk.size() / 2), 0, &out).ok());
  EXPECT_FALSE(DecodeChunk("", 0, &out).ok());
  EXPECT_FALSE(DecodeChunk("\x07", 0, &out).ok());
}

TEST(GorillaTest, RollupsRoundTrip) {
  std::vector<Sample> samples = FixtureSamples();
  for (int64_t len : {60'000, 300'000, 3'600'000}) {
    int64_t window = rollup::IntervalStart(samples.front().timestamp_ms, 3'600'000);
    std::vector<rollup::Record> records = rollup::Compute(samples, len);
    std::string value = EncodeRollupBlock(window, records);
    std::vector<rollup::Record> back;
    ASSERT_TRUE(DecodeRollups(value, window, &back).ok());
    EXPECT_EQ(back, records) << len;
  }
}

TEST(GorillaFixture, ChunkFormat) {
  std::vector<Sample> samples = FixtureSamples();
  int64_t window = rollup::IntervalStart(samples.front().timestamp_ms, 3'600'000);
  std::string chunk = EncodeChunk(window, samples);
  CheckFixture("chunk_v1.hex", chunk);
  std::ifstream f(FixturePath("chunk_v1.hex"));
  std::stringstream text;
  text << f.rdbuf();
  std::vector<Sample> back;
  ASSERT_TRUE(DecodeChunk(FromHex(text.str()), window, &back).ok());
  EXPECT_TRUE(SameBits(back, samples));
}

// Format 1 rollups are no longer written; the fixture pins that old values still decode.
TEST(GorillaFixture, RollupFormatV1StillDecodes) {
  std::vector<Sample> samples = FixtureSamples();
  int64_t window = rollup::IntervalStart(samples.front().timestamp_ms, 3'600'000);
  std::vector<rollup::Record> records = rollup::Compute(samples, 60'000);
  std::ifstream f(FixturePath("rollup_1m_v1.hex"));
  std::stringstream text;
  text << f.rdbuf();
  std::vector<rollup::Record> back;
  ASSERT_TRUE(DecodeRollups(FromHex(text.str()), window, &back).ok());
  EXPECT_EQ(back, records);
  // 12 samples at 15 s starting 27 s into a minute span four 1m intervals; NaN and the stale
  // marker are left out, and the fourth interval holds only the stale marker: no record.
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].count, 3u);
  EXPECT_EQ(back[0].count + back[1].count + back[2].count, 10u);
}

}  // namespace
}  // namespace suanli::storage
