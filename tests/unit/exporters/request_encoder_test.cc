#include "exporters/remote_write/request_encoder.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "core/remote_codec.h"

namespace suanli::exporters {
namespace {

// The hand-written body decodes with libprotobuf to exactly the series it was made from.
TEST(RequestEncoderTest, BodyDecodesToTheSameSeries) {
  std::vector<TimeSeries> in = {
      {Labels{{"__name__", "a_total"}, {"dc", "lanzhou-1"}, {"x", std::string(300, 'v')}},
       {{1'700'000'000'000, 1.5}, {1'700'000'015'000, -0.0}, {-5, 1e308}}},
      {Labels{{"__name__", "b"}}, {{0, StaleNaN()}, {1, std::nan("")}}},
  };
  std::vector<EncodedSeries> encoded;
  for (const TimeSeries& ts : in) encoded.push_back(Encode(ts));
  EXPECT_EQ(SampleCount(encoded), 5u);
  EXPECT_EQ(encoded[0].hash, in[0].labels.Hash());
  auto out = remote::DecodeWriteRequest(EncodeWriteBody(encoded), 1 << 20);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->series.size(), 2u);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out->series[i].labels, in[i].labels);
    ASSERT_EQ(out->series[i].samples.size(), in[i].samples.size());
    for (size_t j = 0; j < in[i].samples.size(); ++j) {
      EXPECT_EQ(out->series[i].samples[j].timestamp_ms, in[i].samples[j].timestamp_ms);
      EXPECT_EQ(std::bit_cast<uint64_t>(out->series[i].samples[j].value),
                std::bit_cast<uint64_t>(in[i].samples[j].value));
    }
  }
}

}  // namespace
}  // namespace suanli::exporters
