// FaultProxy: a TCP proxy on 127.0.0.1 between two tiers that fails the way a WAN does: added
// latency per chunk, a blackhole (connections accepted, nothing forwarded or answered, as when
// a route disappears), and connections cut mid-request. Each connection gets two threads.
// Thread-safety: the setters may be called from any thread while connections run.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace suanli::it {

class FaultProxy {
 public:
  // Forwards to `target` ("127.0.0.1:PORT").
  explicit FaultProxy(std::string target);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  Status Start();
  // "127.0.0.1:PORT" to connect to instead of the target.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void set_latency(std::chrono::milliseconds d) { latency_ms_ = d.count(); }
  // While on, bytes in both directions are swallowed and nothing is connected onward.
  void set_blackhole(bool on) { blackhole_ = on; }
  // Cuts every open connection now, wherever its request is.
  void ResetConnections();
  size_t connections() const { return accepted_.load(); }

 private:
  struct Conn {
    int client = -1, upstream = -1;
    std::thread up, down;
    std::atomic<bool> closed{false};
  };
  void AcceptLoop();
  void Pump(Conn* c, bool to_upstream);
  void Close(Conn* c, bool reset);

  std::string target_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> latency_ms_{0};
  std::atomic<bool> blackhole_{false};
  std::atomic<size_t> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace suanli::it
