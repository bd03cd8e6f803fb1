#include "agent/plain_http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace suanli::agent {
namespace {

constexpr size_t kMaxKeptBody = 64 << 10;  // enough for any receiver's error text
constexpr size_t kMaxHead = 64 << 10;      // status line and headers

using Clock = std::chrono::steady_clock;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

PlainHttpClient::PlainHttpClient(Options options) : options_(std::move(options)) {}

PlainHttpClient::~PlainHttpClient() { Close(); }

void PlainHttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  connected_to_.clear();
  buf_.clear();
  pos_ = 0;
}

Result<PlainHttpClient::Target> PlainHttpClient::ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  std::string_view rest(url);
  if (rest.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("POST " + url + ": not an http:// URL");
  }
  rest.remove_prefix(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Target t;
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("POST " + url + ": credentials in the URL are not supported");
  }
  std::string_view host = authority, port = "80";
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("POST " + url + ": bad IPv6 host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("POST " + url + ": bad host");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 ||
      p > 65535) {
    return InvalidArgument("POST " + url + ": bad host or port");
  }
  t.host = std::string(host);
  t.port = std::string(port);
  t.host_header = std::string(authority);
  return t;
}

Status PlainHttpClient::Wait(bool for_write, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return DeadlineExceeded("POST " + url_ + ": timed out");
    pollfd pfd{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, INT32_MAX)));
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR)
      return Unavailable("POST " + url_ + ": poll: " + std::strerror(errno));
  }
}

Status PlainHttpClient::Connect(const Target& t, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res);
  if (gai != 0) {
    return Unavailable("POST " + url_ + ": cannot resolve " + t.host + ": " + ::gai_strerror(gai));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd_ < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = ::connect(fd_, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      auto connect_deadline = std::min(deadline, Clock::now() + options_.connect_timeout);
      Status st = Wait(/*for_write=*/true, connect_deadline);
      int err = 0;
      socklen_t len = sizeof err;
      if (st.ok() && ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) r = 0;
      if (r != 0) last_error = st.ok() ? std::strerror(err) : "connect timed out";
    } else if (r != 0) {
      last_error = std::strerror(errno);
    }
    if (r == 0) {
      ::freeaddrinfo(res);
      connected_to_ = t.host + ":" + t.port;
      return Status::Ok();
    }
    ::close(fd_);
    fd_ = -1;
  }
  ::freeaddrinfo(res);
  return Unavailable("POST " + url_ + ": cannot connect: " + last_error);
}

Status PlainHttpClient::SendAll(const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      RETURN_IF_ERROR(Wait(/*for_write=*/true, deadline));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return Unavailable("POST " + url_ + ": send: " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Status PlainHttpClient::Fill(Clock::time_point deadline, bool wait_first) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  if (wait_first) RETURN_IF_ERROR(Wait(/*for_write=*/false, deadline));
  char chunk[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return Status::Ok();
    }
    if (n == 0) return Unavailable("POST " + url_ + ": connection closed by the server");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable("POST " + url_ + ": recv: " + std::strerror(errno));
    }
    RETURN_IF_ERROR(Wait(/*for_write=*/false, deadline));
  }
}

Result<HttpClientResponse> PlainHttpClient::ReadResponse(Clock::time_point deadline,
                                                         bool* nothing_read, bool* keep_alive) {
  *nothing_read = true;
  HttpClientResponse resp;
  // Head: status line and headers up to the empty line.
  size_t head_end;
  // Right after the request nothing has arrived yet: wait for the answer before reading, rather
  // than find the socket empty first (one recv returning EAGAIN per request saved).
  bool wait_first = pos_ == buf_.size();
  while ((head_end = buf_.find("\r\n\r\n", pos_)) == std::string::npos) {
    if (buf_.size() - pos_ > kMaxHead)
      return Unavailable("POST " + url_ + ": response head too large");
    RETURN_IF_ERROR(Fill(deadline, wait_first));
    wait_first = false;
    *nothing_read = false;
  }
  *nothing_read = false;
  std::string_view head(buf_.data() + pos_, head_end - pos_);
  pos_ = head_end + 4;
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 204 No Content"
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12 || status_line[8] != ' ') {
    Close();
    return Unavailable("POST " + url_ + ": malformed status line");
  }
  const bool http10 = status_line.substr(5, 3) == "1.0";
  int code = 0;
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, code);
  if (ec != std::errc() || code < 100 || code > 999) {
    Close();
    return Unavailable("POST " + url_ + ": malformed status line");
  }
  resp.status = code;
  std::string_view rest = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    resp.headers[Lower(Trim(line.substr(0, colon)))] = std::string(Trim(line.substr(colon + 1)));
  }
  auto header = [&](const char* name) -> std::string {
    auto it = resp.headers.find(name);
    return it == resp.headers.end() ? std::string() : Lower(it->second);
  };
  std::string connection = header("connection");
  *keep_alive = http10 ? connection == "keep-alive" : connection != "close";

  auto take = [&](size_t n) {  // consumes n buffered bytes into the body (up to the cap)
    size_t keep = std::min(n, kMaxKeptBody - std::min(kMaxKeptBody, resp.body.size()));
    resp.body.append(buf_, pos_, keep);
    pos_ += n;
  };
  if (code == 204 || code == 304 || code < 200) return resp;
  if (header("transfer-encoding").find("chunked") != std::string::npos) {
    for (;;) {
      size_t line_end;
      while ((line_end = buf_.find("\r\n", pos_)) == std::string::npos)
        RETURN_IF_ERROR(Fill(deadline));
      size_t size = 0;
      std::string_view hex(buf_.data() + pos_, line_end - pos_);
      auto [q, ec2] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
      if (ec2 != std::errc() || size > (size_t{1} << 30)) {
        Close();
        return Unavailable("POST " + url_ + ": malformed chunked body");
      }
      pos_ = line_end + 2;
      if (size == 0) {
        // Trailers, then the empty line.
        size_t end;
        while ((end = buf_.find("\r\n", pos_)) == std::string::npos)
          RETURN_IF_ERROR(Fill(deadline));
        while (end != pos_) {
          pos_ = end + 2;
          while ((end = buf_.find("\r\n", pos_)) == std::string::npos)
            RETURN_IF_ERROR(Fill(deadline));
        }
        pos_ = end + 2;
        return resp;
      }
      while (buf_.size() - pos_ < size + 2) RETURN_IF_ERROR(Fill(deadline));
      take(size);
      pos_ += 2;  // the chunk's CRLF
    }
  }
  std::string length = header("content-length");
  if (!length.empty()) {
    size_t n = 0;
    auto [q, ec3] = std::from_chars(length.data(), length.data() + length.size(), n);
    if (ec3 != std::errc()) {
      Close();
      return Unavailable("POST " + url_ + ": malformed Content-Length");
    }
    while (n > 0) {
      if (pos_ == buf_.size()) RETURN_IF_ERROR(Fill(deadline));
      size_t avail = std::min(n, buf_.size() - pos_);
      take(avail);
      n -= avail;
    }
    return resp;
  }
  // No length: the body runs to the end of the connection.
  for (;;) {
    take(buf_.size() - pos_);
    Status st = Fill(deadline);
    if (!st.ok()) {
      if (st.code() == StatusCode::kDeadlineExceeded) return st;
      break;
    }
  }
  *keep_alive = false;
  return resp;
}

Result<HttpClientResponse> PlainHttpClient::Post(
    const std::string& url, const std::string& body,
    const std::map<std::string, std::string>& headers) {
  url_ = url;
  if (head_.empty() || url != head_url_ || headers != head_headers_) {
    head_.clear();
    ASSIGN_OR_RETURN(target_, ParseUrl(url));
    head_ += "POST " + target_.path + " HTTP/1.1\r\nHost: " + target_.host_header + "\r\n";
    bool user_agent = false;
    for (const auto& [name, value] : headers) {
      head_ += name + ": " + value + "\r\n";
      user_agent |= Lower(name) == "user-agent";
    }
    if (!user_agent) head_ += "User-Agent: suanli/" SUANLI_VERSION "\r\n";
    if (!options_.bearer_token.empty()) {
      head_ += "Authorization: Bearer " + options_.bearer_token + "\r\n";
    }
    head_ += "Content-Length: ";
    target_key_ = target_.host + ":" + target_.port;
    head_url_ = url;
    head_headers_ = headers;
  }
  const Target& t = target_;
  const auto deadline = Clock::now() + options_.timeout;
  // Head and body in one write when the body is small (one segment on loopback).
  const bool one_write = body.size() <= 64 << 10;
  request_.assign(head_);
  char length[24];
  request_.append(length, std::to_chars(length, length + sizeof length, body.size()).ptr);
  request_ += "\r\n\r\n";
  if (one_write) request_ += body;

  for (int attempt = 0;; ++attempt) {
    const bool reused = fd_ >= 0 && connected_to_ == target_key_;
    if (!reused) {
      Close();
      RETURN_IF_ERROR(Connect(t, deadline));
    }
    Status st = SendAll(request_, deadline);
    if (st.ok() && !one_write) st = SendAll(body, deadline);
    bool nothing_read = true, keep_alive = false;
    Result<HttpClientResponse> resp = st.ok() ? ReadResponse(deadline, &nothing_read, &keep_alive)
                                              : Result<HttpClientResponse>(st);
    // Interim answers (100 Continue, 103 Early Hints) may come unasked before the final one.
    bool interim = false;
    while (resp.ok() && resp->status < 200 && resp->status != 101) {
      interim = true;
      resp = ReadResponse(deadline, &nothing_read, &keep_alive);
    }
    if (resp.ok()) {
      if (!keep_alive) Close();
      return resp;
    }
    Close();
    // A kept-alive connection the server had closed: once more on a new one.
    if (reused && attempt == 0 && nothing_read && !interim &&
        resp.status().code() != StatusCode::kDeadlineExceeded) {
      continue;
    }
    return resp.status();
  }
}

}  // namespace suanli::agent
