// SnmpSession: SNMP v2c and v3 (USM) GET and walk requests through net-snmp's single-session
// API, for the router links (snmp_links.h).
//
// net-snmp is loaded with dlopen (libnetsnmp.so.40) on the first Open(), not linked: most agents
// poll no router, and linking it would map net-snmp and OpenSSL into every agent at start (the
// agent loads OpenSSL lazily for the same reason, agent/lazy_openssl.cc). The library is
// initialised once with no configuration files, no persistent state (nothing written under
// /var/lib/snmp) and no MIBs (OIDs are numeric), and its own logging off: errors come back as
// Status values.
//
// Errors: kDeadlineExceeded for a timeout (an SNMP v2c agent drops a request with a wrong
// community silently, so that reads as a timeout too), kPermissionDenied for a v3 user, key or
// security level the agent refuses and for authorizationError/noAccess answers,
// kNotFound when the library cannot be loaded, kUnavailable for anything else.
// Thread-safety: every call into net-snmp holds one process-wide mutex (the library's USM user
// list and engine-ID cache are global), so sessions may be used from any thread; one session
// from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace suanli::agent {

using SnmpOid = std::vector<uint32_t>;

// "1.3.6.1.2.1.1.3.0" (no leading dot needed) for messages and tests.
std::string FormatOid(const SnmpOid& oid);

struct SnmpSessionOptions {
  std::string target;  // "host" or "host:port" (IPv6: "[::1]:161"); port 161 by default
  int version = 2;     // 2 (v2c) or 3
  std::string community;
  // v3 (USM): security level follows from what is given: no auth protocol = noAuthNoPriv,
  // auth only = authNoPriv, auth and priv = authPriv.
  std::string user;
  std::string auth_protocol;  // MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
  std::string auth_passphrase;
  std::string priv_protocol;  // DES, AES (AES-128)
  std::string priv_passphrase;
  std::chrono::milliseconds timeout{1000};  // per request try
  int retries = 1;                          // tries after the first

  bool operator==(const SnmpSessionOptions&) const = default;
};

// True for the protocol names above (case-insensitive); the factory validates with these.
bool IsKnownSnmpAuthProtocol(const std::string& name);
bool IsKnownSnmpPrivProtocol(const std::string& name);

struct SnmpVarbind {
  enum class Type { kMissing, kInteger, kUnsigned, kCounter64, kTimeTicks, kString, kOther };
  SnmpOid oid;
  Type type = Type::kMissing;   // kMissing: noSuchObject, noSuchInstance or endOfMibView
  int64_t integer = 0;          // kInteger
  uint64_t unsigned_value = 0;  // kUnsigned (Gauge32, Counter32), kCounter64, kTimeTicks
  std::string text;             // kString
};

class SnmpSession {
 public:
  // Opens a session (for v3 this discovers the agent's engine ID: one request, so an
  // unreachable v3 agent fails here after timeout x (retries + 1)).
  static Result<std::unique_ptr<SnmpSession>> Open(const SnmpSessionOptions& options);
  ~SnmpSession();
  SnmpSession(const SnmpSession&) = delete;
  SnmpSession& operator=(const SnmpSession&) = delete;

  // One GET of every OID; the answer has one varbind per OID, in order.
  Result<std::vector<SnmpVarbind>> Get(const std::vector<SnmpOid>& oids);
  // Every varbind under `root` (GETBULK), at most `max_rows`.
  Result<std::vector<SnmpVarbind>> Walk(const SnmpOid& root, size_t max_rows = 10000);

 private:
  SnmpSession(void* handle, std::string target, std::string usm_key)
      : handle_(handle), target_(std::move(target)), usm_key_(std::move(usm_key)) {}
  Result<std::vector<SnmpVarbind>> Request(int command, const std::vector<SnmpOid>& oids,
                                           int max_repetitions);

  void* handle_;  // net-snmp's opaque single-session pointer
  std::string target_;
  std::string usm_key_;  // v3: target '\0' user, to remember the engine ID it answers with
};

}  // namespace suanli::agent
