#include "tests/integration/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace suanli::it {
namespace {

int ConnectTo(const std::string& target) {
  size_t colon = target.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &a.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

FaultProxy::FaultProxy(std::string target) : target_(std::move(target)) {}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::lock_guard lock(mu_);
  for (auto& c : conns_) {
    Close(c.get(), false);
    if (c->up.joinable()) c->up.join();
    if (c->down.joinable()) c->down.join();
    if (c->client >= 0) ::close(c->client);
    if (c->upstream >= 0) ::close(c->upstream);
  }
}

Status FaultProxy::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    return Internal(std::string("bind/listen: ") + std::strerror(errno));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void FaultProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    accepted_.fetch_add(1);
    auto c = std::make_unique<Conn>();
    c->client = client;
    // In a blackhole nothing reaches the target: the connection hangs until the client gives up.
    c->upstream = blackhole_ ? -1 : ConnectTo(target_);
    Conn* raw = c.get();
    {
      std::lock_guard lock(mu_);
      conns_.push_back(std::move(c));
    }
    raw->up = std::thread([this, raw] { Pump(raw, true); });
    raw->down = std::thread([this, raw] { Pump(raw, false); });
  }
}

void FaultProxy::Pump(Conn* c, bool to_upstream) {
  char buf[65536];
  while (!stopping_ && !c->closed) {
    const int from = to_upstream ? c->client : c->upstream;
    if (from < 0) {  // accepted during a blackhole: swallow the client's bytes
      if (!to_upstream) return;
      pollfd p{c->client, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      if (::read(c->client, buf, sizeof buf) <= 0) break;
      continue;
    }
    pollfd p{from, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n <= 0) break;
    if (blackhole_) continue;  // the route is gone: bytes vanish
    if (int64_t ms = latency_ms_.load(); ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    const int to = to_upstream ? c->upstream : c->client;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w <= 0) {
        Close(c, false);
        return;
      }
      off += w;
    }
  }
  Close(c, false);
}

void FaultProxy::Close(Conn* c, bool reset) {
  if (c->closed.exchange(true)) return;
  if (reset) {
    linger l{1, 0};  // close with RST
    ::setsockopt(c->client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::shutdown(c->client, SHUT_RDWR);
  if (c->upstream >= 0) ::shutdown(c->upstream, SHUT_RDWR);
}

void FaultProxy::ResetConnections() {
  std::lock_guard lock(mu_);
  for (auto& c : conns_) Close(c.get(), true);
}

}  // namespace suanli::it
