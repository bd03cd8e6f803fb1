// Tests of the remote_write / remote_read codec: round trips, bodies built by hand from the wire
// format (so the decoder is not only checked against our own encoder), and hostile bodies.
#include "core/remote_codec.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/core/protobuf_wire.h"

namespace suanli::remote {
namespace {

constexpr size_t kLimit = 32 << 20;

double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

uint64_t Bits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

using wire::Bytes;
using wire::Fixed64;
using wire::Int;
using wire::Tag;
using wire::Varint;

std::string LabelMsg(const std::string& name, const std::string& value) {
  return Bytes(1, name) + Bytes(2, value);
}
std::string SampleMsg(double value, int64_t ts) {
  return Fixed64(1, Bits(value)) + Int(2, static_cast<uint64_t>(ts));
}

using wire::Compress;

TimeSeries Series(Labels labels, std::vector<Sample> samples) {
  TimeSeries ts;
  ts.labels = std::move(labels);
  ts.samples = std::move(samples);
  return ts;
}

// ---- remote_write ----

TEST(RemoteCodecTest, WriteRequestRoundTrip) {
  WriteRequest req;
  req.series.push_back(
      Series(Labels{{"__name__", "node_cpu_seconds_total"},
                    {"cpu", "0"},
                    {"mode", "idle"},
                    {"region", "gansu"},
                    {"dc", "兰州-1"}},
             {{1700000000000, 12.5},
              {1700000015000, std::numeric_limits<double>::quiet_NaN()},
              {1700000030000, StaleNaN()},
              {1700000045000, FromBits(0x7ff8000000000abcULL)},  // NaN with a payload
              {1700000060000, -0.0},
              {1700000075000, std::numeric_limits<double>::infinity()},
              {std::numeric_limits<int64_t>::min(), 1},
              {std::numeric_limits<int64_t>::max(), -1}}));
  req.series.push_back(Series(Labels{{"__name__", "up"}, {"empty", ""}}, {}));
  req.series.push_back(Series(Labels{{"__name__", std::string("nul\0byte", 8)}}, {{-5, 0}}));
  req.metadata.push_back({MetricType::kCounter, "node_cpu_seconds_total", "CPU time.", "seconds"});
  req.metadata.push_back({MetricType::kStateset, "x", "", ""});
  req.metadata.push_back({MetricType::kUnknown, "", "", ""});

  auto decoded = DecodeWriteRequest(EncodeWriteRequest(req), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), req.series.size());
  for (size_t i = 0; i < req.series.size(); ++i) {
    EXPECT_EQ(decoded->series[i].labels, req.series[i].labels) << i;
    EXPECT_EQ(decoded->series[i].samples, req.series[i].samples) << i;  // bitwise
  }
  const auto& samples = decoded->series[0].samples;
  EXPECT_TRUE(IsStaleNaN(samples[2].value));
  EXPECT_FALSE(IsStaleNaN(samples[1].value));
  EXPECT_EQ(Bits(samples[3].value), 0x7ff8000000000abcULL);
  EXPECT_TRUE(std::signbit(samples[4].value));
  ASSERT_EQ(decoded->metadata.size(), 3u);
  EXPECT_EQ(decoded->metadata[0].type, MetricType::kCounter);
  EXPECT_EQ(decoded->metadata[0].metric_family_name, "node_cpu_seconds_total");
  EXPECT_EQ(decoded->metadata[0].help, "CPU time.");
  EXPECT_EQ(decoded->metadata[0].unit, "seconds");
  EXPECT_EQ(decoded->metadata[1].type, MetricType::kStateset);
  EXPECT_EQ(decoded->metadata[2].type, MetricType::kUnknown);
}

// A body written byte by byte from the prompb wire format, as another sender would produce it.
TEST(RemoteCodecTest, DecodesHandBuiltWriteRequest) {
  std::string series =
      Bytes(1, LabelMsg("__name__", "node_load1")) + Bytes(2, SampleMsg(0.75, 1700000000123));
  std::string raw = Bytes(1, series);

  auto decoded = DecodeWriteRequest(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), 1u);
  EXPECT_EQ(decoded->series[0].labels, (Labels{{"__name__", "node_load1"}}));
  ASSERT_EQ(decoded->series[0].samples.size(), 1u);
  EXPECT_EQ(decoded->series[0].samples[0].timestamp_ms, 1700000000123);
  EXPECT_EQ(decoded->series[0].samples[0].value, 0.75);
  EXPECT_TRUE(decoded->metadata.empty());

  // The same message in a snappy block written by hand too: length varint, then one literal
  // element (tag byte (len-1)<<2 for literals up to 60 bytes).
  ASSERT_LE(raw.size(), 60u);
  std::string block = Varint(raw.size()) + static_cast<char>((raw.size() - 1) << 2) + raw;
  auto again = DecodeWriteRequest(block, kLimit);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->series[0].labels, decoded->series[0].labels);
  EXPECT_EQ(again->series[0].samples, decoded->series[0].samples);
}

TEST(RemoteCodecTest, SortsLabelsAndSkipsUnknownFields) {
  std::string exemplar = Bytes(1, LabelMsg("trace_id", "abc")) + Fixed64(2, Bits(1.0)) + Int(3, 7);
  std::string series = Bytes(1, LabelMsg("zone", "b")) + Bytes(1, LabelMsg("__name__", "m")) +
                       Bytes(1, LabelMsg("app", "a")) + Bytes(2, SampleMsg(1, 1)) +
                       Bytes(3, exemplar) +
                       Bytes(4, Int(1, 3) + Fixed64(3, Bits(2.0)));  // a native histogram
  std::string metadata = Int(1, 2) + Bytes(2, "m") + Bytes(4, "help") + Bytes(5, "") +
                         Int(9, 1);  // an unknown metadata field
  std::string raw = Bytes(1, series) + Bytes(2, "cortex source") + Bytes(3, metadata) +
                    Int(15, 99);  // unknown top-level field

  auto decoded = DecodeWriteRequest(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), 1u);
  const auto& items = decoded->series[0].labels.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].name, "__name__");
  EXPECT_EQ(items[1].name, "app");
  EXPECT_EQ(items[2].name, "zone");
  EXPECT_EQ(decoded->series[0].samples, (std::vector<Sample>{{1, 1.0}}));
  ASSERT_EQ(decoded->metadata.size(), 1u);
  EXPECT_EQ(decoded->metadata[0].type, MetricType::kGauge);
  EXPECT_EQ(decoded->metadata[0].help, "help");
}

TEST(RemoteCodecTest, UnknownMetadataTypeBecomesUnknown) {
  std::string raw = Bytes(3, Int(1, 42) + Bytes(2, "m"));
  auto decoded = DecodeWriteRequest(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->metadata.size(), 1u);
  EXPECT_EQ(decoded->metadata[0].type, MetricType::kUnknown);
}

// Label validity (UTF-8 included) is checked by the caller per series, not by failing the whole
// request in the parser.
TEST(RemoteCodecTest, InvalidUtf8LabelValueIsPassedThrough) {
  std::string bad = "\xff\xfe";
  std::string raw = Bytes(1, Bytes(1, LabelMsg("__name__", "m")) + Bytes(1, LabelMsg("a", bad)));
  auto decoded = DecodeWriteRequest(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->series[0].labels.Get("a"), bad);
}

TEST(RemoteCodecTest, EmptyBodies) {
  // An empty request serializes to zero protobuf bytes; snappy of zero bytes is "\0".
  std::string empty_request = EncodeWriteRequest(WriteRequest{});
  EXPECT_EQ(empty_request, std::string(1, '\0'));
  auto decoded = DecodeWriteRequest(empty_request, kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->series.empty());
  EXPECT_TRUE(decoded->metadata.empty());

  // A zero-byte body is not snappy at all (Prometheus rejects it too).
  auto none = DecodeWriteRequest("", kLimit);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(), "snappy: empty body");
}

std::string BigWriteBody() {
  WriteRequest req;
  for (int i = 0; i < 200; ++i) {
    req.series.push_back(Series(Labels{{"__name__", "metric_" + std::to_string(i)}, {"i", "x"}},
                                {{i, i * 1.5}, {i + 1, i * 2.5}}));
  }
  return EncodeWriteRequest(req);
}

TEST(RemoteCodecTest, TruncatedSnappyIsRejected) {
  std::string body = BigWriteBody();
  for (size_t len : {size_t{1}, size_t{2}, body.size() / 2, body.size() - 1}) {
    auto decoded = DecodeWriteRequest(std::string_view(body).substr(0, len), kLimit);
    ASSERT_FALSE(decoded.ok()) << len;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << len;
    EXPECT_EQ(decoded.status().message(), "snappy: corrupt input") << len;
  }
}

TEST(RemoteCodecTest, CorruptSnappyIsRejected) {
  const std::string cases[] = {
      std::string("\x05\x01\x01", 3),  // copy (offset 1) before any output exists
      std::string("\x02\x08"
                  "abc",
                  5),  // 3-byte literal, 2 bytes declared
      std::string("\x04\x08"
                  "abc",
                  5),  // 3 bytes produced, 4 declared
      std::string("\x00\x00"
                  "a",
                  3),                              // data after an empty block
      std::string("\xff\xff\xff\xff\xff\xff", 6),  // unterminated length varint
  };
  for (const std::string& body : cases) {
    auto decoded = DecodeWriteRequest(body, kLimit);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(decoded.status().message(), "snappy: corrupt input");
  }
}

// Every single-byte corruption must end in a clean result or a clean error (run under ASan).
TEST(RemoteCodecTest, FlippedBytesNeverCrash) {
  std::string body = BigWriteBody();
  for (size_t i = 0; i < body.size(); i += 7) {
    std::string bad = body;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto decoded = DecodeWriteRequest(bad, kLimit);
    if (!decoded.ok()) {
      EXPECT_TRUE(decoded.status().code() == StatusCode::kInvalidArgument ||
                  decoded.status().code() == StatusCode::kResourceExhausted)
          << decoded.status().ToString();
    }
  }
}

TEST(RemoteCodecTest, ValidSnappyOfGarbageProtobufIsRejected) {
  // Field 1, length-delimited, declaring far more bytes than follow.
  std::string garbage = Tag(1, 2) + Varint(1000) + "abc";
  auto w = DecodeWriteRequest(Compress(garbage), kLimit);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.status().message(), "protobuf: cannot parse WriteRequest");

  auto r = DecodeReadRequest(Compress(garbage), kLimit);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "protobuf: cannot parse ReadRequest");

  auto rr = DecodeReadResponse(Compress("\xff"), kLimit);
  ASSERT_FALSE(rr.ok());
  EXPECT_EQ(rr.status().message(), "protobuf: cannot parse ReadResponse");

  // Protobuf semantics, not ours: a known field with the wrong wire type (a varint sample value)
  // is kept as an unknown field, so the sample reads as 0.0 instead of failing the request.
  std::string wrong_type = Bytes(1, Bytes(2, Int(1, 5) + Int(2, 9)));
  auto wt = DecodeWriteRequest(Compress(wrong_type), kLimit);
  ASSERT_TRUE(wt.ok()) << wt.status().ToString();
  EXPECT_EQ(wt->series[0].samples, (std::vector<Sample>{{9, 0.0}}));
}

TEST(RemoteCodecTest, SnappyBombIsRefusedBeforeDecompressing) {
  // Header declares 4 GiB - 1; the rest is junk that is never looked at.
  std::string bomb = Varint(0xffffffffULL) + std::string("\x00\x01\x02", 3);
  auto decoded = DecodeWriteRequest(bomb, kLimit);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(decoded.status().message(),
            "decompressed body of 4294967295 bytes exceeds the limit of " + std::to_string(kLimit) +
                " bytes");

  // A real one: 8 MiB of zeros compresses to a few hundred KB.
  std::string zeros(8 << 20, '\0');
  std::string body = Compress(zeros);
  ASSERT_LT(body.size(), size_t{1} << 20);
  auto real = DecodeReadRequest(body, 1 << 20);
  ASSERT_FALSE(real.ok());
  EXPECT_EQ(real.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(real.status().message(),
            "decompressed body of 8388608 bytes exceeds the limit of 1048576 bytes");
}

TEST(RemoteCodecTest, LimitIsInclusive) {
  std::string body = BigWriteBody();
  size_t decoded_size = 0;
  ASSERT_TRUE(snappy::GetUncompressedLength(body.data(), body.size(), &decoded_size));
  EXPECT_TRUE(DecodeWriteRequest(body, decoded_size).ok());
  auto over = DecodeWriteRequest(body, decoded_size - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
}

// ---- remote_read ----

TEST(RemoteCodecTest, ReadRequestRoundTrip) {
  ReadRequest req;
  ReadQuery q;
  q.start_ms = 1700000000000;
  q.end_ms = 1700003600000;
  q.matchers = {{LabelMatcher::Type::kEqual, "__name__", "node_cpu_seconds_total"},
                {LabelMatcher::Type::kNotEqual, "mode", "idle"},
                {LabelMatcher::Type::kRegexMatch, "region", "gansu|ningxia"},
                {LabelMatcher::Type::kRegexNoMatch, "dc", ".*-test"},
                {LabelMatcher::Type::kEqual, "empty", ""}};
  q.has_hints = true;
  q.hints.step_ms = 60000;
  q.hints.func = "rate";
  q.hints.start_ms = 1699999700000;
  q.hints.end_ms = 1700003600000;
  q.hints.grouping = {"region", "dc"};
  q.hints.by = true;
  q.hints.range_ms = 300000;
  req.queries.push_back(q);
  ReadQuery no_hints;
  no_hints.start_ms = -10;
  no_hints.end_ms = 10;
  no_hints.matchers = {{LabelMatcher::Type::kEqual, "__name__", "up"}};
  req.queries.push_back(no_hints);

  for (bool streamed : {false, true}) {
    req.accepts_streamed_chunks = streamed;
    auto decoded = DecodeReadRequest(EncodeReadRequest(req), kLimit);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->accepts_streamed_chunks, streamed);
    ASSERT_EQ(decoded->queries.size(), 2u);
    const ReadQuery& d = decoded->queries[0];
    EXPECT_EQ(d.start_ms, q.start_ms);
    EXPECT_EQ(d.end_ms, q.end_ms);
    ASSERT_EQ(d.matchers.size(), q.matchers.size());
    for (size_t i = 0; i < q.matchers.size(); ++i) {
      EXPECT_EQ(d.matchers[i].type, q.matchers[i].type) << i;
      EXPECT_EQ(d.matchers[i].name, q.matchers[i].name) << i;
      EXPECT_EQ(d.matchers[i].value, q.matchers[i].value) << i;
    }
    ASSERT_TRUE(d.has_hints);
    EXPECT_EQ(d.hints.step_ms, 60000);
    EXPECT_EQ(d.hints.func, "rate");
    EXPECT_EQ(d.hints.start_ms, q.hints.start_ms);
    EXPECT_EQ(d.hints.end_ms, q.hints.end_ms);
    EXPECT_EQ(d.hints.grouping, q.hints.grouping);
    EXPECT_TRUE(d.hints.by);
    EXPECT_EQ(d.hints.range_ms, 300000);
    const ReadQuery& d2 = decoded->queries[1];
    EXPECT_FALSE(d2.has_hints);
    EXPECT_EQ(d2.start_ms, -10);
    EXPECT_EQ(d2.hints.func, "");
  }
}

// As Prometheus sends it: one query, hints, and accepted types [STREAMED_XOR_CHUNKS, SAMPLES].
TEST(RemoteCodecTest, DecodesHandBuiltReadRequest) {
  std::string matcher = Int(1, 2) + Bytes(2, "job") + Bytes(3, "node.*");
  std::string hints = Int(1, 15000) + Bytes(2, "max_over_time") + Int(3, 100) + Int(4, 200) +
                      Bytes(5, "dc") + Int(6, 0) + Int(7, 60000);
  std::string query = Int(1, 100) + Int(2, 200) + Bytes(3, matcher) + Bytes(4, hints);
  // Packed repeated enum, as proto3 encoders write it.
  std::string raw = Bytes(1, query) + Bytes(2, Varint(1) + Varint(0));

  auto decoded = DecodeReadRequest(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->accepts_streamed_chunks);
  ASSERT_EQ(decoded->queries.size(), 1u);
  const ReadQuery& q = decoded->queries[0];
  EXPECT_EQ(q.start_ms, 100);
  EXPECT_EQ(q.end_ms, 200);
  ASSERT_EQ(q.matchers.size(), 1u);
  EXPECT_EQ(q.matchers[0].type, LabelMatcher::Type::kRegexMatch);
  EXPECT_EQ(q.matchers[0].name, "job");
  EXPECT_EQ(q.matchers[0].value, "node.*");
  ASSERT_TRUE(q.has_hints);
  EXPECT_EQ(q.hints.step_ms, 15000);
  EXPECT_EQ(q.hints.func, "max_over_time");
  EXPECT_EQ(q.hints.start_ms, 100);
  EXPECT_EQ(q.hints.end_ms, 200);
  EXPECT_EQ(q.hints.grouping, (std::vector<std::string>{"dc"}));
  EXPECT_FALSE(q.hints.by);
  EXPECT_EQ(q.hints.range_ms, 60000);

  // No accepted types at all means SAMPLES.
  auto plain = DecodeReadRequest(Compress(Bytes(1, Int(1, 5))), kLimit);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->accepts_streamed_chunks);
  EXPECT_FALSE(plain->queries[0].has_hints);
}

TEST(RemoteCodecTest, UnknownMatcherTypeIsRejected) {
  std::string raw = Bytes(1, Bytes(3, Int(1, 4) + Bytes(2, "a") + Bytes(3, "b")));
  auto decoded = DecodeReadRequest(Compress(raw), kLimit);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decoded.status().message(), "protobuf: unknown label matcher type 4");
}

TEST(RemoteCodecTest, ReadResponseRoundTrip) {
  std::vector<std::vector<TimeSeries>> results(3);
  results[0].push_back(
      Series(Labels{{"__name__", "a"}, {"dc", "x"}}, {{1, 1.0}, {2, StaleNaN()}, {3, 3.0}}));
  results[0].push_back(Series(Labels{{"__name__", "b"}}, {}));
  // results[1] stays empty: a query that matched nothing keeps its slot.
  results[2].push_back(Series(Labels{{"__name__", "c"}}, {{-1, -1.0}}));

  auto decoded = DecodeReadResponse(EncodeReadResponse(results), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 3u);
  for (size_t r = 0; r < results.size(); ++r) {
    ASSERT_EQ((*decoded)[r].size(), results[r].size()) << r;
    for (size_t i = 0; i < results[r].size(); ++i) {
      EXPECT_EQ((*decoded)[r][i].labels, results[r][i].labels);
      EXPECT_EQ((*decoded)[r][i].samples, results[r][i].samples);
    }
  }
  EXPECT_TRUE(IsStaleNaN((*decoded)[0][0].samples[1].value));

  auto empty = DecodeReadResponse(EncodeReadResponse({}), kLimit);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RemoteCodecTest, DecodesHandBuiltReadResponse) {
  std::string series = Bytes(1, LabelMsg("__name__", "up")) + Bytes(2, SampleMsg(1, 42));
  std::string raw = Bytes(1, Bytes(1, series)) + Bytes(1, "");  // second result is empty
  auto decoded = DecodeReadResponse(Compress(raw), kLimit);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 2u);
  ASSERT_EQ((*decoded)[0].size(), 1u);
  EXPECT_EQ((*decoded)[0][0].labels, (Labels{{"__name__", "up"}}));
  EXPECT_EQ((*decoded)[0][0].samples, (std::vector<Sample>{{42, 1.0}}));
  EXPECT_TRUE((*decoded)[1].empty());
}

}  // namespace
}  // namespace suanli::remote
