// The aggregator behind TLS and per-dc credentials, attacked the ways the alliance network can:
// cross-dc writes (a dc's token or certificate writing another dc's labels), wrong tokens, bad,
// expired and foreign certificates, oversized, compressed-bomb and malformed bodies, limits.
// All are refused with the right status and nothing of them is stored; legitimate traffic in
// the same run is unaffected. Then a real agent writes over TLS with its dc's token, and an
// agent whose labels name another dc is refused. Certificates are made at test time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"
#include "tests/unit/core/test_certs.h"

namespace suanli::it {
namespace {

using ::testing::HasSubstr;

constexpr const char* kTokenA = "dc-a-token-0123456789abcdef";
constexpr const char* kTokenB = "dc-b-token-0123456789abcdef";
constexpr const char* kTokenC = "dc-c-token-0123456789abcdef";
constexpr const char* kTokenReader = "reader-token-0123456789abcdef";
constexpr int64_t kMaxBody = 1 << 20;
constexpr int64_t kMaxDecoded = 2 << 20;
constexpr int kMaxSeries = 1000;
constexpr int kBurst = 1000;

std::map<std::string, std::string> WriteHeaders() {
  return {{"Content-Type", remote::kWriteContentType},
          {"Content-Encoding", remote::kContentEncoding},
          {remote::kWriteVersionHeader, remote::kWriteVersion}};
}

// `n` series named `name`, labelled region/dc (omitted when empty), one sample each.
// Now, so that the store's retention keeps it.
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

remote::WriteRequest Series(const std::string& name, const std::string& region,
                            const std::string& dc, int n = 1) {
  const int64_t ts_ms = NowMs();
  remote::WriteRequest req;
  for (int i = 0; i < n; ++i) {
    std::vector<Label> labels = {{"__name__", name}, {"n", std::to_string(i)}};
    if (!region.empty()) labels.push_back({"region", region});
    if (!dc.empty()) labels.push_back({"dc", dc});
    TimeSeries ts;
    ts.labels = Labels(std::move(labels));
    ts.samples.push_back({ts_ms, 1.0 + i});
    req.series.push_back(std::move(ts));
  }
  return req;
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir("suanli-it-security");
    pki_ = new testing_pki::TestPki();
    std::string error;
    ASSERT_TRUE(pki_->Create(tmp_->path(), &error)) << error;
    ASSERT_TRUE(WriteFile(tmp_->Sub("b.token"), std::string(kTokenB) + "\n").ok());
    ASSERT_EQ(chmod(tmp_->Sub("b.token").c_str(), 0600), 0);
    const std::string web =
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n"
        "credentials:\n"
        "  - name: dc-a\n    region: east\n    dc: a\n    bearer_tokens: [" +
        std::string(kTokenA) +
        "]\n    client_cert_names: [agent.dc-a.test]\n"
        "  - name: dc-b\n    region: east\n    dc: b\n    bearer_token_files: [b.token]\n"
        "  - name: dc-c\n    region: west\n    dc: c\n    bearer_tokens: [" +
        std::string(kTokenC) +
        "]\n"
        "  - name: reader\n    bearer_tokens: [" +
        std::string(kTokenReader) + "]\n    scopes: [read, metrics]\n";
    ASSERT_TRUE(WriteFile(tmp_->Sub("web.yml"), web).ok());
    // Readable by others on purpose: the aggregator must warn (it holds inline tokens).
    ASSERT_EQ(chmod(tmp_->Sub("web.yml").c_str(), 0644), 0);
    const std::string config =
        "limits:\n  max_body_bytes: " + std::to_string(kMaxBody) +
        "\n  max_decoded_bytes: " + std::to_string(kMaxDecoded) +
        "\n  max_series_per_request: " + std::to_string(kMaxSeries) +
        "\n  max_label_value_length: 256\n  max_samples_per_second_per_dc: 50\n"
        "  samples_burst_per_dc: " +
        std::to_string(kBurst) + "\n";
    ASSERT_TRUE(WriteFile(tmp_->Sub("aggregator.yml"), config).ok());
    auto p =
        Process::Start(AggregatorBinary(),
                       {"--config.file=" + tmp_->Sub("aggregator.yml"),
                        "--web.config.file=" + tmp_->Sub("web.yml"),
                        "--web.listen-address=127.0.0.1:0", "--storage.path=" + tmp_->Sub("data")},
                       tmp_->Sub("aggregator.log"));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    aggregator_ = std::move(p).value().release();
    auto address =
        aggregator_->WaitForLog(R"(listening on https://([0-9.]+:[0-9]+) tls=true)", seconds(30));
    ASSERT_TRUE(address.has_value()) << aggregator_->LogTail();
    port_ = new std::string(address->substr(address->rfind(':') + 1));
  }

  static void TearDownTestSuite() {
    delete aggregator_;
    delete port_;
    delete pki_;
    delete tmp_;
  }

  static std::string Url(const std::string& path) { return "https://localhost:" + *port_ + path; }

  static HttpClient::Options Token(const std::string& token) {
    HttpClient::Options o;
    o.ca_file = pki_->ca_crt;
    o.bearer_token = token;
    return o;
  }
  static HttpClient::Options Cert(const std::string& crt, const std::string& key) {
    HttpClient::Options o;
    o.ca_file = pki_->ca_crt;
    o.cert_file = crt;
    o.key_file = key;
    return o;
  }

  static Result<HttpClientResponse> PostBody(const HttpClient::Options& o,
                                             const std::string& body) {
    HttpClient client(o);
    return client.Post(Url("/api/v1/write"), body, WriteHeaders());
  }
  // The status of a write, or -1 when no HTTP answer came (TLS refused).
  static int Write(const HttpClient::Options& o, const remote::WriteRequest& req) {
    auto r = PostBody(o, remote::EncodeWriteRequest(req));
    return r.ok() ? r->status : -1;
  }

  // Series named `name` the store holds, read back through remote_read (reader credential).
  static int Stored(const std::string& name) {
    remote::ReadRequest req;
    remote::ReadQuery q;
    q.start_ms = 0;
    q.end_ms = 4'000'000'000'000;
    q.matchers.push_back({remote::LabelMatcher::Type::kEqual, "__name__", name});
    req.queries.push_back(q);
    HttpClient client(Token(kTokenReader));
    auto r = client.Post(Url("/api/v1/read"), remote::EncodeReadRequest(req),
                         {{"Content-Type", "application/x-protobuf"},
                          {"Content-Encoding", "snappy"},
                          {remote::kReadVersionHeader, remote::kReadVersion}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return -1;
    EXPECT_EQ(r->status, 200) << r->body;
    auto decoded = remote::DecodeReadResponse(r->body, 64 << 20);
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return decoded.ok() && !decoded->empty() ? static_cast<int>((*decoded)[0].size()) : -1;
  }

  static MetricsMap Metrics() {
    HttpClient client(Token(kTokenReader));
    auto r = client.Get(Url("/metrics"));
    EXPECT_TRUE(r.ok() && r->status == 200);
    auto m = ParseMetricsText(r.ok() ? r->body : "");
    return m.ok() ? *m : MetricsMap{};
  }
  static double Rejected(const std::string& reason) {
    return FindSample(Metrics(), "suanli_aggregator_requests_rejected_total", {{"reason", reason}})
        .value_or(-1);
  }

  static TempDir* tmp_;
  static testing_pki::TestPki* pki_;
  static Process* aggregator_;
  static std::string* port_;
};

TempDir* SecurityTest::tmp_ = nullptr;
testing_pki::TestPki* SecurityTest::pki_ = nullptr;
Process* SecurityTest::aggregator_ = nullptr;
std::string* SecurityTest::port_ = nullptr;

TEST_F(SecurityTest, CrossDcWritesAreRefusedWholeAndOnlyOwnDcIsStored) {
  struct Writer {
    std::string name;
    HttpClient::Options options;
    std::string region, dc;  // its binding
  };
  const std::vector<Writer> writers = {
      {"token_a", Token(kTokenA), "east", "a"},
      {"cert_a", Cert(pki_->client_a_crt, pki_->client_a_key), "east", "a"},
      {"token_b_file", Token(kTokenB), "east", "b"},
  };
  struct Target {
    std::string region, dc;
  };
  const std::vector<Target> targets = {{"east", "a"}, {"east", "b"}, {"west", "a"},
                                       {"east", ""},  {"", "a"},     {"west", "c"}};
  const double forbidden_before = Rejected("forbidden_dc");
  int forbidden = 0;
  for (const Writer& w : writers) {
    for (size_t t = 0; t < targets.size(); ++t) {
      const std::string name = "xdc_" + w.name + "_" + std::to_string(t);
      const bool own = targets[t].region == w.region && targets[t].dc == w.dc;
      SCOPED_TRACE(w.name + " writing region=" + targets[t].region + " dc=" + targets[t].dc);
      EXPECT_EQ(Write(w.options, Series(name, targets[t].region, targets[t].dc, 2)),
                own ? 204 : 403);
      EXPECT_EQ(Stored(name), own ? 2 : 0);
      if (!own) ++forbidden;
    }
  }
  {
    SCOPED_TRACE("one foreign series among own ones: the whole request is refused");
    remote::WriteRequest mixed = Series("xdc_mixed", "east", "a", 5);
    remote::WriteRequest foreign = Series("xdc_mixed", "east", "b", 1);
    foreign.series[0].labels.Set("n", "99");
    mixed.series.push_back(foreign.series[0]);
    EXPECT_EQ(Write(Token(kTokenA), mixed), 403);
    EXPECT_EQ(Stored("xdc_mixed"), 0);
    ++forbidden;
  }
  EXPECT_EQ(Rejected("forbidden_dc"), forbidden_before + forbidden);
  // The log names the binding and what was sent, never a token.
  std::string log = aggregator_->Log();
  EXPECT_THAT(log, HasSubstr("credential bound to region=east dc=a"));
  for (const char* secret : {kTokenA, kTokenB, kTokenC, kTokenReader}) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr(secret)));
  }
}

TEST_F(SecurityTest, WrongOrMissingCredentialsAre401AndScopesAre403) {
  const double invalid_before =
      FindSample(Metrics(), "suanli_http_auth_refused_total", {{"reason", "invalid"}}).value_or(-1);
  HttpClient::Options none = Token("");
  auto r = PostBody(none, remote::EncodeWriteRequest(Series("auth_none", "east", "a")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->headers["www-authenticate"], HasSubstr("Bearer realm=\"suanli\""));
  EXPECT_EQ(Write(Token("dc-a-token-0123456789abcdeX"), Series("auth_wrong", "east", "a")), 401);
  EXPECT_EQ(Write(Token(kTokenA + std::string(" ")), Series("auth_wrong", "east", "a")), 204)
      << "trailing blanks of the header value are not part of the token";
  HttpClient::Options basic = Token("");
  basic.username = "dc-a";
  basic.password = kTokenA;
  EXPECT_EQ(Write(basic, Series("auth_basic", "east", "a")), 401);
  // A reader may not write; a dc's writer may not read or scrape.
  EXPECT_EQ(Write(Token(kTokenReader), Series("auth_reader", "east", "a")), 403);
  HttpClient writer(Token(kTokenA));
  auto metrics = writer.Get(Url("/metrics"));
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 403);
  auto capacity = writer.Get(Url("/api/v1/capacity"));
  ASSERT_TRUE(capacity.ok());
  EXPECT_EQ(capacity->status, 403);
  HttpClient anonymous(Token(""));
  EXPECT_EQ(anonymous.Get(Url("/api/v1/capacity"))->status, 401);
  // Health checks need nothing.
  EXPECT_EQ(anonymous.Get(Url("/-/healthy"))->status, 200);
  EXPECT_EQ(anonymous.Get(Url("/-/ready"))->status, 200);
  EXPECT_EQ(Stored("auth_none"), 0);
  EXPECT_EQ(Stored("auth_basic"), 0);
  EXPECT_EQ(Stored("auth_reader"), 0);
  EXPECT_GE(
      FindSample(Metrics(), "suanli_http_auth_refused_total", {{"reason", "invalid"}}).value_or(-1),
      invalid_before + 2);
}

TEST_F(SecurityTest, BadExpiredAndForeignCertificatesGetNoAnswer) {
  const double failures_before =
      FindSample(Metrics(), "suanli_http_tls_handshake_failures_total").value_or(-1);
  EXPECT_EQ(Write(Cert(pki_->expired_crt, pki_->expired_key), Series("cert_expired", "east", "a")),
            -1);
  EXPECT_EQ(Write(Cert(pki_->rogue_crt, pki_->rogue_key), Series("cert_rogue", "east", "a")), -1);
  // A certificate the CA signed but no credential names: TLS passes, the write is 403.
  EXPECT_EQ(Write(Cert(pki_->client_b_crt, pki_->client_b_key), Series("cert_b", "east", "b")),
            403);
  // A client that does not trust the server's CA refuses it; plain HTTP gets no HTTP answer.
  HttpClient::Options untrusting;
  untrusting.bearer_token = kTokenA;
  EXPECT_EQ(Write(untrusting, Series("cert_untrusting", "east", "a")), -1);
  HttpClient plain(Token(kTokenA));
  auto r =
      plain.Post("http://127.0.0.1:" + *port_ + "/api/v1/write",
                 remote::EncodeWriteRequest(Series("cert_plain", "east", "a")), WriteHeaders());
  EXPECT_TRUE(!r.ok() || r->status == 0);
  for (const char* name :
       {"cert_expired", "cert_rogue", "cert_b", "cert_untrusting", "cert_plain"}) {
    EXPECT_EQ(Stored(name), 0) << name;
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return FindSample(Metrics(), "suanli_http_tls_handshake_failures_total").value_or(-1) >=
               failures_before + 4;
      },
      seconds(5)));
  // The good certificate still works.
  EXPECT_EQ(Write(Cert(pki_->client_a_crt, pki_->client_a_key), Series("cert_good", "east", "a")),
            204);
  EXPECT_EQ(Stored("cert_good"), 1);
}

TEST_F(SecurityTest, OversizedBombAndMalformedBodiesAndLimitsAreRefused) {
  struct Case {
    std::string name, reason;
    int status;
    std::string body;
    std::string token = kTokenA;
  };
  std::vector<Case> cases;
  // A body over max_body_bytes (incompressible bytes, so it is large on the wire).
  std::string noise(kMaxBody + 1024, '\0');
  uint32_t x = 12345;
  for (char& c : noise) c = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  cases.push_back({"lim_oversized", "", 413, noise});
  // A valid request whose decompressed size exceeds max_decoded_bytes: a compression bomb.
  remote::WriteRequest bomb = Series("lim_bomb", "east", "a", 1);
  bomb.series[0].labels.Set("pad", std::string(200, 'x'));
  {
    // Many copies of one series compress to almost nothing.
    remote::WriteRequest many;
    for (int i = 0; i < 20000; ++i) many.series.push_back(bomb.series[0]);
    std::string compressed = remote::EncodeWriteRequest(many);
    ASSERT_LT(compressed.size(), static_cast<size_t>(kMaxBody));
    cases.push_back({"lim_bomb", "too_large", 413, compressed});
  }
  // A snappy header that claims 4 GiB - 1 (the most its 32-bit length can say).
  cases.push_back({"lim_claim", "too_large", 413, std::string("\xff\xff\xff\xff\x0f", 5) + "xx"});
  cases.push_back({"lim_garbage", "malformed", 400, "\xff\xfe not snappy, not protobuf"});
  {
    std::string good = remote::EncodeWriteRequest(Series("lim_truncated", "east", "a", 50));
    cases.push_back({"lim_truncated", "malformed", 400, good.substr(0, good.size() - 7)});
  }
  cases.push_back({"lim_series", "series_limit", 400,
                   remote::EncodeWriteRequest(Series("lim_series", "east", "a", kMaxSeries + 1))});
  {
    remote::WriteRequest long_value = Series("lim_label", "east", "a", 3);
    long_value.series[2].labels.Set("path", std::string(257, 'v'));
    cases.push_back({"lim_label", "label_limit", 400, remote::EncodeWriteRequest(long_value)});
  }
  {
    remote::WriteRequest bad = Series("lim_invalid", "east", "a", 2);
    bad.series[1].labels.Set("0bad", "x");
    cases.push_back({"lim_invalid", "invalid_labels", 400, remote::EncodeWriteRequest(bad)});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const double before = c.reason.empty() ? 0 : Rejected(c.reason);
    auto r = PostBody(Token(c.token), c.body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.status) << r->body;
    if (!c.reason.empty()) {
      EXPECT_EQ(Rejected(c.reason), before + 1);
    }
    EXPECT_EQ(Stored(c.name), 0);
  }
  {
    SCOPED_TRACE("samples per second per dc: dc c spends its burst, then gets 429");
    const double before = Rejected("rate_limited");
    EXPECT_EQ(Write(Token(kTokenC), Series("lim_rate", "west", "c", kBurst - 10)), 204);
    auto r =
        PostBody(Token(kTokenC), remote::EncodeWriteRequest(Series("lim_rate2", "west", "c", 500)));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 429) << r->body;
    EXPECT_THAT(r->body, HasSubstr("max_samples_per_second_per_dc"));
    EXPECT_EQ(Rejected("rate_limited"), before + 1);
    EXPECT_EQ(Stored("lim_rate2"), 0);
    // Another dc's bucket is its own.
    EXPECT_EQ(Write(Token(kTokenA), Series("lim_rate_other", "east", "a", 20)), 204);
    EXPECT_EQ(Stored("lim_rate_other"), 20);
  }
  // Legitimate traffic in the same run.
  EXPECT_EQ(Write(Token(kTokenB), Series("lim_after", "east", "b", 3)), 204);
  EXPECT_EQ(Stored("lim_after"), 3);
}

TEST_F(SecurityTest, SecretFileReadableByOthersIsWarnedAboutAndCounted) {
  EXPECT_TRUE(aggregator_
                  ->WaitForLog("file holding secrets is readable by other users file=" +
                                   tmp_->Sub("web.yml"),
                               seconds(5))
                  .has_value());
  EXPECT_EQ(FindSample(Metrics(), "suanli_config_secret_files_readable_by_others"), 1);
}

TEST_F(SecurityTest, AgentsWriteOverTlsWithTheirCredentialAndAreRefusedForAnotherDc) {
  // `auth` is the remote_write endpoint's credential lines (bearer_token or tls_config).
  auto agent_config = [&](const std::string& dc, const std::string& instance,
                          const std::string& auth) {
    return "labels: {region: east, dc: " + dc + ", instance: " + instance +
           "}\nsample_interval: 200ms\nremote_write:\n  - url: " + Url("/api/v1/write") + "\n" +
           auth + "\nspool:\n  directory: " + tmp_->Sub("spool-" + instance) +
           "\ncollectors: {gpu: false, inventory: false, hwmon: false, rapl: false}\n";
  };
  const std::string ca = "    tls_config:\n      ca_file: " + pki_->ca_crt;
  const std::string token_a = "    bearer_token: " + std::string(kTokenA) + "\n" + ca;
  const std::string cert_a =
      ca + "\n      cert_file: " + pki_->client_a_crt + "\n      key_file: " + pki_->client_a_key;
  ASSERT_TRUE(WriteFile(tmp_->Sub("agent-a.yml"), agent_config("a", "it-token", token_a)).ok());
  ASSERT_TRUE(WriteFile(tmp_->Sub("agent-c.yml"), agent_config("a", "it-cert", cert_a)).ok());
  // dc b's labels with dc a's token: a misconfigured (or malicious) agent.
  ASSERT_TRUE(WriteFile(tmp_->Sub("agent-x.yml"), agent_config("b", "it-x", token_a)).ok());
  for (const char* f : {"agent-a.yml", "agent-c.yml", "agent-x.yml"}) {
    ASSERT_EQ(chmod(tmp_->Sub(f).c_str(), 0600), 0);
  }
  const double forbidden_before = Rejected("forbidden_dc");
  auto a = StartAgent(tmp_->path(), {"--config.file=" + tmp_->Sub("agent-a.yml")}, "agent-a.log");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto c = StartAgent(tmp_->path(), {"--config.file=" + tmp_->Sub("agent-c.yml")}, "agent-c.log");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto x = StartAgent(tmp_->path(), {"--config.file=" + tmp_->Sub("agent-x.yml")}, "agent-x.log");
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return Stored("node_load1") >= 2; }, seconds(30)))
      << a->process->LogTail() << c->process->LogTail();
  EXPECT_TRUE(WaitFor([&] { return Rejected("forbidden_dc") > forbidden_before; }, seconds(30)))
      << x->process->LogTail();
  // Only dc a's series are there: one per legitimate agent.
  remote::ReadRequest req;
  remote::ReadQuery q;
  q.start_ms = 0;
  q.end_ms = 4'000'000'000'000;
  q.matchers.push_back({remote::LabelMatcher::Type::kEqual, "__name__", "node_load1"});
  req.queries.push_back(q);
  HttpClient client(Token(kTokenReader));
  auto r = client.Post(Url("/api/v1/read"), remote::EncodeReadRequest(req),
                       {{"Content-Type", "application/x-protobuf"},
                        {"Content-Encoding", "snappy"},
                        {remote::kReadVersionHeader, remote::kReadVersion}});
  ASSERT_TRUE(r.ok() && r->status == 200);
  auto decoded = remote::DecodeReadResponse(r->body, 64 << 20);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ((*decoded)[0].size(), 2u);
  for (const TimeSeries& ts : (*decoded)[0]) EXPECT_EQ(ts.labels.Get("dc"), "a");
  // The agents' files hold a token or name a key but are private: no warning.
  EXPECT_THAT(a->process->Log(), ::testing::Not(HasSubstr("readable by other users")));
}

}  // namespace
}  // namespace suanli::it
