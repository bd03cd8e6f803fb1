#include "core/http_client.h"

#include <curl/curl.h>

#include <mutex>
#include <string_view>
#include <utility>

#ifndef SUANLI_VERSION
#define SUANLI_VERSION "dev"
#endif

namespace suanli {

namespace {

// curl_global_init is not thread-safe and must run before any other curl call; every client
// constructor goes through here. Never cleaned up: other threads may still hold handles at exit.
CURLcode GlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// The URL for error messages, without any "user:password@" part.
std::string RedactUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t authority = scheme + 3;
  size_t end = url.find_first_of("/?#", authority);
  size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < authority) return url;
  return url.substr(0, authority) + "***@" + url.substr(at + 1);
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  // A new status line starts a new response (after "100 Continue" or a proxy's answer):
  // keep only the final response's headers.
  if (line.substr(0, 5) == "HTTP/") {
    headers->clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;  // the blank line ending the headers
  std::string name = ToLower(Trim(line.substr(0, colon)));
  std::string_view value = Trim(line.substr(colon + 1));
  auto [it, inserted] = headers->emplace(std::move(name), std::string(value));
  if (!inserted) (it->second += ", ").append(value);
  return size * n;
}

// Frees a header list however Perform() returns.
struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) return false;
    list = next;
    return true;
  }
};

}  // namespace

HttpClient::HttpClient(Options options) : options_(std::move(options)) {
  if (GlobalInit() == CURLE_OK) curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpClientResponse> HttpClient::Get(const std::string& url) {
  return Perform(url, nullptr, {});
}

Result<HttpClientResponse> HttpClient::Post(const std::string& url, const std::string& body,
                                            const std::map<std::string, std::string>& headers) {
  return Perform(url, &body, headers);
}

Result<HttpClientResponse> HttpClient::Perform(const std::string& url, const std::string* body,
                                               const std::map<std::string, std::string>& headers) {
  const std::string context = std::string(body ? "POST " : "GET ") + RedactUrl(url);
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return Internal(context + ": curl could not be initialised");

  // Reset keeps the connection cache (keep-alive reuse) but drops the previous request's options.
  curl_easy_reset(curl);
  char error[CURL_ERROR_SIZE] = {0};
  HttpClientResponse response;
  HeaderList header_list;
  bool ok = true;
  // An empty "Expect:" stops curl from sending "Expect: 100-continue" and waiting on it.
  ok &= header_list.Append("Expect:");
  if (!options_.bearer_token.empty()) {
    ok &= header_list.Append("Authorization: Bearer " + options_.bearer_token);
  }
  for (const auto& [name, value] : headers) {
    // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
    ok &= header_list.Append(value.empty() ? name + ";" : name + ": " + value);
  }
  if (!ok) return Internal(context + ": out of memory building headers");

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: threads
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "suanli/" SUANLI_VERSION);
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!options_.key_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options_.key_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (options_.insecure_skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!options_.username.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl, CURLOPT_USERNAME, options_.username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.password.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.list);
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);

  CURLcode rc = curl_easy_perform(curl);
  // The options point at locals; do not leave them dangling in the kept handle.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (rc != CURLE_OK) {
    std::string message = context + ": " + (error[0] != '\0' ? error : curl_easy_strerror(rc));
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        return DeadlineExceeded(message);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return InvalidArgument(message);
      case CURLE_OUT_OF_MEMORY:
        return Internal(message);
      default:
        return Unavailable(message);  // refused, reset, DNS, TLS: may work on retry
    }
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace suanli
