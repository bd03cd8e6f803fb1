#include "aggregator/ingest/write_handler.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <snappy.h>

#include <filesystem>

#include "core/remote_codec.h"

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

}  // namespace
}  // namespace suanli::aggregator
