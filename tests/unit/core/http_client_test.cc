#include "core/http_client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>

#include "core/http_server.h"

namespace suanli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A loopback TCP socket bound to a free port; listening (connections complete but are never
// answered) or not (connections are refused).
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listening) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    if (listening) listen(fd_, 16);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~LoopbackSocket() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A server whose one route answers with what it was sent.
class EchoServer {
 public:
  EchoServer() : server_(Options()) {
    auto echo = [this](const HttpRequest& r) {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = r;
      HttpResponse response = HttpResponse::Text(
          r.query.count("status") ? std::stoi(r.query.at("status")) : 200, r.body);
      response.headers["X-Mixed-Case"] = "Value";
      return response;
    };
    server_.Route("GET", "/echo", echo);
    server_.Route("POST", "/echo", echo);
    Status st = server_.Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  std::string Url(const std::string& target) const {
    return "http://" + server_.address() + target;
  }
  HttpRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  static HttpServer::Options Options() {
    HttpServer::Options options;
    options.listen_address = "127.0.0.1:0";
    return options;
  }
  HttpServer server_;
  std::mutex mu_;
  HttpRequest last_;
};

TEST(HttpClientTest, PostSendsHeadersAndReadsResponse) {
  EchoServer server;
  HttpClient client;
  const std::string body(2 << 20, 'p');  // big enough that curl would ask for 100-continue
  auto r = client.Post(server.Url("/echo"), body,
                       {{"Content-Encoding", "snappy"},
                        {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                        {"X-Empty", ""}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->headers["x-mixed-case"], "Value");
  EXPECT_EQ(r->headers["content-length"], std::to_string(body.size()));
  HttpRequest seen = server.last();
  EXPECT_EQ(seen.Header("content-encoding"), "snappy");
  EXPECT_EQ(seen.Header("x-prometheus-remote-write-version"), "0.1.0");
  EXPECT_EQ(seen.headers.count("x-empty"), 1u);
  EXPECT_EQ(seen.headers.count("expect"), 0u);
  EXPECT_EQ(seen.headers.count("authorization"), 0u);
}

TEST(HttpClientTest, ServerErrorsAreResultsNotFailures) {
  EchoServer server;
  HttpClient client;
  auto r = client.Get(server.Url("/echo?status=503"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  auto missing = client.Get(server.Url("/missing"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpClientTest, BasicAuth) {
  EchoServer server;
  HttpClient::Options options;
  options.username = "user";
  options.password = "pass";
  HttpClient client(options);
  ASSERT_TRUE(client.Get(server.Url("/echo")).ok());
  EXPECT_EQ(server.last().Header("authorization"), "Basic dXNlcjpwYXNz");
}

TEST(HttpClientTest, BearerToken) {
  EchoServer server;
  HttpClient::Options options;
  options.bearer_token = "s3cret";
  HttpClient client(options);
  ASSERT_TRUE(client.Post(server.Url("/echo"), "x", {}).ok());
  EXPECT_EQ(server.last().Header("authorization"), "Bearer s3cret");
  // Options persist across requests on the reused handle.
  ASSERT_TRUE(client.Get(server.Url("/echo")).ok());
  EXPECT_EQ(server.last().Header("authorization"), "Bearer s3cret");
  EXPECT_EQ(server.last().method, "GET");
  EXPECT_EQ(server.last().body, "");
}

TEST(HttpClientTest, ClosedPortIsUnavailable) {
  LoopbackSocket closed(/*listening=*/false);
  const std::string url = "http://127.0.0.1:" + std::to_string(closed.port()) + "/x";
  HttpClient client;
  auto r = client.Get(url);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr(url));
}

TEST(HttpClientTest, CredentialsInUrlAreMaskedInErrors) {
  LoopbackSocket closed(/*listening=*/false);
  HttpClient client;
  auto r = client.Post(
      "http://user:hunter2@127.0.0.1:" + std::to_string(closed.port()) + "/api/v1/write", "x", {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(r.status().message(), HasSubstr("***@127.0.0.1"));
}

TEST(HttpClientTest, TimeoutIsDeadlineExceeded) {
  LoopbackSocket silent(/*listening=*/true);  // accepts (in the kernel) and never answers
  HttpClient::Options options;
  options.timeout = std::chrono::milliseconds(300);
  HttpClient client(options);
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/x";
  auto start = std::chrono::steady_clock::now();
  auto r = client.Get(url);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(url));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(HttpClientTest, BadUrlIsInvalidArgument) {
  HttpClient client;
  auto r = client.Get("gopher://127.0.0.1/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

}  // namespace
}  // namespace suanli
