// HttpServer: the one HTTP/1.1 server of both binaries (Boost.Beast over Asio), plain or TLS.
//
// Connections are handled asynchronously by a small pool of I/O threads, so many idle
// keep-alive clients cost a socket each, not a thread. Handlers run on a separate worker pool
// (they may block, e.g. on a synced RocksDB write; concurrent writers then share one WAL sync),
// or, for routes registered with RunOn::kIoThread, on the I/O thread that read the request.
// Requests whose body exceeds Options::max_body_bytes are answered 413 without reaching a
// handler (headers over max_header_bytes: 431); malformed HTTP is answered 400 and the
// connection closed. A handler that throws gets its client a 500. Port 0 binds a free port: see
// address().
// Security comes from a WebConfig (core/web_config.h, `--web.config.file`): with
// tls_server_config every connection is TLS (handshake within read_timeout_seconds, failures
// counted and logged); each route has a scope, and on a worker thread, before the handler, the
// request's credentials (basic, bearer, client certificate) are checked: 401 with
// WWW-Authenticate when missing or wrong, 403 when they do not grant the scope. The handler
// then sees HttpRequest::identity, and (with authentication on) never the Authorization
// header.
// Thread-safety: Route() before Start(); Start()/Stop() from one thread; SetWebConfig() from
// any thread at any time (new connections get the new TLS context, new requests the new
// credentials); handlers are called concurrently from worker (or I/O) threads and must return
// (Stop() waits for running handlers).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/web_config.h"

namespace prometheus {
class Registry;
}

namespace suanli {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // target without the query string
  std::map<std::string, std::string> query;    // decoded query parameters (last one wins)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_address;  // "ip:port" of the client
  Identity identity;           // who sent it (anonymous when authentication is off)

  // Header value by lower-case name, or "" when absent.
  const std::string& Header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers

  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string listen_address = "127.0.0.1:0";  // HOST:PORT; ":PORT" means all interfaces
    int io_threads = 2;
    int worker_threads = 8;
    size_t max_body_bytes = 32 << 20;    // larger bodies get 413
    int idle_timeout_seconds = 120;      // keep-alive connections idle longer are closed
    int read_timeout_seconds = 30;       // a request must arrive whole within this (from its
                                         // first byte); also bounds writing the response
    size_t max_header_bytes = 16 << 10;  // request line + headers; larger get 431
    int shutdown_grace_seconds = 5;      // Stop() waits this long for in-flight responses
    // Where suanli_http_* metrics (auth refusals, TLS handshake failures) go; may be null.
    // Must outlive the server.
    prometheus::Registry* registry = nullptr;
    // Called (on an I/O thread) with the status when the server itself refuses a request
    // before any handler sees it (400 malformed, 413 body too large, 431 headers too large),
    // so that the owner can count it by its own reasons. May be empty.
    std::function<void(int status)> on_refused;
  };

  explicit HttpServer(Options options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Where a route's handler runs. kWorkerPool suits any handler. kIoThread runs it on the
  // connection's I/O thread, saving the two thread hand-offs (to a worker and back), about
  // half the context switches of a small request: only for handlers whose work is bounded by
  // the request (its body) and that block on nothing but a short wait such as the store's
  // group commit, since the I/O thread serves other connections meanwhile. A request with
  // credentials that may need a bcrypt check (Authenticator::MayBeSlow) still goes to the
  // worker pool.
  enum class RunOn { kWorkerPool, kIoThread };

  // Registers a handler for an exact (method, path). Unknown paths get 404, known paths with
  // another method 405. `scope` is what a credential must grant (kScopePublic: none, for
  // health checks); data endpoints default to kScopeRead.
  void Route(const std::string& method, const std::string& path, HttpHandler handler,
             uint32_t scope = kScopeRead, RunOn run_on = RunOn::kWorkerPool);

  // TLS and credentials (default: plain HTTP, no authentication). Fails, changing nothing,
  // when the TLS files do not load.
  Status SetWebConfig(const WebConfig& config);
  bool tls() const;

  // Binds and starts serving; fails with a message naming the address on bind errors.
  // HOST may be an IPv4 address, a bracketed IPv6 address ("[::1]"), a name (resolved; the first
  // address that binds is used) or empty (all IPv4 interfaces). Call at most once.
  Status Start();
  // The bound address "host:port" (the real port when 0 was asked for).
  std::string address() const;
  // Stops accepting, lets in-flight requests finish their handlers and write their responses
  // (up to shutdown_grace_seconds), closes connections and joins all threads. Idempotent.
  // Waits for handlers still running after the grace period; must not be called from one.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace suanli
