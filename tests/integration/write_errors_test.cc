// remote_write requests the aggregator must refuse, each with the right status and a reason, and
// without storing anything of them; after all of them it still accepts a valid write.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <snappy.h>

#include <algorithm>
#include <csignal>
#include <random>
#include <string>

#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kMaxBody = 1048576;
constexpr int64_t kMaxDecoded = 2097152;

std::map<std::string, std::string> WriteHeaders() {
  return {{"Content-Type", remote::kWriteContentType},
          {"Content-Encoding", remote::kContentEncoding},
          {remote::kWriteVersionHeader, remote::kWriteVersion}};
}

// `series` series of one sample each, named write_errors_test, distinguished by a `n` label.
std::string ValidBody(int series, int64_t ts_ms, const std::string& job = "ok") {
  remote::WriteRequest req;
  for (int i = 0; i < series; ++i) {
    TimeSeries ts;
    ts.labels = Labels{{"__name__", "write_errors_test"}, {"job", job}, {"n", std::to_string(i)}};
    ts.samples.push_back({ts_ms, 1.5 * i});
    req.series.push_back(std::move(ts));
  }
  return remote::EncodeWriteRequest(req);
}

class WriteErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string config = tmp_.Sub("aggregator.yml");
    ASSERT_TRUE(WriteFile(config, "limits:\n  max_body_bytes: " + std::to_string(kMaxBody) +
                                      "\n  max_decoded_bytes: " + std::to_string(kMaxDecoded) +
                                      "\n")
                    .ok());
    auto agg = StartAggregator(tmp_.path(), {"--config.file=" + config});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();
  }

  HttpClientResponse Post(const std::string& body, const std::map<std::string, std::string>& h) {
    HttpClient client;
    auto r = client.Post(aggregator_.Url("/api/v1/write"), body, h);
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << aggregator_.process->LogTail();
    return r.ok() ? *r : HttpClientResponse{};
  }

  MetricsMap Metrics() {
    auto m = ScrapeMetrics(aggregator_.Url("/metrics"));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : MetricsMap{};
  }

  double Rejected(const MetricsMap& m, const std::string& reason) {
    return FindSample(m, "suanli_aggregator_requests_rejected_total", {{"reason", reason}})
        .value_or(-1);
  }

  TempDir tmp_{"suanli-it-write-errors"};
  Daemon aggregator_;
};

TEST_F(WriteErrorsTest, RefusesBadRequestsStoresNothingOfThemAndStaysHealthy) {
  const int64_t now_ms = 1'700'000'000'000;
  MetricsMap before = Metrics();
  const double series_before = FindSample(before, "suanli_aggregator_series").value_or(-1);
  const double ingested_before =
      FindSample(before, "suanli_aggregator_samples_ingested_total").value_or(-1);
  // The capacity recorder runs (capacity.record), but no write here carries a node's figures:
  // no dc in the model, so it records nothing and the counts below are the writes' alone.
  EXPECT_EQ(series_before, 0);
  EXPECT_EQ(ingested_before, 0);

  const std::string good = ValidBody(3, now_ms, "refused");
  // Each refusal is counted, under its reason, by the time it is answered.
  std::map<std::string, double> rejected;  // reason -> count last seen
  for (const char* reason :
       {"content_type", "content_encoding", "malformed", "invalid_labels", "too_large"}) {
    rejected[reason] = Rejected(before, reason);
    EXPECT_EQ(rejected[reason], 0) << "reason=" << reason << " not exported as 0 up front";
  }
  auto Counted = [&](const std::string& reason) {
    double now = Rejected(Metrics(), reason);
    EXPECT_EQ(now, rejected[reason] + 1)
        << "suanli_aggregator_requests_rejected_total{reason=\"" << reason << "\"}";
    rejected[reason] = now;
  };

  {
    SCOPED_TRACE("wrong Content-Type");
    auto h = WriteHeaders();
    h["Content-Type"] = "application/json";
    HttpClientResponse r = Post(good, h);
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("Content-Type"));
    EXPECT_EQ(std::count(r.body.begin(), r.body.end(), '\n'), 1) << "one-line reason: " << r.body;
    Counted("content_type");
  }
  {
    SCOPED_TRACE("missing Content-Type");
    auto h = WriteHeaders();
    h.erase("Content-Type");
    HttpClientResponse r = Post(good, h);
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("Content-Type"));
    Counted("content_type");
  }
  {
    SCOPED_TRACE("wrong Content-Encoding");
    auto h = WriteHeaders();
    h["Content-Encoding"] = "gzip";
    HttpClientResponse r = Post(good, h);
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("Content-Encoding"));
    Counted("content_encoding");
  }
  {
    SCOPED_TRACE("garbage instead of snappy");
    HttpClientResponse r =
        Post(std::string("\xff\xff\xff\xff\xff not snappy at all"), WriteHeaders());
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.body.empty());
    Counted("malformed");
  }
  {
    SCOPED_TRACE("truncated snappy of a valid request");
    HttpClientResponse r = Post(good.substr(0, good.size() / 2), WriteHeaders());
    EXPECT_EQ(r.status, 400);
    Counted("malformed");
  }
  {
    SCOPED_TRACE("valid snappy of garbage protobuf");
    // Field 1 (timeseries), length-delimited, claims 100 bytes and has 3.
    std::string garbage(
        "\x0a\x64"
        "abc",
        5);
    std::string body;
    snappy::Compress(garbage.data(), garbage.size(), &body);
    HttpClientResponse r = Post(body, WriteHeaders());
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.body.empty());
    Counted("malformed");
  }
  {
    SCOPED_TRACE("a series without __name__ (beside a valid one)");
    remote::WriteRequest req;
    TimeSeries named;
    named.labels = Labels{{"__name__", "write_errors_test"}, {"job", "refused"}, {"n", "x"}};
    named.samples.push_back({now_ms, 1});
    TimeSeries nameless;
    nameless.labels = Labels{{"job", "refused"}, {"n", "nameless"}};
    nameless.samples.push_back({now_ms, 2});
    req.series.push_back(named);
    req.series.push_back(nameless);
    HttpClientResponse r = Post(remote::EncodeWriteRequest(req), WriteHeaders());
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("timeseries[1]"));
    Counted("invalid_labels");
  }
  {
    SCOPED_TRACE("an invalid label name");
    remote::WriteRequest req;
    TimeSeries ts;
    ts.labels = Labels{{"__name__", "write_errors_test"}, {"bad-label", "x"}};
    ts.samples.push_back({now_ms, 3});
    req.series.push_back(ts);
    HttpClientResponse r = Post(remote::EncodeWriteRequest(req), WriteHeaders());
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("bad-label"));
    Counted("invalid_labels");
  }
  {
    SCOPED_TRACE("a valid request over limits.max_body_bytes");
    // Random label values: snappy cannot shrink them, so the body stays over the limit.
    std::mt19937_64 rng(42);
    const char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    remote::WriteRequest req;
    for (int i = 0; i < 1400; ++i) {
      std::string v(1000, 'x');
      for (char& c : v) c = kAlnum[rng() % (sizeof kAlnum - 1)];
      TimeSeries ts;
      ts.labels = Labels{{"__name__", "write_errors_test"}, {"job", "refused"}, {"blob", v}};
      ts.samples.push_back({now_ms, 4});
      req.series.push_back(std::move(ts));
    }
    std::string body = remote::EncodeWriteRequest(req);
    ASSERT_GT(body.size(), static_cast<size_t>(kMaxBody));
    HttpClientResponse r = Post(body, WriteHeaders());
    EXPECT_EQ(r.status, 413);
    Counted("too_large");
  }

  {
    SCOPED_TRACE("a small body that would decompress past limits.max_decoded_bytes");
    // snappy's header states the decoded size: 3 MiB of one byte compresses to ~150 KB.
    std::string bomb(3 << 20, 'a');
    std::string body;
    snappy::Compress(bomb.data(), bomb.size(), &body);
    ASSERT_LT(body.size(), static_cast<size_t>(kMaxBody));
    HttpClientResponse r = Post(body, WriteHeaders());
    EXPECT_EQ(r.status, 413);
    Counted("too_large");
  }

  // Nothing of the refused requests was stored or counted as ingested.
  MetricsMap after_rejects = Metrics();
  EXPECT_EQ(FindSample(after_rejects, "suanli_aggregator_series").value_or(-1), series_before);
  EXPECT_EQ(FindSample(after_rejects, "suanli_aggregator_samples_ingested_total").value_or(-1),
            ingested_before);
  EXPECT_TRUE(FindSamples(after_rejects, "suanli_dc_nodes").empty());

  // The server is still up and takes a valid write.
  auto healthy = HttpGet(aggregator_.Url("/-/healthy"));
  ASSERT_TRUE(healthy.ok()) << healthy.status().ToString();
  EXPECT_EQ(healthy->status, 200);
  HttpClientResponse ok = Post(ValidBody(5, now_ms), WriteHeaders());
  EXPECT_EQ(ok.status, 204) << ok.body;
  MetricsMap after_ok = Metrics();
  EXPECT_EQ(FindSample(after_ok, "suanli_aggregator_series").value_or(-1), series_before + 5);
  EXPECT_EQ(FindSample(after_ok, "suanli_aggregator_samples_ingested_total").value_or(-1),
            ingested_before + 5);
  for (const auto& [reason, count] : rejected) {
    EXPECT_EQ(Rejected(after_ok, reason), count) << "reason=" << reason;
  }
  auto ready = HttpGet(aggregator_.Url("/-/ready"));
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);

  // A retried valid request is idempotent: still 204, nothing new.
  HttpClientResponse again = Post(ValidBody(5, now_ms), WriteHeaders());
  EXPECT_EQ(again.status, 204) << again.body;
  EXPECT_EQ(FindSample(Metrics(), "suanli_aggregator_series").value_or(-1), series_before + 5);

  // A clean shutdown after all that.
  aggregator_.process->Signal(SIGTERM);
  auto exit = aggregator_.process->Wait(seconds(30));
  ASSERT_TRUE(exit.has_value()) << "aggregator did not stop on SIGTERM";
  EXPECT_TRUE(exit->ok()) << exit->ToString() << "\n" << aggregator_.process->LogTail();
}

}  // namespace
}  // namespace suanli::it
