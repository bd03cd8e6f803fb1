// The OpenSSL entry points core's HTTP server and web configuration call, defined in the
// suanli-agent executable itself: they load libssl.so.3 (and with it libcrypto.so.3) with dlopen
// on first use and forward to it. Only an agent whose web configuration asks for TLS or
// password-checked basic auth calls any of them; merely loading the two libraries cost about
// 1.7 MB of resident memory (libcrypto's relocated data alone is 400 KB of private pages), a
// sixth of the agent's RSS. Same pattern as lazy_libcurl.cc, linked into the executable only
// (before the libraries, with --as-needed), so the tests keep linking OpenSSL as usual.
//
// Each function resolves its symbol once (a function-local static) and calls through it. When
// the library cannot be loaded (logged once), every call fails the way OpenSSL reports a
// failure: null pointers, 0 from functions whose success is 1 (SSL_CTX_new fails first, so the
// TLS set-up reports an error and nothing else is reached), and CRYPTO_memcmp says "different",
// so a password check fails closed.
// The signatures are checked against OpenSSL's headers: a definition that differs from the
// declaration does not compile.
// Thread-safety: the library is loaded once (function-local statics); the functions are
// OpenSSL's.
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

namespace {

// libssl's handle (its dependency libcrypto is searched through it), or nullptr.
void* Library() {
  static void* const handle = [] {
    void* h = ::dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      spdlog::error("cannot load OpenSSL (needed for TLS and basic auth in web.config): {}",
                    ::dlerror());
    }
    return h;
  }();
  return handle;
}

void* Resolve(const char* name) {
  void* h = Library();
  if (h == nullptr) return nullptr;
  void* sym = ::dlsym(h, name);
  if (sym == nullptr) spdlog::error("OpenSSL lacks {}, which the agent uses", name);
  return sym;
}

}  // namespace

// RET NAME PARAMS: the declaration as in OpenSSL's headers; ARGS: the call's arguments; FAIL:
// the result when the library or the symbol is missing.
#define SUANLI_LAZY_OPENSSL(ret, name, params, args, fail)                      \
  ret name params {                                                             \
    static const auto fn = reinterpret_cast<decltype(&::name)>(Resolve(#name)); \
    if (fn == nullptr) return fail;                                             \
    return fn args;                                                             \
  }

extern "C" {

// libcrypto
SUANLI_LAZY_OPENSSL(int, ASN1_STRING_to_UTF8, (unsigned char** out, const ASN1_STRING* in),
                    (out, in), -1)
SUANLI_LAZY_OPENSSL(long, BIO_ctrl, (BIO * bp, int cmd, long larg, void* parg),
                    (bp, cmd, larg, parg), 0)
SUANLI_LAZY_OPENSSL(size_t, BIO_ctrl_pending, (BIO * b), (b), 0)
SUANLI_LAZY_OPENSSL(int, BIO_free, (BIO * a), (a), 0)
SUANLI_LAZY_OPENSSL(int, BIO_new_bio_pair,
                    (BIO * *bio1, size_t writebuf1, BIO** bio2, size_t writebuf2),
                    (bio1, writebuf1, bio2, writebuf2), 0)
SUANLI_LAZY_OPENSSL(int, BIO_read, (BIO * b, void* data, int dlen), (b, data, dlen), -1)
SUANLI_LAZY_OPENSSL(int, BIO_write, (BIO * b, const void* data, int dlen), (b, data, dlen), -1)
SUANLI_LAZY_OPENSSL(void, CRYPTO_free, (void* ptr, const char* file, int line), (ptr, file, line),
                    void())
SUANLI_LAZY_OPENSSL(int, CRYPTO_memcmp, (const void* in_a, const void* in_b, size_t len),
                    (in_a, in_b, len), 1)
SUANLI_LAZY_OPENSSL(void, ERR_clear_error, (void), (), void())
SUANLI_LAZY_OPENSSL(void, ERR_error_string_n, (unsigned long e, char* buf, size_t len),
                    (e, buf, len), void())
SUANLI_LAZY_OPENSSL(unsigned long, ERR_get_error, (void), (), 0)
SUANLI_LAZY_OPENSSL(const char*, ERR_reason_error_string, (unsigned long e), (e), nullptr)
SUANLI_LAZY_OPENSSL(int, EVP_Digest,
                    (const void* data, size_t count, unsigned char* md, unsigned int* size,
                     const EVP_MD* type, ENGINE* impl),
                    (data, count, md, size, type, impl), 0)
SUANLI_LAZY_OPENSSL(const EVP_MD*, EVP_sha256, (void), (), nullptr)
SUANLI_LAZY_OPENSSL(void, GENERAL_NAMES_free, (GENERAL_NAMES * a), (a), void())
SUANLI_LAZY_OPENSSL(int, OPENSSL_sk_num, (const OPENSSL_STACK* st), (st), -1)
SUANLI_LAZY_OPENSSL(void*, OPENSSL_sk_value, (const OPENSSL_STACK* st, int i), (st, i), nullptr)
SUANLI_LAZY_OPENSSL(ASN1_STRING*, X509_NAME_ENTRY_get_data, (const X509_NAME_ENTRY* ne), (ne),
                    nullptr)
SUANLI_LAZY_OPENSSL(X509_NAME_ENTRY*, X509_NAME_get_entry, (const X509_NAME* name, int loc),
                    (name, loc), nullptr)
SUANLI_LAZY_OPENSSL(int, X509_NAME_get_index_by_NID, (const X509_NAME* name, int nid, int lastpos),
                    (name, nid, lastpos), -1)
SUANLI_LAZY_OPENSSL(void, X509_free, (X509 * a), (a), void())
SUANLI_LAZY_OPENSSL(void*, X509_get_ext_d2i, (const X509* x, int nid, int* crit, int* idx),
                    (x, nid, crit, idx), nullptr)
SUANLI_LAZY_OPENSSL(X509_NAME*, X509_get_subject_name, (const X509* a), (a), nullptr)

// libssl
SUANLI_LAZY_OPENSSL(int, SSL_CTX_check_private_key, (const SSL_CTX* ctx), (ctx), 0)
SUANLI_LAZY_OPENSSL(long, SSL_CTX_ctrl, (SSL_CTX * ctx, int cmd, long larg, void* parg),
                    (ctx, cmd, larg, parg), 0)
SUANLI_LAZY_OPENSSL(void, SSL_CTX_free, (SSL_CTX * ctx), (ctx), void())
SUANLI_LAZY_OPENSSL(void*, SSL_CTX_get_default_passwd_cb_userdata, (SSL_CTX * ctx), (ctx), nullptr)
SUANLI_LAZY_OPENSSL(void*, SSL_CTX_get_ex_data, (const SSL_CTX* ssl, int idx), (ssl, idx), nullptr)
SUANLI_LAZY_OPENSSL(int, SSL_CTX_load_verify_locations,
                    (SSL_CTX * ctx, const char* CAfile, const char* CApath), (ctx, CAfile, CApath),
                    0)
SUANLI_LAZY_OPENSSL(SSL_CTX*, SSL_CTX_new, (const SSL_METHOD* meth), (meth), nullptr)
SUANLI_LAZY_OPENSSL(void, SSL_CTX_set_client_CA_list,
                    (SSL_CTX * ctx, STACK_OF(X509_NAME) * name_list), (ctx, name_list), void())
SUANLI_LAZY_OPENSSL(void, SSL_CTX_set_default_passwd_cb_userdata, (SSL_CTX * ctx, void* u),
                    (ctx, u), void())
SUANLI_LAZY_OPENSSL(int, SSL_CTX_set_ex_data, (SSL_CTX * ssl, int idx, void* data),
                    (ssl, idx, data), 0)
SUANLI_LAZY_OPENSSL(uint64_t, SSL_CTX_set_options, (SSL_CTX * ctx, uint64_t op), (ctx, op), 0)
SUANLI_LAZY_OPENSSL(int, SSL_CTX_set_session_id_context,
                    (SSL_CTX * ctx, const unsigned char* sid_ctx, unsigned int sid_ctx_len),
                    (ctx, sid_ctx, sid_ctx_len), 0)
SUANLI_LAZY_OPENSSL(void, SSL_CTX_set_verify, (SSL_CTX * ctx, int mode, SSL_verify_cb callback),
                    (ctx, mode, callback), void())
SUANLI_LAZY_OPENSSL(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX * ctx, const char* file, int type),
                    (ctx, file, type), 0)
SUANLI_LAZY_OPENSSL(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX * ctx, const char* file),
                    (ctx, file), 0)
SUANLI_LAZY_OPENSSL(int, SSL_accept, (SSL * ssl), (ssl), -1)
SUANLI_LAZY_OPENSSL(int, SSL_connect, (SSL * ssl), (ssl), -1)
SUANLI_LAZY_OPENSSL(long, SSL_ctrl, (SSL * ssl, int cmd, long larg, void* parg),
                    (ssl, cmd, larg, parg), 0)
SUANLI_LAZY_OPENSSL(void, SSL_free, (SSL * ssl), (ssl), void())
SUANLI_LAZY_OPENSSL(X509*, SSL_get1_peer_certificate, (const SSL* s), (s), nullptr)
SUANLI_LAZY_OPENSSL(int, SSL_get_error, (const SSL* s, int ret_code), (s, ret_code), SSL_ERROR_SSL)
SUANLI_LAZY_OPENSSL(void*, SSL_get_ex_data, (const SSL* ssl, int idx), (ssl, idx), nullptr)
SUANLI_LAZY_OPENSSL(int, SSL_get_shutdown, (const SSL* ssl), (ssl), 0)
SUANLI_LAZY_OPENSSL(long, SSL_get_verify_result, (const SSL* ssl), (ssl), X509_V_ERR_UNSPECIFIED)
SUANLI_LAZY_OPENSSL(STACK_OF(X509_NAME) *, SSL_load_client_CA_file, (const char* file), (file),
                    nullptr)
SUANLI_LAZY_OPENSSL(SSL*, SSL_new, (SSL_CTX * ctx), (ctx), nullptr)
SUANLI_LAZY_OPENSSL(int, SSL_read, (SSL * ssl, void* buf, int num), (ssl, buf, num), -1)
SUANLI_LAZY_OPENSSL(void, SSL_set_bio, (SSL * s, BIO* rbio, BIO* wbio), (s, rbio, wbio), void())
SUANLI_LAZY_OPENSSL(int, SSL_set_ex_data, (SSL * ssl, int idx, void* data), (ssl, idx, data), 0)
SUANLI_LAZY_OPENSSL(void, SSL_set_shutdown, (SSL * ssl, int mode), (ssl, mode), void())
SUANLI_LAZY_OPENSSL(int, SSL_shutdown, (SSL * s), (s), -1)
SUANLI_LAZY_OPENSSL(int, SSL_write, (SSL * ssl, const void* buf, int num), (ssl, buf, num), -1)
SUANLI_LAZY_OPENSSL(const SSL_METHOD*, TLS_server_method, (void), (), nullptr)

}  // extern "C"
