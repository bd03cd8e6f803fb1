#include "agent/sender.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <snappy.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/http_server.h"
#include "core/remote_codec.h"

namespace suanli::agent {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using SteadyClock = std::chrono::steady_clock;

bool WaitFor(const std::function<bool()>& cond, milliseconds timeout = milliseconds(10000)) {
  auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return cond();
}

double Metric(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label) have[l.name] = l.value;
      if (have != labels) continue;
      return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return NAN;
}

// Sweep i as the agent encodes it: two series (a counter and a gauge) at 1000 * i, value i.
std::string SweepBody(int i) {
  remote::WriteRequest req;
  for (const char* name : {"test_total", "test_gauge"}) {
    TimeSeries ts;
    ts.labels = Labels{{"__name__", name}, {"instance", "n1"}};
    ts.samples.push_back({int64_t{1000} * i, static_cast<double>(i)});
    req.series.push_back(std::move(ts));
  }
  req.metadata.push_back({MetricType::kCounter, "test_total", "A counter.", ""});
  req.metadata.push_back({MetricType::kGauge, "test_gauge", "A gauge.", ""});
  return remote::EncodeWriteRequest(req);
}

// A remote_write receiver that records what it accepted and can be told to fail.
class FakeReceiver {
 public:
  explicit FakeReceiver(const std::string& listen = "127.0.0.1:0") {
    HttpServer::Options o;
    o.listen_address = listen;
    o.io_threads = 1;
    o.worker_threads = 2;
    server_ = std::make_unique<HttpServer>(o);
    server_->Route("POST", "/api/v1/write", [this](const HttpRequest& r) { return Handle(r); });
    Status st = server_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }

  std::string address() const { return server_->address(); }
  std::string url() const { return "http://" + address() + "/api/v1/write"; }

  // The next `n` requests get `status` (with Retry-After when given).
  void FailNext(int n, int status, const std::string& retry_after = "") {
    std::lock_guard lock(mu_);
    for (int i = 0; i < n; ++i) failures_.push_back({status, retry_after});
  }
  // Requests holding a sample of this value are refused with 400.
  void RejectValue(double v) {
    std::lock_guard lock(mu_);
    reject_value_ = v;
  }

  std::vector<remote::WriteRequest> accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  std::vector<SteadyClock::time_point> attempts() const {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  // Timestamps of `name` in the order they were accepted.
  std::vector<int64_t> Timestamps(const std::string& name) const {
    std::vector<int64_t> out;
    for (const auto& req : accepted()) {
      for (const auto& ts : req.series) {
        if (ts.labels.MetricName() != name) continue;
        for (const auto& s : ts.samples) out.push_back(s.timestamp_ms);
      }
    }
    return out;
  }

 private:
  HttpResponse Handle(const HttpRequest& r) {
    const auto arrived = SteadyClock::now();  // before decoding: closer to when it was sent
    auto req = remote::DecodeWriteRequest(r.body, 64 << 20);
    std::lock_guard lock(mu_);
    attempts_.push_back(arrived);
    if (!failures_.empty()) {
      auto [status, retry_after] = failures_.front();
      failures_.pop_front();
      HttpResponse resp = HttpResponse::Text(status, "try later\n");
      if (!retry_after.empty()) resp.headers["Retry-After"] = retry_after;
      return resp;
    }
    if (!req.ok()) return HttpResponse::Text(400, req.status().message());
    for (const auto& ts : req->series) {
      for (const auto& s : ts.samples) {
        if (s.value == reject_value_) return HttpResponse::Text(400, "sample refused\n");
      }
    }
    accepted_.push_back(std::move(req).value());
    HttpResponse ok;
    ok.status = 204;
    ok.content_type.clear();
    return ok;
  }

  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  std::deque<std::pair<int, std::string>> failures_;
  double reject_value_ = NAN;
  std::vector<remote::WriteRequest> accepted_;
  std::vector<SteadyClock::time_point> attempts_;
};

class SenderTest : public ::testing::Test {
 protected:
  RemoteWriteEndpoint Endpoint(const std::string& url, int64_t max_samples = 20) {
    RemoteWriteEndpoint e;
    e.url = url;
    e.timeout = milliseconds(2000);
    e.min_backoff = milliseconds(10);
    e.max_backoff = milliseconds(100);
    e.max_samples_per_send = max_samples;
    return e;
  }
  std::unique_ptr<Spool> MemorySpool(std::vector<std::string> urls) {
    SpoolOptions o;
    o.directory = "";
    return std::make_unique<Spool>(o, std::move(urls), clock_, registry_);
  }
  void Fill(Spool& spool, int from, int to) {
    for (int i = from; i < to; ++i) spool.Append(SweepBody(i), 2, 1000 * i, 1000 * i);
  }
  static std::vector<int64_t> Range(int from, int to) {
    std::vector<int64_t> out;
    for (int i = from; i < to; ++i) out.push_back(int64_t{1000} * i);
    return out;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
};

TEST(MergeRecordsTest, JoinsSeriesKeepsOrderAndMetadata) {
  std::vector<SpoolRecord> records;
  for (int i = 0; i < 3; ++i) {
    SpoolRecord r;
    r.seq = static_cast<uint64_t>(i);
    r.samples = 2;
    r.body = std::make_shared<const std::string>(SweepBody(i));
    records.push_back(r);
  }
  size_t series = 0;
  auto body = MergeRecords(records, &series);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(series, 2u);
  auto req = remote::DecodeWriteRequest(*body, 1 << 20);
  ASSERT_TRUE(req.ok());
  ASSERT_EQ(req->series.size(), 2u);
  for (const auto& ts : req->series) {
    ASSERT_EQ(ts.samples.size(), 3u);
    EXPECT_EQ(ts.samples[0].timestamp_ms, 0);
    EXPECT_EQ(ts.samples[2].timestamp_ms, 2000);
    EXPECT_EQ(ts.samples[2].value, 2);
  }
  ASSERT_EQ(req->metadata.size(), 2u);  // once per family, not once per sweep
  EXPECT_EQ(req->metadata[0].metric_family_name, "test_total");
  EXPECT_EQ(req->metadata[0].type, MetricType::kCounter);
  EXPECT_EQ(req->metadata[1].help, "A gauge.");
  // A lone record goes out exactly as spooled.
  auto one = MergeRecords({records[1]});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, *records[1].body);
}

// Merging at the wire level gives what decoding, joining and re-encoding gave.
TEST(MergeRecordsTest, SameBytesAsMergingDecodedRequests) {
  std::vector<SpoolRecord> records;
  remote::WriteRequest expected;
  for (int i = 0; i < 3; ++i) {
    SpoolRecord r;
    r.seq = static_cast<uint64_t>(i);
    r.body = std::make_shared<const std::string>(SweepBody(i));
    records.push_back(r);
    auto req = remote::DecodeWriteRequest(*r.body, 1 << 20);
    ASSERT_TRUE(req.ok());
    for (auto& ts : req->series) {
      auto it = std::find_if(expected.series.begin(), expected.series.end(),
                             [&](const TimeSeries& e) { return e.labels == ts.labels; });
      if (it == expected.series.end()) {
        expected.series.push_back(ts);
      } else {
        it->samples.insert(it->samples.end(), ts.samples.begin(), ts.samples.end());
      }
    }
    if (i == 0) expected.metadata = req->metadata;
  }
  auto body = MergeRecords(records);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, remote::EncodeWriteRequest(expected));
}

// Another writer may put a sample between label fields: the series still joins its copy.
TEST(MergeRecordsTest, JoinsSeriesWhoseLabelsAreNotContiguous) {
  // TimeSeries {Label{a=x}, Sample{value, ts}, Label{b=y}}: 0x0a len, labels 0x0a, sample 0x12.
  auto series = [](char ts) {
    std::string label_a = std::string(
        "\x0a\x01"
        "a"
        "\x12\x01"
        "x");
    std::string label_b = std::string(
        "\x0a\x01"
        "b"
        "\x12\x01"
        "y");
    std::string sample = std::string("\x09") + std::string(8, '\0') + "\x10" + ts;
    std::string inner = "\x0a" + std::string(1, static_cast<char>(label_a.size())) + label_a +
                        "\x12" + std::string(1, static_cast<char>(sample.size())) + sample +
                        "\x0a" + std::string(1, static_cast<char>(label_b.size())) + label_b;
    std::string raw = "\x0a" + std::string(1, static_cast<char>(inner.size())) + inner;
    std::string body;
    snappy::Compress(raw.data(), raw.size(), &body);
    return body;
  };
  std::vector<SpoolRecord> records(2);
  records[0].body = std::make_shared<const std::string>(series(1));
  records[1].seq = 1;
  records[1].body = std::make_shared<const std::string>(series(2));
  size_t n = 0;
  auto body = MergeRecords(records, &n);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(n, 1u);
  auto req = remote::DecodeWriteRequest(*body, 1 << 20);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  ASSERT_EQ(req->series.size(), 1u);
  EXPECT_EQ(req->series[0].labels.size(), 2u);
  ASSERT_EQ(req->series[0].samples.size(), 2u);
  EXPECT_EQ(req->series[0].samples[0].timestamp_ms, 1);
  EXPECT_EQ(req->series[0].samples[1].timestamp_ms, 2);
}

TEST(MergeRecordsTest, MalformedRecordIsAnErrorNamingTheRecords) {
  std::vector<SpoolRecord> records(2);
  records[0].seq = 7;
  records[0].body = std::make_shared<const std::string>(SweepBody(0));
  records[1].seq = 8;
  records[1].body = std::make_shared<const std::string>("not snappy at all");
  auto body = MergeRecords(records);
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.status().message().find("spooled records 7..8"), std::string::npos)
      << body.status().message();
  // Snappy that holds a truncated TimeSeries.
  std::string raw = "\x0a\x10\x0a\x02";
  std::string bad;
  snappy::Compress(raw.data(), raw.size(), &bad);
  records[1].body = std::make_shared<const std::string>(bad);
  EXPECT_EQ(MergeRecords(records).status().code(), StatusCode::kInvalidArgument);
}

// The spacing holds a request back until min_send_interval after the last one, but not for
// the last tenth of it: at 1 s sampling and 1 s spacing each sweep came a few milliseconds
// before the spacing ended and cost a wake-up for nothing.
TEST(SpacingWaitTest, HoldsBackUntilTheIntervalButNotForItsLastTenth) {
  const SteadyClock::time_point sent{std::chrono::seconds(100)};
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(100), milliseconds(1000)), milliseconds(900));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(899), milliseconds(1000)), milliseconds(101));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(900), milliseconds(1000)), milliseconds(100));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(901), milliseconds(1000)), milliseconds(0));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(997), milliseconds(1000)), milliseconds(0));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(1500), milliseconds(1000)), milliseconds(0));
  EXPECT_EQ(SpacingWait(sent, sent + milliseconds(10), milliseconds(0)), milliseconds(0));
}

TEST_F(SenderTest, DeliversEverySampleInOrderInBatchesThroughAnOutage) {
  FakeReceiver rx;
  rx.FailNext(3, 503);
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 30);  // the backlog of an outage
  RemoteWriteSender sender(Endpoint(rx.url(), 20), 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  sender.Stop();
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 30));
  EXPECT_EQ(rx.Timestamps("test_gauge"), Range(0, 30));
  EXPECT_EQ(rx.accepted().size(), 3u);  // 10 sweeps of 2 samples per request
  for (const auto& req : rx.accepted()) EXPECT_EQ(req.metadata.size(), 2u);
  const std::map<std::string, std::string> ep = {{"endpoint", rx.url()}};
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_samples_sent_total", ep), 60);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_samples_retried_total", ep), 60);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_requests_total",
                   {{"endpoint", rx.url()}, {"result", "retried"}}),
            3);
  EXPECT_GT(Metric(registry_, "suanli_agent_remote_write_last_success_timestamp_seconds", ep), 0);
  EXPECT_EQ(spool->Stats().records, 0u);
}

TEST_F(SenderTest, HonoursRetryAfter) {
  FakeReceiver rx;
  rx.FailNext(1, 429, "1");
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 1);
  RemoteWriteSender sender(Endpoint(rx.url()), 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  sender.Stop();
  auto attempts = rx.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_GE(attempts[1] - attempts[0], milliseconds(950));
}

TEST_F(SenderTest, RefusedSweepIsIsolatedAndOnlyItIsDropped) {
  FakeReceiver rx;
  rx.RejectValue(5);
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 10);
  RemoteWriteSender sender(Endpoint(rx.url(), 1000), 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  sender.Stop();
  std::vector<int64_t> want = Range(0, 10);
  want.erase(want.begin() + 5);
  EXPECT_EQ(rx.Timestamps("test_total"), want);  // each exactly once, in order
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_samples_dropped_total",
                   {{"endpoint", rx.url()}, {"reason", "bad_request"}}),
            2);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_requests_total",
                   {{"endpoint", rx.url()}, {"result", "rejected"}}),
            2);  // the merged batch, then the sweep alone
}

// 401 (a rotated token), 404 (a moved endpoint): the backlog is held, never dropped, and goes
// out once the receiver accepts again.
TEST_F(SenderTest, UnauthorizedAndNotFoundHoldTheBacklog) {
  FakeReceiver rx;
  rx.FailNext(2, 401);
  rx.FailNext(1, 404);
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 4);
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 1000);
  ep.max_backoff = milliseconds(200);  // held requests are retried at max_backoff
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] {
    return Metric(registry_, "suanli_agent_remote_write_blocked", {{"endpoint", rx.url()}}) == 1;
  }));
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  sender.Stop();
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 4));
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_requests_total",
                   {{"endpoint", rx.url()}, {"result", "held"}}),
            3);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_blocked", {{"endpoint", rx.url()}}), 0);
  EXPECT_EQ(
      Metric(registry_, "suanli_agent_remote_write_samples_sent_total", {{"endpoint", rx.url()}}),
      8);
}

TEST_F(SenderTest, NewestFirstSendsTheFreshSweepBeforeTheBacklog) {
  FakeReceiver rx;
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 10);
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 1000);
  ep.replay_order = ReplayOrder::kNewestFirst;
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  sender.Stop();
  std::vector<int64_t> want = {9000};
  for (int64_t t : Range(0, 9)) want.push_back(t);
  EXPECT_EQ(rx.Timestamps("test_total"), want);
}

TEST_F(SenderTest, EachEndpointGetsEverySampleAtItsOwnPace) {
  FakeReceiver fast, slow;
  slow.FailNext(5, 500);
  auto spool = MemorySpool({fast.url(), slow.url()});
  RemoteWriteSender a(Endpoint(fast.url()), 0, *spool, milliseconds(100), registry_);
  RemoteWriteSender b(Endpoint(slow.url()), 1, *spool, milliseconds(100), registry_);
  a.Start();
  b.Start();
  for (int i = 0; i < 10; ++i) {
    Fill(*spool, i, i + 1);
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) + spool->PendingSamples(1) == 0; }));
  a.Stop();
  b.Stop();
  EXPECT_EQ(fast.Timestamps("test_gauge"), Range(0, 10));
  EXPECT_EQ(slow.Timestamps("test_gauge"), Range(0, 10));
  EXPECT_EQ(spool->Stats().records, 0u);
}

TEST_F(SenderTest, LinkThatComesBackIsUsedWithinOneSampleInterval) {
  std::string address;
  { address = FakeReceiver().address(); }  // a port that was free a moment ago
  std::string url = "http://" + address + "/api/v1/write";
  auto spool = MemorySpool({url});
  RemoteWriteEndpoint ep = Endpoint(url);
  ep.max_backoff = milliseconds(30000);  // 5xx would wait that long; refused connections not
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(300), registry_);
  sender.Start();
  Fill(*spool, 0, 1);
  // Long enough for the backoff to reach its cap.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_GE(Metric(registry_, "suanli_agent_remote_write_requests_total",
                   {{"endpoint", url}, {"result", "retried"}}),
            4);
  FakeReceiver rx(address);
  auto back = SteadyClock::now();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  auto delay = SteadyClock::now() - back;
  sender.Stop();
  // One sample interval (300 ms) at most, where the backoff would have waited up to 30 s; the
  // rest of the second is for a loaded machine to deliver it.
  EXPECT_LE(delay, milliseconds(1000));
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 1));
}

// min_send_interval at 30 ms sweeps: one request per interval carries what came meanwhile,
// not one per sweep; every sample arrives exactly once, in order. (That the first sweep is not
// held back is StopSendsWhatTheSpacingHeldBack's 60 s interval.) The bound on requests follows
// from the sender's rule alone, request starts at least 0.9 x 300 ms apart, between two
// instants the test takes itself, so a loaded machine cannot break it: a request held up on its
// way shortens the gap between arrivals, never between starts.
TEST_F(SenderTest, SpacesRequestsAndDeliversEverySampleOnce) {
  FakeReceiver rx;
  auto spool = MemorySpool({rx.url()});
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 1000);
  ep.min_send_interval = milliseconds(300);
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(30), registry_);
  sender.Start();
  const auto before_first = SteadyClock::now();
  for (int i = 0; i < 50; ++i) {
    Fill(*spool, i, i + 1);
    std::this_thread::sleep_for(milliseconds(30));
  }
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  const auto all_acked = SteadyClock::now();  // after the last request started
  sender.Stop();
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 50));
  EXPECT_EQ(rx.Timestamps("test_gauge"), Range(0, 50));
  const size_t requests = rx.attempts().size();
  EXPECT_GE(requests, 2u);  // the sweeps of 1.5 s never wait for one another forever
  // About 6 over 1.5 s, where sending per sweep would make 50.
  EXPECT_LE(requests, 1 + static_cast<size_t>((all_acked - before_first) / milliseconds(270)));
  EXPECT_EQ(
      Metric(registry_, "suanli_agent_remote_write_samples_sent_total", {{"endpoint", rx.url()}}),
      100);
}

// 0: every sweep is its own request, sent as soon as it is spooled.
TEST_F(SenderTest, ZeroSendIntervalSendsEverySweepAtOnce) {
  FakeReceiver rx;
  auto spool = MemorySpool({rx.url()});
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 1000);
  ep.min_send_interval = milliseconds(0);
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(30), registry_);
  sender.Start();
  for (int i = 0; i < 10; ++i) {
    Fill(*spool, i, i + 1);
    auto appended = SteadyClock::now();
    ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
    EXPECT_LT(SteadyClock::now() - appended, milliseconds(500)) << "sweep " << i;  // not 1 s
  }
  sender.Stop();
  EXPECT_EQ(rx.attempts().size(), 10u);
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 10));
}

// A backlog is replayed batch after batch, its tail included, without waiting for the spacing.
TEST_F(SenderTest, SpacingNeverHoldsBackABacklog) {
  FakeReceiver rx;
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 25);
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 20);
  ep.min_send_interval = milliseconds(60000);
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(100), registry_);
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }, milliseconds(5000)));
  sender.Stop();
  EXPECT_EQ(rx.attempts().size(), 3u);  // 10 + 10 + 5 sweeps
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 25));
}

// Retries follow the backoff, not the spacing, and the backlog they leave goes at once.
TEST_F(SenderTest, SpacingLeavesRetriesToTheBackoff) {
  FakeReceiver rx;
  rx.FailNext(3, 503);
  auto spool = MemorySpool({rx.url()});
  Fill(*spool, 0, 5);
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 4);  // 2 sweeps per request
  ep.min_send_interval = milliseconds(60000);
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(100), registry_);
  auto start = SteadyClock::now();
  sender.Start();
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }, milliseconds(5000)));
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
  sender.Stop();
  EXPECT_EQ(rx.attempts().size(), 6u);  // [0,1] refused 3 times then accepted, [2,3], [4]
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 5));
}

// Stop() does not leave behind what the spacing held back: it is sent, once, before the end.
TEST_F(SenderTest, StopSendsWhatTheSpacingHeldBack) {
  FakeReceiver rx;
  auto spool = MemorySpool({rx.url()});
  RemoteWriteEndpoint ep = Endpoint(rx.url(), 1000);
  ep.min_send_interval = milliseconds(60000);
  RemoteWriteSender sender(ep, 0, *spool, milliseconds(100), registry_);
  sender.Start();
  Fill(*spool, 0, 1);
  ASSERT_TRUE(WaitFor([&] { return spool->PendingSamples(0) == 0; }));
  Fill(*spool, 1, 3);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(rx.attempts().size(), 1u);  // held back
  EXPECT_EQ(spool->PendingSamples(0), 4u);
  auto stop = SteadyClock::now();
  sender.Stop();
  EXPECT_LT(SteadyClock::now() - stop, milliseconds(1000));
  EXPECT_EQ(rx.attempts().size(), 2u);
  EXPECT_EQ(spool->PendingSamples(0), 0u);
  EXPECT_EQ(rx.Timestamps("test_total"), Range(0, 3));
}

}  // namespace
}  // namespace suanli::agent
