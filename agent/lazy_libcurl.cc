// The libcurl entry points core/http_client.cc calls, defined in the suanli-agent executable
// itself: they load libcurl.so.4 with dlopen on first use and forward to it. Most agents never
// use libcurl (http:// endpoints go through agent/plain_http_client.h; it serves only https://
// endpoints and the Redfish collector), and merely loading it maps libcurl and the TLS,
// Kerberos, LDAP and SSH libraries it depends on: about 4 MB of resident memory, and the
// constructors of some of them run at start. Linked into the executable only (before the
// libraries, with --as-needed), so the tests keep linking libcurl as usual.
//
// curl_easy_setopt and curl_easy_getinfo are variadic with exactly one argument: a long, an
// object or function pointer, or a curl_off_t (libcurl's documented contract). On the 64-bit
// Linux ABIs (x86-64 System V, AArch64) each of these is passed as one 8-byte integer-class
// argument, so reading it as a pointer and passing it on is exact.
// When the library cannot be loaded, curl_global_init fails (CURLE_FAILED_INIT) and the
// HTTP client reports that, as it would for a failed initialisation.
// Thread-safety: the library is loaded once (std::call_once); the functions are libcurl's.
// curl.h would otherwise make these two function-like macros (its gcc type checks).
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <mutex>

static_assert(sizeof(void*) == 8 && sizeof(long) == 8 && sizeof(curl_off_t) == 8,
              "the variadic forwarding below assumes a 64-bit Linux ABI");

namespace {

struct Libcurl {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// The loaded library, or nullptr when it could not be loaded (logged once).
const Libcurl* Load() {
  static std::once_flag once;
  static Libcurl lib;
  static bool ok = false;
  std::call_once(once, [] {
    void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      spdlog::error("cannot load libcurl (needed for https:// endpoints and Redfish): {}",
                    ::dlerror());
      return;
    }
    bool all = true;
    auto get = [&](const char* name, auto& fn) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      all &= fn != nullptr;
    };
    get("curl_global_init", lib.global_init);
    get("curl_easy_init", lib.easy_init);
    get("curl_easy_cleanup", lib.easy_cleanup);
    get("curl_easy_reset", lib.easy_reset);
    get("curl_easy_setopt", lib.easy_setopt);
    get("curl_easy_perform", lib.easy_perform);
    get("curl_easy_strerror", lib.easy_strerror);
    get("curl_easy_getinfo", lib.easy_getinfo);
    get("curl_slist_append", lib.slist_append);
    get("curl_slist_free_all", lib.slist_free_all);
    if (!all) {
      spdlog::error("libcurl.so.4 lacks an entry point the agent uses");
      return;
    }
    ok = true;
  });
  return ok ? &lib : nullptr;
}

// Every other entry point is reached only with a handle from curl_easy_init, which needs the
// library: Load() has succeeded by then.
const Libcurl& Loaded() { return *Load(); }

}  // namespace

extern "C" {

CURLcode curl_global_init(long flags) {
  const Libcurl* lib = Load();
  return lib != nullptr ? lib->global_init(flags) : CURLE_FAILED_INIT;
}

CURL* curl_easy_init() {
  const Libcurl* lib = Load();
  return lib != nullptr ? lib->easy_init() : nullptr;
}

void curl_easy_cleanup(CURL* curl) { Loaded().easy_cleanup(curl); }

void curl_easy_reset(CURL* curl) { Loaded().easy_reset(curl); }

CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  va_list ap;
  va_start(ap, option);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return Loaded().easy_setopt(curl, option, arg);
}

CURLcode curl_easy_perform(CURL* curl) { return Loaded().easy_perform(curl); }

const char* curl_easy_strerror(CURLcode code) {
  const Libcurl* lib = Load();
  return lib != nullptr ? lib->easy_strerror(code) : "libcurl could not be loaded";
}

CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  va_list ap;
  va_start(ap, info);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return Loaded().easy_getinfo(curl, info, arg);
}

curl_slist* curl_slist_append(curl_slist* list, const char* s) {
  const Libcurl* lib = Load();
  return lib != nullptr ? lib->slist_append(list, s) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
  if (list != nullptr) Loaded().slist_free_all(list);
}

}  // extern "C"
