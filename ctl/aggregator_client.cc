#include "ctl/aggregator_client.h"

#include "core/file_util.h"

namespace suanli::ctl {
namespace {

// A secret file's content without surrounding blanks and newlines, as Prometheus reads it.
Result<std::string> ReadSecretFile(const std::string& path, const std::string& flag) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return InvalidArgument(flag + ": " + text.status().message());
  std::string s = std::move(text).value();
  const char* blanks = " \t\r\n";
  s.erase(s.find_last_not_of(blanks) + 1);
  s.erase(0, s.find_first_not_of(blanks));
  if (s.empty()) return InvalidArgument(flag + ": " + path + " is empty");
  return s;
}

// What an error answer says: the "error" of a Prometheus-style JSON body, else its first line.
std::string ReasonOf(const HttpClientResponse& r) {
  auto json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("error") && json["error"].is_string()) {
    return json["error"].get<std::string>();
  }
  std::string line = r.body.substr(0, r.body.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

// What to do about a status, where there is something to say.
std::string HintFor(int status, const std::string& reason) {
  switch (status) {
    case 401:
      return "credentials missing or refused: see --bearer-token-file or --basic-auth.username";
    case 403:
      return "this credential does not grant the endpoint (snapshots need scope admin)";
    case 404:
      return "no such endpoint: is --aggregator.url a suanli-aggregator?";
    case 503:
      if (reason.find("admin APIs disabled") != std::string::npos) {
        return "start the aggregator with --web.enable-admin-api";
      }
      return "";
    default:
      return "";
  }
}

}  // namespace

const char* HttpReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

Result<std::unique_ptr<AggregatorClient>> AggregatorClient::Create(const ClientOptions& o) {
  std::string base = o.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!base.starts_with("http://") && !base.starts_with("https://")) {
    return InvalidArgument("--aggregator.url: \"" + o.url + "\" is not an http:// or https:// URL");
  }
  HttpClient::Options h;
  h.timeout = o.timeout;
  h.ca_file = o.ca_file;
  h.cert_file = o.cert_file;
  h.key_file = o.key_file;
  h.insecure_skip_verify = o.insecure_skip_verify;
  if (!o.bearer_token_file.empty()) {
    ASSIGN_OR_RETURN(h.bearer_token, ReadSecretFile(o.bearer_token_file, "--bearer-token-file"));
  }
  if (!o.basic_auth_username.empty()) {
    h.username = o.basic_auth_username;
    if (!o.basic_auth_password_file.empty()) {
      ASSIGN_OR_RETURN(h.password,
                       ReadSecretFile(o.basic_auth_password_file, "--basic-auth.password-file"));
    }
  }
  return std::unique_ptr<AggregatorClient>(new AggregatorClient(std::move(base), std::move(h)));
}

Result<std::string> AggregatorClient::Check(const std::string& method, const std::string& url,
                                            Result<HttpClientResponse> r) {
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) return r.status();
    return Unavailable("cannot reach the aggregator at " + base_ + ": " + r.status().message() +
                       " (is it running? see --aggregator.url)");
  }
  if (r->status >= 200 && r->status < 300) return std::move(r->body);
  const std::string reason = ReasonOf(*r);
  std::string msg = method + " " + url + ": " + std::to_string(r->status);
  if (const char* phrase = HttpReasonPhrase(r->status); *phrase != '\0') {
    msg += std::string(" ") + phrase;
  }
  if (!reason.empty()) msg += ": " + reason;
  if (std::string hint = HintFor(r->status, reason); !hint.empty()) msg += " (" + hint + ")";
  return Status(r->status == 401 || r->status == 403 ? StatusCode::kPermissionDenied
                                                     : StatusCode::kUnavailable,
                msg);
}

Result<std::string> AggregatorClient::Get(const std::string& path) {
  const std::string url = base_ + path;
  return Check("GET", url, http_.Get(url));
}

Result<std::string> AggregatorClient::Post(const std::string& path) {
  const std::string url = base_ + path;
  return Check("POST", url, http_.Post(url, "", {}));
}

Result<nlohmann::json> ParseSuccessJson(const std::string& body, const std::string& what) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return InvalidArgument(what + ": the answer is not a JSON object");
  }
  if (!json.contains("status") || json["status"] != "success") {
    return InvalidArgument(what + ": the answer's status is not \"success\"");
  }
  return json;
}

}  // namespace suanli::ctl
