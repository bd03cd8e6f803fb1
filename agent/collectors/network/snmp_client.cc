#include "agent/collectors/network/snmp_client.h"

// net-snmp's headers define many configure macros (PACKAGE_*, HAVE_*): included here only.
#include <dlfcn.h>
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <algorithm>
#include <cctype>
#include <clocale>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace suanli::agent {

namespace {

// The net-snmp entry points used, resolved from libnetsnmp.so.40 (the Debian 12 soname).
struct NetSnmp {
  decltype(&::init_snmp) init_snmp;
  decltype(&::netsnmp_ds_set_boolean) ds_set_boolean;
  decltype(&::netsnmp_ds_set_string) ds_set_string;
  decltype(&::netsnmp_register_loghandler) register_loghandler;
  decltype(&::snmp_sess_init) sess_init;
  decltype(&::snmp_sess_open) sess_open;
  decltype(&::snmp_sess_close) sess_close;
  decltype(&::snmp_sess_error) sess_error;
  decltype(&::snmp_error) error;
  decltype(&::snmp_sess_synch_response) sess_synch_response;
  decltype(&::snmp_pdu_create) pdu_create;
  decltype(&::snmp_add_null_var) add_null_var;
  decltype(&::snmp_free_pdu) free_pdu;
  decltype(&::generate_Ku) generate_ku;
  decltype(&::snmp_errstring) errstring;
  decltype(&::snmp_sess_session) sess_session;
  decltype(&::usm_get_user) usm_get_user;
  decltype(&::usm_remove_user) usm_remove_user;
  decltype(&::usm_free_user) usm_free_user;
  decltype(&::usm_create_user_from_session) usm_create_user_from_session;
};

constexpr const char* kLibrary = "libnetsnmp.so.40";
constexpr const char* kNowhere = "/dev/null/suanli-agent";

// Every call into net-snmp holds this (see the header).
std::mutex& LibraryMutex() {
  static std::mutex mu;
  return mu;
}

// The loaded and initialised library, or the reason it could not be loaded. Call with
// LibraryMutex() held.
Result<const NetSnmp*> Load() {
  static NetSnmp lib;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    void* h = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* why = ::dlerror();
      error = std::string("cannot load ") + kLibrary +
              " (Debian package libsnmp40): " + (why != nullptr ? why : "unknown error");
    } else {
      bool all = true;
      auto get = [&](const char* name, auto& fn) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
        all &= fn != nullptr;
      };
      get("init_snmp", lib.init_snmp);
      get("netsnmp_ds_set_boolean", lib.ds_set_boolean);
      get("netsnmp_ds_set_string", lib.ds_set_string);
      get("netsnmp_register_loghandler", lib.register_loghandler);
      get("snmp_sess_init", lib.sess_init);
      get("snmp_sess_open", lib.sess_open);
      get("snmp_sess_close", lib.sess_close);
      get("snmp_sess_error", lib.sess_error);
      get("snmp_error", lib.error);
      get("snmp_sess_synch_response", lib.sess_synch_response);
      get("snmp_pdu_create", lib.pdu_create);
      get("snmp_add_null_var", lib.add_null_var);
      get("snmp_free_pdu", lib.free_pdu);
      get("generate_Ku", lib.generate_ku);
      get("snmp_errstring", lib.errstring);
      get("snmp_sess_session", lib.sess_session);
      get("usm_get_user", lib.usm_get_user);
      get("usm_remove_user", lib.usm_remove_user);
      get("usm_free_user", lib.usm_free_user);
      get("usm_create_user_from_session", lib.usm_create_user_from_session);
      if (!all) {
        error = std::string(kLibrary) + " lacks an entry point the agent uses";
      } else {
        // No snmp.conf, no persistent state, no MIBs: the agent uses numeric OIDs and must
        // write nothing under /var/lib/snmp. The persistent and MIB directories point below
        // /dev/null, where nothing can be created (the TLS certificate index would otherwise
        // create /var/lib/snmp/cert_indexes). A handler that drops every message keeps the
        // library off stderr (errors come back as Status values).
        lib.register_loghandler(NETSNMP_LOGHANDLER_NONE, LOG_EMERG);
        lib.ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
        lib.ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
        lib.ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
        lib.ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
        lib.ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIBDIRS, kNowhere);
        lib.ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, kNowhere);
        // init_snmp() sets LC_CTYPE from the environment: the agent keeps its own.
        const char* ctype = std::setlocale(LC_CTYPE, nullptr);
        std::string saved = ctype != nullptr ? ctype : "C";
        lib.init_snmp("suanli-agent");
        std::setlocale(LC_CTYPE, saved.c_str());
      }
    }
  }
  if (!error.empty()) return NotFound(error);
  return &lib;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// USM protocol OIDs (RFC 3414, RFC 7860, RFC 3826), compared by value by net-snmp.
struct Protocol {
  const char* name;
  oid id[10];
};
const Protocol kAuthProtocols[] = {
    {"md5", {1, 3, 6, 1, 6, 3, 10, 1, 1, 2}},     {"sha", {1, 3, 6, 1, 6, 3, 10, 1, 1, 3}},
    {"sha-224", {1, 3, 6, 1, 6, 3, 10, 1, 1, 4}}, {"sha-256", {1, 3, 6, 1, 6, 3, 10, 1, 1, 5}},
    {"sha-384", {1, 3, 6, 1, 6, 3, 10, 1, 1, 6}}, {"sha-512", {1, 3, 6, 1, 6, 3, 10, 1, 1, 7}},
};
const Protocol kPrivProtocols[] = {
    {"des", {1, 3, 6, 1, 6, 3, 10, 1, 2, 2}},
    {"aes", {1, 3, 6, 1, 6, 3, 10, 1, 2, 4}},  // usmAesCfb128Protocol
};

const oid* FindProtocol(const Protocol* begin, const Protocol* end, const std::string& name) {
  std::string n = Lower(name);
  if (n == "sha1" || n == "sha-1") n = "sha";
  if (n == "aes128" || n == "aes-128") n = "aes";
  if (n == "sha224") n = "sha-224";
  if (n == "sha256") n = "sha-256";
  if (n == "sha384") n = "sha-384";
  if (n == "sha512") n = "sha-512";
  for (const Protocol* p = begin; p != end; ++p) {
    if (n == p->name) return p->id;
  }
  return nullptr;
}

const oid* AuthProtocol(const std::string& name) {
  return FindProtocol(std::begin(kAuthProtocols), std::end(kAuthProtocols), name);
}
const oid* PrivProtocol(const std::string& name) {
  return FindProtocol(std::begin(kPrivProtocols), std::end(kPrivProtocols), name);
}

// A Status for a net-snmp error number, with its message.
Status ErrorStatus(const std::string& what, int liberr, const char* message) {
  std::string text = what + ": " + (message != nullptr && *message ? message : "SNMP error");
  switch (liberr) {
    case SNMPERR_TIMEOUT:
      return DeadlineExceeded(text);
    case SNMPERR_UNKNOWN_USER_NAME:
    case SNMPERR_UNSUPPORTED_SEC_LEVEL:
    case SNMPERR_AUTHENTICATION_FAILURE:
    case SNMPERR_DECRYPTION_ERR:
    case SNMPERR_USM_UNKNOWNSECURITYNAME:
    case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
    case SNMPERR_USM_AUTHENTICATIONFAILURE:
    case SNMPERR_USM_DECRYPTIONERROR:
      return PermissionDenied(text);
    default:
      return Unavailable(text);
  }
}

// The error-status names of RFC 3416, for messages.
const char* ErrorStatusName(long status) {
  static const char* const kNames[] = {"noError",
                                       "tooBig",
                                       "noSuchName",
                                       "badValue",
                                       "readOnly",
                                       "genErr",
                                       "noAccess",
                                       "wrongType",
                                       "wrongLength",
                                       "wrongEncoding",
                                       "wrongValue",
                                       "noCreation",
                                       "inconsistentValue",
                                       "resourceUnavailable",
                                       "commitFailed",
                                       "undoFailed",
                                       "authorizationError",
                                       "notWritable",
                                       "inconsistentName"};
  if (status >= 0 && status < static_cast<long>(std::size(kNames))) return kNames[status];
  return "unknown error-status";
}

SnmpVarbind ToVarbind(const netsnmp_variable_list& v) {
  SnmpVarbind b;
  b.oid.assign(v.name, v.name + v.name_length);
  switch (v.type) {
    case ASN_INTEGER:
      b.type = SnmpVarbind::Type::kInteger;
      b.integer = *v.val.integer;
      break;
    case ASN_GAUGE:  // also Unsigned32
    case ASN_COUNTER:
      b.type = SnmpVarbind::Type::kUnsigned;
      b.unsigned_value = static_cast<uint32_t>(*v.val.integer);
      break;
    case ASN_TIMETICKS:
      b.type = SnmpVarbind::Type::kTimeTicks;
      b.unsigned_value = static_cast<uint32_t>(*v.val.integer);
      break;
    case ASN_COUNTER64:
      b.type = SnmpVarbind::Type::kCounter64;
      b.unsigned_value = (static_cast<uint64_t>(v.val.counter64->high & 0xFFFFFFFFu) << 32) |
                         (v.val.counter64->low & 0xFFFFFFFFu);
      break;
    case ASN_OCTET_STR:
      b.type = SnmpVarbind::Type::kString;
      b.text.assign(reinterpret_cast<const char*>(v.val.string), v.val_len);
      break;
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
      b.type = SnmpVarbind::Type::kMissing;
      break;
    default:
      b.type = SnmpVarbind::Type::kOther;
      break;
  }
  return b;
}

// net-snmp keeps one USM user per (engine ID, user name) for the whole process, made with the
// keys of the first session that discovered that engine and never updated: a session opened
// after a passphrase changed (a new file, a reload, a wrong one corrected) would sign with the
// old keys, and one with wrong keys would sign with the right ones. So the engine ID each
// target answered with is kept, and its user is dropped before a session to that target opens:
// the new session's engine discovery makes it again, from its own keys.
std::map<std::string, std::string>& EngineIds() {  // target '\0' user -> engine ID
  static std::map<std::string, std::string> ids;
  return ids;
}

void ForgetUsmUser(const NetSnmp& lib, const std::string& key) {
  auto it = EngineIds().find(key);
  if (it == EngineIds().end()) return;
  std::string user = key.substr(key.find('\0') + 1);
  struct usmUser* u = lib.usm_get_user(reinterpret_cast<const u_char*>(it->second.data()),
                                       it->second.size(), user.c_str());
  if (u == nullptr) return;
  lib.usm_remove_user(u);       // returns the list's head, not the user
  u->next = u->prev = nullptr;  // usm_free_user() would relink a listed user's neighbours
  lib.usm_free_user(u);
}

bool StartsWith(const SnmpOid& oid, const SnmpOid& prefix) {
  return oid.size() > prefix.size() && std::equal(prefix.begin(), prefix.end(), oid.begin());
}

}  // namespace

std::string FormatOid(const SnmpOid& oid) {
  std::string out;
  for (uint32_t part : oid) out += (out.empty() ? "" : ".") + std::to_string(part);
  return out;
}

bool IsKnownSnmpAuthProtocol(const std::string& name) { return AuthProtocol(name) != nullptr; }
bool IsKnownSnmpPrivProtocol(const std::string& name) { return PrivProtocol(name) != nullptr; }

Result<std::unique_ptr<SnmpSession>> SnmpSession::Open(const SnmpSessionOptions& o) {
  std::lock_guard lock(LibraryMutex());
  ASSIGN_OR_RETURN(const NetSnmp* lib, Load());
  netsnmp_session s;
  lib->sess_init(&s);
  // UDP only: a "tcp:" or other transport prefix from the configuration never reaches here.
  std::string peer = "udp:" + o.target;
  if (o.target.find(':') != std::string::npos && o.target.front() != '[' &&
      o.target.find(':') != o.target.rfind(':')) {
    peer = "udp6:[" + o.target + "]";  // a bare IPv6 address
  } else if (!o.target.empty() && o.target.front() == '[') {
    peer = "udp6:" + o.target;
  }
  s.peername = peer.data();
  s.timeout = static_cast<long>(o.timeout.count()) * 1000;  // microseconds
  s.retries = o.retries;
  std::string community = o.community;
  std::string user = o.user;
  if (o.version == 3) {
    s.version = SNMP_VERSION_3;
    s.securityName = user.data();
    s.securityNameLen = user.size();
    s.securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    if (!o.auth_protocol.empty()) {
      const oid* auth = AuthProtocol(o.auth_protocol);
      if (auth == nullptr) return InvalidArgument("unknown auth_protocol " + o.auth_protocol);
      s.securityLevel = SNMP_SEC_LEVEL_AUTHNOPRIV;
      s.securityAuthProto = const_cast<oid*>(auth);
      s.securityAuthProtoLen = 10;
      s.securityAuthKeyLen = sizeof(s.securityAuthKey);
      int rc = lib->generate_ku(auth, 10, reinterpret_cast<const u_char*>(o.auth_passphrase.data()),
                                o.auth_passphrase.size(), s.securityAuthKey, &s.securityAuthKeyLen);
      if (rc != SNMPERR_SUCCESS) {
        return InvalidArgument("cannot derive the auth key from auth_passphrase (" +
                               std::string(lib->errstring(rc)) + ")");
      }
      if (!o.priv_protocol.empty()) {
        const oid* priv = PrivProtocol(o.priv_protocol);
        if (priv == nullptr) return InvalidArgument("unknown priv_protocol " + o.priv_protocol);
        s.securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
        s.securityPrivProto = const_cast<oid*>(priv);
        s.securityPrivProtoLen = 10;
        s.securityPrivKeyLen = sizeof(s.securityPrivKey);
        rc = lib->generate_ku(auth, 10, reinterpret_cast<const u_char*>(o.priv_passphrase.data()),
                              o.priv_passphrase.size(), s.securityPrivKey, &s.securityPrivKeyLen);
        if (rc != SNMPERR_SUCCESS) {
          return InvalidArgument("cannot derive the privacy key from priv_passphrase (" +
                                 std::string(lib->errstring(rc)) + ")");
        }
      }
    }
  } else {
    s.version = SNMP_VERSION_2c;
    s.community = reinterpret_cast<u_char*>(community.data());
    s.community_len = community.size();
  }
  if (o.version == 3) ForgetUsmUser(*lib, o.target + '\0' + o.user);
  void* handle = lib->sess_open(&s);
  // The keys derived from the passphrases stay in net-snmp's session copy only.
  ::explicit_bzero(s.securityAuthKey, sizeof(s.securityAuthKey));
  ::explicit_bzero(s.securityPrivKey, sizeof(s.securityPrivKey));
  if (handle == nullptr) {
    int liberr = 0, syserr = 0;
    char* message = nullptr;
    lib->error(&s, &syserr, &liberr, &message);  // system errno, then net-snmp's
    Status st = ErrorStatus("SNMP session to " + o.target, liberr, message);
    std::free(message);
    return st;
  }
  return std::unique_ptr<SnmpSession>(
      new SnmpSession(handle, o.target, o.version == 3 ? o.target + '\0' + o.user : ""));
}

SnmpSession::~SnmpSession() {
  std::lock_guard lock(LibraryMutex());
  auto lib = Load();
  if (lib.ok() && handle_ != nullptr) (*lib)->sess_close(handle_);
}

Result<std::vector<SnmpVarbind>> SnmpSession::Get(const std::vector<SnmpOid>& oids) {
  ASSIGN_OR_RETURN(std::vector<SnmpVarbind> out, Request(SNMP_MSG_GET, oids, 0));
  if (out.size() != oids.size()) {
    return Unavailable("SNMP GET to " + target_ + ": " + std::to_string(oids.size()) +
                       " OIDs asked, " + std::to_string(out.size()) + " answered");
  }
  return out;
}

Result<std::vector<SnmpVarbind>> SnmpSession::Walk(const SnmpOid& root, size_t max_rows) {
  std::vector<SnmpVarbind> out;
  SnmpOid next = root;
  while (out.size() < max_rows) {
    ASSIGN_OR_RETURN(std::vector<SnmpVarbind> page, Request(SNMP_MSG_GETBULK, {next}, 32));
    bool done = page.empty();
    for (SnmpVarbind& b : page) {
      if (b.type == SnmpVarbind::Type::kMissing || !StartsWith(b.oid, root)) {
        done = true;
        break;
      }
      if (!out.empty() && b.oid <= out.back().oid) {
        return Unavailable("SNMP walk of " + FormatOid(root) + " on " + target_ +
                           ": the agent answered OIDs out of order");
      }
      out.push_back(std::move(b));
    }
    if (done) break;
    next = out.back().oid;
  }
  return out;
}

Result<std::vector<SnmpVarbind>> SnmpSession::Request(int command, const std::vector<SnmpOid>& oids,
                                                      int max_repetitions) {
  std::lock_guard lock(LibraryMutex());
  ASSIGN_OR_RETURN(const NetSnmp* lib, Load());
  netsnmp_pdu* pdu = lib->pdu_create(command);
  if (command == SNMP_MSG_GETBULK) {
    pdu->non_repeaters = 0;
    pdu->max_repetitions = max_repetitions;
  }
  std::vector<oid> buffer;
  for (const SnmpOid& id : oids) {
    buffer.assign(id.begin(), id.end());
    lib->add_null_var(pdu, buffer.data(), buffer.size());
  }
  netsnmp_pdu* response = nullptr;
  const char* what = command == SNMP_MSG_GET ? "GET" : "GETBULK";
  int st = lib->sess_synch_response(handle_, pdu, &response);  // frees pdu
  if (!usm_key_.empty()) {
    const netsnmp_session* ss = lib->sess_session(handle_);
    if (ss != nullptr && ss->securityEngineIDLen > 0) {
      EngineIds()[usm_key_].assign(reinterpret_cast<const char*>(ss->securityEngineID),
                                   ss->securityEngineIDLen);
    }
  }
  if (st != STAT_SUCCESS || response == nullptr) {
    int liberr = 0, syserr = 0;
    char* message = nullptr;
    lib->sess_error(handle_, &syserr, &liberr, &message);  // system errno first
    if (st == STAT_TIMEOUT) liberr = SNMPERR_TIMEOUT;
    Status err = ErrorStatus(std::string("SNMP ") + what + " to " + target_, liberr, message);
    std::free(message);
    if (response != nullptr) lib->free_pdu(response);
    return err;
  }
  long error_status = response->errstat;
  long error_index = response->errindex;
  std::vector<SnmpVarbind> out;
  for (netsnmp_variable_list* v = response->variables; v != nullptr; v = v->next_variable) {
    out.push_back(ToVarbind(*v));
  }
  lib->free_pdu(response);
  if (error_status != SNMP_ERR_NOERROR) {
    std::string text =
        std::string("SNMP ") + what + " to " + target_ + ": " + ErrorStatusName(error_status);
    if (error_index > 0 && error_index <= static_cast<long>(oids.size())) {
      text += " at " + FormatOid(oids[error_index - 1]);
    }
    if (error_status == SNMP_ERR_AUTHORIZATIONERROR || error_status == SNMP_ERR_NOACCESS) {
      return PermissionDenied(text);
    }
    return Unavailable(text);
  }
  return out;
}

}  // namespace suanli::agent
