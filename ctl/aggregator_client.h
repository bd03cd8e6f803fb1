// AggregatorClient: how suanlictl talks to a running aggregator, with the credentials of
// Prometheus' own tools: a bearer token file, or basic auth with a password file, and TLS
// (a CA file, a client certificate). Every failure is one line a person can act on: the URL,
// the HTTP status and its reason (the "error" of a Prometheus-style JSON answer, or the first
// line of a text one), or why the aggregator could not be reached.
// Thread-safety: one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/http_client.h"
#include "core/status.h"

namespace suanli::ctl {

inline constexpr const char* kDefaultAggregatorUrl = "http://127.0.0.1:9466";

struct ClientOptions {
  std::string url = kDefaultAggregatorUrl;   // --aggregator.url
  std::string bearer_token_file;             // --bearer-token-file
  std::string basic_auth_username;           // --basic-auth.username
  std::string basic_auth_password_file;      // --basic-auth.password-file
  std::string ca_file, cert_file, key_file;  // --tls.ca-file, --tls.cert-file, --tls.key-file
  bool insecure_skip_verify = false;         // --tls.insecure-skip-verify
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // --timeout
};

class AggregatorClient {
 public:
  // Reads the token and password files; InvalidArgument naming the flag when one is unreadable
  // or empty, or when the URL is not http(s).
  static Result<std::unique_ptr<AggregatorClient>> Create(const ClientOptions& options);

  // The body of a 2xx answer to GET/POST base URL + path (path starts with '/').
  Result<std::string> Get(const std::string& path);
  Result<std::string> Post(const std::string& path);
  const std::string& base_url() const { return base_; }

 private:
  AggregatorClient(std::string base, HttpClient::Options options)
      : base_(std::move(base)), http_(std::move(options)) {}
  Result<std::string> Check(const std::string& method, const std::string& url,
                            Result<HttpClientResponse> r);

  std::string base_;
  HttpClient http_;
};

// A JSON answer of the aggregator; InvalidArgument naming `what` when it does not parse or its
// "status" is not "success".
Result<nlohmann::json> ParseSuccessJson(const std::string& body, const std::string& what);

// "Forbidden" for 403, ...; "" for a status it does not know.
const char* HttpReasonPhrase(int status);

}  // namespace suanli::ctl
