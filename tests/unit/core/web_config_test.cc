#include "core/web_config.h"

#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "tests/unit/core/test_certs.h"

namespace suanli {
namespace {

using ::testing::HasSubstr;

// A bcrypt hash made at test time (cost 4 keeps the tests fast).
std::string Bcrypt(const std::string& password, const char* prefix = "$2b$") {
  auto data = std::make_unique<crypt_data>();
  char salt[64];
  if (crypt_gensalt_rn(prefix, 4, nullptr, 0, salt, sizeof salt) == nullptr) return "";
  const char* out = crypt_r(password.c_str(), salt, data.get());
  return out == nullptr ? "" : out;
}

std::string Hex(const std::string& raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string BasicHeader(const std::string& user, const std::string& password) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = user + ":" + password, out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[n & 63] : '=');
  }
  return "Basic " + out;
}

constexpr const char* kTokenA = "token-for-dc-a-0123456789";
constexpr const char* kTokenB = "token-for-dc-b-0123456789";
constexpr const char* kTokenReader = "token-for-a-reader-0123456789";

TEST(BcryptTest, VerifiesAllPrefixesAndRejectsWrongPasswords) {
  for (const char* prefix : {"$2b$", "$2y$", "$2a$"}) {
    std::string hash = Bcrypt("s3cret", prefix);
    ASSERT_EQ(hash.size(), 60u) << prefix;
    EXPECT_TRUE(VerifyBcrypt("s3cret", hash)) << prefix;
    EXPECT_FALSE(VerifyBcrypt("s3cret ", hash)) << prefix;
    EXPECT_FALSE(VerifyBcrypt("", hash)) << prefix;
  }
  EXPECT_FALSE(VerifyBcrypt("x", "$1$md5salt$notbcrypt"));
  EXPECT_FALSE(VerifyBcrypt("x", ""));
  EXPECT_FALSE(VerifyBcrypt(std::string("s3cret\0x", 8), Bcrypt("s3cret")));
}

TEST(WebConfigTest, EmptyConfigMeansPlainHttpWithoutAuthentication) {
  auto c = ParseWebConfig("web.yml", "{}\n", "/etc");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->has_tls);
  EXPECT_FALSE(c->auth_enabled());
  Authenticator auth(*c);
  EXPECT_FALSE(auth.enabled());
  AuthResult r = auth.Authenticate("", PeerCertificate{}, kScopeWrite);
  EXPECT_EQ(r.outcome, AuthResult::Outcome::kOk);
  EXPECT_EQ(r.identity.kind, Identity::Kind::kAnonymous);
}

TEST(WebConfigTest, ParsesCredentialsAndKeepsOnlyDigests) {
  std::string yaml = std::string("basic_auth_users:\n  prom: ") + Bcrypt("pw") +
                     "\n  pusher: " + Bcrypt("pw2") +
                     "\ncredentials:\n"
                     "  - name: dc-a\n    region: east\n    dc: a\n"
                     "    bearer_tokens: [" +
                     kTokenA +
                     "]\n"
                     "  - name: dc-b\n    region: east\n    dc: b\n"
                     "    bearer_tokens: [\"sha256:" +
                     Hex(Sha256(kTokenB)) +
                     "\"]\n"
                     "    basic_auth_users: [pusher]\n"
                     "  - name: reader\n    bearer_tokens: [" +
                     kTokenReader +
                     "]\n    scopes: [read]\n"
                     "authorization:\n  anonymous: [metrics]\n";
  auto c = ParseWebConfig("/etc/suanli/web.yml", yaml, "/etc/suanli");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->credentials.size(), 3u);
  EXPECT_EQ(c->credentials[0].token_sha256[0], Sha256(kTokenA));
  EXPECT_EQ(c->credentials[1].token_sha256[0], Sha256(kTokenB));
  EXPECT_EQ(c->credentials[0].scopes, kScopeWrite);
  EXPECT_EQ(c->credentials[2].scopes, kScopeRead);
  EXPECT_EQ(c->anonymous_scopes, kScopeMetrics);
  // Hashes and an inline token: the file itself holds secrets.
  ASSERT_FALSE(c->secret_files.empty());
  EXPECT_EQ(c->secret_files[0], "/etc/suanli/web.yml");
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string yaml =
        std::string("basic_auth_users:\n  prom: ") + Bcrypt("pw") + "\n  pusher: " + Bcrypt("pw2") +
        "\ncredentials:\n"
        "  - name: dc-a\n    region: east\n    dc: a\n    bearer_tokens: [" +
        kTokenA +
        "]\n"
        "  - name: dc-b\n    region: east\n    dc: b\n    bearer_tokens: [" +
        kTokenB +
        "]\n    basic_auth_users: [pusher]\n"
        "  - name: reader\n    bearer_tokens: [" +
        kTokenReader + "]\n    scopes: [read, metrics]\nauthorization:\n  anonymous: [metrics]\n";
    auto c = ParseWebConfig("web.yml", yaml, "");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auth_ = std::make_unique<Authenticator>(*c);
  }
  AuthResult Check(const std::string& header, uint32_t scope, PeerCertificate peer = {}) {
    return auth_->Authenticate(header, peer, scope);
  }
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, BearerTokenCarriesItsBinding) {
  AuthResult r = Check(std::string("Bearer ") + kTokenA, kScopeWrite);
  ASSERT_EQ(r.outcome, AuthResult::Outcome::kOk) << r.reason;
  EXPECT_EQ(r.identity.kind, Identity::Kind::kBearer);
  EXPECT_EQ(r.identity.user, "dc-a");
  EXPECT_EQ(r.identity.region, "east");
  EXPECT_EQ(r.identity.dc, "a");
  // The scheme is case-insensitive.
  EXPECT_EQ(Check(std::string("bearer ") + kTokenB, kScopeWrite).identity.dc, "b");
}

TEST_F(AuthenticatorTest, MissingAndWrongCredentialsAre401ForbiddenScopeIs403) {
  EXPECT_EQ(Check("", kScopeWrite).http_status(), 401);
  EXPECT_EQ(Check("", kScopeWrite).outcome, AuthResult::Outcome::kMissing);
  EXPECT_EQ(Check("Bearer wrong-token-0123456789", kScopeWrite).outcome,
            AuthResult::Outcome::kInvalid);
  EXPECT_EQ(Check("Bearer", kScopeWrite).http_status(), 401);
  EXPECT_EQ(Check("Digest abc", kScopeWrite).http_status(), 401);
  EXPECT_EQ(Check(BasicHeader("prom", "wrong"), kScopeRead).http_status(), 401);
  EXPECT_EQ(Check(BasicHeader("nobody", "pw"), kScopeRead).http_status(), 401);
  EXPECT_EQ(Check("Basic !!!notbase64", kScopeRead).http_status(), 401);
  // A reader token may not write; a dc token may not read.
  EXPECT_EQ(Check(std::string("Bearer ") + kTokenReader, kScopeWrite).http_status(), 403);
  EXPECT_EQ(Check(std::string("Bearer ") + kTokenA, kScopeRead).http_status(), 403);
  EXPECT_EQ(Check(std::string("Bearer ") + kTokenReader, kScopeRead).http_status(), 200);
  // The reason never echoes the secret.
  EXPECT_THAT(Check("Bearer wrong-token-0123456789", kScopeWrite).reason,
              ::testing::Not(HasSubstr("wrong-token")));
  EXPECT_THAT(auth_->challenge(), HasSubstr("Basic realm="));
  EXPECT_THAT(auth_->challenge(), HasSubstr("Bearer realm="));
}

TEST_F(AuthenticatorTest, BasicUsersReadByDefaultAndWriteOnlyWhenBound) {
  AuthResult prom = Check(BasicHeader("prom", "pw"), kScopeRead);
  ASSERT_EQ(prom.outcome, AuthResult::Outcome::kOk) << prom.reason;
  EXPECT_EQ(prom.identity.kind, Identity::Kind::kBasic);
  EXPECT_EQ(prom.identity.user, "prom");
  EXPECT_FALSE(prom.identity.bound());
  EXPECT_EQ(Check(BasicHeader("prom", "pw"), kScopeWrite).http_status(), 403);
  // Second time from the cache, same answer.
  EXPECT_EQ(Check(BasicHeader("prom", "pw"), kScopeRead).http_status(), 200);
  AuthResult pusher = Check(BasicHeader("pusher", "pw2"), kScopeWrite);
  ASSERT_EQ(pusher.outcome, AuthResult::Outcome::kOk) << pusher.reason;
  EXPECT_EQ(pusher.identity.dc, "b");
}

TEST_F(AuthenticatorTest, AnonymousScopesAndPublicRoutesNeedNothing) {
  EXPECT_EQ(Check("", kScopeMetrics).outcome, AuthResult::Outcome::kOk);
  EXPECT_EQ(Check("", kScopePublic).outcome, AuthResult::Outcome::kOk);
  // Wrong credentials on an anonymous scope are still refused: the client meant to use them.
  EXPECT_EQ(Check("Bearer wrong-token-0123456789", kScopeMetrics).http_status(), 401);
}

// Only basic credentials may cost a bcrypt check; the server keeps those off its I/O threads.
TEST_F(AuthenticatorTest, OnlyBasicCredentialsMayBeSlow) {
  EXPECT_TRUE(auth_->MayBeSlow(BasicHeader("prom", "pw")));
  EXPECT_TRUE(auth_->MayBeSlow("  basic Zm9vOmJhcg=="));
  EXPECT_TRUE(auth_->MayBeSlow("Basic"));
  EXPECT_FALSE(auth_->MayBeSlow(std::string("Bearer ") + kTokenA));
  EXPECT_FALSE(auth_->MayBeSlow(""));
  EXPECT_FALSE(auth_->MayBeSlow("Basically"));
  // Authentication off: nothing is checked at all.
  Authenticator off{WebConfig{}};
  EXPECT_FALSE(off.MayBeSlow(BasicHeader("prom", "pw")));
}

TEST_F(AuthenticatorTest, UnverifiedOrUnboundCertificatesGrantNothing) {
  PeerCertificate unverified;
  unverified.present = true;
  unverified.common_name = "agent.dc-a.test";
  EXPECT_EQ(Check("", kScopeWrite, unverified).http_status(), 401);
  PeerCertificate unbound = unverified;
  unbound.verified = true;
  unbound.common_name = "someone.else";
  EXPECT_EQ(Check("", kScopeWrite, unbound).http_status(), 403);
}

TEST(WebConfigTest, CertificateNamesMatchCnOrDnsSan) {
  char dir_template[] = "/tmp/suanli-webcfg-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  testing_pki::TestPki pki;
  std::string error;
  ASSERT_TRUE(pki.Create(dir, &error)) << error;
  // Relative paths resolve against the web config's folder.
  std::string yaml =
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
      "  min_version: TLS13\n"
      "credentials:\n  - name: dc-a\n    dc: a\n    client_cert_names: [agent.dc-a.test]\n"
      "  - name: dc-b\n    dc: b\n    client_cert_names: [b-alias.test, agent.dc-b.test]\n";
  std::ofstream(dir + "/web.yml") << yaml;
  auto c = LoadWebConfig(dir + "/web.yml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->has_tls);
  EXPECT_EQ(c->tls.cert_file, dir + "/server.crt");
  EXPECT_EQ(c->tls.client_auth, ClientAuthType::kRequireAndVerifyClientCert);
  // Only the key holds a secret here (no hashes, no tokens in the file).
  ASSERT_EQ(c->secret_files.size(), 1u);
  EXPECT_EQ(c->secret_files[0], dir + "/server.key");
  Authenticator auth(*c);
  PeerCertificate by_cn;
  by_cn.present = by_cn.verified = true;
  by_cn.common_name = "agent.dc-a.test";
  EXPECT_EQ(auth.Authenticate("", by_cn, kScopeWrite).identity.dc, "a");
  PeerCertificate by_san;
  by_san.present = by_san.verified = true;
  by_san.common_name = "not-listed";
  by_san.dns_names = {"x.test", "agent.dc-b.test"};
  AuthResult r = auth.Authenticate("", by_san, kScopeWrite);
  EXPECT_EQ(r.identity.kind, Identity::Kind::kCertificate);
  EXPECT_EQ(r.identity.dc, "b");
  std::string cleanup = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

// Each mistake is reported with the file, the line and the key.
TEST(WebConfigTest, ErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml, want;
  };
  const std::string hash = Bcrypt("pw");
  const Case cases[] = {
      {"tls_server_config:\n  key_file: k\n", "web.yml:2: tls_server_config.cert_file"},
      {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Sometimes\n",
       "client_auth_type: must be NoClientCert"},
      {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n",
       "client_ca_file is set but client_auth_type is NoClientCert"},
      {"tls_server_config:\n  cert_file: c\n  key_file: k\n"
       "  client_auth_type: RequireAndVerifyClientCert\n",
       "client_ca_file: is required"},
      {"tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: SSL3\n",
       "min_version: must be TLS10"},
      {"tls_server_config:\n  cert_file: /nonexistent/c\n  key_file: k\n", "/nonexistent/c"},
      {"tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [x]\n",
       "cipher_suites: is not supported"},
      {"basic_auth_users:\n  u: plaintext\n", "web.yml:1: basic_auth_users: \"u\": not a bcrypt"},
      {"basic_auth_users:\n  u: $2y$99$abcdefghijklmnopqrstuubpco9BuLQZBZtn/gwh0hqaJSVqpe2FC\n",
       "bcrypt cost 99 is above 14"},
      // Found by the config fuzzer: a valid cost-20 hash made the check take minutes.
      {"basic_auth_users:\n  u: $2y$20$abcdefghijklmnopqrstuubpco8BuLQZBZtn/gwh0hqaJSVqpe2FC\n",
       "web.yml:1: basic_auth_users: \"u\": bcrypt cost 20 is above 14"},
      {"basic_auth_users:\n  u: $2y$x0$abcdefghijklmnopqrstuubpco8BuLQZBZtn/gwh0hqaJSVqpe2FC\n",
       "malformed bcrypt hash"},
      {"credentials:\n  - name: a\n    bearer_tokens: [short]\n", "at least 16 characters"},
      {"credentials:\n  - name: a\n    bearer_tokens: [\"sha256:abc\"]\n", "64 hex digits"},
      {"credentials:\n  - name: a\n    dc: a\n", "needs bearer_tokens"},
      {"credentials:\n  - name: a\n    bearer_tokens: [aaaaaaaaaaaaaaaaaaaa]\n"
       "  - name: b\n    bearer_tokens: [aaaaaaaaaaaaaaaaaaaa]\n",
       "web.yml:5: credentials[1].bearer_tokens: a token is also in \"a\""},
      {"credentials:\n  - name: a\n    bearer_tokens: [aaaaaaaaaaaaaaaaaaaa]\n    scopes: [all]\n",
       "unknown scope \"all\""},
      {"credentials:\n  - name: a\n    client_cert_names: [x]\n", "needs tls_server_config"},
      {"credentials:\n  - name: a\n    basic_auth_users: [ghost]\n",
       "\"ghost\" is not in the top-level basic_auth_users"},
      {"credentials:\n  - name: a\n    bearer_token_files: [/nonexistent/token]\n",
       "/nonexistent/token"},
      {"authorization:\n  anonymous: [everything]\n", "unknown scope \"everything\""},
      {"tls_config:\n  cert_file: x\n", "tls_config"},
  };
  for (const Case& c : cases) {
    auto r = ParseWebConfig("web.yml", c.yaml, "/tmp");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_THAT(r.status().message(), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(WebConfigTest, TokenFilesAndPermissionCheck) {
  char dir_template[] = "/tmp/suanli-webcfg-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::ofstream(dir + "/a.token") << kTokenA << "\n";
  ASSERT_EQ(chmod((dir + "/a.token").c_str(), 0600), 0);
  std::ofstream(dir + "/web.yml")
      << "credentials:\n  - name: a\n    bearer_token_files: [a.token]\n";
  ASSERT_EQ(chmod((dir + "/web.yml").c_str(), 0644), 0);
  auto c = LoadWebConfig(dir + "/web.yml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // The token (trailing newline trimmed) is read at load time.
  Authenticator auth(*c);
  EXPECT_EQ(auth.Authenticate(std::string("Bearer ") + kTokenA, {}, kScopeWrite).outcome,
            AuthResult::Outcome::kOk);
  // The web config holds no secret itself here; the token file does.
  ASSERT_EQ(c->secret_files.size(), 1u);
  EXPECT_EQ(c->secret_files[0], dir + "/a.token");
  EXPECT_FALSE(ReadableByOthers(dir + "/a.token"));
  ASSERT_EQ(chmod((dir + "/a.token").c_str(), 0644), 0);
  EXPECT_TRUE(ReadableByOthers(dir + "/a.token"));
  EXPECT_FALSE(ReadableByOthers(dir + "/missing"));
  std::string cleanup = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

// Scope admin exists only where a credential lists it: not in the default [write], not for
// unbound basic-auth users.
TEST(WebConfigTest, AdminScopeOnlyWhereListed) {
  EXPECT_EQ(ScopeFromName("admin"), kScopeAdmin);
  std::string yaml = std::string("basic_auth_users:\n  prom: ") + Bcrypt("pw") +
                     "\ncredentials:\n"
                     "  - name: writer\n    bearer_tokens: [" +
                     kTokenA +
                     "]\n"
                     "  - name: operator\n    bearer_tokens: [" +
                     kTokenReader +
                     "]\n"
                     "    scopes: [admin]\n";
  auto c = ParseWebConfig("/etc/suanli/web.yml", yaml, "/etc/suanli");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Authenticator auth(*c);
  auto bearer = [](const char* token) { return std::string("Bearer ") + token; };
  EXPECT_EQ(auth.Authenticate(bearer(kTokenReader), PeerCertificate{}, kScopeAdmin).outcome,
            AuthResult::Outcome::kOk);
  EXPECT_EQ(auth.Authenticate(bearer(kTokenReader), PeerCertificate{}, kScopeRead).outcome,
            AuthResult::Outcome::kForbidden);
  EXPECT_EQ(auth.Authenticate(bearer(kTokenA), PeerCertificate{}, kScopeAdmin).outcome,
            AuthResult::Outcome::kForbidden);
  EXPECT_EQ(auth.Authenticate("Basic cHJvbTpwdw==", PeerCertificate{}, kScopeAdmin).outcome,
            AuthResult::Outcome::kForbidden);  // prom:pw
  EXPECT_EQ(auth.Authenticate("", PeerCertificate{}, kScopeAdmin).outcome,
            AuthResult::Outcome::kMissing);
  auto bad = ParseWebConfig("w.yml",
                            "credentials:\n  - name: x\n    bearer_tokens: [" +
                                std::string(kTokenA) + "]\n    scopes: [root]\n",
                            "/");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(write, read, metrics, admin)"), std::string::npos);
}

}  // namespace
}  // namespace suanli
