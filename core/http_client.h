// HttpClient: a libcurl easy handle kept open across requests, so that repeated requests to
// one endpoint reuse a keep-alive connection. Sends "User-Agent: suanli/VERSION" unless the
// caller's headers set one, and never "Expect: 100-continue".
// Thread-safety: not thread-safe; use one client per thread (or per endpoint queue).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "core/status.h"

namespace suanli {

struct HttpClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

class HttpClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{10000};  // whole request
    std::chrono::milliseconds connect_timeout{5000};
    std::string ca_file;  // TLS trust; empty: system default
    bool insecure_skip_verify = false;
    std::string cert_file, key_file;  // client certificate and key (PEM) for mutual TLS
    std::string username, password;   // HTTP basic auth when username set
    std::string bearer_token;
  };

  explicit HttpClient(Options options);
  HttpClient() : HttpClient(Options{}) {}
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // A network-level failure (refused, timeout, DNS, TLS) is a non-OK Status (kUnavailable or
  // kDeadlineExceeded) whose message names the method, the URL (credentials masked) and curl's
  // error; a malformed URL or unsupported scheme is kInvalidArgument. Any HTTP answer, 5xx
  // included, is an OK result with its status. Redirects are not followed.
  Result<HttpClientResponse> Get(const std::string& url);
  Result<HttpClientResponse> Post(const std::string& url, const std::string& body,
                                  const std::map<std::string, std::string>& headers);

 private:
  Result<HttpClientResponse> Perform(const std::string& url, const std::string* body,
                                     const std::map<std::string, std::string>& headers);
  Options options_;
  void* curl_ = nullptr;  // CURL*
};

}  // namespace suanli
