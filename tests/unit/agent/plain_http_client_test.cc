#include "agent/plain_http_client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace suanli::agent {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// A loopback HTTP server that answers each request it reads with the next scripted reply, byte
// for byte as given, one connection at a time: the framings, interim answers and closes a
// receiver may send, which a real server library would not let a test choose.
class ScriptedServer {
 public:
  struct Reply {
    std::string bytes;
    bool close_after = false;  // close the connection once the reply is written
    bool silent = false;       // never answer (and keep the connection open)
  };

  explicit ScriptedServer(std::vector<Reply> replies) : replies_(std::move(replies)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  std::string url(const std::string& path = "/api/v1/write") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_; }
  // Each request as read: head and body.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  // Waits up to 50 ms for `fd` to be readable (the loops check stop_ in between).
  static bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void Serve() {
    size_t next = 0;
    while (!stop_) {
      if (!Readable(listen_fd_)) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      std::string buf;
      bool open = true;
      while (open && !stop_) {
        // One request: the head, then Content-Length bytes of body.
        size_t head_end;
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos && open && !stop_) {
          open = ReadMore(fd, &buf);
        }
        if (!open || stop_) break;
        size_t length = 0;
        size_t at = buf.find("Content-Length: ");
        if (at != std::string::npos && at < head_end) length = std::stoul(buf.substr(at + 16));
        while (buf.size() < head_end + 4 + length && open && !stop_) open = ReadMore(fd, &buf);
        if (!open || stop_) break;
        {
          std::lock_guard lock(mu_);
          requests_.push_back(buf.substr(0, head_end + 4 + length));
        }
        buf.erase(0, head_end + 4 + length);
        if (next >= replies_.size()) break;
        const Reply& reply = replies_[next++];
        if (reply.silent) {
          while (!stop_) Readable(fd);
          break;
        }
        size_t off = 0;
        while (off < reply.bytes.size()) {
          ssize_t n = ::send(fd, reply.bytes.data() + off, reply.bytes.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += static_cast<size_t>(n);
        }
        if (reply.close_after) break;
      }
      ::close(fd);
    }
  }

  // Appends what `fd` has; false once the peer closed it.
  bool ReadMore(int fd, std::string* buf) {
    if (!Readable(fd)) return true;
    char chunk[65536];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf->append(chunk, static_cast<size_t>(n));
    return true;
  }

  std::vector<Reply> replies_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

const std::string kNoContent = "HTTP/1.1 204 No Content\r\n\r\n";

PlainHttpClient Client(milliseconds timeout = milliseconds(10000)) {
  return PlainHttpClient(PlainHttpClient::Options{timeout, milliseconds(5000), "s3cret"});
}

TEST(PlainHttpClientTest, KeepAliveSendsEveryRequestOverOneConnection) {
  ScriptedServer server({{kNoContent}, {kNoContent}, {kNoContent}});
  auto client = Client();
  for (int i = 0; i < 3; ++i) {
    auto r = client.Post(server.url(), "body-" + std::to_string(i),
                         {{"Content-Encoding", "snappy"}, {"User-Agent", "suanli-agent/test"}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 204);
  }
  EXPECT_EQ(server.connections(), 1);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  const std::string& first = requests[0];
  EXPECT_THAT(first, ::testing::StartsWith("POST /api/v1/write HTTP/1.1\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\nHost: 127.0.0.1:"));
  EXPECT_THAT(first, HasSubstr("\r\nContent-Encoding: snappy\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\nUser-Agent: suanli-agent/test\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\nAuthorization: Bearer s3cret\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\nContent-Length: 6\r\n\r\nbody-0"));
  EXPECT_THAT(requests[2], ::testing::EndsWith("\r\n\r\nbody-2"));
}

TEST(PlainHttpClientTest, ChunkedReplyIsReadWholeAndTheConnectionKept) {
  ScriptedServer server({{"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
                          "Content-Type: text/plain\r\n\r\n"
                          "5;note=first\r\nout o\r\n10\r\nf order sample\r\n\r\n"
                          "0\r\nX-Trailer: t\r\n\r\n"},
                         {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}});
  auto client = Client();
  auto refused = client.Post(server.url(), "x", {});
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->body, "out of order sample\r\n");
  EXPECT_EQ(refused->headers["content-type"], "text/plain");
  // The chunked framing was consumed exactly: the next answer on the connection is read whole.
  auto ok = client.Post(server.url(), "y", {});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "ok");
  EXPECT_EQ(server.connections(), 1);
}

TEST(PlainHttpClientTest, RedirectIsReturnedNotFollowed) {
  ScriptedServer server({{"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/moved"
                          "\r\nContent-Length: 0\r\n\r\n"},
                         {kNoContent}});
  auto client = Client();
  auto r = client.Post(server.url(), "x", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 307);
  EXPECT_EQ(r->headers["location"], "http://127.0.0.1:1/moved");
  EXPECT_EQ(server.requests().size(), 1u);
}

// A server may send interim answers (100 Continue, 103 Early Hints) before the final one even
// unasked; the final answer is the result, and the connection stays in step.
TEST(PlainHttpClientTest, InterimAnswersAreSkipped) {
  ScriptedServer server({{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>"
                          "\r\n\r\n" +
                          kNoContent},
                         {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}});
  auto client = Client();
  auto first = client.Post(server.url(), "x", {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->status, 204);
  auto second = client.Post(server.url(), "y", {});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "ok");
  EXPECT_EQ(server.connections(), 1);
}

TEST(PlainHttpClientTest, NoAnswerWithinTheTimeoutIsDeadlineExceededNamingTheUrl) {
  ScriptedServer server({{"", false, /*silent=*/true}});
  auto client = Client(milliseconds(200));
  auto r = client.Post(server.url(), "x", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(server.url()));
}

TEST(PlainHttpClientTest, KeptConnectionTheServerClosedIsRetriedOnceOnANewOne) {
  // The first answer announces nothing, but the server closes the connection after it.
  ScriptedServer server({{kNoContent, /*close_after=*/true}, {kNoContent}});
  auto client = Client();
  auto first = client.Post(server.url(), "x", {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = client.Post(server.url(), "y", {});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 204);
  EXPECT_EQ(server.connections(), 2);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[1], ::testing::EndsWith("\r\n\r\ny"));
}

TEST(PlainHttpClientTest, BodyWithoutLengthRunsToTheCloseAndTheNextRequestReconnects) {
  ScriptedServer server(
      {{"HTTP/1.1 500 Internal Server Error\r\n\r\nstorage full", /*close_after=*/true},
       {kNoContent}});
  auto client = Client();
  auto r = client.Post(server.url(), "x", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "storage full");
  auto next = client.Post(server.url(), "y", {});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->status, 204);
  EXPECT_EQ(server.connections(), 2);
}

TEST(PlainHttpClientTest, LargeBodiesGoWholeAndLargeAnswersAreCappedButConsumed) {
  std::string answer(100000, 'e');
  ScriptedServer server(
      {{"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 100000\r\n\r\n" + answer},
       {kNoContent}});
  auto client = Client();
  std::string body(300000, 'b');
  body.back() = 'z';
  auto r = client.Post(server.url(), body, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body.size(), size_t{64} << 10);
  auto next = client.Post(server.url(), "y", {});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->status, 204);
  EXPECT_EQ(server.connections(), 1);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0], ::testing::EndsWith("\r\n\r\n" + body));
}

TEST(PlainHttpClientTest, RefusedConnectionIsUnavailableNamingTheUrl) {
  // A port that was free a moment ago: nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/w";
  auto client = Client();
  auto r = client.Post(url, "x", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(url));
}

TEST(PlainHttpClientTest, UrlsItCannotServeAreInvalidArguments) {
  auto client = Client();
  for (const std::string url :
       {"https://127.0.0.1:9/w", "http://user:pw@127.0.0.1:9/w", "http://127.0.0.1:99999/w",
        "http://:9/w", "http://[::1/w", "ftp://127.0.0.1/w"}) {
    SCOPED_TRACE(url);
    auto r = client.Post(url, "x", {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  }
}

}  // namespace
}  // namespace suanli::agent
