#include "agent/collectors/power/redfish.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <set>
#include <utility>

#include "core/config.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

constexpr char kRoot[] = "/redfish/v1/";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The @odata.id of doc[keys...] as a path under /redfish/v1/ ("" when absent). Anything else
// (another host, "..", odd characters) is refused: credentials must not follow it.
Result<std::string> Link(const Json& doc, std::initializer_list<std::string_view> keys) {
  const Json* node = keys.size() == 0 ? &doc : MemberPath(doc, keys);
  if (node == nullptr) return std::string();
  const std::string* id = AsString(Member(*node, "@odata.id"));
  if (id == nullptr) return std::string();
  std::string link = *id;
  if (size_t hash = link.find('#'); hash != std::string::npos) link.resize(hash);
  bool ok = StartsWith(link, kRoot);
  for (char c : link) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F || c == '?' || c == '\\') ok = false;
  }
  if (link.find("/../") != std::string::npos || link.find("/./") != std::string::npos ||
      link.find("//") != std::string::npos || link.ends_with("/..") || link.ends_with("/.")) {
    ok = false;
  }
  if (!ok) return InvalidArgument("link \"" + link + "\" is not a path under /redfish/v1/");
  while (link.size() > 1 && link.back() == '/') link.pop_back();
  return link;
}

std::string LastSegment(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string StateOf(const Json& v) {
  const std::string* s = AsString(MemberPath(v, {"Status", "State"}));
  return s != nullptr ? *s : "";
}

// A reading in watts: a number, not negative (null means the BMC has none now).
std::optional<double> Watts(const Json* v) {
  if (v == nullptr) return std::nullopt;
  std::optional<double> w = AsNumber(v);
  if (!w || *w < 0) return std::nullopt;
  return w;
}

// The message of a Redfish error body ({"error": {"message", "@Message.ExtendedInfo"}}),
// shortened; "" when there is none.
std::string RedfishErrorMessage(const std::string& body) {
  auto doc = ParseRedfishJson(body);
  if (!doc.ok()) return "";
  const Json* m = nullptr;
  if (const Json* info = MemberPath(*doc, {"error", "@Message.ExtendedInfo"});
      AsArray(info) != nullptr && !AsArray(info)->empty()) {
    m = Member(AsArray(info)->front(), "Message");
  }
  if (AsString(m) == nullptr) m = MemberPath(*doc, {"error", "message"});
  if (AsString(m) == nullptr) return "";
  std::string text = *AsString(m);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

// The @odata.id paths of the array doc[keys...] (links that are not paths under /redfish/v1/
// refused as by Link).
Result<std::vector<std::string>> Links(const Json& doc,
                                       std::initializer_list<std::string_view> keys) {
  std::vector<std::string> out;
  const Json* list = MemberPath(doc, keys);
  if (AsArray(list) == nullptr) return out;
  for (const Json& m : *AsArray(list)) {
    ASSIGN_OR_RETURN(std::string path, Link(m, {}));
    if (!path.empty()) out.push_back(std::move(path));
  }
  return out;
}

std::string StringOf(const Json& doc, std::string_view key) {
  const std::string* v = AsString(Member(doc, key));
  if (v == nullptr) return "";
  std::string s = *v;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What firmware writes where a serial number or UUID was never set: no identity at all.
bool IsPlaceholder(const std::string& value) {
  if (value.empty()) return true;
  if (value.find_first_not_of("0-") == std::string::npos) return true;  // 0000, the nil UUID
  std::string v = Lower(value);
  for (const char* p : {"n/a", "na", "none", "unknown", "not specified", "not available",
                        "to be filled by o.e.m.", "default string", "system serial number",
                        "chassis serial number", "0123456789", "123456789"}) {
    if (v == p) return true;
  }
  return false;
}

// A chassis' identity, the same on every node that reads it: its serial number, else its UUID.
std::string IdentityOf(const Json& chassis) {
  for (const char* key : {"SerialNumber", "UUID"}) {
    std::string v = StringOf(chassis, key);
    if (!IsPlaceholder(v)) return v;
  }
  return "";
}

bool LooksLikeTlsError(const std::string& message) {
  for (const char* word : {"SSL", "certificate", "TLS"}) {
    if (message.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

ChassisRole ChassisRoleOf(std::string_view type) {
  for (std::string_view t : {"Enclosure", "Drawer"}) {
    if (type == t) return ChassisRole::kEnclosure;
  }
  for (std::string_view t : {"Card", "Component", "Module", "Expansion", "Sidecar", "IPBasedDrive",
                             "StorageEnclosure"}) {
    if (type == t) return ChassisRole::kPart;
  }
  for (std::string_view t : {"Rack", "RackGroup", "Row", "Pod", "Zone", "Shelf", "PowerSystem",
                             "ImmersionTank", "HeatExchanger"}) {
    if (type == t) return ChassisRole::kFacility;
  }
  return ChassisRole::kServer;
}

Result<std::string> NormalizeRedfishUrl(const std::string& url) {
  std::string scheme;
  for (const char* s : {"http://", "https://"}) {
    if (StartsWith(url, s)) scheme = s;
  }
  if (scheme.empty()) return InvalidArgument("want an http:// or https:// URL");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      return InvalidArgument("spaces or control characters in the URL");
    }
  }
  std::string rest = url.substr(scheme.size());
  size_t end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, end);
  if (authority.find('@') != std::string::npos) {
    return InvalidArgument(
        "credentials in the URL: put them in username and password (or password_file)");
  }
  if (authority.empty() || authority.front() == ':') return InvalidArgument("no host in the URL");
  std::string path = end == std::string::npos ? "" : rest.substr(end);
  if (path.find_first_of("?#") != std::string::npos) {
    return InvalidArgument("want the BMC's base URL, without a query or fragment");
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path == "/redfish/v1") path.clear();
  if (!path.empty()) {
    // Redfish links are absolute paths from the BMC's root, so a prefix would not survive them.
    return InvalidArgument(
        "want the BMC's base URL such as https://10.0.0.5, with no path but "
        "an optional /redfish/v1");
  }
  return scheme + authority;
}

Result<std::unique_ptr<Collector>> RedfishCollector::Make(CollectorContext& ctx) {
  ConfigMap& o = ctx.options;
  RedfishOptions opt;
  opt.interval = ctx.sample_interval;
  std::string url;
  RETURN_IF_ERROR(o.Get("url", &url));
  RETURN_IF_ERROR(o.Get("username", &opt.username));
  RETURN_IF_ERROR(o.Get("password", &opt.password));
  RETURN_IF_ERROR(o.Get("password_file", &opt.password_file));
  RETURN_IF_ERROR(o.Get("ca_file", &opt.ca_file));
  RETURN_IF_ERROR(o.Get("insecure_skip_verify", &opt.insecure_skip_verify));
  RETURN_IF_ERROR(o.Get("timeout", &opt.timeout));
  RETURN_IF_ERROR(o.Get("chassis", &opt.chassis));
  RETURN_IF_ERROR(o.Get("system", &opt.system));
  opt.host_uuid_file = ctx.paths.sysfs + "/class/dmi/id/product_uuid";
  if (url.empty()) {
    return o.Error("url",
                   "required when the redfish collector is enabled: the BMC's base URL, such as "
                   "https://10.0.0.5");
  }
  auto normalized = NormalizeRedfishUrl(url);
  if (!normalized.ok()) return o.Error("url", normalized.status().message());
  opt.url = *normalized;
  bool has_password = o.Has("password");
  bool has_password_file = !opt.password_file.empty();
  if (has_password && has_password_file) {
    return o.Error("password_file", "set password or password_file, not both");
  }
  if ((has_password || has_password_file) && opt.username.empty()) {
    return o.Error(has_password ? "password" : "password_file", "needs a username");
  }
  if (!opt.username.empty() && !has_password && !has_password_file) {
    return o.Error("username", "needs a password or a password_file");
  }
  if (opt.timeout.count() <= 0) return o.Error("timeout", "must be more than 0");
  if (o.Has("chassis") &&
      (opt.chassis.empty() || opt.chassis.find_first_of("/?# ") != std::string::npos)) {
    return o.Error("chassis", "want a chassis id from /redfish/v1/Chassis, such as 1U");
  }
  if (o.Has("system") &&
      (opt.system.empty() || opt.system.find_first_of("/?# ") != std::string::npos)) {
    return o.Error("system", "want a system id from /redfish/v1/Systems, such as 437XR1138R2");
  }
  if (o.Has("system") && o.Has("chassis")) {
    return o.Error("system", "set chassis or system, not both (chassis names the server's own)");
  }
  return std::unique_ptr<Collector>(std::make_unique<RedfishCollector>(std::move(opt)));
}

RedfishCollector::RedfishCollector(RedfishOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), poller_(options_.interval, [this] { Poll(); }) {}

RedfishCollector::~RedfishCollector() { poller_.Stop(); }

// ---- poller thread ----

Status RedfishCollector::EnsureClient() {
  std::string password = options_.password;
  if (!options_.password_file.empty()) {
    auto text = ReadFileToString(options_.password_file);
    if (!text.ok()) return text.status().WithContext("password_file");
    password = std::move(text).value();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
      password.pop_back();
    }
  }
  if (client_ == nullptr || password != client_password_) {
    HttpClient::Options o;
    o.timeout = options_.timeout;
    o.connect_timeout = options_.timeout;
    o.ca_file = options_.ca_file;
    o.insecure_skip_verify = options_.insecure_skip_verify;
    o.username = options_.username;
    o.password = password;
    client_ = std::make_unique<HttpClient>(std::move(o));
    client_password_ = std::move(password);
  }
  if (!warned_plain_http_ && !options_.username.empty() && StartsWith(options_.url, "http://")) {
    warned_plain_http_ = true;
    spdlog::warn("redfish collector sends BMC credentials over plain HTTP url={}", options_.url);
  }
  return Status::Ok();
}

Result<Json> RedfishCollector::Get(const std::string& path, bool* network_error) {
  std::string url = options_.url + path;
  if (poller_.stopping()) {
    *network_error = true;  // ends the poll: the collector is going away
    return Unavailable("GET " + url + ": the collector is stopping");
  }
  auto r = client_->Get(url);
  if (!r.ok()) {
    StatusCode code = r.status().code();
    *network_error = code == StatusCode::kDeadlineExceeded || code == StatusCode::kUnavailable;
    std::string message = r.status().message();
    if (LooksLikeTlsError(message) && !options_.insecure_skip_verify) {
      message +=
          " (set ca_file to the CA that signed the BMC's certificate, or insecure_skip_verify: "
          "true)";
    }
    return Status(code, message);
  }
  if (r->status == 401 || r->status == 403) {
    return PermissionDenied("GET " + url + ": HTTP " + std::to_string(r->status) +
                            (options_.username.empty()
                                 ? ": the BMC wants credentials (set username and password)"
                                 : ": the BMC refused user \"" + options_.username +
                                       "\" (check username and password)"));
  }
  if (r->status >= 300 && r->status < 400) {
    // Redirects are not followed (credentials would go along); many BMCs send http to https.
    auto location = r->headers.find("location");
    return Unavailable("GET " + url + ": HTTP " + std::to_string(r->status) + " to " +
                       (location == r->headers.end() ? "nowhere" : location->second) +
                       ": set url to the BMC's own address (redirects are not followed)");
  }
  if (r->status != 200) {
    std::string why = RedfishErrorMessage(r->body);
    return Unavailable("GET " + url + ": HTTP " + std::to_string(r->status) +
                       (why.empty() ? "" : ": " + why));
  }
  auto doc = ParseRedfishJson(r->body);
  if (!doc.ok()) return InvalidArgument("GET " + url + ": not JSON: " + doc.status().message());
  return doc;
}

Status RedfishCollector::Discover(bool* network_error) {
  chassis_.clear();
  server_choice_ = ServerChoice{};
  discovered_ = false;
  ASSIGN_OR_RETURN(Json root, Get(kRoot, network_error));
  ASSIGN_OR_RETURN(std::string collection_path, Link(root, {"Chassis"}));
  if (collection_path.empty()) {
    return NotFound(options_.url + kRoot + ": the service root links no Chassis collection");
  }
  ASSIGN_OR_RETURN(Json collection, Get(collection_path, network_error));
  const Json* members = Member(collection, "Members");
  if (AsArray(members) == nullptr) {
    return InvalidArgument(options_.url + collection_path + ": no Members array");
  }
  std::vector<std::string> ids;
  for (const Json& m : *AsArray(members)) {
    ASSIGN_OR_RETURN(std::string path, Link(m, {}));
    if (path.empty()) continue;
    std::string segment = LastSegment(path);
    ids.push_back(segment);
    // Redfish makes a member's last path segment its Id, so no request is spent on the others.
    if (!options_.chassis.empty() && segment != options_.chassis) continue;
    ASSIGN_OR_RETURN(Json chassis, Get(path, network_error));
    ChassisLinks links;
    const std::string* id = AsString(Member(chassis, "Id"));
    links.id = id != nullptr && !id->empty() ? *id : segment;
    links.path = path;
    links.type = StringOf(chassis, "ChassisType");
    links.identity = IdentityOf(chassis);
    ASSIGN_OR_RETURN(links.systems, Links(chassis, {"Links", "ComputerSystems"}));
    ASSIGN_OR_RETURN(links.contained_by, Link(chassis, {"Links", "ContainedBy"}));
    ASSIGN_OR_RETURN(links.contains, Links(chassis, {"Links", "Contains"}));
    ASSIGN_OR_RETURN(links.power, Link(chassis, {"Power"}));
    ASSIGN_OR_RETURN(links.environment_metrics, Link(chassis, {"EnvironmentMetrics"}));
    ASSIGN_OR_RETURN(links.power_subsystem, Link(chassis, {"PowerSubsystem"}));
    chassis_.push_back(std::move(links));
  }
  if (!options_.chassis.empty() && chassis_.empty()) {
    std::string list;
    for (const std::string& id : ids) list += (list.empty() ? "" : ", ") + id;
    return NotFound("chassis \"" + options_.chassis + "\" is not in " + options_.url +
                    collection_path + " (members: " + (list.empty() ? "none" : list) + ")");
  }
  // The systems each chassis covers: its own and those of every chassis inside it.
  for (ChassisLinks& c : chassis_) {
    std::set<std::string> covered, seen;
    std::vector<const ChassisLinks*> todo{&c};
    while (!todo.empty()) {
      const ChassisLinks* at = todo.back();
      todo.pop_back();
      if (!seen.insert(at->path).second) continue;
      covered.insert(at->systems.begin(), at->systems.end());
      for (const ChassisLinks& d : chassis_) {
        bool inside =
            d.contained_by == at->path ||
            std::find(at->contains.begin(), at->contains.end(), d.path) != at->contains.end();
        if (inside && ChassisRoleOf(d.type) != ChassisRole::kFacility) todo.push_back(&d);
      }
    }
    c.systems_covered = static_cast<int>(covered.size());
  }

  if (!options_.chassis.empty()) {
    server_choice_.chain.push_back(0);
    server_choice_.why = "the chassis option";
  } else {
    // The systems: which one is this server, and which chassis it links.
    std::map<std::string, Json> systems;
    ASSIGN_OR_RETURN(std::string systems_path, Link(root, {"Systems"}));
    // A BMC that will not show its systems (an HTTP error, a role without the right) is read
    // as one without a Systems collection; an unreachable one ends the discovery.
    Status systems_error;
    auto read_systems = [&]() -> Status {
      if (systems_path.empty()) return Status::Ok();
      ASSIGN_OR_RETURN(Json list, Get(systems_path, network_error));
      const Json* system_members = Member(list, "Members");
      if (AsArray(system_members) == nullptr) return Status::Ok();
      for (const Json& m : *AsArray(system_members)) {
        ASSIGN_OR_RETURN(std::string path, Link(m, {}));
        if (path.empty()) continue;
        ASSIGN_OR_RETURN(Json doc, Get(path, network_error));
        systems.emplace(path, std::move(doc));
      }
      return Status::Ok();
    };
    if (Status st = read_systems(); !st.ok()) {
      if (*network_error) return st;
      systems.clear();
      systems_error = st;
    }
    std::string why;
    std::string own = OwnSystem(systems, &why);
    if (!own.empty() || systems.empty()) {
      server_choice_ = ChooseServerChassis(own, systems);
    } else {
      server_choice_.why = why;
    }
    if (!options_.system.empty() && own.empty()) {
      return systems_error.ok() ? NotFound(why) : systems_error;
    }
    if (!systems_error.ok()) {
      server_choice_.why +=
          " (the Systems collection could not be read: " + systems_error.message() + ")";
    }
  }

  std::string choice = server_choice_.why;
  if (!server_choice_.chain.empty()) {
    choice = "";
    for (size_t i : server_choice_.chain) {
      const ChassisLinks& c = chassis_[i];
      choice += (choice.empty() ? "" : ", then ") + c.id + " (" +
                (c.type.empty() ? "no ChassisType" : c.type) + ", " +
                std::to_string(c.systems_covered) + " systems, identity " +
                (c.identity.empty() ? "none" : "\"" + c.identity + "\"") + ")";
    }
    choice = "chassis " + choice + ": " + server_choice_.why;
  }
  if (choice != logged_choice_) {
    logged_choice_ = choice;
    if (server_choice_.chain.empty()) {
      spdlog::warn(
          "redfish collector: no chassis is this server's own, so its power is not "
          "taken from {}: {}",
          options_.url, choice);
    } else {
      spdlog::info("redfish collector: this server's power comes from {} {}", options_.url, choice);
    }
  }
  discovered_ = true;
  return Status::Ok();
}

std::string RedfishCollector::OwnSystem(const std::map<std::string, Json>& systems,
                                        std::string* why) {
  std::string list;
  for (const auto& [path, doc] : systems) list += (list.empty() ? "" : ", ") + LastSegment(path);
  if (!options_.system.empty()) {
    for (const auto& [path, doc] : systems) {
      if (LastSegment(path) == options_.system || StringOf(doc, "Id") == options_.system) {
        *why = "the system option";
        return path;
      }
    }
    *why = "system \"" + options_.system + "\" is not in " + options_.url +
           "/redfish/v1/Systems (members: " + (list.empty() ? "none" : list) + ")";
    return "";
  }
  if (systems.size() == 1) {
    *why = "the BMC's only system";
    return systems.begin()->first;
  }
  if (systems.empty()) {
    // No Systems collection: the one system the chassis link to, if there is one.
    std::set<std::string> linked;
    for (const ChassisLinks& c : chassis_) linked.insert(c.systems.begin(), c.systems.end());
    if (linked.size() == 1) {
      *why = "the one system the chassis link to";
      return *linked.begin();
    }
    *why = "no Systems collection";
    return "";
  }
  if (!options_.host_uuid_file.empty()) {
    if (auto text = ReadFileToString(options_.host_uuid_file); text.ok()) {
      std::string host = Lower(std::string(*text));
      while (!host.empty() && std::isspace(static_cast<unsigned char>(host.back()))) {
        host.pop_back();
      }
      for (const auto& [path, doc] : systems) {
        if (!host.empty() && Lower(StringOf(doc, "UUID")) == host) {
          *why = "the system whose UUID is this host's SMBIOS UUID";
          return path;
        }
      }
    }
  }
  *why = "the BMC serves " + std::to_string(systems.size()) + " systems (" + list +
         ") and none has this host's SMBIOS UUID: set collector_config.redfish.system to "
         "this server's";
  return "";
}

const RedfishCollector::ChassisLinks* RedfishCollector::ChassisAt(const std::string& path) const {
  for (const ChassisLinks& c : chassis_) {
    if (c.path == path) return &c;
  }
  return nullptr;
}

RedfishCollector::ServerChoice RedfishCollector::ChooseServerChassis(
    const std::string& system_path, const std::map<std::string, Json>& systems) const {
  ServerChoice choice;
  // Candidates: the chassis the system links and those that link it; without a system, every
  // server chassis.
  std::set<std::string> linked;
  if (!system_path.empty()) {
    if (auto it = systems.find(system_path); it != systems.end()) {
      if (auto paths = Links(it->second, {"Links", "Chassis"}); paths.ok()) {
        linked.insert(paths->begin(), paths->end());
      }
    }
    for (const ChassisLinks& c : chassis_) {
      if (std::find(c.systems.begin(), c.systems.end(), system_path) != c.systems.end()) {
        linked.insert(c.path);
      }
    }
  }
  std::vector<size_t> candidates;
  bool any_server = false;
  for (size_t i = 0; i < chassis_.size(); ++i) {
    ChassisRole role = ChassisRoleOf(chassis_[i].type);
    if (role == ChassisRole::kFacility || role == ChassisRole::kPart) continue;
    if (system_path.empty() ? role != ChassisRole::kServer : linked.count(chassis_[i].path) == 0) {
      continue;
    }
    candidates.push_back(i);
    any_server = any_server || role == ChassisRole::kServer;
  }
  // Server chassis before enclosures.
  if (any_server) {
    std::erase_if(candidates, [&](size_t i) {
      return ChassisRoleOf(chassis_[i].type) != ChassisRole::kServer;
    });
  }
  // The innermost: drop a candidate that contains another.
  auto contains = [&](size_t outer, size_t inner) {
    const ChassisLinks* at = &chassis_[inner];
    for (int depth = 0; depth < 8 && at != nullptr && !at->contained_by.empty(); ++depth) {
      if (at->contained_by == chassis_[outer].path) return true;
      at = ChassisAt(at->contained_by);
    }
    return false;
  };
  std::vector<size_t> innermost;
  for (size_t i : candidates) {
    bool outer = std::any_of(candidates.begin(), candidates.end(),
                             [&](size_t j) { return j != i && contains(i, j); });
    if (!outer) innermost.push_back(i);
  }
  std::stable_sort(innermost.begin(), innermost.end(), [&](size_t a, size_t b) {
    return chassis_[a].systems_covered < chassis_[b].systems_covered;
  });
  if (innermost.empty()) {
    choice.why = system_path.empty() ? "no server chassis (only racks, enclosures, parts or none)"
                                     : "system " + LastSegment(system_path) +
                                           " links no chassis but racks, power shelves or parts";
    return choice;
  }
  if (system_path.empty() && innermost.size() > 1) {
    std::string list;
    for (size_t i : innermost) list += (list.empty() ? "" : ", ") + chassis_[i].id;
    choice.why = "no Systems collection and several server chassis (" + list +
                 "): set collector_config.redfish.chassis to this server's";
    return choice;
  }
  choice.why = system_path.empty()
                   ? "the only server chassis"
                   : "the innermost server chassis of system " + LastSegment(system_path);
  // Then what contains it, for when it has no reading of its own.
  const ChassisLinks* at = &chassis_[innermost.front()];
  choice.chain.push_back(innermost.front());
  for (int depth = 0; depth < 8 && !at->contained_by.empty(); ++depth) {
    const ChassisLinks* parent = ChassisAt(at->contained_by);
    if (parent == nullptr) break;
    ChassisRole role = ChassisRoleOf(parent->type);
    if (role == ChassisRole::kFacility || role == ChassisRole::kPart) break;
    size_t index = static_cast<size_t>(parent - chassis_.data());
    if (std::find(choice.chain.begin(), choice.chain.end(), index) != choice.chain.end()) break;
    choice.chain.push_back(index);
    at = parent;
  }
  return choice;
}

std::optional<double> RedfishCollector::ReadPowerControl(const std::string& path, Status* error,
                                                         bool* network) {
  auto doc = Get(path, network);
  if (!doc.ok()) {
    *error = doc.status();
    return std::nullopt;
  }
  const Json* list = Member(*doc, "PowerControl");
  if (AsArray(list) == nullptr) return std::nullopt;
  const Json* chassis = nullptr;     // PhysicalContext "Chassis"
  const Json* no_context = nullptr;  // the first without a PhysicalContext
  for (const Json& e : *AsArray(list)) {
    if (!e.is_object() || StateOf(e) == "Absent") continue;
    if (const std::string* context = AsString(Member(e, "PhysicalContext"))) {
      if (*context == "Chassis" && chassis == nullptr) chassis = &e;
      continue;
    }
    if (no_context == nullptr) no_context = &e;
  }
  for (const Json* e : {chassis, no_context}) {
    if (e == nullptr) continue;
    if (auto w = Watts(Member(*e, "PowerConsumedWatts"))) return w;
  }
  return std::nullopt;
}

std::optional<double> RedfishCollector::ReadEnvironmentMetrics(const std::string& path,
                                                               Status* error, bool* network) {
  auto doc = Get(path, network);
  if (!doc.ok()) {
    *error = doc.status();
    return std::nullopt;
  }
  return Watts(MemberPath(*doc, {"PowerWatts", "Reading"}));
}

std::optional<double> RedfishCollector::ReadPowerSubsystem(const std::string& path, Status* error,
                                                           bool* network) {
  // Any failure below: set *error, no reading.
  auto fail = [error](const Status& st) -> std::optional<double> {
    *error = st;
    return std::nullopt;
  };
  auto subsystem = Get(path, network);
  if (!subsystem.ok()) return fail(subsystem.status());
  auto supplies_path = Link(*subsystem, {"PowerSupplies"});
  if (!supplies_path.ok()) return fail(supplies_path.status());
  if (supplies_path->empty()) return std::nullopt;
  auto supplies = Get(*supplies_path, network);
  if (!supplies.ok()) return fail(supplies.status());
  const Json* members = Member(*supplies, "Members");
  if (AsArray(members) == nullptr) return std::nullopt;
  double sum = 0;
  int counted = 0;
  for (const Json& m : *AsArray(members)) {
    auto supply_path = Link(m, {});
    if (!supply_path.ok()) return fail(supply_path.status());
    if (supply_path->empty()) continue;
    auto supply = Get(*supply_path, network);
    if (!supply.ok()) return fail(supply.status());
    std::string state = StateOf(*supply);
    if (state == "Absent") continue;
    auto metrics_path = Link(*supply, {"Metrics"});
    if (!metrics_path.ok()) return fail(metrics_path.status());
    std::optional<double> watts;
    if (!metrics_path->empty()) {
      auto metrics = Get(*metrics_path, network);
      if (!metrics.ok()) return fail(metrics.status());
      watts = Watts(MemberPath(*metrics, {"InputPowerWatts", "Reading"}));
    }
    if (!watts) {
      // A supply out of service draws (next to) nothing; one in service without a reading
      // makes any sum too low.
      if (state == "Disabled" || state == "StandbyOffline" || state == "UnavailableOffline") {
        continue;
      }
      return std::nullopt;
    }
    sum += *watts;
    ++counted;
  }
  if (counted == 0) return std::nullopt;
  return sum;
}

RedfishCollector::ChassisOutcome RedfishCollector::ReadChassis(const ChassisLinks& links) {
  using Reader = std::optional<double> (RedfishCollector::*)(const std::string&, Status*, bool*);
  struct Source {
    const std::string& path;
    Reader read;
    const char* name;
  };
  const Source sources[] = {
      {links.power, &RedfishCollector::ReadPowerControl, "PowerControl"},
      {links.environment_metrics, &RedfishCollector::ReadEnvironmentMetrics, "EnvironmentMetrics"},
      {links.power_subsystem, &RedfishCollector::ReadPowerSubsystem, "PowerSubsystem"},
  };
  ChassisOutcome outcome;
  for (const Source& s : sources) {
    if (s.path.empty()) continue;
    Status error;
    bool network = false;
    std::optional<double> watts = (this->*s.read)(s.path, &error, &network);
    if (watts) {
      outcome.reading = Reading{*watts, s.name, clock_.SteadyNow()};
      outcome.error = Status::Ok();
      return outcome;
    }
    if (network) {
      outcome.error = error;
      outcome.network_error = true;
      return outcome;
    }
    if (!error.ok() && outcome.error.ok()) outcome.error = error;  // try the next source
  }
  return outcome;
}

void RedfishCollector::Poll() {
  CollectResult outcome;
  std::map<std::string, Reading> got;
  std::optional<ServerReading> server;
  Status st = EnsureClient();
  bool network = false;
  if (st.ok() && !discovered_) st = Discover(&network);
  if (!st.ok()) {
    outcome = CollectResult::Failed(st.message());
  } else {
    std::string first_error;
    int errors = 0;
    std::set<std::string> failed;
    for (const ChassisLinks& c : chassis_) {
      ChassisOutcome o = ReadChassis(c);
      if (o.reading) {
        got[c.id] = *o.reading;
      } else if (!o.error.ok()) {
        failed.insert(c.id);
        if (errors++ == 0) first_error = "chassis " + c.id + ": " + o.error.message();
        if (o.network_error) break;  // the BMC is unreachable: the others would time out too
      }
    }
    // This server's reading: the first of its chain that has one (even when another chassis
    // failed this poll). A chassis of the chain that failed ends the walk: its container is no
    // stand-in for a reading that is only missing for now.
    for (size_t n = 0; n < server_choice_.chain.size(); ++n) {
      const ChassisLinks& c = chassis_[server_choice_.chain[n]];
      if (failed.count(c.id)) break;
      if (!got.count(c.id)) continue;
      server = ServerReading{
          c.id, n > 0 || ChassisRoleOf(c.type) == ChassisRole::kEnclosure || c.systems_covered > 1};
      break;
    }
    if (errors > 0) {
      discovered_ = false;  // links may have moved (a BMC reset, a firmware update)
      outcome = CollectResult::Failed(
          errors == 1 ? first_error
                      : first_error + " (and " + std::to_string(errors - 1) + " more chassis)");
    } else if (got.empty()) {
      outcome = CollectResult::NoData(
          "no chassis of " + options_.url +
          " reports power (looked for Power PowerControl[].PowerConsumedWatts, "
          "EnvironmentMetrics PowerWatts.Reading and the power supplies' InputPowerWatts)");
    } else if (server_choice_.chain.empty()) {
      outcome.message = "no chassis is this server's own: " + server_choice_.why;
    }
  }
  auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  if (discovered_) {
    labels_.clear();
    for (const ChassisLinks& c : chassis_) labels_[c.id] = {c.identity, c.systems_covered};
    // Forget chassis the BMC no longer lists.
    for (auto it = readings_.begin(); it != readings_.end();) {
      bool listed = std::any_of(chassis_.begin(), chassis_.end(),
                                [&](const ChassisLinks& c) { return c.id == it->first; });
      it = listed ? std::next(it) : readings_.erase(it);
    }
  }
  last_read_.clear();
  for (auto& [id, reading] : got) {
    last_read_.push_back(id);
    readings_[id] = std::move(reading);
  }
  server_ = server;
  last_ = std::move(outcome);
  last_at_ = now;
  polled_ = true;
}

// ---- Collect() thread ----

CollectResult RedfishCollector::Collect(Sweep& out) {
  poller_.Start();
  if (!waited_first_) {
    waited_first_ = true;
    poller_.WaitForFirstPoll(options_.timeout);
  }
  std::lock_guard lock(mu_);
  if (!polled_) {
    return {CollectResult::Kind::kOk, "no reading yet: the first poll of " + options_.url +
                                          " is still running after " +
                                          FormatDuration(options_.timeout)};
  }
  auto now = clock_.SteadyNow();
  for (const auto& [id, r] : readings_) {
    out.Add("suanli_redfish_reading_age_seconds",
            "Age of the chassis' latest power reading from the BMC's Redfish service.",
            MetricType::kGauge, {{"chassis", id}},
            std::max(0.0, std::chrono::duration<double>(now - r.at).count()));
  }
  const double stale_after =
      std::chrono::duration<double>(2 * options_.interval + options_.timeout).count();
  double since_poll = std::chrono::duration<double>(now - last_at_).count();
  bool recent = since_poll <= stale_after;
  // The chassis' identity and the systems its reading covers, as labels.
  auto labels = [&](const std::string& id, std::vector<Label> l) {
    auto it = labels_.find(id);
    if (it == labels_.end()) return l;
    if (!it->second.first.empty()) l.push_back({"chassis_identity", it->second.first});
    l.push_back({"systems", std::to_string(it->second.second)});
    return l;
  };
  for (const std::string& id : last_read_) {
    const Reading& r = readings_.at(id);
    // A long poll (many chassis, a slow BMC) can finish with a reading taken long before.
    if (std::chrono::duration<double>(now - r.at).count() > stale_after) continue;
    out.Add("suanli_redfish_power_watts",
            "Chassis power from the BMC's Redfish service; source names the resource read, "
            "systems the ComputerSystems it covers.",
            MetricType::kGauge, labels(id, {{"chassis", id}, {"source", r.source}}), r.watts);
    if (server_ && server_->chassis == id) {
      out.Add("suanli_redfish_server_power_watts",
              "This server's power: the reading of its own chassis, or of the chassis that "
              "contains it; scope=\"shared\" when it covers several servers.",
              MetricType::kGauge,
              labels(id, {{"chassis", id}, {"scope", server_->shared ? "shared" : "server"}}),
              r.watts);
    }
  }
  bool up = recent && last_.kind != CollectResult::Kind::kFailed;
  out.Add("suanli_redfish_up", "1 when the latest poll of the BMC's Redfish service succeeded.",
          MetricType::kGauge, {}, up ? 1 : 0);
  if (!recent) {
    return CollectResult::Failed("no poll of " + options_.url + " has finished for " +
                                 std::to_string(static_cast<int64_t>(since_poll)) +
                                 "s: the BMC is not answering");
  }
  return last_;
}

}  // namespace suanli::agent
