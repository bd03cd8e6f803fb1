// HttpServer with a web config: TLS, mutual TLS (good, expired, foreign and missing client
// certificates), basic and bearer authentication, per-route scopes, the identity handed to
// handlers, reloading, and a client that never finishes its handshake.
#include <arpa/inet.h>
#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "core/http_client.h"
#include "core/http_server.h"
#include "core/web_config.h"
#include "tests/unit/core/test_certs.h"

namespace suanli {
namespace {

using ::testing::HasSubstr;

constexpr const char* kTokenA = "token-for-dc-a-0123456789";

// A bcrypt hash made at test time (cost 4 keeps the tests fast).
std::string Bcrypt(const std::string& password) {
  auto data = std::make_unique<crypt_data>();
  char salt[64];
  if (crypt_gensalt_rn("$2y$", 4, nullptr, 0, salt, sizeof salt) == nullptr) return "";
  const char* out = crypt_r(password.c_str(), salt, data.get());
  return out == nullptr ? "" : out;
}

class HttpTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/suanli-tls-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = new std::string(dir_template);
    pki_ = new testing_pki::TestPki();
    std::string error;
    ASSERT_TRUE(pki_->Create(*dir_, &error)) << error;
  }
  static void TearDownTestSuite() {
    std::string cleanup = "rm -rf '" + *dir_ + "'";
    EXPECT_EQ(std::system(cleanup.c_str()), 0);
    delete pki_;
    delete dir_;
  }

  // Starts a server with `web_yaml` as its web config; routes: /write (write scope, echoes the
  // identity), /data (read), /metrics (metrics), /-/healthy (public).
  void StartServer(const std::string& web_yaml, int read_timeout_seconds = 30) {
    auto config = ParseWebConfig("web.yml", web_yaml, *dir_);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    HttpServer::Options opts;
    opts.read_timeout_seconds = read_timeout_seconds;
    opts.registry = &registry_;
    server_ = std::make_unique<HttpServer>(opts);
    auto echo = [](const HttpRequest& r) {
      return HttpResponse::Text(200, std::string(IdentityKindName(r.identity.kind)) + " " +
                                         r.identity.user + " " + r.identity.region + "/" +
                                         r.identity.dc + " auth=" + r.Header("authorization"));
    };
    server_->Route("POST", "/write", echo, kScopeWrite);
    server_->Route("GET", "/data", echo);  // default scope: read
    server_->Route("GET", "/metrics", echo, kScopeMetrics);
    server_->Route("GET", "/-/healthy", echo, kScopePublic);
    ASSERT_TRUE(server_->SetWebConfig(*config).ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  std::string Url(const std::string& path) {
    return std::string(server_->tls() ? "https://" : "http://") + "localhost:" + Port() + path;
  }
  std::string Port() {
    std::string a = server_->address();
    return a.substr(a.rfind(':') + 1);
  }

  HttpClient::Options Trusting() {
    HttpClient::Options o;
    o.ca_file = pki_->ca_crt;
    o.timeout = std::chrono::seconds(5);
    return o;
  }

  Result<HttpClientResponse> Get(HttpClient::Options o, const std::string& path) {
    HttpClient client(o);
    return client.Get(Url(path));
  }

  double Counter(const std::string& name, const std::string& reason = "") {
    for (const auto& f : registry_.Collect()) {
      if (f.name != name) continue;
      for (const auto& m : f.metric) {
        bool match = reason.empty();
        for (const auto& l : m.label) match = match || (l.name == "reason" && l.value == reason);
        if (match) return m.counter.value;
      }
    }
    return -1;
  }

  // The server counts a failed handshake on its own strand, maybe after the client gave up.
  bool WaitCounterAtLeast(const std::string& name, double want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (Counter(name) < want) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  std::string MtlsYaml(const std::string& auth_type = "RequireAndVerifyClientCert") {
    return "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
           "  client_ca_file: ca.crt\n  client_auth_type: " +
           auth_type +
           "\ncredentials:\n  - name: dc-a\n    region: east\n    dc: a\n"
           "    client_cert_names: [agent.dc-a.test]\n    bearer_tokens: [" +
           kTokenA + "]\n    scopes: [write, read]\n";
  }

  static std::string* dir_;
  static testing_pki::TestPki* pki_;
  prometheus::Registry registry_;
  std::unique_ptr<HttpServer> server_;
};

std::string* HttpTlsTest::dir_ = nullptr;
testing_pki::TestPki* HttpTlsTest::pki_ = nullptr;

TEST_F(HttpTlsTest, ServesHttpsAndRefusesPlainHttpAndUntrustingClients) {
  StartServer("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  auto ok = Get(Trusting(), "/data");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_THAT(ok->body, HasSubstr("anonymous"));
  // No trust in our CA: the client refuses the server.
  HttpClient::Options system_trust;
  system_trust.timeout = std::chrono::seconds(5);
  EXPECT_FALSE(Get(system_trust, "/data").ok());
  // Plain HTTP to the TLS port: no HTTP answer; the server goes on serving.
  HttpClient plain;
  auto r = plain.Get("http://127.0.0.1:" + Port() + "/data");
  EXPECT_TRUE(!r.ok() || r->status == 0) << r->status;
  EXPECT_TRUE(Get(Trusting(), "/-/healthy").ok());
  EXPECT_TRUE(WaitCounterAtLeast("suanli_http_tls_handshake_failures_total", 2));
}

TEST_F(HttpTlsTest, MutualTlsAcceptsOnlyVerifiedCurrentCertificates) {
  StartServer(MtlsYaml());
  HttpClient::Options a = Trusting();
  a.cert_file = pki_->client_a_crt;
  a.key_file = pki_->client_a_key;
  auto ok = Get(a, "/data");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "certificate dc-a east/a auth=");

  const double failures = Counter("suanli_http_tls_handshake_failures_total");
  HttpClient::Options none = Trusting();
  EXPECT_FALSE(Get(none, "/data").ok()) << "no client certificate";
  HttpClient::Options expired = Trusting();
  expired.cert_file = pki_->expired_crt;
  expired.key_file = pki_->expired_key;
  EXPECT_FALSE(Get(expired, "/data").ok()) << "expired client certificate";
  HttpClient::Options rogue = Trusting();
  rogue.cert_file = pki_->rogue_crt;
  rogue.key_file = pki_->rogue_key;
  EXPECT_FALSE(Get(rogue, "/data").ok()) << "client certificate from another CA";
  // TLS 1.3 resolves a refused client certificate after the client's handshake completes, so
  // curl may see the alert on its first read; either way no request reaches a handler.
  EXPECT_TRUE(WaitCounterAtLeast("suanli_http_tls_handshake_failures_total", failures + 3));
  // Legitimate traffic is unaffected.
  auto again = Get(a, "/data");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpTlsTest, UnboundButVerifiedCertificateIsForbidden) {
  StartServer(MtlsYaml());
  HttpClient::Options b = Trusting();
  b.cert_file = pki_->client_b_crt;
  b.key_file = pki_->client_b_key;
  auto r = Get(b, "/data");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
  // The public route still answers.
  auto h = Get(b, "/-/healthy");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(Counter("suanli_http_auth_refused_total", "forbidden"), 1);
}

TEST_F(HttpTlsTest, VerifyIfGivenAllowsTokenWithoutCertificate) {
  StartServer(MtlsYaml("VerifyClientCertIfGiven"));
  HttpClient::Options token = Trusting();
  token.bearer_token = kTokenA;
  auto r = Get(token, "/data");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  // Handlers never see the Authorization header.
  EXPECT_EQ(r->body, "bearer dc-a east/a auth=");
  auto none = Get(Trusting(), "/data");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->headers["www-authenticate"], HasSubstr("Bearer"));
  // A given certificate must still verify.
  HttpClient::Options expired = Trusting();
  expired.cert_file = pki_->expired_crt;
  expired.key_file = pki_->expired_key;
  auto e = Get(expired, "/data");
  EXPECT_TRUE(!e.ok() || e->status == 0);
}

TEST_F(HttpTlsTest, BasicAuthAndScopesOverPlainHttp) {
  StartServer("basic_auth_users:\n  prom: " + Bcrypt("pw") +
              "\ncredentials:\n  - name: dc-a\n    dc: a\n    bearer_tokens: [" +
              std::string(kTokenA) + "]\n");
  HttpClient::Options none;
  auto r = Get(none, "/metrics");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->headers["www-authenticate"], HasSubstr("Basic realm=\"suanli\""));
  HttpClient::Options wrong;
  wrong.username = "prom";
  wrong.password = "nope";
  EXPECT_EQ(Get(wrong, "/metrics")->status, 401);
  HttpClient::Options right;
  right.username = "prom";
  right.password = "pw";
  auto m = Get(right, "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->body, "basic prom / auth=");
  HttpClient::Options token;
  token.bearer_token = kTokenA;
  EXPECT_EQ(Get(token, "/metrics")->status, 403);  // a write credential
  HttpClient poster(token);
  auto w = poster.Post(Url("/write"), "x", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->status, 200);
  EXPECT_EQ(w->body, "bearer dc-a /a auth=");
  EXPECT_EQ(Get(none, "/-/healthy")->status, 200);
  EXPECT_EQ(Counter("suanli_http_auth_refused_total", "missing"), 1);
  EXPECT_EQ(Counter("suanli_http_auth_refused_total", "invalid"), 1);
  EXPECT_EQ(Counter("suanli_http_auth_refused_total", "forbidden"), 1);
}

TEST_F(HttpTlsTest, ReloadReplacesCredentialsAndTls) {
  StartServer("credentials:\n  - name: a\n    bearer_tokens: [" + std::string(kTokenA) +
              "]\n    scopes: [read]\n");
  HttpClient::Options token;
  token.bearer_token = kTokenA;
  EXPECT_EQ(Get(token, "/data")->status, 200);
  auto next = ParseWebConfig(
      "web.yml",
      "credentials:\n  - name: a\n    bearer_tokens: [" + std::string(kTokenA) + "-rotated]\n",
      *dir_);
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(server_->SetWebConfig(*next).ok());
  EXPECT_EQ(Get(token, "/data")->status, 401);
  // A config whose files do not load changes nothing.
  WebConfig broken = *next;
  broken.has_tls = true;
  broken.tls.cert_file = *dir_ + "/missing.crt";
  broken.tls.key_file = *dir_ + "/missing.key";
  EXPECT_FALSE(server_->SetWebConfig(broken).ok());
  EXPECT_FALSE(server_->tls());
}

TEST_F(HttpTlsTest, MinVersionTls13RefusesTls12Clients) {
  StartServer(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  min_version: TLS13\n");
  std::string base = "openssl s_client -connect 127.0.0.1:" + Port() + " -CAfile '" + pki_->ca_crt +
                     "' </dev/null >/dev/null 2>&1";
  EXPECT_NE(std::system((base + " -tls1_2").c_str()), 0);
  EXPECT_EQ(std::system((base + " -tls1_3").c_str()), 0);
}

TEST_F(HttpTlsTest, StalledHandshakeTimesOutWhileOthersAreServed) {
  StartServer("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
              /*read_timeout_seconds=*/1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(Port())));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Sends half a ClientHello record header and stops.
  ASSERT_EQ(send(fd, "\x16\x03\x01", 3, 0), 3);
  auto ok = Get(Trusting(), "/data");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto start = std::chrono::steady_clock::now();
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_LE(n, 0);  // closed by the server
  EXPECT_LT(waited, std::chrono::seconds(4));
  close(fd);
}

}  // namespace
}  // namespace suanli
