// WebConfig: the `--web.config.file` of both binaries, i.e. the Prometheus exporter-toolkit web
// configuration (TLS, basic auth users with bcrypt hashes) plus Suanli's per-dc credentials;
// and the Authenticator that checks one request's credentials against it.
//
//   tls_server_config:                 # absent: plain HTTP
//     cert_file: server.crt            # PEM chain; relative paths are resolved against the
//     key_file: server.key             #   folder of the web config file (as exporter-toolkit)
//     client_ca_file: ca.crt           # CAs that client certificates must chain to
//     client_auth_type: RequireAndVerifyClientCert  # NoClientCert (default), RequestClientCert,
//                                      # RequireAnyClientCert, VerifyClientCertIfGiven,
//                                      # RequireAndVerifyClientCert
//     min_version: TLS12               # TLS10, TLS11, TLS12 (default), TLS13
//     max_version: TLS13
//   basic_auth_users:                  # user: bcrypt hash ($2a$, $2b$ or $2y$)
//     prometheus: $2y$10$...
//   credentials:                       # Suanli extension: who may do what, bound to a dc
//     - name: lanzhou-1                # shown in logs; Identity::user
//       region: gansu                  # writes must carry region="gansu" (empty: any region)
//       dc: lanzhou-1                  # ... and dc="lanzhou-1" (empty: any dc)
//       bearer_tokens: [TOKEN, "sha256:HEX"]  # Authorization: Bearer; a hash keeps it out of
//       bearer_token_files: [/etc/suanli/lanzhou-1.token]  # the file; one token per file
//       client_cert_names: [agent.lanzhou-1.example]  # CN or DNS SAN of a verified client cert
//       basic_auth_users: [prometheus]  # basic_auth_users given this entry's binding and scopes
//       scopes: [write]                # write, read, metrics, admin (default [write])
//   authorization:
//     anonymous: [metrics]             # scopes served without credentials (default none)
//
// Authentication is on as soon as basic_auth_users or credentials is non-empty; every route
// then needs a credential holding the route's scope (unless that scope is anonymous); health
// routes are always public. A basic_auth user not named by any credentials entry has scopes
// read and metrics and no binding (it may not write). Tokens are kept only as SHA-256 digests.
// Thread-safety: WebConfig is a plain value; Authenticator is immutable after Create() except
// for an internal, locked cache, and safe to call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX
struct ssl_st;      // OpenSSL's SSL

namespace suanli {

// What a credential may do; a route requires one scope (or none: public).
enum Scope : uint32_t {
  kScopePublic = 0,
  kScopeWrite = 1,    // remote_write
  kScopeRead = 2,     // remote_read, capacity, watcher, any other data endpoint
  kScopeMetrics = 4,  // /metrics
  kScopeAdmin = 8,    // /api/v1/admin/* (snapshots), only with --web.enable-admin-api
};
// "write", "read", "metrics", "admin"; 0 for an unknown name.
uint32_t ScopeFromName(const std::string& name);

// Who sent a request, as established by the server before the handler runs.
struct Identity {
  enum class Kind { kAnonymous, kBasic, kBearer, kCertificate };
  Kind kind = Kind::kAnonymous;
  std::string user;    // credential entry or basic user name; certificate CN when unbound
  std::string region;  // binding: "" leaves the label free
  std::string dc;
  uint32_t scopes = 0;
  bool bound() const { return !region.empty() || !dc.empty(); }
};
const char* IdentityKindName(Identity::Kind kind);

enum class ClientAuthType {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

struct TlsServerConfig {
  std::string cert_file, key_file, client_ca_file;  // absolute after loading
  ClientAuthType client_auth = ClientAuthType::kNoClientCert;
  int min_version = 0;  // OpenSSL's TLS1_2_VERSION etc.
  int max_version = 0;  // 0: no maximum
};

struct Credential {
  std::string name, region, dc;
  std::vector<std::string> token_sha256;  // raw 32-byte digests
  std::vector<std::string> client_cert_names;
  std::vector<std::string> basic_auth_users;
  uint32_t scopes = kScopeWrite;
};

struct WebConfig {
  std::string source;  // the file, for messages
  bool has_tls = false;
  TlsServerConfig tls;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
  std::vector<Credential> credentials;
  uint32_t anonymous_scopes = 0;
  // Files holding secrets (this file when it holds hashes or tokens, the key, token files),
  // for the start-up permission check.
  std::vector<std::string> secret_files;

  bool auth_enabled() const { return !basic_auth_users.empty() || !credentials.empty(); }
};

// Parses a web config; `base_dir` resolves relative paths. Reads token files and checks that
// the certificate, key and CA files load (so --config.check reports them). Errors name file,
// line and key.
Result<WebConfig> ParseWebConfig(const std::string& source, const std::string& yaml,
                                 const std::string& base_dir);
Result<WebConfig> LoadWebConfig(const std::string& path);

// True when `password` matches the bcrypt `hash` (libxcrypt's crypt_r; constant-time compare).
bool VerifyBcrypt(const std::string& password, const std::string& hash);
// Raw SHA-256 digest.
std::string Sha256(const std::string& data);

struct SslCtxDeleter {
  void operator()(ssl_ctx_st* ctx) const;
};
using SslCtxPtr = std::unique_ptr<ssl_ctx_st, SslCtxDeleter>;
// An OpenSSL server context for `tls`: certificate chain and key (checked to match), client CA
// and verification mode, protocol versions. Errors name the file.
Result<SslCtxPtr> BuildServerSslContext(const TlsServerConfig& tls);

// The client certificate of a TLS connection, as far as the handshake established it.
struct PeerCertificate {
  bool present = false;
  bool verified = false;  // chained to client_ca_file and within its validity
  std::string common_name;
  std::vector<std::string> dns_names;
};
// The peer certificate of a connection whose handshake has completed.
PeerCertificate PeerCertificateOf(ssl_st* ssl);

struct AuthResult {
  enum class Outcome { kOk, kMissing, kInvalid, kForbidden };
  Outcome outcome = Outcome::kOk;
  Identity identity;
  std::string reason;  // for logs and the response; never holds a secret
  // 200-class ok, 401 for kMissing/kInvalid, 403 for kForbidden.
  int http_status() const;
  const char* outcome_name() const;  // "ok", "missing", "invalid", "forbidden"
};

class Authenticator {
 public:
  explicit Authenticator(const WebConfig& config);
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  bool enabled() const { return enabled_; }
  // Checks the Authorization header value (may be empty) and the peer certificate against
  // the route's `required_scope`. An Authorization header, when present, decides; else a
  // verified client certificate bound by a credentials entry.
  AuthResult Authenticate(const std::string& authorization, const PeerCertificate& peer,
                          uint32_t required_scope) const;
  // The WWW-Authenticate value for 401s.
  const std::string& challenge() const { return challenge_; }
  // True when Authenticate may take a bcrypt check for this Authorization header (basic
  // credentials with authentication on; tens of milliseconds when not cached), so that
  // the caller can keep it off threads that must stay responsive.
  bool MayBeSlow(const std::string& authorization) const;

 private:
  Identity FromCredential(const Credential& c, Identity::Kind kind) const;
  bool CheckBasic(const std::string& user, const std::string& password) const;

  bool enabled_ = false;
  uint32_t anonymous_scopes_ = 0;
  std::string challenge_;
  std::vector<Credential> credentials_;
  std::map<std::string, std::string> basic_users_;        // user -> hash
  std::unordered_map<std::string, size_t> by_token_;      // digest -> credential
  std::unordered_map<std::string, size_t> by_cert_name_;  // CN/SAN -> credential
  std::unordered_map<std::string, size_t> by_basic_user_;
  // Digests of (user, password, hash) that verified: bcrypt costs ~50 ms, and Prometheus
  // sends the same password on every scrape.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, bool> verified_cache_;
};

// True when users other than the owner and the group can read `path` (mode o+r).
bool ReadableByOthers(const std::string& path);
// Logs a warning for each of `files` that others can read; returns how many.
int WarnIfReadableByOthers(const std::vector<std::string>& files);

}  // namespace suanli
