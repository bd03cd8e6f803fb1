// Forwarding (exporters/remote_write): the configuration, the three selections read from a
// real RocksDB store, and the answer table against receivers that answer as Mimir, Thanos
// Receive and VictoriaMetrics document it.
#include "exporters/remote_write/forwarder.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "aggregator/storage/rocksdb_store.h"
#include "core/clock.h"
#include "exporters/prometheus/capacity_metrics.h"
#include "exporters/remote_write/capacity_recorder.h"
#include "tests/unit/exporters/backend_receiver.h"
#include "tests/unit/exporters/capacity_fixture.h"

namespace suanli::exporters {
namespace {

using std::chrono::milliseconds;
using testing::BackendReceiver;

bool WaitFor(const std::function<bool()>& cond, milliseconds timeout = milliseconds(20000)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return cond();
}

double Value(prometheus::Registry& r, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  for (const auto& f : r.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool all = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found |= l.name == k && l.value == v;
        all &= found;
      }
      if (all) return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return NAN;
}

Result<std::vector<ForwardTarget>> Parse(const std::string& yaml) {
  ASSIGN_OR_RETURN(ConfigMap root, ConfigMap::Parse("agg.yml", yaml));
  return ParseForwardTargets(root);
}

TEST(ForwardConfigTest, ReadsEveryKeyWithDefaults) {
  auto t = Parse(R"(forward:
  - name: alliance
    url: https://alliance.example:9466/api/v1/write
    select: capacity
    external_labels: {__replica__: lanzhou-1-a}
  - name: mimir
    url: https://mimir.example/api/v1/push
    select: rollups
    resolution: 1h
    match: ['{__name__=~"node_.*|suanli_.*"}', 'up{job!="x"}']
    headers: {X-Scope-OrgID: gansu}
    basic_auth: {username: u, password: p}
    tls_config: {ca_file: /etc/ca.pem, insecure_skip_verify: true}
    remote_timeout: 10s
    max_backlog: 2h
    rollup_delay: 30s
    queue_config: {shards: 2, max_samples_per_send: 100, min_backoff: 10ms, max_backoff: 1s}
)");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->size(), 2u);
  const ForwardTarget& a = (*t)[0];
  EXPECT_EQ(a.select, ForwardSelect::kCapacity);
  EXPECT_EQ(a.external_labels.at("__replica__"), "lanzhou-1-a");
  EXPECT_EQ(a.queue.shards, 4);
  EXPECT_EQ(a.queue.max_samples_per_send, 5000);
  EXPECT_EQ(a.queue.min_backoff, milliseconds(30));
  EXPECT_EQ(a.queue.max_backoff, milliseconds(5000));
  EXPECT_EQ(a.max_backlog, std::chrono::hours(24));
  const ForwardTarget& m = (*t)[1];
  EXPECT_EQ(m.resolution, rollup::Resolution::k1h);
  ASSERT_EQ(m.matchers.size(), 2u);
  EXPECT_EQ(m.matchers[0][0].type, storage::MatcherSpec::kRegex);
  EXPECT_EQ(m.matchers[0][0].value, "node_.*|suanli_.*");
  EXPECT_EQ(m.matchers[1][0].name, "__name__");
  EXPECT_EQ(m.matchers[1][0].value, "up");
  EXPECT_EQ(m.matchers[1][1].type, storage::MatcherSpec::kNotEqual);
  EXPECT_EQ(m.headers.at("X-Scope-OrgID"), "gansu");
  EXPECT_EQ(m.basic_auth_password, "p");
  EXPECT_TRUE(m.insecure_skip_verify);
  EXPECT_EQ(m.remote_timeout, milliseconds(10000));
  EXPECT_EQ(m.rollup_delay, milliseconds(30000));
  EXPECT_EQ(m.queue.shards, 2);
}

TEST(ForwardConfigTest, ErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml, want;
  };
  const Case cases[] = {
      {"forward:\n  - url: http://x/\n", "agg.yml:2: forward[0].name: is required"},
      {"forward:\n  - name: a\n    url: ftp://x/\n", "agg.yml:3: forward[0].url:"},
      {"forward:\n  - name: a\n    url: http://x/\n    select: all\n",
       "agg.yml:4: forward[0].select: must be capacity, rollups or raw"},
      {"forward:\n  - name: a\n    url: http://x/\n    select: raw\n    resolution: 5m\n",
       "agg.yml:5: forward[0].resolution: applies only to select: rollups"},
      {"forward:\n  - name: a\n    url: http://x/\n    select: raw\n    match: ['{a=\"b\"']\n",
       "agg.yml:5: forward[0].match: missing }"},
      {"forward:\n  - name: a\n    url: http://x/\n    select: raw\n    match: ['{a=~\".*\"}']\n",
       "agg.yml:5: forward[0].match:"},
      {"forward:\n  - name: a\n    url: http://x/\n  - name: a\n    url: http://y/\n",
       "agg.yml:4: forward[1].name: is used by another target"},
      {"forward:\n  - name: a\n    url: http://x/\n    queue_config: {shards: 0}\n",
       "agg.yml:4: forward[0].queue_config.shards: must be between 1 and 64"},
      {"forward:\n  - name: a\n    url: http://x/\n    tls_config: {server_name: x}\n",
       "forward[0].tls_config.server_name"},
      {"forward:\n  - name: a\n    url: http://x/\n    match: ['up']\n",
       "agg.yml:4: forward[0].match: applies to raw and rollups"},
  };
  for (const Case& c : cases) {
    auto t = Parse(c.yaml);
    ASSERT_FALSE(t.ok()) << c.yaml;
    EXPECT_NE(t.status().message().find(c.want), std::string::npos)
        << t.status().message() << "\nwanted: " << c.want;
  }
}

TEST(ForwardConfigTest, SeriesSelectors) {
  auto s = ParseSeriesSelector(R"(node_cpu_seconds_total{mode!="idle", cpu=~"1|2",x!~'a\.b'})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0].value, "node_cpu_seconds_total");
  EXPECT_EQ((*s)[1].name, "mode");
  EXPECT_EQ((*s)[2].value, "1|2");
  EXPECT_EQ((*s)[3].type, storage::MatcherSpec::kNotRegex);
  EXPECT_EQ((*s)[3].value, "a\\.b");
  EXPECT_FALSE(ParseSeriesSelector("{}").ok());
  EXPECT_FALSE(ParseSeriesSelector("{a!=\"b\"}").ok());  // matches the empty value only
  EXPECT_FALSE(ParseSeriesSelector("up{a=\"b\"} junk").ok());
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/forwarder_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    OpenStore();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void OpenStore() {
    store_.reset();
    storage::RocksDbStoreOptions o;
    o.path = dir_ + "/db";
    o.now_ms = [this] { return clock_.NowUnixMs(); };
    auto s = storage::RocksDbStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  ForwardTarget Target(const std::string& url, ForwardSelect select = ForwardSelect::kRaw) {
    ForwardTarget t;
    t.name = "up";
    t.url = url;
    t.select = select;
    t.queue.min_backoff = milliseconds(5);
    t.queue.max_backoff = milliseconds(100);
    t.remote_timeout = milliseconds(5000);
    return t;
  }
  // `n` batches, each one sample of series a and b (a counter and a gauge).
  void WriteBatches(int64_t first_ts, int n, double base = 0) {
    for (int i = 0; i < n; ++i) {
      int64_t ts = first_ts + 15'000 * i;
      auto r = store_->Append(
          {TimeSeries{Labels{{"__name__", "a_total"}, {"dc", "d1"}}, {{ts, base + i}}},
           TimeSeries{Labels{{"__name__", "b"}, {"dc", "d1"}}, {{ts, base * 2 - i}}}});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  // Starts a forwarder and waits until it has its cursor: a new target starts from now, and
  // what the test writes next must come after that.
  std::unique_ptr<Forwarder> Start(const ForwardTarget& t) {
    auto f = std::make_unique<Forwarder>(t, *store_, &progress_, metrics_, clock_);
    f->Start();
    EXPECT_TRUE(WaitFor([&] {
      auto c = store_->GetCursor(ForwardCursorName(t.name));
      return c.ok() && c->has_value();
    }));
    return f;
  }
  double Metric(const std::string& name, std::map<std::string, std::string> labels = {}) {
    labels["target"] = "up";
    return Value(registry_, name, labels);
  }

  std::string dir_;
  FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::RocksDbStore> store_;
  prometheus::Registry registry_;
  ForwardMetrics metrics_{registry_};
  CapacityProgress progress_;
};

std::vector<int64_t> Times(const std::vector<Sample>& s) {
  std::vector<int64_t> out;
  for (const Sample& x : s) out.push_back(x.timestamp_ms);
  return out;
}

TEST_F(ForwarderTest, RawGoesOutInOrderWithExternalLabelsAndTenantHeader) {
  BackendReceiver mimir(BackendReceiver::Kind::kMimir);
  ForwardTarget t = Target(mimir.url());
  t.headers["X-Scope-OrgID"] = "gansu";
  t.external_labels["__replica__"] = "lz-1-a";
  t.external_labels["dc"] = "ignored";  // a series' own label wins, as in Prometheus
  t.queue.max_samples_per_send = 7;     // many requests, several shards
  auto f = Start(t);
  const int64_t t0 = clock_.NowUnixMs() - 600'000;
  WriteBatches(t0, 40);
  ASSERT_TRUE(WaitFor([&] { return mimir.samples() == 80; })) << mimir.samples();
  auto got = mimir.series();
  ASSERT_EQ(got.size(), 2u);
  const auto& a = got.at(R"(a_total{__replica__="lz-1-a",dc="d1"})");
  ASSERT_EQ(a.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(a[i].timestamp_ms, t0 + 15'000 * i);
    EXPECT_EQ(a[i].value, i);
  }
  EXPECT_EQ(got.at(R"(b{__replica__="lz-1-a",dc="d1"})")[39].value, -39);
  for (const auto& h : mimir.headers()) {
    EXPECT_EQ(h.at("x-scope-orgid"), "gansu");
    EXPECT_EQ(h.at("content-encoding"), "snappy");
    EXPECT_EQ(h.at("x-prometheus-remote-write-version"), "0.1.0");
  }
  // The receiver counts a request before the forwarder reads its answer: wait for the
  // forwarder's own count (it counts the request, then its samples).
  ASSERT_TRUE(WaitFor([&] { return Metric("suanli_aggregator_forward_samples_sent_total") == 80; }))
      << Metric("suanli_aggregator_forward_samples_sent_total");
  EXPECT_EQ(Metric("suanli_aggregator_forward_requests_total", {{"status_class", "2xx"}}),
            static_cast<double>(mimir.statuses().size()));
  EXPECT_GT(Metric("suanli_aggregator_forward_last_success_timestamp_seconds"), 0);
  f->Stop();
}

TEST_F(ForwarderTest, StartsFromNowAndResumesFromItsCursorAfterARestart) {
  BackendReceiver vm(BackendReceiver::Kind::kVictoriaMetrics);
  const int64_t t0 = clock_.NowUnixMs() - 3'600'000;
  WriteBatches(t0, 5);  // before the target existed: not sent
  ForwardTarget t = Target(vm.url());
  auto f = Start(t);
  ASSERT_TRUE(WaitFor([&] { return store_->GetCursor(ForwardCursorName("up"))->has_value(); }));
  WriteBatches(t0 + 100'000, 5);
  ASSERT_TRUE(WaitFor([&] { return vm.samples() == 10; }));
  // The target goes down; the aggregator keeps ingesting, then restarts (store reopened).
  vm.FailNext(1000000, 503);
  WriteBatches(t0 + 200'000, 5);
  ASSERT_TRUE(
      WaitFor([&] { return Metric("suanli_aggregator_forward_samples_retried_total") > 0; }));
  f->Stop();
  f.reset();
  OpenStore();
  WriteBatches(t0 + 300'000, 5);
  BackendReceiver vm2(BackendReceiver::Kind::kVictoriaMetrics);
  t.url = vm2.url();
  f = Start(t);
  ASSERT_TRUE(WaitFor([&] { return vm2.samples() == 20; })) << vm2.samples();
  const auto got = vm2.series();
  std::vector<int64_t> want;
  for (int64_t base : {200'000, 300'000}) {
    for (int i = 0; i < 5; ++i) want.push_back(t0 + base + 15'000 * i);
  }
  EXPECT_EQ(Times(got.at(R"(a_total{dc="d1"})")), want);
  f->Stop();
}

// The answer table, through the receivers' documented answers.
TEST_F(ForwarderTest, RetriesOverloadAndQuorumFailuresHonouringRetryAfter) {
  BackendReceiver thanos(BackendReceiver::Kind::kThanos);
  thanos.FailNext(2, 503);
  thanos.FailNext(1, 429, "1");
  auto f = Start(Target(thanos.url()));
  const auto started = std::chrono::steady_clock::now();
  WriteBatches(clock_.NowUnixMs() - 60'000, 3);
  ASSERT_TRUE(WaitFor([&] { return thanos.samples() == 6; }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(950));  // Retry-After: 1
  EXPECT_EQ(thanos.statuses().front(), 503);
  EXPECT_EQ(Metric("suanli_aggregator_forward_requests_total", {{"status_class", "5xx"}}), 2);
  EXPECT_EQ(Metric("suanli_aggregator_forward_requests_total", {{"status_class", "4xx"}}), 1);
  EXPECT_TRUE(std::isnan(
      Metric("suanli_aggregator_forward_samples_dropped_total", {{"reason", "conflict"}})))
      << "nothing dropped";
  f->Stop();
}

TEST_F(ForwarderTest, ARotatedTokenHoldsTheBacklogInsteadOfDroppingIt) {
  BackendReceiver mimir(BackendReceiver::Kind::kMimir);
  mimir.RequireToken("new");
  const std::string token = dir_ + "/token";
  std::ofstream(token) << "old\n";
  ForwardTarget t = Target(mimir.url());
  t.headers["X-Scope-OrgID"] = "gansu";
  t.bearer_token_file = token;
  auto f = Start(t);
  WriteBatches(clock_.NowUnixMs() - 60'000, 4);
  ASSERT_TRUE(WaitFor([&] { return Metric("suanli_aggregator_forward_blocked") == 1; }));
  EXPECT_EQ(mimir.samples(), 0u);
  std::ofstream(token) << "new\n";  // the operator rotates the file; no reload
  ASSERT_TRUE(WaitFor([&] { return mimir.samples() == 8; }));
  ASSERT_TRUE(WaitFor([&] { return Metric("suanli_aggregator_forward_blocked") == 0; }));
  EXPECT_TRUE(std::isnan(
      Metric("suanli_aggregator_forward_samples_dropped_total", {{"reason", "bad_request"}})));
  f->Stop();
}

TEST_F(ForwarderTest, RefusedSamplesAreDroppedByReasonAndTheRestFlows) {
  BackendReceiver thanos(BackendReceiver::Kind::kThanos);
  auto f = Start(Target(thanos.url()));
  const int64_t now = clock_.NowUnixMs();
  WriteBatches(now - 60'000, 2);
  ASSERT_TRUE(WaitFor([&] { return thanos.samples() == 4; }));
  // Accepted by the aggregator (inside its out-of-order window), refused by Thanos with 409.
  WriteBatches(now - 600'000, 1, 100);
  ASSERT_TRUE(WaitFor([&] {
    return Metric("suanli_aggregator_forward_samples_dropped_total", {{"reason", "conflict"}}) == 2;
  }));
  WriteBatches(now - 30'000, 1, 200);
  ASSERT_TRUE(WaitFor([&] { return thanos.samples() == 6; })) << thanos.samples();
  EXPECT_EQ(thanos.series().at(R"(a_total{dc="d1"})").back().value, 200);
  f->Stop();
}

TEST_F(ForwarderTest, TooLargeRequestsAreSplitDownToOneSeries) {
  BackendReceiver vm(BackendReceiver::Kind::kVictoriaMetrics);
  vm.MaxBodyBytes(300);
  ForwardTarget t = Target(vm.url());
  t.queue.shards = 1;
  auto f = Start(t);
  std::vector<TimeSeries> wide;
  const int64_t ts = clock_.NowUnixMs() - 1000;
  for (int i = 0; i < 8; ++i) {
    wide.push_back({Labels{{"__name__", "w"}, {"i", std::to_string(i)}}, {{ts, 1.0 * i}}});
  }
  // One series whose labels alone pass the limit: dropped as too_large.
  std::string noise;  // incompressible, so the body stays over the limit after snappy
  uint32_t x = 12345;
  for (int i = 0; i < 400; ++i) {
    x = x * 1103515245 + 12345;
    noise.push_back(static_cast<char>('a' + (x >> 16) % 26));
  }
  wide.push_back({Labels{{"__name__", "w"}, {"i", noise}}, {{ts, 9}}});
  ASSERT_TRUE(store_->Append(wide).ok());
  ASSERT_TRUE(WaitFor([&] { return vm.samples() == 8; }));
  ASSERT_TRUE(WaitFor([&] {
    return Metric("suanli_aggregator_forward_samples_dropped_total", {{"reason", "too_large"}}) ==
           1;
  }));
  f->Stop();
}

TEST_F(ForwarderTest, NonElectedReplicaAnswer202CountsAsAccepted) {
  BackendReceiver mimir(BackendReceiver::Kind::kMimir);
  mimir.ElectReplica("lz-1-a");
  ForwardTarget t = Target(mimir.url());
  t.headers["X-Scope-OrgID"] = "gansu";
  t.external_labels["__replica__"] = "lz-1-b";
  auto f = Start(t);
  WriteBatches(clock_.NowUnixMs() - 60'000, 3);
  ASSERT_TRUE(WaitFor([&] { return Metric("suanli_aggregator_forward_samples_sent_total") == 6; }));
  EXPECT_EQ(mimir.samples(), 0u);
  f->Stop();
}

TEST_F(ForwarderTest, BacklogOlderThanMaxBacklogIsSkippedAndCounted) {
  BackendReceiver vm(BackendReceiver::Kind::kVictoriaMetrics);
  ForwardTarget t = Target(vm.url());
  t.max_backlog = std::chrono::hours(1);
  auto f = Start(t);
  ASSERT_TRUE(WaitFor([&] { return store_->GetCursor(ForwardCursorName("up"))->has_value(); }));
  WriteBatches(clock_.NowUnixMs() - 2 * 3'600'000, 2);
  WriteBatches(clock_.NowUnixMs() - 60'000, 2);
  ASSERT_TRUE(WaitFor([&] { return vm.samples() == 4; }));
  ASSERT_TRUE(WaitFor([&] {
    return Metric("suanli_aggregator_forward_samples_dropped_total", {{"reason", "too_old"}}) == 4;
  }));
  f->Stop();
}

TEST_F(ForwarderTest, RollupsAreClosedIntervalsStampedAtTheirEnd) {
  BackendReceiver prom(BackendReceiver::Kind::kPrometheus);
  const int64_t t0 = rollup::IntervalStart(clock_.NowUnixMs(), 300'000);
  // 5m intervals [t0-5m, t0) and [t0, t0+5m): a counter with a reset, and a gauge.
  std::vector<Sample> counter, gauge;
  const double cv[] = {10, 12, 15, 3, 4, 8, 9, 11};
  for (int i = 0; i < 8; ++i) {
    int64_t ts = t0 - 300'000 + 7'000 + 75'000 * i;  // 4 per interval, never on a boundary
    counter.push_back({ts, cv[i]});
    gauge.push_back({ts, 1.0 * (i % 3)});
  }
  ASSERT_TRUE(store_
                  ->Append({TimeSeries{Labels{{"__name__", "c_total"}}, counter},
                            TimeSeries{Labels{{"__name__", "g"}}, gauge}})
                  .ok());
  ForwardTarget t = Target(prom.url(), ForwardSelect::kRollups);
  t.resolution = rollup::Resolution::k5m;
  t.rollup_delay = milliseconds(0);
  ASSERT_TRUE(
      store_->SetCursor(ForwardCursorName("up"), {storage::CursorKind::kTime, t0 - 300'000}).ok());
  clock_.AdvanceMs(t0 + 300'000 - clock_.NowUnixMs());  // both intervals have ended
  auto f = Start(t);
  ASSERT_TRUE(WaitFor([&] { return prom.series().size() == 11; })) << prom.series().size();
  auto got = prom.series();
  auto at = [&](const std::string& name) {
    EXPECT_EQ(got.count(name), 1u) << name;
    return got.count(name) ? got.at(name) : std::vector<Sample>(2);
  };
  // Counter: interval 1 holds 10, 12, 15, 3 (reset: +3); interval 2 holds 4, 8, 9, 11, and the
  // step from the previous interval's last value (3 -> 4).
  EXPECT_EQ(at("c_total:5m_increase{}")[0].value, 2 + 3 + 3);
  EXPECT_EQ(at("c_total:5m_increase{}")[1].value, 1 + 4 + 1 + 2);
  EXPECT_EQ(at("c_total:5m_increase{}")[0].timestamp_ms, t0);
  EXPECT_EQ(at("c_total:5m_increase{}")[1].timestamp_ms, t0 + 300'000);
  EXPECT_EQ(at("c_total:5m_min{}")[0].value, 3);
  EXPECT_EQ(at("c_total:5m_max{}")[0].value, 15);
  EXPECT_EQ(at("c_total:5m_last{}")[1].value, 11);
  EXPECT_EQ(at("c_total:5m_count_samples{}")[1].value, 4);
  EXPECT_EQ(at("c_total:5m_avg{}")[1].value, (4 + 8 + 9 + 11) / 4.0);
  // Gauge 0,1,2,0 | 1,2,0,1: no increase output.
  EXPECT_EQ(got.count("g:5m_increase{}"), 0u);
  EXPECT_EQ(at("g:5m_avg{}")[0].value, 0.75);
  EXPECT_EQ(at("g:5m_max{}")[1].value, 2);
  EXPECT_EQ(at("g:5m_min{}")[1].value, 0);
  EXPECT_EQ(at("g:5m_last{}")[1].value, 1);
  ASSERT_TRUE(WaitFor([&] {
    auto c = store_->GetCursor(ForwardCursorName("up"));
    return c.ok() && c->has_value() && (*c)->value == t0 + 300'000;
  }));
  f->Stop();
}

TEST_F(ForwarderTest, CapacityEvaluationsAreRecordedAtAlignedTimesAndForwarded) {
  BackendReceiver alliance(BackendReceiver::Kind::kPrometheus);
  capacity::CapacityModel model(capacity::CapacityOptions{});
  exporters::testing::SmallAlliance(&model);
  CapacityRecorder recorder(*store_, model, clock_);
  ForwardTarget t = Target(alliance.url(), ForwardSelect::kCapacity);
  t.external_labels["__replica__"] = "a";
  auto f = std::make_unique<Forwarder>(t, *store_, &recorder.progress(), metrics_, clock_);
  clock_.AdvanceMs(testing::kT0 - clock_.NowUnixMs());
  f->Start();
  ASSERT_TRUE(WaitFor([&] { return store_->GetCursor(ForwardCursorName("up"))->has_value(); }));
  const int64_t at = NextEvaluationMs(testing::kT0 + 1, std::chrono::seconds(15));
  EXPECT_EQ(at % 15'000, 0);
  ASSERT_TRUE(recorder.RecordAt(at).ok());
  ASSERT_TRUE(recorder.RecordAt(at + 15'000).ok());
  const std::string nodes =
      R"(suanli_dc_nodes{__replica__="a",dc="lz-1",region="gansu",state="up"})";
  ASSERT_TRUE(WaitFor([&] {
    auto s = alliance.series();
    return s.count(nodes) > 0 && s.at(nodes).size() == 2;
  }));
  auto got = alliance.series();
  EXPECT_EQ(Times(got.at(nodes)), (std::vector<int64_t>{at, at + 15'000}));
  EXPECT_EQ(got.at(nodes)[0].value, 2);
  for (const auto& [key, samples] : got) {
    EXPECT_TRUE(key.starts_with("suanli_dc_") || key.starts_with("suanli_link_")) << key;
  }
  f->Stop();
}

// The recorder runs with capacity.record (the default) whatever the forwarding, or while a
// capacity target reads it; it records every series of the dc's figures on /metrics, at times
// aligned to its interval, and stops when neither wants it.
TEST_F(ForwarderTest, RecorderRunsWhileRecordingIsWantedAndRecordsTheExposedFigures) {
  ForwardTarget raw = Target("http://127.0.0.1:1/api/v1/write");
  ForwardTarget capacity_target =
      Target("http://127.0.0.1:1/api/v1/write", ForwardSelect::kCapacity);
  EXPECT_TRUE(CapacityRecordingWanted(true, {}));
  EXPECT_TRUE(CapacityRecordingWanted(true, {raw}));
  EXPECT_FALSE(CapacityRecordingWanted(false, {}));
  EXPECT_FALSE(CapacityRecordingWanted(false, {raw}));
  EXPECT_TRUE(CapacityRecordingWanted(false, {raw, capacity_target}));

  capacity::CapacityModel model(capacity::CapacityOptions{});
  exporters::testing::SmallAlliance(&model);
  clock_.AdvanceMs(testing::kT0 + 12'000 - clock_.NowUnixMs());
  CapacityRecorder recorder(*store_, model, clock_);
  // The next evaluation recorded: the clock moves ahead faster than the recorder's thread waits
  // (100 ms a poll), so it reaches whatever time the thread is waiting for.
  auto next_recorded = [&] {
    const int64_t before = recorder.progress().last_recorded_ms.load();
    EXPECT_TRUE(WaitFor([&] {
      if (recorder.progress().last_recorded_ms.load() != before) return true;
      clock_.AdvanceMs(100);
      return false;
    }));
    return recorder.progress().last_recorded_ms.load();
  };
  recorder.Apply(true, std::chrono::seconds(1));
  EXPECT_TRUE(recorder.running());
  const int64_t at = next_recorded();
  EXPECT_EQ(at % 1'000, 0);

  // Every series of the dcs' and links' figures as /metrics shows them at that time, each with
  // one sample (region and alliance sums are not recorded: they follow from the dcs').
  auto recorded = store_->Select(
      {{storage::MatcherSpec::kRegex, "__name__", "suanli_(dc|region|alliance|link)_.+"}}, at, at);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  std::map<std::string, size_t> per_dc;  // dc -> series
  for (const storage::SeriesSamples& s : *recorded) {
    ASSERT_EQ(s.samples.size(), 1u) << s.labels.ToString();
    EXPECT_EQ(s.samples[0].timestamp_ms, at);
    ++per_dc[std::string(s.labels.Get("dc"))];
  }
  size_t exposed = 0;
  for (const auto& family : CapacityFamilies(model.Snapshot(at))) {
    if (family.name.starts_with("suanli_dc_") || family.name.starts_with("suanli_link_")) {
      exposed += family.metric.size();
    }
  }
  EXPECT_EQ(recorded->size(), exposed);
  for (const auto& [dc, n] : per_dc) {
    std::cout << "recorded series dc=\"" << dc << "\": " << n << "\n";
  }
  EXPECT_EQ(per_dc.size(), 3u) << "lz-1, qy-1 and zw-1";

  // The same setting again: it keeps running; off: it stops (the thread is joined), and
  // nothing more is recorded however far the clock moves.
  recorder.Apply(true, std::chrono::seconds(1));
  EXPECT_TRUE(recorder.running());
  recorder.Apply(false, std::chrono::seconds(1));
  EXPECT_FALSE(recorder.running());
  clock_.AdvanceMs(60'000);
  EXPECT_EQ(recorder.progress().last_recorded_ms.load(), at);

  // On again with a new interval: aligned to it.
  recorder.Apply(true, std::chrono::seconds(2));
  const int64_t at2 = next_recorded();
  EXPECT_EQ(at2 % 2'000, 0);
  recorder.Apply(false, std::chrono::seconds(2));
}

}  // namespace
}  // namespace suanli::exporters

namespace suanli::exporters {
namespace {

// SIGHUP: Apply makes the running targets those of the new configuration.
TEST_F(ForwarderTest, ReloadStartsNewTargetsFromNowAndForgetsRemovedOnes) {
  BackendReceiver a(BackendReceiver::Kind::kVictoriaMetrics),
      b(BackendReceiver::Kind::kVictoriaMetrics);
  CapacityProgress capacity;
  ForwardManager manager(*store_, capacity, registry_, clock_);
  ForwardTarget ta = Target(a.url());
  ta.name = "a";
  ForwardTarget tb = Target(b.url());
  tb.name = "b";
  auto has_cursor = [&](const std::string& name) {
    auto c = store_->GetCursor(ForwardCursorName(name));
    return c.ok() && c->has_value();
  };
  manager.Apply({ta});
  ASSERT_TRUE(WaitFor([&] { return has_cursor("a"); }));
  WriteBatches(clock_.NowUnixMs() - 60'000, 2);
  ASSERT_TRUE(WaitFor([&] { return a.samples() == 4; }));
  // b is added: it starts from now (what a already sent is not sent to b).
  manager.Apply({ta, tb});
  ASSERT_TRUE(WaitFor([&] { return has_cursor("b"); }));
  WriteBatches(clock_.NowUnixMs() - 30'000, 1, 100);
  ASSERT_TRUE(WaitFor([&] { return a.samples() == 6 && b.samples() == 2; }));
  EXPECT_EQ(b.series().at(R"(a_total{dc="d1"})").front().value, 100);
  // a is removed: it stops, and its cursor goes (it would keep the log for nothing).
  manager.Apply({tb});
  EXPECT_FALSE(has_cursor("a"));
  WriteBatches(clock_.NowUnixMs() - 15'000, 1, 200);
  ASSERT_TRUE(WaitFor([&] { return b.samples() == 4; }));
  EXPECT_EQ(a.samples(), 6u);
  // b's select changes: it starts again from now, with a time cursor.
  tb.select = ForwardSelect::kRollups;
  manager.Apply({tb});
  ASSERT_TRUE(WaitFor([&] {
    auto c = store_->GetCursor(ForwardCursorName("b"));
    return c.ok() && c->has_value() && (*c)->kind == storage::CursorKind::kTime;
  }));
  manager.Stop();
}

}  // namespace
}  // namespace suanli::exporters
