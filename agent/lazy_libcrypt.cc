// crypt_r, which core's web configuration calls to check a basic-auth password against its
// bcrypt hash, defined in the suanli-agent executable: it loads libcrypt.so.1 (libxcrypt) with
// dlopen on first use and forwards to it, so that an agent without basic_auth_users does not map
// the library (as lazy_openssl.cc does for OpenSSL). When the library cannot be loaded (logged
// once), crypt_r returns null, which the caller treats as a failed check: it fails closed.
// Thread-safety: the symbol is resolved once (a function-local static); crypt_r is reentrant.
#include <crypt.h>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

extern "C" char* crypt_r(const char* phrase, const char* setting, struct crypt_data* data) {
  static const auto fn = [] {
    void* h = ::dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    void* sym = h != nullptr ? ::dlsym(h, "crypt_r") : nullptr;
    if (sym == nullptr) {
      spdlog::error("cannot load crypt_r from libcrypt.so.1 (needed for basic auth): {}",
                    ::dlerror());
    }
    return reinterpret_cast<decltype(&::crypt_r)>(sym);
  }();
  return fn != nullptr ? fn(phrase, setting, data) : nullptr;
}
