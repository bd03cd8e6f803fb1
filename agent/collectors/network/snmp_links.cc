#include "agent/collectors/network/snmp_links.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "core/file_util.h"

namespace suanli::agent {

namespace {

// IF-MIB (RFC 2863) and SNMPv2-MIB columns, without the instance.
const SnmpOid kSysUpTime = {1, 3, 6, 1, 2, 1, 1, 3, 0};
const SnmpOid kIfDescr = {1, 3, 6, 1, 2, 1, 2, 2, 1, 2};
const SnmpOid kIfOperStatus = {1, 3, 6, 1, 2, 1, 2, 2, 1, 8};
const SnmpOid kIfName = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1};
const SnmpOid kIfHCInOctets = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6};
const SnmpOid kIfHCOutOctets = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10};
const SnmpOid kIfHighSpeed = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15};

constexpr size_t kOidsPerLink = 5;    // in, out, speed, oper status, name
constexpr size_t kLinksPerGet = 8;    // 41 varbinds a request: well under any agent's PDU size
constexpr size_t kMinPassphrase = 8;  // RFC 3414 section 11.2

SnmpOid Instance(const SnmpOid& column, uint32_t index) {
  SnmpOid oid = column;
  oid.push_back(index);
  return oid;
}

// "host", "host:port", "[v6]:port" or a bare IPv6 address; no transport prefix or path.
Status CheckTarget(const std::string& target) {
  if (target.empty())
    return InvalidArgument("is required (the router's host:port, e.g. 10.0.0.1:161)");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '@' || c == 0x7F) {
      return InvalidArgument("want host or host:port such as 10.0.0.1:161, got \"" + target + "\"");
    }
  }
  std::string port;
  if (target.front() == '[') {
    size_t close = target.find(']');
    if (close == std::string::npos || close == 1)
      return InvalidArgument("unclosed [ in \"" + target + "\"");
    if (close + 1 < target.size()) {
      if (target[close + 1] != ':')
        return InvalidArgument("want [address]:port, got \"" + target + "\"");
      port = target.substr(close + 2);
      if (port.empty()) return InvalidArgument("no port after \":\" in \"" + target + "\"");
    }
  } else if (size_t colon = target.find(':');
             colon != std::string::npos && colon == target.rfind(':')) {
    if (colon == 0) return InvalidArgument("no host in \"" + target + "\"");
    port = target.substr(colon + 1);
    if (target.compare(0, colon, "udp") == 0 || target.compare(0, colon, "tcp") == 0) {
      return InvalidArgument("want host:port without a transport prefix, got \"" + target + "\"");
    }
    if (port.empty()) return InvalidArgument("no port after \":\" in \"" + target + "\"");
  }
  if (!port.empty()) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
      return InvalidArgument("bad port \"" + port + "\" in \"" + target + "\"");
    }
  }
  return Status::Ok();
}

// The secret of `file` (trailing newlines dropped), for the poller thread.
Status ReadSecret(const std::string& file, const char* key, std::string* out) {
  if (file.empty()) return Status::Ok();
  auto text = ReadFileToString(file);
  if (!text.ok()) return InvalidArgument(std::string(key) + ": " + text.status().message());
  std::string s = std::move(text).value();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) return InvalidArgument(std::string(key) + ": " + file + " is empty");
  *out = std::move(s);
  return Status::Ok();
}

// sysUpTime counts hundredths of a second in 32 bits: it wraps after 497 days. A value below
// the previous one is a restart unless it is where the wrap would have put it.
bool Restarted(uint32_t before, std::chrono::steady_clock::time_point before_at, uint32_t now,
               std::chrono::steady_clock::time_point now_at) {
  if (now >= before) return false;
  double elapsed = std::chrono::duration<double>(now_at - before_at).count() * 100;
  double slack = elapsed / 10 + 1000;  // 10 s, and a slow clock on the router
  double expected = static_cast<double>(before) + elapsed;
  constexpr double kWrap = 4294967296.0;
  return !(expected + slack >= kWrap && static_cast<double>(now) <= expected - kWrap + slack);
}

}  // namespace

Result<SnmpLinkOptions> ParseSnmpLinkOptions(ConfigMap& m) {
  SnmpLinkOptions o;
  SnmpSessionOptions& s = o.session;
  std::string version;
  RETURN_IF_ERROR(m.Get("target", &s.target));
  RETURN_IF_ERROR(m.Get("version", &version));
  RETURN_IF_ERROR(m.Get("community", &s.community));
  RETURN_IF_ERROR(m.Get("community_file", &o.community_file));
  RETURN_IF_ERROR(m.Get("user", &s.user));
  RETURN_IF_ERROR(m.Get("auth_protocol", &s.auth_protocol));
  RETURN_IF_ERROR(m.Get("auth_passphrase", &s.auth_passphrase));
  RETURN_IF_ERROR(m.Get("auth_passphrase_file", &o.auth_passphrase_file));
  RETURN_IF_ERROR(m.Get("priv_protocol", &s.priv_protocol));
  RETURN_IF_ERROR(m.Get("priv_passphrase", &s.priv_passphrase));
  RETURN_IF_ERROR(m.Get("priv_passphrase_file", &o.priv_passphrase_file));
  RETURN_IF_ERROR(m.Get("if_name", &o.if_name));
  RETURN_IF_ERROR(m.Get("if_index", &o.if_index));
  RETURN_IF_ERROR(m.Get("timeout", &s.timeout));
  int64_t retries = s.retries;
  RETURN_IF_ERROR(m.Get("retries", &retries));

  if (Status st = CheckTarget(s.target); !st.ok()) return m.Error("target", st.message());
  if (version.empty()) {
    s.version = m.Has("user") ? 3 : 2;
  } else if (version == "2c") {
    s.version = 2;
  } else if (version == "3") {
    s.version = 3;
  } else {
    return m.Error("version", "must be 2c or 3, got \"" + version + "\"");
  }
  const bool inline_community = m.Has("community");
  if (s.version == 2) {
    for (const char* key : {"user", "auth_protocol", "auth_passphrase", "auth_passphrase_file",
                            "priv_protocol", "priv_passphrase", "priv_passphrase_file"}) {
      if (m.Has(key)) return m.Error(key, "is an SNMPv3 key: set version: 3 (and no community)");
    }
    if (inline_community == !o.community_file.empty()) {
      return m.Error(inline_community ? "community_file" : "community",
                     inline_community ? "set community or community_file, not both"
                                      : "SNMP v2c needs a community (or community_file)");
    }
    if (inline_community && s.community.empty()) return m.Error("community", "is empty");
  } else {
    if (inline_community || !o.community_file.empty()) {
      return m.Error(inline_community ? "community" : "community_file",
                     "is an SNMP v2c key: SNMPv3 authenticates with user and passphrases");
    }
    if (s.user.empty()) return m.Error("user", "SNMPv3 needs a user");
    struct Secret {
      const char* protocol_key;
      std::string* protocol;
      const char* key;
      const char* file_key;
      const std::string* value;
      const std::string* file;
    };
    const Secret secrets[] = {
        {"auth_protocol", &s.auth_protocol, "auth_passphrase", "auth_passphrase_file",
         &s.auth_passphrase, &o.auth_passphrase_file},
        {"priv_protocol", &s.priv_protocol, "priv_passphrase", "priv_passphrase_file",
         &s.priv_passphrase, &o.priv_passphrase_file},
    };
    for (const Secret& x : secrets) {
      bool inline_value = m.Has(x.key);
      bool file = !x.file->empty();
      if (x.protocol->empty()) {
        if (inline_value || file) {
          return m.Error(inline_value ? x.key : x.file_key, std::string("needs ") + x.protocol_key);
        }
        continue;
      }
      bool known = x.protocol == &s.auth_protocol ? IsKnownSnmpAuthProtocol(*x.protocol)
                                                  : IsKnownSnmpPrivProtocol(*x.protocol);
      if (!known) {
        return m.Error(x.protocol_key,
                       x.protocol == &s.auth_protocol
                           ? "must be MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512, got \"" +
                                 *x.protocol + "\""
                           : "must be AES or DES, got \"" + *x.protocol + "\"");
      }
      if (inline_value == file) {
        return m.Error(
            inline_value ? x.file_key : x.key,
            inline_value
                ? std::string("set ") + x.key + " or " + x.file_key + ", not both"
                : std::string("is required with ") + x.protocol_key + " (or " + x.file_key + ")");
      }
      if (inline_value && x.value->size() < kMinPassphrase) {
        return m.Error(x.key, "must be at least 8 characters (RFC 3414)");
      }
    }
    if (!s.priv_protocol.empty() && s.auth_protocol.empty()) {
      return m.Error("priv_protocol",
                     "needs auth_protocol (SNMPv3 has no privacy without "
                     "authentication)");
    }
  }
  if (o.if_name.empty() == !m.Has("if_index")) {
    return m.Error(o.if_name.empty() ? "if_name" : "if_index",
                   o.if_name.empty() ? "set if_name (ifName or ifDescr) or if_index"
                                     : "set if_name or if_index, not both");
  }
  if (m.Has("if_index") && (o.if_index < 1 || o.if_index > 2147483647)) {
    return m.Error("if_index", "must be from 1 to 2147483647");
  }
  if (s.timeout.count() <= 0 || s.timeout > std::chrono::seconds(60)) {
    return m.Error("timeout", "must be more than 0 and at most 60s");
  }
  if (retries < 0 || retries > 10) return m.Error("retries", "must be from 0 to 10");
  s.retries = static_cast<int>(retries);
  RETURN_IF_ERROR(m.Finish());
  return o;
}

SnmpLinkPoller::SnmpLinkPoller(std::vector<SnmpLink> links, std::chrono::milliseconds interval,
                               const Clock& clock)
    : interval_(interval), clock_(clock), poller_(interval, [this] { PollOnce(); }) {
  std::chrono::milliseconds budget{0};
  for (SnmpLink& l : links) {
    // Links of one router with the same session settings share its session and requests.
    SnmpLinkOptions key = l.snmp;
    key.if_name.clear();
    key.if_index = 0;
    size_t t = 0;
    for (; t < targets_.size(); ++t) {
      const SnmpLinkOptions& o = targets_[t].options;
      if (o.session == key.session && o.community_file == key.community_file &&
          o.auth_passphrase_file == key.auth_passphrase_file &&
          o.priv_passphrase_file == key.priv_passphrase_file) {
        break;
      }
    }
    if (t == targets_.size()) {
      TargetState target;
      target.source = "snmp:" + key.session.target;
      target.options = std::move(key);
      // Open (or walk), GET, and a second walk and GET after a restart.
      budget += 4 * target.options.session.timeout * (target.options.session.retries + 1);
      targets_.push_back(std::move(target));
    }
    LinkState state;
    state.target = t;
    state.device =
        !l.snmp.if_name.empty() ? l.snmp.if_name : "ifIndex" + std::to_string(l.snmp.if_index);
    if (l.snmp.if_index > 0) state.index = static_cast<uint32_t>(l.snmp.if_index);
    state.spec = std::move(l);
    targets_[t].links.push_back(links_.size());
    links_.push_back(std::move(state));
  }
  shared_.resize(targets_.size());
  stale_after_ = 2 * interval_ + budget;
}

SnmpLinkPoller::~SnmpLinkPoller() { poller_.Stop(); }

void SnmpLinkPoller::Start() {
  if (!targets_.empty()) poller_.Start();
}

std::string SnmpLinkPoller::ReasonOf(const Status& st) {
  switch (st.code()) {
    case StatusCode::kDeadlineExceeded:
      return "timeout";
    case StatusCode::kPermissionDenied:
      return "auth";
    case StatusCode::kNotFound:
      return "library";
    case StatusCode::kInvalidArgument:
      return "config";
    default:
      return "error";
  }
}

void SnmpLinkPoller::PollOnce() {
  for (size_t t = 0; t < targets_.size(); ++t) {
    if (poller_.stopping()) return;
    PollTarget(t);
  }
}

void SnmpLinkPoller::Fail(size_t t, const std::string& reason, const std::string& message) {
  TargetState& target = targets_[t];
  target.session.reset();  // open afresh next time (v3: rediscover the engine's boots and time)
  if (target.logged_state != reason) {
    target.logged_state = reason;
    spdlog::warn("router link poll failing target={} reason={} links={} error={}",
                 target.options.session.target, reason, target.links.size(), message);
  }
  std::lock_guard lock(mu_);
  TargetShared& sh = shared_[t];
  ++sh.failures[reason];
  ++sh.poll;
  sh.ok = false;
  sh.polled = true;
  sh.at = clock_.SteadyNow();
}

Status SnmpLinkPoller::ResolveIndexes(TargetState& target) {
  std::vector<size_t> wanted;
  for (size_t i : target.links) {
    if (!links_[i].index) wanted.push_back(i);
  }
  if (wanted.empty()) return Status::Ok();
  // ifName first (what operators see in a router's CLI), then ifDescr for agents without it.
  for (const SnmpOid& column : {kIfName, kIfDescr}) {
    ASSIGN_OR_RETURN(std::vector<SnmpVarbind> rows, target.session->Walk(column));
    for (size_t i : wanted) {
      LinkState& link = links_[i];
      if (link.index) continue;
      for (const SnmpVarbind& row : rows) {
        if (row.type == SnmpVarbind::Type::kString && row.text == link.spec.snmp.if_name &&
            row.oid.size() == column.size() + 1) {
          link.index = row.oid.back();
          break;
        }
      }
    }
    if (std::all_of(wanted.begin(), wanted.end(), [&](size_t i) { return links_[i].index; })) {
      break;
    }
  }
  for (size_t i : wanted) {
    if (!links_[i].index) {
      links_[i].problem = "no interface named \"" + links_[i].spec.snmp.if_name +
                          "\" in the router's ifName or ifDescr";
    }
  }
  return Status::Ok();
}

void SnmpLinkPoller::PollTarget(size_t t) {
  TargetState& target = targets_[t];
  SnmpSessionOptions want = target.options.session;
  for (Status st : {ReadSecret(target.options.community_file, "community_file", &want.community),
                    ReadSecret(target.options.auth_passphrase_file, "auth_passphrase_file",
                               &want.auth_passphrase),
                    ReadSecret(target.options.priv_passphrase_file, "priv_passphrase_file",
                               &want.priv_passphrase)}) {
    if (!st.ok()) return Fail(t, "config", st.message());
  }
  if (want.version == 3) {
    for (const std::string* p : {&want.auth_passphrase, &want.priv_passphrase}) {
      if (!p->empty() && p->size() < kMinPassphrase) {
        return Fail(t, "config", "a passphrase file holds fewer than 8 characters (RFC 3414)");
      }
    }
  }
  if (target.session == nullptr || !(want == target.opened_with)) {
    target.session.reset();
    auto session = SnmpSession::Open(want);
    if (!session.ok()) return Fail(t, ReasonOf(session.status()), session.status().message());
    target.session = std::move(session).value();
    target.opened_with = want;
  }
  for (size_t i : target.links) links_[i].problem.clear();

  std::vector<SnmpVarbind> answer;
  std::vector<size_t> asked;  // links in the answer, kOidsPerLink varbinds each after sysUpTime
  bool restarted = false;
  std::chrono::steady_clock::time_point now;
  uint32_t uptime = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (Status st = ResolveIndexes(target); !st.ok()) return Fail(t, ReasonOf(st), st.message());
    asked.clear();
    for (size_t i : target.links) {
      if (links_[i].index) asked.push_back(i);
    }
    answer.clear();
    for (size_t first = 0; first == 0 || first < asked.size(); first += kLinksPerGet) {
      std::vector<SnmpOid> oids;
      if (first == 0) oids.push_back(kSysUpTime);
      for (size_t k = first; k < std::min(asked.size(), first + kLinksPerGet); ++k) {
        uint32_t index = *links_[asked[k]].index;
        for (const SnmpOid* column :
             {&kIfHCInOctets, &kIfHCOutOctets, &kIfHighSpeed, &kIfOperStatus, &kIfName}) {
          oids.push_back(Instance(*column, index));
        }
      }
      auto got = target.session->Get(oids);
      if (!got.ok()) return Fail(t, ReasonOf(got.status()), got.status().message());
      answer.insert(answer.end(), got->begin(), got->end());
    }
    now = clock_.SteadyNow();
    if (answer.empty() || answer[0].type != SnmpVarbind::Type::kTimeTicks) {
      return Fail(t, "error",
                  "no sysUpTime.0 (TimeTicks) in the answer of " + target.options.session.target);
    }
    uptime = static_cast<uint32_t>(answer[0].unsigned_value);
    restarted = target.uptime && Restarted(*target.uptime, target.uptime_at, uptime, now);
    if (!restarted || attempt > 0) break;
    // A restart may renumber the interfaces: find the named ones again before trusting values.
    bool by_name = false;
    for (size_t i : target.links) {
      if (!links_[i].spec.snmp.if_name.empty()) {
        links_[i].index.reset();
        by_name = true;
      }
    }
    if (!by_name) break;
  }
  if (restarted) {
    spdlog::warn(
        "router restarted (sysUpTime went back from {}s to {}s): its counters restart target={}",
        *target.uptime / 100, uptime / 100, target.options.session.target);
  }
  target.uptime = uptime;
  target.uptime_at = now;

  std::map<size_t, Reading> got;
  bool went_back = false;
  for (size_t k = 0; k < asked.size(); ++k) {
    LinkState& link = links_[asked[k]];
    const SnmpVarbind* v = &answer[1 + k * kOidsPerLink];
    if (v[0].type != SnmpVarbind::Type::kCounter64 || v[1].type != SnmpVarbind::Type::kCounter64) {
      link.problem = "no ifHCInOctets/ifHCOutOctets (Counter64) for ifIndex " +
                     std::to_string(*link.index) + " (interface gone, or no IF-MIB ifXTable)";
      if (!link.spec.snmp.if_name.empty()) link.index.reset();  // find it again next poll
      continue;
    }
    Reading r;
    r.receive_bytes = static_cast<double>(v[0].unsigned_value);
    r.transmit_bytes = static_cast<double>(v[1].unsigned_value);
    if (v[2].type == SnmpVarbind::Type::kUnsigned)
      r.speed_bits_per_second = v[2].unsigned_value * 1e6;
    r.up = v[3].type == SnmpVarbind::Type::kInteger && v[3].integer == 1;
    if (!link.spec.snmp.if_name.empty()) {
      r.device = link.spec.snmp.if_name;
    } else if (v[4].type == SnmpVarbind::Type::kString && !v[4].text.empty()) {
      r.device = v[4].text;
    } else {
      r.device = link.device;
    }
    got[asked[k]] = std::move(r);
  }

  int missing = 0;
  for (size_t i : target.links) {
    LinkState& link = links_[i];
    if (!link.problem.empty()) ++missing;
    if (link.problem != link.logged_problem) {
      if (link.problem.empty()) {
        spdlog::info("router link readable again link={} target={}", link.spec.name,
                     target.options.session.target);
      } else {
        spdlog::warn("router link has no reading link={} target={} error={}", link.spec.name,
                     target.options.session.target, link.problem);
      }
      link.logged_problem = link.problem;
    }
  }
  if (target.logged_state != "ok") {
    spdlog::info("router link poll answering again target={}", target.options.session.target);
    target.logged_state = "ok";
  }

  std::lock_guard lock(mu_);
  TargetShared& sh = shared_[t];
  ++sh.poll;
  for (auto& [i, r] : got) {
    auto previous = readings_.find(i);
    if (previous != readings_.end() && (r.receive_bytes < previous->second.receive_bytes ||
                                        r.transmit_bytes < previous->second.transmit_bytes)) {
      went_back = true;
    }
  }
  for (size_t i : target.links) {
    auto it = got.find(i);
    if (it == got.end()) {
      readings_.erase(i);
    } else {
      it->second.poll = sh.poll;
      readings_[i] = std::move(it->second);
    }
  }
  if (went_back && !restarted) {
    spdlog::warn("router link counters went back (cleared, or the router restarted) target={}",
                 target.options.session.target);
  }
  if (restarted || went_back) ++sh.resets;
  if (missing > 0) sh.failures["no_such_interface"] += missing;
  sh.ok = true;
  sh.polled = true;
  sh.at = now;
}

void SnmpLinkPoller::AddTo(Sweep& out) {
  Start();
  std::lock_guard lock(mu_);
  const auto now = clock_.SteadyNow();
  for (size_t i = 0; i < links_.size(); ++i) {
    const SnmpLink& spec = links_[i].spec;
    const size_t t = links_[i].target;
    const TargetShared& sh = shared_[t];
    const std::string& source = targets_[t].source;
    auto it = readings_.find(i);
    const bool fresh =
        it != readings_.end() && sh.ok && it->second.poll == sh.poll && now - sh.at <= stale_after_;
    std::vector<Label> id = {{"link", spec.name}, {"peer_dc", spec.peer_dc}, {"source", source}};
    double capacity = spec.capacity_bits_per_second;
    if (capacity <= 0 && fresh) capacity = it->second.speed_bits_per_second;
    if (capacity > 0) {
      out.Add("suanli_link_capacity_bits_per_second",
              "Provisioned capacity of an inter-dc link: configured, else the router interface's "
              "ifHighSpeed.",
              MetricType::kGauge, id, capacity);
    }
    if (!fresh) continue;
    const Reading& r = it->second;
    std::vector<Label> with_device = {
        {"device", r.device}, {"link", spec.name}, {"peer_dc", spec.peer_dc}, {"source", source}};
    out.Add("suanli_link_receive_bytes_total", "Bytes received over an inter-dc link.",
            MetricType::kCounter, with_device, r.receive_bytes);
    out.Add("suanli_link_transmit_bytes_total", "Bytes sent over an inter-dc link.",
            MetricType::kCounter, std::move(with_device), r.transmit_bytes);
    out.Add("suanli_link_up", "1 when the link's interface is operationally up.",
            MetricType::kGauge, std::move(id), r.up ? 1 : 0);
  }
  for (size_t t = 0; t < targets_.size(); ++t) {
    const TargetShared& sh = shared_[t];
    if (!sh.polled) continue;  // no reading yet
    const std::string& target = targets_[t].options.session.target;
    out.Add("suanli_snmp_up", "1 when the latest SNMP poll of a router answered and is recent.",
            MetricType::kGauge, {{"target", target}}, sh.ok && now - sh.at <= stale_after_ ? 1 : 0);
    for (const auto& [reason, count] : sh.failures) {
      out.Add("suanli_snmp_poll_failures_total", "SNMP polls of a router that failed, by reason.",
              MetricType::kCounter, {{"reason", reason}, {"target", target}},
              static_cast<double>(count));
    }
    out.Add("suanli_snmp_counter_resets_total",
            "SNMP polls that saw a router restart or a link counter go back (a counter reset).",
            MetricType::kCounter, {{"target", target}}, static_cast<double>(sh.resets));
  }
}

}  // namespace suanli::agent
