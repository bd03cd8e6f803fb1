#include "core/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/http_client.h"

namespace suanli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

HttpServer::Options LocalOptions() {
  HttpServer::Options options;
  options.listen_address = "127.0.0.1:0";
  return options;
}

std::string Url(const HttpServer& server, const std::string& target) {
  return "http://" + server.address() + target;
}

// A raw TCP connection to the server, for what HttpClient cannot send.
class RawConnection {
 public:
  explicit RawConnection(const std::string& address) {
    int port = std::stoi(address.substr(address.rfind(':') + 1));
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    SetReceiveTimeout(std::chrono::seconds(10));
  }
  ~RawConnection() { close(fd_); }

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  void SetReceiveTimeout(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until the server closes the connection; *closed is false when the receive timeout
  // (or an error) ended the wait instead.
  std::string ReadUntilClose(bool* closed) {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      *closed = n == 0;
      return out;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

int CountOf(const std::string& haystack, const std::string& needle) {
  int count = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

HttpResponse Ok(const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); }

TEST(HttpServerTest, GetAndPostRoundTrip) {
  HttpServer server(LocalOptions());
  std::mutex mu;
  HttpRequest seen;
  auto record = [&](const HttpRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    seen = request;
    HttpResponse response;
    response.status = request.method == "POST" ? 201 : 200;
    response.content_type = "application/json";
    response.body = "{\"path\":\"" + request.path + "\"}";
    response.headers["X-Reply"] = "yes";
    return response;
  };
  server.Route("GET", "/echo", record);
  server.Route("POST", "/echo", record);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_THAT(server.address(), StartsWith("127.0.0.1:"));
  EXPECT_NE(server.address(), "127.0.0.1:0");

  HttpClient client;
  auto get = client.Get(Url(server, "/echo?a=1&b=hello+world&c=%2Fx%20y%zz&a=2&flag&&=v"));
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "{\"path\":\"/echo\"}");
  EXPECT_EQ(get->headers["content-type"], "application/json");
  EXPECT_EQ(get->headers["x-reply"], "yes");
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen.method, "GET");
    EXPECT_EQ(seen.path, "/echo");
    std::map<std::string, std::string> want = {
        {"a", "2"}, {"b", "hello world"}, {"c", "/x y%zz"}, {"flag", ""}, {"", "v"}};
    EXPECT_EQ(seen.query, want);
    EXPECT_THAT(seen.remote_address, StartsWith("127.0.0.1:"));
    EXPECT_THAT(seen.Header("user-agent"), StartsWith("suanli/"));
    EXPECT_EQ(seen.Header("x-absent"), "");
  }

  const std::string body(100000, 'x');
  auto post = client.Post(Url(server, "/echo"), body,
                          {{"Content-Type", "application/x-protobuf"}, {"X-Mixed-Case", "V"}});
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  EXPECT_EQ(post->status, 201);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.Header("content-type"), "application/x-protobuf");
  EXPECT_EQ(seen.Header("x-mixed-case"), "V");
  EXPECT_EQ(seen.Header("expect"), "");  // the client never asks for 100-continue
  EXPECT_TRUE(seen.query.empty());
}

TEST(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/multi", Ok);
  server.Route("PUT", "/multi", Ok);
  ASSERT_TRUE(server.Start().ok());
  HttpClient client;

  auto missing = client.Get(Url(server, "/nope"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "not found\n");

  auto wrong = client.Post(Url(server, "/multi"), "x", {});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers["allow"], "GET, PUT");

  auto right = client.Get(Url(server, "/multi?x=1"));
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->status, 200);
}

TEST(HttpServerTest, BodyOverLimitIs413AndServerGoesOn) {
  auto options = LocalOptions();
  options.max_body_bytes = 1024;
  HttpServer server(options);
  std::atomic<int> calls{0};
  server.Route("POST", "/upload", [&](const HttpRequest& r) {
    ++calls;
    return HttpResponse::Text(200, std::to_string(r.body.size()));
  });
  ASSERT_TRUE(server.Start().ok());

  HttpClient client;
  auto at_limit = client.Post(Url(server, "/upload"), std::string(1024, 'a'), {});
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->status, 200);
  EXPECT_EQ(at_limit->body, "1024");

  // Large enough that the client is still sending when the 413 comes back.
  auto over = client.Post(Url(server, "/upload"), std::string(4 << 20, 'a'), {});
  ASSERT_TRUE(over.ok()) << over.status().ToString();
  EXPECT_EQ(over->status, 413);
  EXPECT_EQ(over->body, "request body exceeds 1024 bytes\n");
  EXPECT_EQ(calls.load(), 1);

  // Chunked bodies are limited too.
  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  raw.Send(
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
      std::string(0x800, 'b') + "\r\n0\r\n\r\n");
  bool closed = false;
  std::string reply = raw.ReadUntilClose(&closed);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 413"));
  EXPECT_TRUE(closed);

  HttpClient another;
  auto next = another.Post(Url(server, "/upload"), "small", {});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(calls.load(), 2);
}

TEST(HttpServerTest, OversizedHeaderIs431) {
  auto options = LocalOptions();
  options.max_header_bytes = 4096;
  HttpServer server(options);
  server.Route("GET", "/", Ok);
  ASSERT_TRUE(server.Start().ok());

  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  raw.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'h') + "\r\n\r\n");
  bool closed = false;
  EXPECT_THAT(raw.ReadUntilClose(&closed), StartsWith("HTTP/1.1 431"));
  EXPECT_TRUE(closed);
}

TEST(HttpServerTest, ManyKeepAliveClientsRunConcurrently) {
  auto options = LocalOptions();
  options.worker_threads = 16;
  HttpServer server(options);
  std::mutex mu;
  std::set<std::string> peers;
  server.Route("GET", "/sleep", [&](const HttpRequest& r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      peers.insert(r.remote_address);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return HttpResponse::Text(200, r.query.count("i") ? r.query.at("i") : "");
  });
  ASSERT_TRUE(server.Start().ok());

  constexpr int kClients = 50;
  constexpr int kRequestsEach = 4;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client;
      for (int i = 0; i < kRequestsEach; ++i) {
        std::string id = std::to_string(c) + "-" + std::to_string(i);
        auto r = client.Get(Url(server, "/sleep?i=" + id));
        if (r.ok() && r->status == 200 && r->body == id) ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(succeeded.load(), kClients * kRequestsEach);
  // Each client kept its one connection.
  EXPECT_EQ(peers.size(), static_cast<size_t>(kClients));
}

TEST(HttpServerTest, SlowHandlersOverlap) {
  HttpServer server(LocalOptions());  // default worker_threads (8)
  server.Route("GET", "/slow", [](const HttpRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return HttpResponse::Text(200, "done");
  });
  ASSERT_TRUE(server.Start().ok());

  constexpr int kRequests = 50;
  std::atomic<int> succeeded{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&] {
      HttpClient client;
      auto r = client.Get(Url(server, "/slow"));
      if (r.ok() && r->status == 200) ++succeeded;
    });
  }
  for (auto& t : threads) t.join();
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(succeeded.load(), kRequests);
  EXPECT_LT(elapsed, std::chrono::milliseconds(kRequests * 200 / 2));
}

// A RunOn::kIoThread route is answered on the I/O thread: it does not wait for a worker, even
// when every worker is busy.
TEST(HttpServerTest, IoThreadRoutesNeedNoWorker) {
  auto options = LocalOptions();
  options.worker_threads = 1;
  HttpServer server(options);
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> worker_calls{0}, io_calls{0};
  server.Route("GET", "/busy", [&](const HttpRequest&) {
    if (worker_calls++ == 0) entered.set_value();
    released.wait();
    return HttpResponse::Text(200, "busy done");
  });
  server.Route(
      "POST", "/write",
      [&](const HttpRequest& r) {
        ++io_calls;
        return HttpResponse::Text(200, "wrote " + r.body);
      },
      kScopeRead, HttpServer::RunOn::kIoThread);
  ASSERT_TRUE(server.Start().ok());

  std::promise<Result<HttpClientResponse>> busy;
  std::thread busy_client([&] {
    HttpClient client;
    busy.set_value(client.Get(Url(server, "/busy")));
  });
  entered.get_future().wait();  // the only worker is now blocked

  std::promise<Result<HttpClientResponse>> write;
  std::thread write_client([&] {
    HttpClient client;
    write.set_value(client.Post(Url(server, "/write"), "abc", {{"content-type", "text/plain"}}));
  });
  auto written = write.get_future();
  const bool answered = written.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  write_client.join();
  busy_client.join();
  ASSERT_TRUE(answered) << "the I/O-thread route waited for the busy worker";
  auto w = written.get();
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->status, 200);
  EXPECT_EQ(w->body, "wrote abc");
  auto b = busy.get_future().get();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->body, "busy done");
  EXPECT_EQ(worker_calls.load(), 1);
  EXPECT_EQ(io_calls.load(), 1);
}

TEST(HttpServerTest, KeepAliveReusesOneConnection) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/peer",
               [](const HttpRequest& r) { return HttpResponse::Text(200, r.remote_address); });
  ASSERT_TRUE(server.Start().ok());

  HttpClient client;
  std::vector<std::string> peers;
  for (int i = 0; i < 3; ++i) {
    auto r = client.Get(Url(server, "/peer"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    peers.push_back(r->body);
  }
  EXPECT_THAT(peers[0], StartsWith("127.0.0.1:"));
  EXPECT_EQ(peers[0], peers[1]);
  EXPECT_EQ(peers[1], peers[2]);
}

TEST(HttpServerTest, PipelinedRequestsAndConnectionClose) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());

  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  raw.Send(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool closed = false;
  std::string reply = raw.ReadUntilClose(&closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(CountOf(reply, "HTTP/1.1 200 OK"), 2) << reply;
  EXPECT_THAT(reply, HasSubstr("Connection: close"));
}

TEST(HttpServerTest, Http10ClosesAfterResponse) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());

  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  raw.Send("GET /a HTTP/1.0\r\n\r\n");
  bool closed = false;
  std::string reply = raw.ReadUntilClose(&closed);
  EXPECT_TRUE(closed);
  EXPECT_THAT(reply, StartsWith("HTTP/1.0 200 OK"));
  EXPECT_THAT(reply, HasSubstr("\r\n\r\nok\n"));
}

TEST(HttpServerTest, ExpectContinueIsAnswered) {
  HttpServer server(LocalOptions());
  server.Route("POST", "/a", [](const HttpRequest& r) { return HttpResponse::Text(200, r.body); });
  ASSERT_TRUE(server.Start().ok());

  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  raw.Send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
      "Connection: close\r\n\r\n");
  char buf[64];
  ssize_t n = recv(raw.fd(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  raw.Send("hello");
  bool closed = false;
  std::string reply = raw.ReadUntilClose(&closed);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(reply, HasSubstr("\r\n\r\nhello"));
}

TEST(HttpServerTest, GarbageIs400AndServerGoesOn) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());

  {
    RawConnection raw(server.address());
    ASSERT_TRUE(raw.connected());
    raw.Send(std::string("\x16\x03\x01\x02\x00 garbage\r\n\r\n", 18));
    bool closed = false;
    std::string reply = raw.ReadUntilClose(&closed);
    EXPECT_THAT(reply, StartsWith("HTTP/1.1 400"));
    EXPECT_TRUE(closed);
  }
  {
    RawConnection raw(server.address());
    ASSERT_TRUE(raw.connected());
    raw.Send("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    bool closed = false;
    EXPECT_THAT(raw.ReadUntilClose(&closed), StartsWith("HTTP/1.1 400"));
    EXPECT_TRUE(closed);
  }
  HttpClient client;
  auto r = client.Get(Url(server, "/a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerTest, HandlerExceptionIs500AndConnectionSurvives) {
  HttpServer server(LocalOptions());
  server.Route("GET", "/throw",
               [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  server.Route("GET", "/peer",
               [](const HttpRequest& r) { return HttpResponse::Text(200, r.remote_address); });
  ASSERT_TRUE(server.Start().ok());

  HttpClient client;
  auto before = client.Get(Url(server, "/peer"));
  auto thrown = client.Get(Url(server, "/throw"));
  auto after = client.Get(Url(server, "/peer"));
  ASSERT_TRUE(before.ok() && thrown.ok() && after.ok());
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(thrown->body, "internal error\n");
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(before->body, after->body);
}

TEST(HttpServerTest, SlowClientDoesNotBlockOthersAndTimesOut) {
  auto options = LocalOptions();
  options.io_threads = 1;  // the slow client and the others share the one I/O thread
  options.read_timeout_seconds = 1;
  HttpServer server(options);
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());

  RawConnection slow(server.address());
  ASSERT_TRUE(slow.connected());
  slow.Send("GET /a HTTP/1.1\r\nHost: x\r\n");  // and never the blank line
  auto start = Clock::now();

  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    auto r = client.Get(Url(server, "/a"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));

  // The half request is dropped once read_timeout_seconds have passed.
  bool closed = false;
  EXPECT_EQ(slow.ReadUntilClose(&closed), "");
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  auto options = LocalOptions();
  options.idle_timeout_seconds = 1;
  HttpServer server(options);
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());

  RawConnection raw(server.address());
  ASSERT_TRUE(raw.connected());
  auto start = Clock::now();
  bool closed = false;
  EXPECT_EQ(raw.ReadUntilClose(&closed), "");
  EXPECT_TRUE(closed);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(900));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST(HttpServerTest, StopLetsInFlightRequestFinish) {
  HttpServer server(LocalOptions());
  std::promise<void> entered;
  server.Route("GET", "/slow", [&](const HttpRequest&) {
    entered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return HttpResponse::Text(200, "finished");
  });
  server.Route("GET", "/a", Ok);
  ASSERT_TRUE(server.Start().ok());
  const std::string address = server.address();

  // An idle keep-alive connection must not hold Stop() up.
  HttpClient idle;
  ASSERT_TRUE(idle.Get(Url(server, "/a")).ok());

  std::promise<Result<HttpClientResponse>> result;
  std::thread requester([&] {
    HttpClient client;
    result.set_value(client.Get(Url(server, "/slow")));
  });
  entered.get_future().wait();
  auto start = Clock::now();
  server.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  requester.join();
  auto r = result.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->headers["connection"], "close");

  server.Stop();  // twice is fine
  HttpClient after;
  auto refused = after.Get("http://" + address + "/a");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
}

TEST(HttpServerTest, BindFailureNamesTheAddress) {
  HttpServer first(LocalOptions());
  ASSERT_TRUE(first.Start().ok());
  auto options = LocalOptions();
  options.listen_address = first.address();
  HttpServer second(options);
  Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(first.address()));
  EXPECT_THAT(st.message(), HasSubstr("bind"));
}

TEST(HttpServerTest, ListenAddressForms) {
  {
    auto options = LocalOptions();
    options.listen_address = ":0";
    HttpServer server(options);
    server.Route("GET", "/a", Ok);
    ASSERT_TRUE(server.Start().ok());
    EXPECT_THAT(server.address(), StartsWith("0.0.0.0:"));
    std::string port = server.address().substr(server.address().rfind(':'));
    HttpClient client;
    auto r = client.Get("http://127.0.0.1" + port + "/a");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  {
    auto options = LocalOptions();
    options.listen_address = "localhost:0";
    HttpServer server(options);
    server.Route("GET", "/a", Ok);
    Status st = server.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    HttpClient client;
    auto r = client.Get(Url(server, "/a"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  {
    auto options = LocalOptions();
    options.listen_address = "[::1]:0";
    HttpServer server(options);
    server.Route("GET", "/a", Ok);
    if (server.Start().ok()) {
      EXPECT_THAT(server.address(), StartsWith("[::1]:"));
      HttpClient client;
      auto r = client.Get(Url(server, "/a"));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }  // else: no IPv6 loopback here
  }
  for (const char* bad : {"nocolon", "127.0.0.1:99999", "127.0.0.1:x", "::1:80", "[::1:80"}) {
    auto options = LocalOptions();
    options.listen_address = bad;
    HttpServer server(options);
    Status st = server.Start();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr(bad));
  }
}

}  // namespace
}  // namespace suanli
