// HttpServer on Boost.Beast: an acceptor and per-connection sessions driven by `io_threads`
// threads running one io_context; handlers run on an asio::thread_pool so that a blocking
// handler never holds up the I/O of other connections.
//
// Each connection is a Session whose operations all run on its own strand. It cycles through
//   kReading (idle wait, then header, then body) -> kHandling (worker pool) -> kWriting ->
//   kReading again for keep-alive, or kLingering (half-closed, draining) -> kClosed.
// Session is a template on the stream type: beast::tcp_stream, or TlsStream, which first does
// the handshake (in kReading, under the read timeout) and ends with a close_notify before the
// lingering close. Timeouts and socket calls go through beast::get_lowest_layer() so they work
// for both. Credentials are checked on the worker thread (bcrypt is slow), just before the
// handler.
#include "core/http_server.h"

#include <openssl/ssl.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace suanli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
inline constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// A half-closed connection is drained this long at most, so that the client reads our last
// response instead of a reset caused by its unread request bytes (e.g. a 413'd upload).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kReadChunk = 4096;
// A body is read with room for all of it (up to this much) instead of kReadChunk at a time:
// a 25 KB remote_write body took six reads, each its own completion on the strand. Buffers
// above kKeptBufferBytes are released once the request is read, so idle keep-alive
// connections stay small.
constexpr size_t kMaxBodyReadAhead = 1 << 20;
constexpr size_t kKeptBufferBytes = 64 << 10;

const std::string& EmptyString() {
  static const std::string* const kEmpty = new std::string();
  return *kEmpty;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: "%XX" escapes and '+' as space; a malformed escape
// is kept literally rather than rejecting the whole request.
std::string FormDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void ParseQuery(std::string_view query, std::map<std::string, std::string>* out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = FormDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : FormDecode(part.substr(eq + 1));
    (*out)[std::move(key)] = std::move(value);  // last one wins
  }
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const asio::ip::address addr = ep.address();
  std::string host = addr.to_string();
  if (addr.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// Splits "HOST:PORT" ("[v6]:PORT", ":PORT"); false when malformed.
bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = address.substr(0, colon);
  std::string p = address.substr(colon + 1);
  if (!h.empty() && h.front() == '[') {
    if (h.size() < 2 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // an unbracketed IPv6 address is ambiguous
  }
  if (p.empty() || p.size() > 5) return false;
  unsigned value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Header names and values a handler may set: no CR/LF (response splitting) and a token name.
bool ValidHeader(const std::string& name, const std::string& value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= ' ' || c == ':' || c == 127) return false;
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// A session as the server sees it, whatever its stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // The server is stopping: close now if idle or reading, else after the response is written.
  virtual void OnServerStopping() = 0;
};

// Beast 1.74 uses boost::string_view.
std::string_view SV(beast::string_view s) { return std::string_view(s.data(), s.size()); }

// What SetWebConfig() installed; replaced whole, never changed in place.
struct Security {
  std::shared_ptr<asio::ssl::context> tls;  // null: plain HTTP
  std::shared_ptr<const Authenticator> auth;
};

// At most one log line per interval for a kind of event, so that a scanner hammering the port
// cannot flood the log; the next line says how many were left out.
class LogLimiter {
 public:
  // True when this event may be logged; *suppressed is how many were not since the last one.
  bool Allow(uint64_t* suppressed) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (logged_ && now - last_ < std::chrono::seconds(10)) {
      ++skipped_;
      return false;
    }
    logged_ = true;
    last_ = now;
    *suppressed = skipped_;
    skipped_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  bool logged_ = false;
  std::chrono::steady_clock::time_point last_;
  uint64_t skipped_ = 0;
};

const std::shared_ptr<const PeerCertificate>& NoPeer() {
  static const auto* const kNone =
      new std::shared_ptr<const PeerCertificate>(std::make_shared<PeerCertificate>());
  return *kNone;
}

}  // namespace

const std::string& HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? EmptyString() : it->second;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

namespace {

using Options = HttpServer::Options;

// The server's state; HttpServer::Impl is this class (a named class in this file's anonymous
// namespace, because sessions need it and HttpServer::Impl is private).
class Server {
 public:
  explicit Server(Options options) : options_(std::move(options)) {
    if (options_.io_threads < 1) options_.io_threads = 1;
    if (options_.worker_threads < 1) options_.worker_threads = 1;
    auto security = std::make_shared<Security>();
    security->auth = std::make_shared<Authenticator>(WebConfig{});
    security_ = std::move(security);
    if (options_.registry != nullptr) {
      auto& refused = prometheus::BuildCounter()
                          .Name("suanli_http_auth_refused_total")
                          .Help(
                              "Requests refused by authentication (401) or authorization "
                              "(403), by reason.")
                          .Register(*options_.registry);
      for (const char* r : {"missing", "invalid", "forbidden"}) {
        auth_refused_[r] = &refused.Add({{"reason", r}});
      }
      handshake_failures_ = &prometheus::BuildCounter()
                                 .Name("suanli_http_tls_handshake_failures_total")
                                 .Help(
                                     "TLS connections that failed or timed out in the handshake "
                                     "(bad, expired or missing client certificates included).")
                                 .Register(*options_.registry)
                                 .Add({});
    }
  }
  ~Server() { Stop(); }

  struct RouteEntry {
    HttpHandler handler;
    uint32_t scope = kScopeRead;
    HttpServer::RunOn run_on = HttpServer::RunOn::kWorkerPool;
  };

  void Route(const std::string& method, const std::string& path, HttpHandler handler,
             uint32_t scope, HttpServer::RunOn run_on) {
    routes_[path][method] = {std::move(handler), scope, run_on};
  }
  Status SetWebConfig(const WebConfig& config);
  bool tls() const { return security()->tls != nullptr; }
  Status Start();
  void Stop();
  std::string address() const { return address_; }

  // Called by sessions.
  const Options& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  asio::thread_pool& workers() { return *workers_; }
  // Returns the route of (method, path), or nullptr with *fallback set to the 404/405 answer.
  const RouteEntry* Find(const std::string& method, const std::string& path,
                         HttpResponse* fallback) const;
  std::shared_ptr<const Security> security() const {
    std::lock_guard<std::mutex> lock(security_mu_);
    return security_;
  }
  // The answer to a request whose credentials did not pass; counted and logged.
  HttpResponse Refuse(const AuthResult& auth, const Security& security, const HttpRequest& req);
  void OnHandshakeFailed(const std::string& remote, const beast::error_code& ec);
  // False when the server is stopping (the session must not start).
  bool Register(const std::shared_ptr<SessionBase>& session);
  void Unregister(SessionBase* session);
  void BeginRequest();
  void EndRequest();

 private:
  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);

  Options options_;
  std::map<std::string, std::map<std::string, RouteEntry>> routes_;  // path -> method
  mutable std::mutex security_mu_;
  std::shared_ptr<const Security> security_;
  std::map<std::string, prometheus::Counter*> auth_refused_;  // by reason; empty: no registry
  prometheus::Counter* handshake_failures_ = nullptr;
  LogLimiter auth_log_, handshake_log_;
  std::string address_;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};

  // Guards sessions_ and in_flight_. Declared before the I/O objects: destroying the
  // io_context destroys sessions, which unregister here.
  std::mutex mu_;
  std::condition_variable in_flight_cv_;
  int in_flight_ = 0;  // requests read whose response is not written yet
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_;

  std::unique_ptr<asio::io_context> ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::optional<tcp::acceptor> acceptor_;      // on its own strand
  std::optional<asio::steady_timer> backoff_;  // on the acceptor's strand
  std::unique_ptr<asio::thread_pool> workers_;
  std::vector<std::thread> io_threads_;
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Server* server, Stream stream, std::string remote_address)
      : server_(server), stream_(std::move(stream)), remote_address_(std::move(remote_address)) {}

  ~Session() override {
    if (counted_) server_->EndRequest();
    server_->Unregister(this);
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kIsTls<Stream>) {
        self->Handshake();
      } else {
        self->ReadRequest();
      }
    });
  }

  // The TLS context outlives the session even when SetWebConfig() replaces it.
  void KeepContext(std::shared_ptr<asio::ssl::context> ctx) { tls_context_ = std::move(ctx); }

  void OnServerStopping() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->state_ == State::kReading || self->state_ == State::kLingering) self->Close();
    });
  }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering, kClosed };

  auto& Lowest() { return beast::get_lowest_layer(stream_); }

  // TLS only: a client must finish the handshake within the read timeout.
  void Handshake() {
    if (server_->stopping()) return Close();
    state_ = State::kReading;  // Stop() may close it at once
    Lowest().expires_after(std::chrono::seconds(server_->options().read_timeout_seconds));
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (self->state_ == State::kClosed) return;
                              if (ec) {
                                // Closed by Stop(): not the client's failure.
                                if (!self->server_->stopping()) {
                                  self->server_->OnHandshakeFailed(self->remote_address_, ec);
                                }
                                return self->Close();
                              }
                              self->peer_ = std::make_shared<const PeerCertificate>(
                                  PeerCertificateOf(self->stream_.native_handle()));
                              self->ReadRequest();
                            });
  }

  void ReadRequest() {
    if (server_->stopping()) return Close();
    state_ = State::kReading;
    const auto& opt = server_->options();
    parser_.emplace();
    parser_->body_limit(static_cast<std::uint64_t>(opt.max_body_bytes));
    parser_->header_limit(static_cast<std::uint32_t>(opt.max_header_bytes));
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already here
    // Idle keep-alive wait: the idle timeout runs until the first byte of the next request,
    // then the read timeout applies to the rest of it.
    Lowest().expires_after(std::chrono::seconds(opt.idle_timeout_seconds));
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (self->state_ == State::kClosed) return;
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    Lowest().expires_after(std::chrono::seconds(server_->options().read_timeout_seconds));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (self->state_ == State::kClosed) return;
          if (ec) return self->OnReadError(ec);
          if (beast::iequals(self->parser_->get()[http::field::expect], "100-continue") &&
              !self->parser_->is_done()) {
            return self->SendContinue();
          }
          self->ReadBody();
        });
  }

  // curl and others wait for "100 Continue" (or a second) before sending a body.
  void SendContinue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (self->state_ == State::kClosed) return;
                        if (ec) return self->Close();
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    if (auto length = parser_->content_length(); length && *length > buffer_.capacity()) {
      buffer_.reserve(static_cast<size_t>(std::min<uint64_t>(*length, kMaxBodyReadAhead)));
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (self->state_ == State::kClosed) return;
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    const auto& opt = server_->options();
    if (ec == http::error::body_limit) {
      return SendErrorAndClose(
          413, "request body exceeds " + std::to_string(opt.max_body_bytes) + " bytes\n");
    }
    if (ec == http::error::header_limit) {
      return SendErrorAndClose(
          431, "request header exceeds " + std::to_string(opt.max_header_bytes) + " bytes\n");
    }
    // end_of_stream / partial_message: the client went away; timeouts have closed the socket.
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return SendErrorAndClose(400, "bad request: " + ec.message() + "\n");
    }
    Close();
  }

  void SendErrorAndClose(int status, std::string reason) {
    if (server_->options().on_refused) server_->options().on_refused(status);
    keep_alive_ = false;
    version_ = 11;
    WriteResponse(HttpResponse::Text(status, std::move(reason)));
  }

  void OnRequest() {
    http::request<http::string_body> req = parser_->release();
    parser_.reset();
    if (buffer_.size() == 0 && buffer_.capacity() > kKeptBufferBytes) buffer_.shrink_to_fit();
    state_ = State::kHandling;
    counted_ = true;
    server_->BeginRequest();
    keep_alive_ = req.keep_alive();
    version_ = req.version();

    HttpRequest request;
    request.method = std::string(SV(req.method_string()));
    std::string_view target = SV(req.target());
    size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), &request.query);
    for (const auto& field : req) {
      std::string name = ToLower(SV(field.name_string()));
      auto [it, inserted] = request.headers.emplace(name, std::string(SV(field.value())));
      if (!inserted) (it->second += ", ").append(SV(field.value()));  // RFC 7230 3.2.2
    }
    request.body = std::move(req.body());
    request.remote_address = remote_address_;

    HttpResponse fallback;
    const Server::RouteEntry* route = server_->Find(request.method, request.path, &fallback);
    if (route == nullptr) return WriteResponse(std::move(fallback));
    // On this I/O thread (we are on the session's strand) when the route allows it and no
    // bcrypt check may be needed: that one takes tens of milliseconds.
    std::shared_ptr<const Security> security = server_->security();
    if (route->run_on == HttpServer::RunOn::kIoThread &&
        !security->auth->MayBeSlow(request.Header("authorization"))) {
      return WriteResponse(Handle(*route, *security, request));
    }
    asio::post(server_->workers(), [self = this->shared_from_this(), route,
                                    security = std::move(security),
                                    request = std::move(request)]() mutable {
      HttpResponse response = self->Handle(*route, *security, request);
      asio::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        if (self->state_ == State::kClosed) {
          self->Done();
          return;
        }
        self->WriteResponse(std::move(response));
      });
    });
  }

  // Checks the request's credentials against the route's scope, then calls its handler.
  HttpResponse Handle(const Server::RouteEntry& route, const Security& security,
                      HttpRequest& request) {
    try {
      AuthResult auth =
          security.auth->Authenticate(request.Header("authorization"), *peer_, route.scope);
      // Once checked here, handlers never see the secret, so they cannot log it.
      if (security.auth->enabled()) request.headers.erase("authorization");
      if (auth.outcome != AuthResult::Outcome::kOk) {
        return server_->Refuse(auth, security, request);
      }
      request.identity = std::move(auth.identity);
      return route.handler(request);
    } catch (...) {
      // No logging in this layer; the client learns of it, the server keeps serving.
      return HttpResponse::Text(500, "internal error\n");
    }
  }

  void WriteResponse(HttpResponse r) {
    state_ = State::kWriting;
    const bool keep_alive = keep_alive_ && !server_->stopping();
    int status = r.status;
    if (status < 200 || status > 599) status = 500;  // 1xx would break the exchange
    res_ = http::response<http::string_body>();
    res_.version(version_);
    res_.result(static_cast<unsigned>(status));
    // These statuses must not carry a body (beast refuses to serialize one).
    const bool no_body = status == 204 || status == 304;
    if (!no_body) {
      if (!r.content_type.empty()) res_.set(http::field::content_type, r.content_type);
      res_.body() = std::move(r.body);
    }
    for (const auto& [name, value] : r.headers) {
      if (ValidHeader(name, value)) res_.set(name, value);
    }
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    Lowest().expires_after(std::chrono::seconds(server_->options().read_timeout_seconds));
    http::async_write(stream_, res_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->Done();
                        if (self->state_ == State::kClosed) return;
                        if (ec) return self->Close();
                        if (!keep_alive || self->server_->stopping()) {
                          return self->LingeringClose();
                        }
                        self->ReadRequest();
                      });
  }

  // The response of the current request is written (or will never be).
  void Done() {
    if (counted_) {
      counted_ = false;
      server_->EndRequest();
    }
  }

  // Half-closes and reads until the client closes too (or kLingerTimeout), so that unread
  // request bytes do not turn our close into a reset that destroys the response in flight.
  void LingeringClose() {
    state_ = State::kLingering;
    Lowest().expires_after(kLingerTimeout);  // once: a trickling client cannot extend it
    if constexpr (kIsTls<Stream>) {
      // Send close_notify without waiting for the client's (marking it as received makes
      // SSL_shutdown complete at once), then linger on the TCP level like plain HTTP.
      SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code ec) {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->Close();
        self->HalfCloseAndDrain();
      });
    } else {
      HalfCloseAndDrain();
    }
  }

  void HalfCloseAndDrain() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    buffer_.clear();
    Drain();
  }

  void Drain() {
    Lowest().async_read_some(buffer_.prepare(kReadChunk),
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (self->state_ == State::kClosed) return;
                               if (ec) return self->Close();
                               self->Drain();
                             });
  }

  void Close() {
    state_ = State::kClosed;
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close();
  }

  Server* const server_;
  std::shared_ptr<asio::ssl::context> tls_context_;  // declared before stream_: outlives it
  Stream stream_;
  const std::string remote_address_;
  std::shared_ptr<const PeerCertificate> peer_ = NoPeer();  // set by the TLS handshake
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  State state_ = State::kReading;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool counted_ = false;  // this session holds one of the server's in-flight counts
};

const Server::RouteEntry* Server::Find(const std::string& method, const std::string& path,
                                       HttpResponse* fallback) const {
  auto by_path = routes_.find(path);
  if (by_path == routes_.end()) {
    *fallback = HttpResponse::Text(404, "not found\n");
    return nullptr;
  }
  auto by_method = by_path->second.find(method);
  if (by_method != by_path->second.end()) return &by_method->second;
  std::string allow;
  for (const auto& [m, unused] : by_path->second) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  *fallback = HttpResponse::Text(405, "method not allowed\n");
  fallback->headers["Allow"] = allow;
  return nullptr;
}

Status Server::SetWebConfig(const WebConfig& config) {
  auto next = std::make_shared<Security>();
  if (config.has_tls) {
    auto ctx = BuildServerSslContext(config.tls);
    if (!ctx.ok()) return ctx.status().WithContext(config.source + ": tls_server_config");
    // asio's context takes ownership of the SSL_CTX.
    next->tls = std::make_shared<asio::ssl::context>(ctx->release());
  }
  next->auth = std::make_shared<Authenticator>(config);
  std::lock_guard<std::mutex> lock(security_mu_);
  security_ = std::move(next);
  return Status::Ok();
}

HttpResponse Server::Refuse(const AuthResult& auth, const Security& security,
                            const HttpRequest& req) {
  const char* reason = auth.outcome_name();
  auto counter = auth_refused_.find(reason);
  if (counter != auth_refused_.end()) counter->second->Increment();
  uint64_t suppressed = 0;
  if (auth_log_.Allow(&suppressed)) {
    spdlog::warn(
        "http request refused status={} reason={} detail=\"{}\" method={} path={} "
        "remote={} suppressed_since_last={}",
        auth.http_status(), reason, auth.reason, req.method, req.path, req.remote_address,
        suppressed);
  }
  const bool forbidden = auth.outcome == AuthResult::Outcome::kForbidden;
  HttpResponse r = HttpResponse::Text(
      auth.http_status(), (forbidden ? "forbidden: " : "unauthorized: ") + auth.reason + "\n");
  if (!forbidden) r.headers["WWW-Authenticate"] = security.auth->challenge();
  return r;
}

void Server::OnHandshakeFailed(const std::string& remote, const beast::error_code& ec) {
  if (handshake_failures_ != nullptr) handshake_failures_->Increment();
  uint64_t suppressed = 0;
  if (handshake_log_.Allow(&suppressed)) {
    spdlog::warn("tls handshake failed remote={} error=\"{}\" suppressed_since_last={}", remote,
                 ec.message(), suppressed);
  }
}

bool Server::Register(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping()) return false;  // checked under mu_: Stop() sees every registered session
  sessions_[session.get()] = session;
  return true;
}

void Server::Unregister(SessionBase* session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(session);
}

void Server::BeginRequest() {
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_;
}

void Server::EndRequest() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) in_flight_cv_.notify_all();
}

Status Server::Start() {
  if (started_) return Internal("HttpServer::Start called twice");
  const std::string& listen = options_.listen_address;
  const std::string context = "listen on " + listen;
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(listen, &host, &port)) {
    return InvalidArgument(context + ": want HOST:PORT, [IPv6]:PORT or :PORT");
  }
  ioc_ = std::make_unique<asio::io_context>(options_.io_threads);

  std::vector<tcp::endpoint> endpoints;
  beast::error_code ec;
  if (host.empty()) {
    endpoints.emplace_back(asio::ip::address_v4::any(), port);
  } else if (auto addr = asio::ip::make_address(host, ec); !ec) {
    endpoints.emplace_back(addr, port);
  } else {
    tcp::resolver resolver(*ioc_);
    auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service, ec);
    if (ec) return InvalidArgument(context + ": resolve " + host + ": " + ec.message());
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    if (endpoints.empty()) return InvalidArgument(context + ": " + host + " has no address");
  }

  acceptor_.emplace(asio::make_strand(*ioc_));
  std::string error;
  StatusCode code = StatusCode::kUnavailable;
  for (const auto& endpoint : endpoints) {
    const char* step = "open";
    if (!acceptor_->open(endpoint.protocol(), ec)) {
      step = "set SO_REUSEADDR";
      if (!acceptor_->set_option(asio::socket_base::reuse_address(true), ec)) {
        step = "bind";
        if (!acceptor_->bind(endpoint, ec)) {
          step = "listen";
          acceptor_->listen(asio::socket_base::max_listen_connections, ec);
        }
      }
    }
    if (!ec) break;
    error = std::string(step) + " " + FormatEndpoint(endpoint) + ": " + ec.message();
    if (ec == asio::error::access_denied) code = StatusCode::kPermissionDenied;
    beast::error_code ignored;
    acceptor_->close(ignored);
  }
  if (ec) {
    acceptor_.reset();
    ioc_.reset();
    return Status(code, context + ": " + error);
  }
  address_ = FormatEndpoint(acceptor_->local_endpoint(ec));
  backoff_.emplace(acceptor_->get_executor());

  started_ = true;
  workers_ = std::make_unique<asio::thread_pool>(options_.worker_threads);
  // Keeps run() going while only worker-pool handlers are outstanding (during Stop()).
  work_.emplace(ioc_->get_executor());
  asio::dispatch(acceptor_->get_executor(), [this] { Accept(); });
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_->run();
          return;
        } catch (...) {
          // A completion handler threw (e.g. bad_alloc): that connection is dropped, the
          // server goes on.
        }
      }
    });
  }
  return Status::Ok();
}

void Server::Accept() {
  acceptor_->async_accept(
      asio::make_strand(*ioc_),
      [this](beast::error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void Server::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
  if (ec) {
    // EMFILE and friends: retrying at once would spin; pause a little.
    backoff_->expires_after(std::chrono::milliseconds(50));
    backoff_->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_->is_open()) Accept();
    });
    return;
  }
  beast::error_code ignored;
  tcp::endpoint remote = socket.remote_endpoint(ignored);
  // Responses go out in one write; Nagle would only delay the next pipelined one.
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<const Security> security = this->security();
  if (security->tls) {
    auto session = std::make_shared<Session<TlsStream>>(
        this, TlsStream(beast::tcp_stream(std::move(socket)), *security->tls),
        FormatEndpoint(remote));
    session->KeepContext(security->tls);
    if (Register(session)) session->Start();
  } else {
    auto session = std::make_shared<Session<beast::tcp_stream>>(
        this, beast::tcp_stream(std::move(socket)), FormatEndpoint(remote));
    if (Register(session)) session->Start();
  }
  Accept();
}

void Server::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;

  std::vector<std::shared_ptr<SessionBase>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.store(true, std::memory_order_release);
    for (auto& [raw, weak] : sessions_) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  asio::post(acceptor_->get_executor(), [this] {
    beast::error_code ignored;
    acceptor_->close(ignored);
    backoff_->cancel();
  });
  for (auto& s : sessions) s->OnServerStopping();
  sessions.clear();

  {
    std::unique_lock<std::mutex> lock(mu_);
    in_flight_cv_.wait_for(lock, std::chrono::seconds(options_.shutdown_grace_seconds),
                           [this] { return in_flight_ == 0; });
  }
  // Whatever still runs (slow writes, lingering closes) is cut off: sockets close when the
  // io_context destroys its pending handlers below.
  work_.reset();
  ioc_->stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  workers_->join();  // a handler still running is waited for: it holds its session
  backoff_.reset();
  acceptor_.reset();
  ioc_.reset();
  workers_.reset();
}

}  // namespace

class HttpServer::Impl : public Server {
 public:
  using Server::Server;
};

HttpServer::HttpServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(const std::string& method, const std::string& path, HttpHandler handler,
                       uint32_t scope, RunOn run_on) {
  impl_->Route(method, path, std::move(handler), scope, run_on);
}

Status HttpServer::SetWebConfig(const WebConfig& config) { return impl_->SetWebConfig(config); }

bool HttpServer::tls() const { return impl_->tls(); }

Status HttpServer::Start() { return impl_->Start(); }

std::string HttpServer::address() const { return impl_->address(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace suanli
