#include "core/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>
#include <string_view>

#include "core/config.h"
#include "core/file_util.h"

namespace suanli {

namespace {

// A valid cost-10 bcrypt hash of nothing anyone knows: unknown users are checked against it so
// that a wrong user name costs the same time as a wrong password.
constexpr const char* kDummyHash = "$2y$10$abcdefghijklmnopqrstuubpco9BuLQZBZtn/gwh0hqaJSVqpe2FC";
constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxCacheEntries = 1024;

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict base64 (RFC 4648, padding required); false on anything else.
bool Base64Decode(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[j] = value(c);
      if (v[j] < 0) return false;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

bool LooksLikeBcrypt(const std::string& hash) {
  return hash.size() == 60 &&
         (hash.rfind("$2a$", 0) == 0 || hash.rfind("$2b$", 0) == 0 || hash.rfind("$2y$", 0) == 0);
}

constexpr int kMaxBcryptCost = 14;  // ~1 s per check on a server core; 10-12 is usual

// The two-digit cost of a hash LooksLikeBcrypt accepted ("$2y$10$..."); -1 if not digits
// (crypt_r then refuses the hash as malformed).
int BcryptCost(const std::string& hash) {
  const char a = hash[4], b = hash[5];
  if (a < '0' || a > '9' || b < '0' || b > '9' || hash[6] != '$') return -1;
  return (a - '0') * 10 + (b - '0');
}

Status ParseVersion(ConfigMap& m, const char* key, int* out) {
  std::string v;
  RETURN_IF_ERROR(m.Get(key, &v));
  if (v.empty()) return Status::Ok();
  if (v == "TLS10") {
    *out = TLS1_VERSION;
  } else if (v == "TLS11") {
    *out = TLS1_1_VERSION;
  } else if (v == "TLS12") {
    *out = TLS1_2_VERSION;
  } else if (v == "TLS13") {
    *out = TLS1_3_VERSION;
  } else {
    return m.Error(key, "must be TLS10, TLS11, TLS12 or TLS13, got \"" + v + "\"");
  }
  return Status::Ok();
}

Status ParseTls(ConfigMap& m, const std::string& base_dir, WebConfig* c) {
  for (const char* unsupported : {"cipher_suites", "curve_preferences",
                                  "prefer_server_cipher_suites", "client_allowed_sans"}) {
    if (m.Has(unsupported)) return m.Error(unsupported, "is not supported by suanli");
  }
  TlsServerConfig& t = c->tls;
  RETURN_IF_ERROR(m.Get("cert_file", &t.cert_file));
  RETURN_IF_ERROR(m.Get("key_file", &t.key_file));
  RETURN_IF_ERROR(m.Get("client_ca_file", &t.client_ca_file));
  if (t.cert_file.empty()) return m.Error("cert_file", "is required");
  if (t.key_file.empty()) return m.Error("key_file", "is required");
  t.cert_file = Resolve(base_dir, t.cert_file);
  t.key_file = Resolve(base_dir, t.key_file);
  t.client_ca_file = Resolve(base_dir, t.client_ca_file);
  std::string type = "NoClientCert";
  RETURN_IF_ERROR(m.Get("client_auth_type", &type));
  static const std::pair<const char*, ClientAuthType> kTypes[] = {
      {"NoClientCert", ClientAuthType::kNoClientCert},
      {"RequestClientCert", ClientAuthType::kRequestClientCert},
      {"RequireAnyClientCert", ClientAuthType::kRequireAnyClientCert},
      {"VerifyClientCertIfGiven", ClientAuthType::kVerifyClientCertIfGiven},
      {"RequireAndVerifyClientCert", ClientAuthType::kRequireAndVerifyClientCert},
  };
  bool known = false;
  for (const auto& [name, value] : kTypes) {
    if (type == name) {
      t.client_auth = value;
      known = true;
    }
  }
  if (!known) {
    return m.Error("client_auth_type",
                   "must be NoClientCert, RequestClientCert, RequireAnyClientCert, "
                   "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got \"" +
                       type + "\"");
  }
  const bool verifies = t.client_auth == ClientAuthType::kVerifyClientCertIfGiven ||
                        t.client_auth == ClientAuthType::kRequireAndVerifyClientCert;
  // Same rules as exporter-toolkit: a CA without a policy, or a policy without a CA, is a
  // mistake that would silently leave clients unchecked.
  if (verifies && t.client_ca_file.empty()) {
    return m.Error("client_ca_file", "is required by client_auth_type " + type);
  }
  if (!t.client_ca_file.empty() && t.client_auth == ClientAuthType::kNoClientCert) {
    return m.Error("client_auth_type",
                   "client_ca_file is set but client_auth_type is "
                   "NoClientCert; set RequireAndVerifyClientCert");
  }
  t.min_version = TLS1_2_VERSION;
  RETURN_IF_ERROR(ParseVersion(m, "min_version", &t.min_version));
  RETURN_IF_ERROR(ParseVersion(m, "max_version", &t.max_version));
  if (t.max_version != 0 && t.max_version < t.min_version) {
    return m.Error("max_version", "must not be below min_version");
  }
  RETURN_IF_ERROR(m.Finish());
  auto ctx = BuildServerSslContext(t);
  if (!ctx.ok()) return m.Error("", ctx.status().message());
  c->has_tls = true;
  c->secret_files.push_back(t.key_file);
  return Status::Ok();
}

Status ParseCredential(ConfigMap& m, const std::string& base_dir, WebConfig* c,
                       bool* inline_secret) {
  Credential cred;
  RETURN_IF_ERROR(m.Get("name", &cred.name));
  RETURN_IF_ERROR(m.Get("region", &cred.region));
  RETURN_IF_ERROR(m.Get("dc", &cred.dc));
  if (cred.name.empty()) return m.Error("name", "is required");
  for (const Credential& other : c->credentials) {
    if (other.name == cred.name) return m.Error("name", "\"" + cred.name + "\" is used twice");
  }
  std::vector<std::string> tokens, token_files, scopes;
  RETURN_IF_ERROR(m.Get("bearer_tokens", &tokens));
  RETURN_IF_ERROR(m.Get("bearer_token_files", &token_files));
  RETURN_IF_ERROR(m.Get("client_cert_names", &cred.client_cert_names));
  RETURN_IF_ERROR(m.Get("basic_auth_users", &cred.basic_auth_users));
  for (const std::string& t : tokens) {
    if (t.rfind("sha256:", 0) == 0) {
      std::string_view hex = std::string_view(t).substr(7);
      std::string digest;
      for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
        if (hi < 0 || lo < 0) break;
        digest.push_back(static_cast<char>(hi * 16 + lo));
      }
      if (hex.size() != 64 || digest.size() != 32) {
        return m.Error("bearer_tokens", "a \"sha256:\" token needs 64 hex digits");
      }
      cred.token_sha256.push_back(digest);
    } else {
      if (t.size() < kMinTokenLength) {
        return m.Error("bearer_tokens", "a token must have at least 16 characters");
      }
      *inline_secret = true;
      cred.token_sha256.push_back(Sha256(t));
    }
  }
  for (const std::string& f : token_files) {
    std::string path = Resolve(base_dir, f);
    auto text = ReadFileToString(path);
    if (!text.ok()) return m.Error("bearer_token_files", text.status().message());
    std::string_view token = TrimSpace(*text);
    if (token.size() < kMinTokenLength) {
      return m.Error("bearer_token_files", path + ": a token must have at least 16 characters");
    }
    cred.token_sha256.push_back(Sha256(std::string(token)));
    c->secret_files.push_back(path);
  }
  for (const std::string& u : cred.basic_auth_users) {
    if (c->basic_auth_users.count(u) == 0) {
      return m.Error("basic_auth_users", "\"" + u + "\" is not in the top-level basic_auth_users");
    }
  }
  if (cred.token_sha256.empty() && cred.client_cert_names.empty() &&
      cred.basic_auth_users.empty()) {
    return m.Error("",
                   "needs bearer_tokens, bearer_token_files, client_cert_names or "
                   "basic_auth_users");
  }
  if (!cred.client_cert_names.empty() && !c->has_tls) {
    return m.Error("client_cert_names", "needs tls_server_config with a client_ca_file");
  }
  if (m.Has("scopes")) {
    RETURN_IF_ERROR(m.Get("scopes", &scopes));
    cred.scopes = 0;
    for (const std::string& s : scopes) {
      uint32_t bit = ScopeFromName(s);
      if (bit == 0)
        return m.Error("scopes", "unknown scope \"" + s + "\" (write, read, metrics, admin)");
      cred.scopes |= bit;
    }
  }
  // A credential may be presented by exactly one entry, or which binding applies is ambiguous.
  for (const Credential& other : c->credentials) {
    for (const std::string& d : cred.token_sha256) {
      for (const std::string& o : other.token_sha256) {
        if (d == o) return m.Error("bearer_tokens", "a token is also in \"" + other.name + "\"");
      }
    }
    for (const std::string& n : cred.client_cert_names) {
      for (const std::string& o : other.client_cert_names) {
        if (n == o) {
          return m.Error("client_cert_names", "\"" + n + "\" is also in \"" + other.name + "\"");
        }
      }
    }
    for (const std::string& u : cred.basic_auth_users) {
      for (const std::string& o : other.basic_auth_users) {
        if (u == o) {
          return m.Error("basic_auth_users", "\"" + u + "\" is also in \"" + other.name + "\"");
        }
      }
    }
  }
  RETURN_IF_ERROR(m.Finish());
  c->credentials.push_back(std::move(cred));
  return Status::Ok();
}

}  // namespace

uint32_t ScopeFromName(const std::string& name) {
  if (name == "write") return kScopeWrite;
  if (name == "read") return kScopeRead;
  if (name == "metrics") return kScopeMetrics;
  if (name == "admin") return kScopeAdmin;
  return 0;
}

const char* IdentityKindName(Identity::Kind kind) {
  switch (kind) {
    case Identity::Kind::kAnonymous:
      return "anonymous";
    case Identity::Kind::kBasic:
      return "basic";
    case Identity::Kind::kBearer:
      return "bearer";
    case Identity::Kind::kCertificate:
      return "certificate";
  }
  return "unknown";
}

std::string Sha256(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(md), n);
}

bool VerifyBcrypt(const std::string& password, const std::string& hash) {
  if (!LooksLikeBcrypt(hash) || password.find('\0') != std::string::npos) return false;
  // crypt_data is ~32 KiB: on the heap, not on a worker's stack.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return false;  // libxcrypt's failure token
  return std::strlen(out) == hash.size() && CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
}

void SslCtxDeleter::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }

Result<SslCtxPtr> BuildServerSslContext(const TlsServerConfig& tls) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("SSL_CTX_new: " + OpenSslError());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, tls.min_version != 0 ? tls.min_version : TLS1_2_VERSION);
  if (tls.max_version != 0) SSL_CTX_set_max_proto_version(c, tls.max_version);
  SSL_CTX_set_options(
      c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Files are read first so that a missing one says so, not "PEM lib".
  for (const std::string* f : {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
    if (f->empty()) continue;
    auto text = ReadFileToString(*f);
    if (!text.ok()) return text.status();
  }
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert_file.c_str()) != 1) {
    return InvalidArgument("cert_file " + tls.cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("key_file " + tls.key_file + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return InvalidArgument("key_file " + tls.key_file + " does not match cert_file " +
                           tls.cert_file);
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, tls.client_ca_file.c_str(), nullptr) != 1) {
      return InvalidArgument("client_ca_file " + tls.client_ca_file + ": " + OpenSslError());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) {
      return InvalidArgument("client_ca_file " + tls.client_ca_file + ": no certificate");
    }
    SSL_CTX_set_client_CA_list(c, names);
  }
  // Accepts whatever the chain check says: for the modes that ask for a certificate without
  // verifying it. The result is still recorded (SSL_get_verify_result), so an unverified
  // certificate never becomes an identity.
  auto accept_any = [](int, X509_STORE_CTX*) -> int { return 1; };
  switch (tls.client_auth) {
    case ClientAuthType::kNoClientCert:
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuthType::kRequestClientCert:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, accept_any);
      break;
    case ClientAuthType::kRequireAnyClientCert:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
      break;
    case ClientAuthType::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuthType::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // Needed for session resumption with client verification (else resumption fails).
  static const unsigned char kSessionContext[] = "suanli";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
  return ctx;
}

Result<WebConfig> ParseWebConfig(const std::string& source, const std::string& yaml,
                                 const std::string& base_dir) {
  ASSIGN_OR_RETURN(ConfigMap root, ConfigMap::Parse(source, yaml));
  WebConfig c;
  c.source = source;
  if (root.Has("tls_server_config")) {
    ASSIGN_OR_RETURN(ConfigMap tls, root.Map("tls_server_config"));
    RETURN_IF_ERROR(ParseTls(tls, base_dir, &c));
  }
  RETURN_IF_ERROR(root.Get("basic_auth_users", &c.basic_auth_users));
  for (const auto& [user, hash] : c.basic_auth_users) {
    if (user.empty() || user.find(':') != std::string::npos) {
      return root.Error("basic_auth_users", "user name \"" + user + "\" is empty or has ':'");
    }
    if (!LooksLikeBcrypt(hash)) {
      return root.Error("basic_auth_users",
                        "\"" + user + "\": not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)");
    }
    // The cost is a power of two of work per check: past 14 every request (and this check)
    // would hash for seconds to hours, a denial of service by configuration.
    if (const int cost = BcryptCost(hash); cost > kMaxBcryptCost) {
      return root.Error("basic_auth_users", "\"" + user + "\": bcrypt cost " +
                                                std::to_string(cost) + " is above " +
                                                std::to_string(kMaxBcryptCost) +
                                                ": each request would hash for seconds or more; "
                                                "use a cost of 10-12");
    }
    // crypt_r rejects a malformed salt or cost: find out now, not on every request.
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_r("", hash.c_str(), data.get());
    if (out == nullptr || out[0] == '*') {
      return root.Error("basic_auth_users", "\"" + user + "\": malformed bcrypt hash");
    }
  }
  bool inline_secret = !c.basic_auth_users.empty();
  ASSIGN_OR_RETURN(std::vector<ConfigMap> creds, root.List("credentials"));
  for (ConfigMap& m : creds) RETURN_IF_ERROR(ParseCredential(m, base_dir, &c, &inline_secret));
  ASSIGN_OR_RETURN(ConfigMap authz, root.Map("authorization"));
  std::vector<std::string> anonymous;
  RETURN_IF_ERROR(authz.Get("anonymous", &anonymous));
  for (const std::string& s : anonymous) {
    uint32_t bit = ScopeFromName(s);
    if (bit == 0) {
      return authz.Error("anonymous", "unknown scope \"" + s + "\" (write, read, metrics, admin)");
    }
    c.anonymous_scopes |= bit;
  }
  RETURN_IF_ERROR(authz.Finish());
  for (const char* unsupported : {"http_server_config", "rate_limit"}) {
    if (root.Has(unsupported)) return root.Error(unsupported, "is not supported by suanli");
  }
  RETURN_IF_ERROR(root.Finish());
  if (inline_secret) c.secret_files.insert(c.secret_files.begin(), source);
  return c;
}

Result<WebConfig> LoadWebConfig(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithContext("web config");
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  return ParseWebConfig(path, *text, dir);
}

int AuthResult::http_status() const {
  switch (outcome) {
    case Outcome::kOk:
      return 200;
    case Outcome::kMissing:
    case Outcome::kInvalid:
      return 401;
    case Outcome::kForbidden:
      return 403;
  }
  return 500;
}

const char* AuthResult::outcome_name() const {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kMissing:
      return "missing";
    case Outcome::kInvalid:
      return "invalid";
    case Outcome::kForbidden:
      return "forbidden";
  }
  return "unknown";
}

Authenticator::Authenticator(const WebConfig& config)
    : enabled_(config.auth_enabled()),
      anonymous_scopes_(config.anonymous_scopes),
      credentials_(config.credentials),
      basic_users_(config.basic_auth_users) {
  bool bearer = false;
  for (size_t i = 0; i < credentials_.size(); ++i) {
    for (const std::string& d : credentials_[i].token_sha256) by_token_.emplace(d, i);
    for (const std::string& n : credentials_[i].client_cert_names) by_cert_name_.emplace(n, i);
    for (const std::string& u : credentials_[i].basic_auth_users) by_basic_user_.emplace(u, i);
    bearer = bearer || !credentials_[i].token_sha256.empty();
  }
  if (!basic_users_.empty()) challenge_ = "Basic realm=\"suanli\", charset=\"UTF-8\"";
  if (bearer || challenge_.empty()) {
    challenge_ += std::string(challenge_.empty() ? "" : ", ") + "Bearer realm=\"suanli\"";
  }
}

Identity Authenticator::FromCredential(const Credential& c, Identity::Kind kind) const {
  Identity id;
  id.kind = kind;
  id.user = c.name;
  id.region = c.region;
  id.dc = c.dc;
  id.scopes = c.scopes;
  return id;
}

bool Authenticator::CheckBasic(const std::string& user, const std::string& password) const {
  auto it = basic_users_.find(user);
  const std::string& hash = it == basic_users_.end() ? std::string(kDummyHash) : it->second;
  std::string key = Sha256(user + '\0' + password + '\0' + hash);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (verified_cache_.count(key) != 0) return it != basic_users_.end();
  }
  bool ok = VerifyBcrypt(password, hash) && it != basic_users_.end();
  if (ok) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (verified_cache_.size() >= kMaxCacheEntries) verified_cache_.clear();
    verified_cache_.emplace(std::move(key), true);
  }
  return ok;
}

bool Authenticator::MayBeSlow(const std::string& authorization) const {
  if (!enabled_) return false;
  std::string_view value = TrimSpace(authorization);
  return EqualsIgnoreCase(value.substr(0, value.find(' ')), "basic");
}

AuthResult Authenticator::Authenticate(const std::string& authorization,
                                       const PeerCertificate& peer, uint32_t required_scope) const {
  AuthResult r;
  if (!enabled_ || required_scope == kScopePublic) {
    // Without credentials configured, a verified client certificate is still who it says.
    if (peer.verified) {
      r.identity.kind = Identity::Kind::kCertificate;
      r.identity.user = peer.common_name;
      r.identity.scopes = kScopeWrite | kScopeRead | kScopeMetrics;
    }
    return r;
  }
  if (!authorization.empty()) {
    std::string_view value = TrimSpace(authorization);
    size_t space = value.find(' ');
    std::string_view scheme = value.substr(0, space);
    std::string_view param =
        space == std::string_view::npos ? std::string_view() : TrimSpace(value.substr(space + 1));
    if (EqualsIgnoreCase(scheme, "basic")) {
      std::string decoded;
      size_t colon = std::string::npos;
      if (!Base64Decode(param, &decoded) || (colon = decoded.find(':')) == std::string::npos) {
        r.outcome = AuthResult::Outcome::kInvalid;
        r.reason = "malformed basic credentials";
        return r;
      }
      std::string user = decoded.substr(0, colon);
      if (!CheckBasic(user, decoded.substr(colon + 1))) {
        r.outcome = AuthResult::Outcome::kInvalid;
        r.reason = "wrong user name or password";
        return r;
      }
      auto bound = by_basic_user_.find(user);
      if (bound != by_basic_user_.end()) {
        r.identity = FromCredential(credentials_[bound->second], Identity::Kind::kBasic);
      } else {
        r.identity.kind = Identity::Kind::kBasic;
        r.identity.user = user;
        r.identity.scopes = kScopeRead | kScopeMetrics;
      }
    } else if (EqualsIgnoreCase(scheme, "bearer")) {
      auto it = param.empty() ? by_token_.end() : by_token_.find(Sha256(std::string(param)));
      if (it == by_token_.end()) {
        r.outcome = AuthResult::Outcome::kInvalid;
        r.reason = "unknown bearer token";
        return r;
      }
      r.identity = FromCredential(credentials_[it->second], Identity::Kind::kBearer);
    } else {
      r.outcome = AuthResult::Outcome::kInvalid;
      r.reason = "unsupported authorization scheme";
      return r;
    }
  } else if (peer.verified) {
    auto it = by_cert_name_.find(peer.common_name);
    for (size_t i = 0; it == by_cert_name_.end() && i < peer.dns_names.size(); ++i) {
      it = by_cert_name_.find(peer.dns_names[i]);
    }
    if (it != by_cert_name_.end()) {
      r.identity = FromCredential(credentials_[it->second], Identity::Kind::kCertificate);
    } else {
      r.identity.kind = Identity::Kind::kCertificate;
      r.identity.user = peer.common_name;  // known to the CA, bound to nothing: no scopes
    }
  }
  if ((anonymous_scopes_ & required_scope) != 0) return r;
  if (r.identity.kind == Identity::Kind::kAnonymous) {
    r.outcome = AuthResult::Outcome::kMissing;
    r.reason = "credentials required";
  } else if ((r.identity.scopes & required_scope) == 0) {
    r.outcome = AuthResult::Outcome::kForbidden;
    r.reason = std::string(IdentityKindName(r.identity.kind)) + " credential '" + r.identity.user +
               "' does not grant this endpoint";
  }
  return r;
}

namespace {

// UTF-8 text of an ASN.1 string; "" when it holds a NUL (a classic CN-spoofing trick).
std::string Asn1Text(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out.find('\0') == std::string::npos ? out : std::string();
}

}  // namespace

PeerCertificate PeerCertificateOf(ssl_st* ssl) {
  PeerCertificate p;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return p;
  p.present = true;
  p.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  X509_NAME* subject = X509_get_subject_name(cert);
  int idx = subject == nullptr ? -1 : X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    p.common_name = Asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_DNS) continue;
      std::string dns = Asn1Text(name->d.dNSName);
      if (!dns.empty()) p.dns_names.push_back(std::move(dns));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return p;
}

bool ReadableByOthers(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  return (st.st_mode & S_IROTH) != 0;
}

int WarnIfReadableByOthers(const std::vector<std::string>& files) {
  int n = 0;
  for (const std::string& f : files) {
    if (!ReadableByOthers(f)) continue;
    ++n;
    spdlog::warn("file holding secrets is readable by other users file={} fix=\"chmod o-rwx {}\"",
                 f, f);
  }
  return n;
}

}  // namespace suanli
