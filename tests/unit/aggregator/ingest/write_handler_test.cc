#include "aggregator/ingest/write_handler.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <snappy.h>

#include <filesystem>

#include "core/remote_codec.h"
#include "tests/unit/core/protobuf_wire.h"

namespace suanli::aggregator {
namespace {

class WriteHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("write-handler-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::RocksDbStoreOptions opts;
    opts.path = dir_.string();
    auto store = storage::OpenRocksDbStore(opts);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    handler_ = std::make_unique<WriteHandler>(*store_, model_, registry_);
  }
  void TearDown() override {
    handler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  static HttpRequest Request(std::string body) {
    HttpRequest r;
    r.method = "POST";
    r.path = "/api/v1/write";
    r.headers["content-type"] = "application/x-protobuf";
    r.headers["content-encoding"] = "snappy";
    r.body = std::move(body);
    return r;
  }

  static std::string Body(std::vector<std::vector<Label>> series, int64_t ts) {
    remote::WriteRequest req;
    for (auto& l : series) req.series.push_back({Labels(std::move(l)), {{ts, 42.5}}});
    return remote::EncodeWriteRequest(req);
  }

  double Rejected(const std::string& reason) {
    for (const auto& f : registry_.Collect()) {
      if (f.name != "suanli_aggregator_requests_rejected_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) {
          if (l.name == "reason" && l.value == reason) return m.counter.value;
        }
      }
    }
    ADD_FAILURE() << "no counter for reason " << reason;
    return -1;
  }

  double Unsupported(const std::string& type) {
    for (const auto& f : registry_.Collect()) {
      if (f.name != "suanli_aggregator_samples_unsupported_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) {
          if (l.name == "type" && l.value == type) return m.counter.value;
        }
      }
    }
    ADD_FAILURE() << "no counter for type " << type;
    return -1;
  }

  size_t StoredSamples() {
    auto r =
        store_->Select({{storage::MatcherSpec::kRegex, "__name__", ".+"}}, INT64_MIN, INT64_MAX);
    EXPECT_TRUE(r.ok()) << r.status().message();
    size_t n = 0;
    for (const auto& s : *r) n += s.samples.size();
    return n;
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Store> store_;
  capacity::CapacityModel model_{std::chrono::minutes(5)};
  prometheus::Registry registry_;
  std::unique_ptr<WriteHandler> handler_;
};

TEST_F(WriteHandlerTest, AcceptsAndStores) {
  HttpResponse r = handler_->Handle(
      Request(Body({{{"__name__", "node_load1"}, {"dc", "d1"}, {"region", "r1"}}}, 1000)));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(StoredSamples(), 1u);
}

TEST_F(WriteHandlerTest, RejectsBadHeadersAndBodiesWithoutStoringAnything) {
  HttpRequest wrong_type = Request(Body({{{"__name__", "up"}}}, 1));
  wrong_type.headers["content-type"] = "application/json";
  HttpResponse r = handler_->Handle(wrong_type);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Content-Type must be application/x-protobuf"), std::string::npos);

  HttpRequest wrong_enc = Request(Body({{{"__name__", "up"}}}, 1));
  wrong_enc.headers["content-encoding"] = "gzip";
  EXPECT_EQ(handler_->Handle(wrong_enc).status, 400);

  EXPECT_EQ(handler_->Handle(Request("not snappy at all")).status, 400);
  std::string garbage_pb;
  snappy::Compress("\xff\xff\xff\xff", 4, &garbage_pb);
  EXPECT_EQ(handler_->Handle(Request(garbage_pb)).status, 400);

  // One good series and one without a metric name: the whole request is refused.
  r = handler_->Handle(Request(Body({{{"__name__", "up"}}, {{"job", "x"}}}, 1)));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("timeseries[1]: series has no metric name"), std::string::npos) << r.body;

  // A snappy header declaring more than the decoded-size limit.
  handler_->set_limits({.max_body_bytes = 1024, .max_decoded_bytes = 1024});
  std::string big(4096, 'a');
  std::string bomb;
  snappy::Compress(big.data(), big.size(), &bomb);
  EXPECT_EQ(handler_->Handle(Request(bomb)).status, 413);

  EXPECT_EQ(StoredSamples(), 0u);
  auto families = registry_.Collect();
  double rejected = 0;
  for (const auto& f : families) {
    if (f.name != "suanli_aggregator_requests_rejected_total") continue;
    for (const auto& m : f.metric) rejected += m.counter.value;
  }
  EXPECT_EQ(rejected, 6);
}

// ---- label sets as sent on the wire (any order, duplicates): not through Labels ----

using wire::Compress;
using wire::Varint;
std::string Len(int field, const std::string& payload) { return wire::Bytes(field, payload); }
// One TimeSeries with labels in the given order and one sample (value 1.0) at `ts`.
std::string WireSeries(const std::vector<std::pair<std::string, std::string>>& labels, int64_t ts) {
  std::string series;
  for (const auto& [name, value] : labels) series += Len(1, Len(1, name) + Len(2, value));
  std::string sample = std::string("\x09\x00\x00\x00\x00\x00\x00\xf0\x3f", 9) + "\x10" +
                       Varint(static_cast<uint64_t>(ts));
  return Len(1, series + Len(2, sample));
}
TEST_F(WriteHandlerTest, LabelsInAnyOrderAreOneSeries) {
  EXPECT_EQ(handler_
                ->Handle(Request(
                    Compress(WireSeries({{"job", "node"}, {"__name__", "m"}, {"dc", "d1"}}, 1000))))
                .status,
            204);
  EXPECT_EQ(handler_
                ->Handle(Request(
                    Compress(WireSeries({{"__name__", "m"}, {"dc", "d1"}, {"job", "node"}}, 2000))))
                .status,
            204);
  auto r = store_->Select({{storage::MatcherSpec::kEqual, "__name__", "m"}}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].labels, (Labels{{"__name__", "m"}, {"dc", "d1"}, {"job", "node"}}));
  EXPECT_EQ((*r)[0].samples, (std::vector<Sample>{{1000, 1.0}, {2000, 1.0}}));
}

// A known series is not validated again, but only when it comes byte for byte as stored: the
// same labels plus a duplicate or an empty-valued label with a bad name are still refused.
TEST_F(WriteHandlerTest, KnownSeriesWithAFaultAddedIsStillRefused) {
  ASSERT_EQ(
      handler_->Handle(Request(Compress(WireSeries({{"__name__", "m"}, {"a", "x"}}, 1)))).status,
      204);
  HttpResponse twice = handler_->Handle(
      Request(Compress(WireSeries({{"__name__", "m"}, {"a", "x"}, {"a", "x"}}, 2))));
  EXPECT_EQ(twice.status, 400);
  EXPECT_NE(twice.body.find("timeseries[0]"), std::string::npos) << twice.body;
  EXPECT_NE(twice.body.find("twice"), std::string::npos) << twice.body;
  HttpResponse bad_name = handler_->Handle(
      Request(Compress(WireSeries({{"__name__", "m"}, {"a", "x"}, {"bad-name", ""}}, 3))));
  EXPECT_EQ(bad_name.status, 400);
  EXPECT_NE(bad_name.body.find("invalid label name"), std::string::npos) << bad_name.body;
  EXPECT_EQ(StoredSamples(), 1u);
}

TEST_F(WriteHandlerTest, InvalidNewSeriesRefusesTheWholeRequestNamingIt) {
  const std::string raw =
      WireSeries({{"__name__", "good"}}, 1) + WireSeries({{"__name__", "m"}, {"v", "\xff\xfe"}}, 1);
  HttpResponse r = handler_->Handle(Request(Compress(raw)));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("timeseries[1]"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("UTF-8"), std::string::npos) << r.body;
  EXPECT_EQ(StoredSamples(), 0u);
}

TEST_F(WriteHandlerTest, SeriesWithoutSamplesAreValidatedToo) {
  const std::string no_samples = Len(1, Len(1, Len(1, "__name__") + Len(2, "0bad")));
  HttpResponse r =
      handler_->Handle(Request(Compress(WireSeries({{"__name__", "ok"}}, 1) + no_samples)));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("timeseries[1]: invalid metric name"), std::string::npos) << r.body;
  EXPECT_EQ(StoredSamples(), 0u);
}

// With only the length limits set (the defaults), a label at the limit passes and one byte
// more refuses the whole request, naming the series and nothing stored.
TEST_F(WriteHandlerTest, LabelLengthLimitsAreInclusiveAndNameTheSeries) {
  handler_->set_limits({.max_label_name_length = 8, .max_label_value_length = 5});
  EXPECT_EQ(
      handler_->Handle(Request(Body({{{"__name__", "m_ok1"}, {"abcdefgh", "12345"}}}, 1))).status,
      204);
  HttpResponse value = handler_->Handle(
      Request(Body({{{"__name__", "m_ok2"}}, {{"__name__", "m_ok3"}, {"job", "123456"}}}, 2)));
  EXPECT_EQ(value.status, 400);
  EXPECT_NE(value.body.find("timeseries[1]: label job: limit max_label_value_length (5)"),
            std::string::npos)
      << value.body;
  HttpResponse name = handler_->Handle(
      Request(Body({{{"__name__", "m_ok4"}, {"abcdefghi", "x"}}, {{"__name__", "m_ok5"}}}, 3)));
  EXPECT_EQ(name.status, 400);
  EXPECT_NE(name.body.find("timeseries[0]: limit max_label_name_length (8)"), std::string::npos)
      << name.body;
  EXPECT_EQ(StoredSamples(), 1u);
}

// A sample past now + storage.future_grace (a sender's clock gone wrong) refuses the whole
// request with 400, naming the series, the time and the limit; counted, nothing stored.
TEST_F(WriteHandlerTest, SamplesTooFarInTheFutureRefuseTheRequest) {
  FakeClock clock(1'700'000'000'000);  // 2023-11-14T22:13:20Z
  handler_->set_future_grace(std::chrono::minutes(10), clock);
  const int64_t now = clock.NowUnixMs(), grace = 10 * 60 * 1000;
  const int64_t year = int64_t{365} * 24 * 3600 * 1000;
  remote::WriteRequest req;
  req.series.push_back({Labels{{"__name__", "a"}, {"dc", "d1"}}, {{now, 1}}});
  req.series.push_back({Labels{{"__name__", "b"}, {"dc", "d1"}}, {{now, 1}, {now + year, 2}}});
  HttpResponse r = handler_->Handle(Request(remote::EncodeWriteRequest(req)));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "timeseries[1]: sample for series b{dc=\"d1\"} at 1731536000000 "
            "(2024-11-13T22:13:20Z) is 8760h after now; storage.future_grace is 10m\n");
  EXPECT_EQ(StoredSamples(), 0u);
  EXPECT_EQ(Rejected("too_far_in_future"), 1);

  // The limit is inclusive, and it moves with the clock.
  EXPECT_EQ(handler_->Handle(Request(Body({{{"__name__", "c"}}}, now + grace))).status, 204);
  EXPECT_EQ(handler_->Handle(Request(Body({{{"__name__", "d"}}}, now + grace + 1))).status, 400);
  EXPECT_EQ(Rejected("too_far_in_future"), 2);
  clock.AdvanceMs(1);
  EXPECT_EQ(handler_->Handle(Request(Body({{{"__name__", "d"}}}, now + grace + 1))).status, 204);
  EXPECT_EQ(StoredSamples(), 2u);

  // 0 turns the check off.
  handler_->set_future_grace(std::chrono::milliseconds(0), clock);
  EXPECT_EQ(handler_->Handle(Request(Body({{{"__name__", "e"}}}, now + year))).status, 204);
  EXPECT_EQ(Rejected("too_far_in_future"), 2);
}

// Native histograms (TimeSeries field 4) and exemplars (field 3) are not stored: counted by
// type; the float samples of the same request are stored and the request is accepted.
TEST_F(WriteHandlerTest, NativeHistogramsAndExemplarsAreCountedAndTheFloatsStored) {
  // prompb.Histogram: count_int 5, sum 12.5, schema 3 (sint32), one positive span of two
  // buckets with deltas 2, -1 (packed sint64), timestamp.
  const std::string histogram = wire::Int(1, 5) + wire::Fixed64(3, 0x4029000000000000) +
                                wire::Int(4, 6) + Len(11, wire::Int(1, 0) + wire::Int(2, 2)) +
                                Len(12, Varint(4) + Varint(1)) + wire::Int(15, 1500);
  const std::string exemplar = Len(1, Len(1, "trace_id") + Len(2, "abc")) +
                               wire::Fixed64(2, 0x3ff0000000000000) + wire::Int(3, 1000);
  std::string body = WireSeries({{"__name__", "floats"}, {"dc", "d1"}}, 1000);
  body += Len(1, Len(1, Len(1, "__name__") + Len(2, "http_seconds")) + Len(4, histogram));
  // A series with a float sample and an exemplar: TimeSeries bytes with field 3 appended.
  std::string with_exemplar = WireSeries({{"__name__", "up"}, {"dc", "d1"}}, 1000);
  with_exemplar.erase(0, 2);  // the outer tag and one-byte length of the series
  body += Len(1, with_exemplar + Len(3, exemplar));
  HttpResponse r = handler_->Handle(Request(Compress(body)));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(StoredSamples(), 2u);
  EXPECT_EQ(Unsupported("native_histogram"), 1);
  EXPECT_EQ(Unsupported("exemplar"), 1);
  // Counted again on the next request (only the warning is once per process).
  EXPECT_EQ(handler_->Handle(Request(Compress(body))).status, 204);
  EXPECT_EQ(Unsupported("native_histogram"), 2);
  EXPECT_EQ(Unsupported("exemplar"), 2);
  EXPECT_EQ(StoredSamples(), 2u);  // the same float samples: duplicates
}

}  // namespace
}  // namespace suanli::aggregator
