// The zero-copy remote_write parser against libprotobuf (DecodeWriteRequest), the reference:
// the same bodies must be accepted or refused alike and decode to the same series. Bodies come
// from our encoder, from hand-written wire bytes (unknown fields, wrong wire types, groups,
// repeated scalars) and from seeded random mutations of both.
#include "core/remote_write_fast_decoder.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/remote_codec.h"
#include "remote.pb.h"
#include "tests/unit/core/protobuf_wire.h"

namespace suanli::remote {
namespace {

using wire::Compress;
using wire::Fixed64;
using wire::Tag;
using wire::Varint;
std::string Len(int field, const std::string& payload) { return wire::Bytes(field, payload); }
std::string Label(const std::string& name, const std::string& value) {
  return Len(1, Len(1, name) + Len(2, value));
}
std::string SampleBytes(uint64_t bits, int64_t ts) {
  return Len(2, Fixed64(1, bits) + Tag(2, 0) + Varint(static_cast<uint64_t>(ts)));
}

// Decodes `raw` with both decoders; they must agree on acceptance and on every series.
// Returns whether it was accepted.
bool Agree(const std::string& raw) {
  const std::string body = Compress(raw);
  auto reference = DecodeWriteRequest(body, 64 << 20);
  DecodedWriteRequest fast;
  Status st = DecodeWriteRequestView(body, 64 << 20, &fast);
  EXPECT_EQ(reference.ok(), st.ok())
      << "reference: " << reference.status().ToString() << " fast: " << st.ToString();
  if (!reference.ok() || !st.ok()) return false;
  const WriteRequestView& v = fast.view;
  EXPECT_EQ(reference->series.size(), v.series.size());
  EXPECT_EQ(reference->metadata.size(), v.metadata_count);
  if (reference->series.size() != v.series.size()) return false;
  for (size_t i = 0; i < v.series.size(); ++i) {
    std::vector<suanli::Label> items;
    for (const LabelRef& l : v.LabelsOf(v.series[i])) {
      items.push_back({std::string(l.name), std::string(l.value)});
    }
    EXPECT_EQ(reference->series[i].labels, Labels(std::move(items))) << "series " << i;
    std::span<const Sample> samples = v.SamplesOf(v.series[i]);
    EXPECT_EQ(reference->series[i].samples, std::vector<Sample>(samples.begin(), samples.end()))
        << "series " << i;
  }
  return true;
}

TEST(RemoteWriteFastDecoderTest, DecodesWhatTheEncoderWrites) {
  WriteRequest request;
  request.series.push_back({Labels{{"__name__", "up"}, {"job", "node"}, {"dc", "gansu-1"}},
                            {{1700000000000, 1.0}, {1700000015000, StaleNaN()}}});
  request.series.push_back(
      {Labels{{"__name__", "x"}, {"bin", std::string("a\0\x01z", 4)}}, {{-5, -0.0}, {0, 1e308}}});
  request.series.push_back({Labels{{"__name__", "empty_value"}, {"e", ""}}, {{7, 2.5}}});
  request.series.push_back({Labels{{"__name__", "no_samples"}}, {}});
  request.metadata.push_back({MetricType::kCounter, "up", "help text", "seconds"});
  std::string body = EncodeWriteRequest(request);
  DecodedWriteRequest fast;
  ASSERT_TRUE(DecodeWriteRequestView(body, 1 << 20, &fast).ok());
  const WriteRequestView& v = fast.view;
  ASSERT_EQ(v.series.size(), 4u);
  EXPECT_EQ(v.metadata_count, 1u);
  // Wire order is the encoder's: sorted by name.
  auto first = v.LabelsOf(v.series[0]);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].name, "__name__");
  EXPECT_EQ(first[1].name, "dc");
  EXPECT_EQ(first[1].value, "gansu-1");
  EXPECT_EQ(v.SamplesOf(v.series[0])[1], (Sample{1700000015000, StaleNaN()}));
  EXPECT_EQ(v.LabelsOf(v.series[1])[1].value, std::string_view("a\0\x01z", 4));
  EXPECT_EQ(v.SamplesOf(v.series[1])[0], (Sample{-5, -0.0}));
  EXPECT_EQ(v.LabelsOf(v.series[2])[1].value, "");
  EXPECT_EQ(v.series[3].sample_count, 0u);
  EXPECT_TRUE(Agree(std::string(fast.buffer.get(), fast.size)));
}

// A receiver decodes into the same object request after request: a smaller body after a
// larger one reuses the buffer and must show only its own series; ReleaseIfAbove frees what
// an outsized body left behind.
TEST(RemoteWriteFastDecoderTest, ReusedDecodeShowsOnlyTheLatestBody) {
  WriteRequest big;
  for (int i = 0; i < 500; ++i) {
    big.series.push_back(
        {Labels{{"__name__", "big_metric_with_a_long_name"}, {"i", std::to_string(i)}},
         {{1000 + i, double(i)}}});
  }
  WriteRequest small;
  small.series.push_back({Labels{{"__name__", "up"}}, {{7, 1.5}}});

  DecodedWriteRequest decoded;
  ASSERT_TRUE(DecodeWriteRequestView(EncodeWriteRequest(big), 1 << 20, &decoded).ok());
  ASSERT_EQ(decoded.view.series.size(), 500u);
  const size_t big_capacity = decoded.capacity;
  const char* big_buffer = decoded.buffer.get();

  ASSERT_TRUE(DecodeWriteRequestView(EncodeWriteRequest(small), 1 << 20, &decoded).ok());
  EXPECT_EQ(decoded.buffer.get(), big_buffer);  // reused, not reallocated
  EXPECT_EQ(decoded.capacity, big_capacity);
  ASSERT_EQ(decoded.view.series.size(), 1u);
  ASSERT_EQ(decoded.view.labels.size(), 1u);
  EXPECT_EQ(decoded.view.labels[0].value, "up");
  ASSERT_EQ(decoded.view.samples.size(), 1u);
  EXPECT_EQ(decoded.view.samples[0], (Sample{7, 1.5}));

  decoded.ReleaseIfAbove(big_capacity);  // at the bound: kept
  EXPECT_EQ(decoded.buffer.get(), big_buffer);
  decoded.ReleaseIfAbove(big_capacity - 1);
  EXPECT_EQ(decoded.buffer, nullptr);
  EXPECT_EQ(decoded.capacity, 0u);
  EXPECT_EQ(decoded.view.labels.capacity(), 0u);

  // A corrupt body after a good one is refused, and the next good body decodes whole.
  ASSERT_FALSE(DecodeWriteRequestView("\x05\x01", 1 << 20, &decoded).ok());
  ASSERT_TRUE(DecodeWriteRequestView(EncodeWriteRequest(small), 1 << 20, &decoded).ok());
  EXPECT_EQ(decoded.view.labels[0].value, "up");
}

TEST(RemoteWriteFastDecoderTest, HandWrittenWireCasesMatchLibprotobuf) {
  const std::string labels = Label("__name__", "m") + Label("a", "b");
  const std::string sample = SampleBytes(0x3ff0000000000000, 1000);
  struct Case {
    const char* what;
    std::string raw;
    bool accepted;
  };
  const std::vector<Case> cases = {
      {"empty request", "", true},
      {"plain", Len(1, labels + sample), true},
      {"unknown varint field", Len(1, labels + Tag(9, 0) + Varint(300) + sample), true},
      {"unknown fixed32 field", Len(1, labels + Tag(9, 5) + "abcd" + sample), true},
      {"unknown fixed64 field", Len(1, Fixed64(15, 7) + labels + sample), true},
      {"unknown group", Len(1, labels + Tag(9, 3) + Tag(1, 0) + Varint(1) + Tag(9, 4) + sample),
       true},
      {"nested groups", Tag(7, 3) + Tag(8, 3) + Tag(8, 4) + Tag(7, 4) + Len(1, labels), true},
      {"group ended by another number", Tag(7, 3) + Tag(8, 4), false},
      {"group never ended", Tag(7, 3) + Tag(1, 0) + Varint(1), false},
      {"lone end-group", Tag(7, 4), false},
      {"end-group inside a series", Len(1, labels + Tag(3, 4)), false},
      {"tag 0", std::string(1, '\0'), false},
      {"field number 0", Tag(0, 2) + Varint(0), false},
      {"wire type 6", Tag(5, 6), false},
      {"wire type 7", Tag(5, 7), false},
      {"known field, other wire type (skipped)", Tag(1, 0) + Varint(5) + Len(1, labels), true},
      {"label name as varint (skipped)", Len(1, Len(1, Tag(1, 0) + Varint(1)) + sample), true},
      {"repeated label name: last wins", Len(1, Len(1, Len(1, "x") + Len(1, "y") + Len(2, "v"))),
       true},
      {"repeated sample value: last wins",
       Len(1, labels + Len(2, Fixed64(1, 1) + Fixed64(1, 2) + Tag(2, 0) + Varint(9))), true},
      {"ten-byte timestamp", Len(1, labels + Len(2, Tag(2, 0) + std::string(9, '\xff') + "\x01")),
       true},
      {"eleven-byte varint", Len(1, labels + Len(2, Tag(2, 0) + std::string(10, '\xff') + "\x01")),
       false},
      {"truncated varint", Len(1, labels + Len(2, Tag(2, 0) + "\xff")), false},
      {"truncated fixed64", Len(1, labels + Len(2, Tag(1, 1) + "1234")), false},
      {"length past the end", Tag(1, 2) + Varint(100) + "abc", false},
      {"sub-message length past its parent", Len(1, Tag(1, 2) + Varint(10) + "ab"), false},
      {"five-byte tag", std::string("\x8a\x80\x80\x80\x00", 5) + Varint(0), true},
      {"exemplar", Len(1, labels + sample + Len(3, Label("trace", "t") + Fixed64(2, 0))), true},
      {"broken exemplar label", Len(1, labels + Len(3, Len(1, Tag(1, 2) + Varint(5)))), false},
      {"metadata", Len(3, Tag(1, 0) + Varint(1) + Len(2, "m") + Len(4, "h") + Len(5, "u")), true},
      {"broken metadata", Len(3, Tag(1, 0)), false},
      {"reserved field 2 (skipped)", Len(2, "cortex") + Len(1, labels), true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(Agree(c.raw), c.accepted);
  }
}

// Native histograms (TimeSeries field 4) and exemplars (field 3) are not stored: the parser
// skips them, counts them, and keeps the float samples of the same series.
TEST(RemoteWriteFastDecoderTest, CountsNativeHistogramsAndExemplars) {
  auto bits = [](double d) {
    uint64_t b;
    std::memcpy(&b, &d, 8);
    return b;
  };
  // prompb.Histogram as Prometheus 2.40+ writes it: count_int, sum, schema (sint32), zero
  // threshold, zero_count_int, one positive span and its deltas (packed sint64), timestamp.
  const std::string histogram = Tag(1, 0) + Varint(5) + Fixed64(3, bits(12.5)) + Tag(4, 0) +
                                Varint(6) + Fixed64(5, bits(1e-128)) + Tag(6, 0) + Varint(1) +
                                Len(11, Tag(1, 0) + Varint(0) + Tag(2, 0) + Varint(2)) +
                                Len(12, Varint(4) + Varint(1)) + Tag(15, 0) + Varint(1700000000000);
  const std::string exemplar =
      Label("trace_id", "abc") + Fixed64(2, bits(0.25)) + Tag(3, 0) + Varint(1700000000000);
  const std::string raw =
      Len(1, Label("__name__", "http_seconds") + Len(4, histogram) + Len(4, histogram)) +
      Len(1, Label("__name__", "up") + SampleBytes(bits(1.0), 1700000000000) + Len(3, exemplar));
  DecodedWriteRequest fast;
  ASSERT_TRUE(DecodeWriteRequestView(Compress(raw), 1 << 20, &fast).ok());
  const WriteRequestView& v = fast.view;
  ASSERT_EQ(v.series.size(), 2u);
  EXPECT_EQ(v.histogram_count, 2u);
  EXPECT_EQ(v.exemplar_count, 1u);
  EXPECT_EQ(v.series[0].sample_count, 0u);
  ASSERT_EQ(v.series[1].sample_count, 1u);
  EXPECT_EQ(v.SamplesOf(v.series[1])[0], (Sample{1700000000000, 1.0}));
  EXPECT_TRUE(Agree(raw));
  // A field 4 of another wire type is an unknown field, not a histogram (libprotobuf's rule).
  ASSERT_TRUE(DecodeWriteRequestView(
                  Compress(Len(1, Label("__name__", "up") + Tag(4, 0) + Varint(1))), 1 << 20, &fast)
                  .ok());
  EXPECT_EQ(fast.view.histogram_count, 0u);
  EXPECT_EQ(fast.view.exemplar_count, 0u);
}

TEST(RemoteWriteFastDecoderTest, DeepGroupsMatchLibprotobuf) {
  for (int depth : {99, 100, 101, 150}) {
    std::string raw;
    for (int i = 0; i < depth; ++i) raw += Tag(7, 3);
    for (int i = 0; i < depth; ++i) raw += Tag(7, 4);
    SCOPED_TRACE(depth);
    Agree(raw);
    Agree(Len(1, Label("__name__", "m") + raw));
  }
}

TEST(RemoteWriteFastDecoderTest, RandomMutationsMatchLibprotobuf) {
  // Seeds: an encoder body with exemplars and metadata, and hand-written oddities.
  prompb::WriteRequest msg;
  for (int s = 0; s < 3; ++s) {
    prompb::TimeSeries* ts = msg.add_timeseries();
    for (const char* n : {"__name__", "dc", "job"}) {
      prompb::Label* l = ts->add_labels();
      l->set_name(n);
      l->set_value(std::string(n) + std::to_string(s));
    }
    for (int k = 0; k < 3; ++k) {
      prompb::Sample* sm = ts->add_samples();
      sm->set_value(k * 1.5);
      sm->set_timestamp(1700000000000 + k * 15000);
    }
    prompb::Exemplar* ex = ts->add_exemplars();
    ex->add_labels()->set_name("trace_id");
    ex->set_value(2);
    ex->set_timestamp(5);
  }
  prompb::MetricMetadata* md = msg.add_metadata();
  md->set_type(prompb::MetricMetadata::GAUGE);
  md->set_metric_family_name("m");
  std::vector<std::string> seeds = {msg.SerializeAsString(),
                                    Tag(7, 3) + Tag(1, 0) + Varint(3) + Tag(7, 4) +
                                        Len(1, Label("__name__", "m") + SampleBytes(1, 2))};
  std::mt19937 rng(20261125);
  int accepted = 0, total = 0;
  for (const std::string& seed : seeds) {
    for (int iter = 0; iter < 20000; ++iter) {
      std::string raw = seed;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !raw.empty(); ++e) {
        size_t pos = rng() % raw.size();
        switch (rng() % 4) {
          case 0:
            raw[pos] = static_cast<char>(rng());
            break;
          case 1:
            raw[pos] ^= static_cast<char>(1 << (rng() % 8));
            break;
          case 2:
            raw.insert(pos, 1, static_cast<char>(rng()));
            break;
          default:
            raw.erase(pos, 1 + rng() % 4);
            break;
        }
      }
      SCOPED_TRACE(::testing::PrintToString(raw));
      accepted += Agree(raw) ? 1 : 0;
      ++total;
      if (::testing::Test::HasFailure()) return;
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, total / 20);
  EXPECT_LT(accepted, total - total / 20);
}

TEST(RemoteWriteFastDecoderTest, SnappyAndSizeErrorsAsTheReference) {
  DecodedWriteRequest fast;
  EXPECT_EQ(DecodeWriteRequestView("", 1 << 20, &fast).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeWriteRequestView("\x05garbage", 1 << 20, &fast).code(),
            StatusCode::kInvalidArgument);
  // A header claiming 1 GiB: refused before allocating.
  std::string bomb = Varint(1u << 30) + "x";
  Status st = DecodeWriteRequestView(bomb, 1 << 20, &fast);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("exceeds the limit"), std::string::npos);
}

}  // namespace
}  // namespace suanli::remote
