// PlainHttpClient: HTTP/1.1 POST over plain TCP with one keep-alive connection, for the
// remote_write endpoints with an http:// URL (the common case: an aggregator in the same data
// center). The agent posts a sweep every sample interval; through libcurl the agent held about
// 8 MB more resident memory (libcurl and the 30 libraries Debian's build pulls in, TLS among
// them, which an https-less agent never needs) and spent 14-18% more CPU per sweep at 1 s and
// 15 s sampling (tests/bench/agent_http_client.py, docs/performance.md). https:// URLs go through
// libcurl (core/http_client.h), loaded on first use.
//
// Contract as HttpClient::Post: a network failure (refused, reset, timeout, a malformed
// response) is a non-OK Status (kUnavailable, or kDeadlineExceeded for a timeout) naming the
// URL; any HTTP answer, 5xx included, is an OK result with its status, headers (names
// lower-cased) and body (at most the first 64 KiB kept; the rest is read and discarded).
// A request on a kept-alive connection that the server closed meanwhile is retried once on a
// new connection. Redirects are not followed. Responses: Content-Length, chunked, or
// read-to-close bodies; interim 1xx answers before the final one are skipped.
// Thread-safety: not thread-safe; one client per sender thread.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "core/http_client.h"
#include "core/status.h"

namespace suanli::agent {

class PlainHttpClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{10000};  // whole request
    std::chrono::milliseconds connect_timeout{5000};
    std::string bearer_token;  // sent as Authorization: Bearer when set
  };

  explicit PlainHttpClient(Options options);
  ~PlainHttpClient();
  PlainHttpClient(const PlainHttpClient&) = delete;
  PlainHttpClient& operator=(const PlainHttpClient&) = delete;

  // `url` must be http://HOST[:PORT][/PATH] (HOST a name, an IPv4 address or [IPv6]);
  // anything else is kInvalidArgument.
  Result<HttpClientResponse> Post(const std::string& url, const std::string& body,
                                  const std::map<std::string, std::string>& headers);

 private:
  struct Target {
    std::string host;  // without brackets
    std::string port;
    std::string path;
    std::string host_header;
  };
  static Result<Target> ParseUrl(const std::string& url);
  Status Connect(const Target& t, std::chrono::steady_clock::time_point deadline);
  Status SendAll(const std::string& data, std::chrono::steady_clock::time_point deadline);
  // Reads the next response from the connection. `*nothing_read` tells a connection the server
  // had already closed (safe to retry) from one that failed mid-response.
  Result<HttpClientResponse> ReadResponse(std::chrono::steady_clock::time_point deadline,
                                          bool* nothing_read, bool* keep_alive);
  // Waits for the socket to be readable (or writable); false on timeout.
  Status Wait(bool for_write, std::chrono::steady_clock::time_point deadline);
  // Fills buf_ with more bytes; kUnavailable at end of stream. `wait_first`: poll before the
  // first recv, for a response just asked for (a recv then would only return EAGAIN).
  Status Fill(std::chrono::steady_clock::time_point deadline, bool wait_first = false);
  void Close();

  Options options_;
  int fd_ = -1;
  std::string connected_to_;  // host:port of fd_
  std::string url_;           // for messages
  // The request head up to Content-Length for the last URL and headers, kept: a sender posts
  // to one URL with the same headers every sweep.
  std::string head_url_;
  std::map<std::string, std::string> head_headers_;
  Target target_;
  std::string target_key_;  // host:port of target_
  std::string head_;
  std::string request_;  // scratch: head and (small) body, sent in one write
  std::string buf_;      // received, not yet consumed
  size_t pos_ = 0;       // consumed part of buf_
};

}  // namespace suanli::agent
