// Tests for agent/collectors/power/redfish.h and redfish_json.h (named Redfish* so that one
// filter selects both). The BMCs are DMTF's public mockups and the project's Redfish trees,
// served by tests/support/redfish_mockup_server.h (suanli's own HttpServer).
#include "agent/collectors/power/redfish.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/collectors/power/redfish_json.h"
#include "tests/support/redfish_mockup_server.h"
#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::FindFamily;
using testing::FixturePath;
using testing::Slurp;
using testing::TempTree;
using testing::ValueOf;

// "admin:s3cret!" in base64.
constexpr char kBasicAdmin[] = "Basic YWRtaW46czNjcmV0IQ==";

// A mockup's directory by its path in the fixture trees: one of DMTF's ("public-tower", under
// redfish/) or one of the project's ("suanli/redfish/blade-in-enclosure"). FixturePath()
// resolves it, so that the runs on the upstream trees serve DMTF's whole mockups.
std::string MockupDir(const std::string& mockup) {
  return FixturePath(mockup.find('/') == std::string::npos ? "redfish/" + mockup : mockup);
}

// A mockup's documents by the path a BMC serves them at.
std::map<std::string, std::string> LoadMockup(const std::string& mockup) {
  return test_support::LoadRedfishTree(MockupDir(mockup));
}

// A BMC made of a mockup, named as MockupDir() names it, with knobs to break it (an HTTP status
// for everything, hanging, missing or replaced documents).
class MockupBmc : public test_support::RedfishMockupServer {
 public:
  explicit MockupBmc(const std::string& mockup, std::map<std::string, std::string> extra = {})
      : RedfishMockupServer(MockupDir(mockup), std::move(extra)) {}
};

// A BMC that records the Authorization header of every request. Suanli's HttpServer keeps that
// header from its handlers (so that they cannot log a secret), so this one is a small blocking
// HTTP/1.1 server on a raw socket: one thread, one request per connection, GET only.
class HeaderRecordingBmc {
 public:
  HeaderRecordingBmc(const std::string& mockup, std::string required_authorization)
      : docs_(LoadMockup(mockup)), required_(std::move(required_authorization)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~HeaderRecordingBmc() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mu_);
    return authorizations_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Handle(fd);
      ::close(fd);
    }
  }

  void Handle(int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    // "GET /path HTTP/1.1", then "Name: value" lines.
    std::string path = head.substr(4, head.find(' ', 4) - 4);
    std::string authorization;
    for (size_t at = head.find("\r\n"); at != std::string::npos && at + 2 < head.size();) {
      size_t end = head.find("\r\n", at + 2);
      std::string line = head.substr(at + 2, end - at - 2);
      std::string name = line.substr(0, line.find(':'));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "authorization") authorization = line.substr(line.find(':') + 2);
      at = end;
    }
    {
      std::lock_guard lock(mu_);
      authorizations_.push_back(authorization);
    }
    std::string status = "200 OK", extra, body;
    if (authorization != required_) {
      status = "401 Unauthorized";
      extra = "WWW-Authenticate: Basic realm=\"BMC\"\r\n";
    } else if (auto it = docs_.find(path == "/redfish/v1" ? "/redfish/v1/" : path);
               it != docs_.end()) {
      body = it->second;
    } else {
      status = "404 Not Found";
    }
    std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\n" + extra +
                           "Content-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
    for (size_t sent = 0; sent < response.size();) {
      ssize_t n = ::write(fd, response.data() + sent, response.size() - sent);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  const std::map<std::string, std::string> docs_;
  const std::string required_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> authorizations_;
  std::thread thread_;
};

constexpr milliseconds kHour{3600 * 1000};

RedfishOptions OptionsFor(const std::string& url) {
  RedfishOptions o;
  o.url = url;
  o.timeout = milliseconds(3000);
  o.interval = kHour;  // one poll, unless a test wants more
  return o;
}

RedfishOptions OptionsFor(const MockupBmc& bmc) {
  RedfishOptions o;
  o.url = bmc.url();
  o.timeout = milliseconds(3000);
  o.interval = kHour;  // one poll, unless a test wants more
  return o;
}

// The value of the one point of `family` whose labels include `want`; NaN when none.
double ValueWith(const Sweep& s, const std::string& family, const std::vector<Label>& want) {
  const Family* f = FindFamily(s, family);
  if (f == nullptr) return std::nan("");
  for (const Point& p : f->points) {
    bool all = std::all_of(want.begin(), want.end(), [&](const Label& w) {
      return std::any_of(p.labels.begin(), p.labels.end(),
                         [&](const Label& l) { return l.name == w.name && l.value == w.value; });
    });
    if (all) return p.value;
  }
  return std::nan("");
}

double Watts(const Sweep& s, const std::string& chassis, const std::string& source) {
  return ValueWith(s, "suanli_redfish_power_watts", {{"chassis", chassis}, {"source", source}});
}

size_t PointsOf(const Sweep& s, const std::string& family) {
  const Family* f = FindFamily(s, family);
  return f == nullptr ? 0 : f->points.size();
}

// Collect() and how long it took.
milliseconds TimedCollect(Collector& c, Sweep& sweep, CollectResult& r) {
  auto start = std::chrono::steady_clock::now();
  r = c.Collect(sweep);
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
}

// Collects every 10 ms until `done` holds for a sweep or 10 s pass; every Collect() must
// return within 100 ms. Returns the last sweep.
Sweep CollectUntil(Collector& c, CollectResult& r, const std::function<bool(const Sweep&)>& done) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Sweep sweep;
  while (std::chrono::steady_clock::now() < give_up) {
    sweep.Clear();
    EXPECT_LT(TimedCollect(c, sweep, r), milliseconds(100));
    if (done(sweep)) return sweep;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ADD_FAILURE() << "condition not reached; last result: " << r.message;
  return sweep;
}

TEST(RedfishCollectorTest, Rackmount1ReadsPowerControl) {
  MockupBmc bmc("public-rackmount1");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Watts(sweep, "1U", "PowerControl"), 344);
  EXPECT_EQ(PointsOf(sweep, "suanli_redfish_power_watts"), 1u);
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 1);
  double age = ValueOf(sweep, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}});
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 5);
  for (const Family& f : sweep.families()) {
    EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
    EXPECT_EQ(f.type, MetricType::kGauge) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  EXPECT_EQ(sweep.families().size(), 4u);
  // One chassis, one system: the server's own reading, its serial number the identity.
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_power_watts",
                    {{"chassis", "1U"},
                     {"source", "PowerControl"},
                     {"chassis_identity", "437XR1138R2"},
                     {"systems", "1"}}),
            344);
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_server_power_watts",
                    {{"chassis", "1U"},
                     {"chassis_identity", "437XR1138R2"},
                     {"systems", "1"},
                     {"scope", "server"}}),
            344);
}

TEST(RedfishCollectorTest, TowerReadsPowerControl) {
  MockupBmc bmc("public-tower");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Watts(sweep, "Tower", "PowerControl"), 926);
  EXPECT_EQ(PointsOf(sweep, "suanli_redfish_power_watts"), 1u);
  EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts",
                      {{"chassis", "Tower"}, {"scope", "server"}, {"systems", "1"}}),
            926);
}

TEST(RedfishCollectorTest, LiquidCooledServerFallsBackToEnvironmentMetrics) {
  // No deprecated Power resource: EnvironmentMetrics.PowerWatts.Reading, one request.
  MockupBmc bmc("public-liquid-cooled-server");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Watts(sweep, "1U", "EnvironmentMetrics"), 374);
  EXPECT_EQ(PointsOf(sweep, "suanli_redfish_power_watts"), 1u);
  EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts",
                      {{"chassis", "1U"}, {"scope", "server"}}),
            374);
}

// ---- shared chassis: the project's trees (tests/fixtures/suanli/redfish/README.md) ----

constexpr char kBlade[] = "suanli/redfish/blade-in-enclosure";
constexpr char kTwoUFourN[] = "suanli/redfish/multi-node-2u4n";
constexpr char kTwoUFourNManager[] = "suanli/redfish/multi-node-2u4n-manager";
constexpr char kRack[] = "suanli/redfish/rack-with-servers";

size_t ServerPoints(const Sweep& s) { return PointsOf(s, "suanli_redfish_server_power_watts"); }

TEST(RedfishSharedChassisTest, BladeTakesItsOwnChassisWhereverTheEnclosureIsListed) {
  const char* orders[] = {
      R"({"Members": [{"@odata.id": "/redfish/v1/Chassis/Enclosure"},
                      {"@odata.id": "/redfish/v1/Chassis/Blade3"}]})",
      R"({"Members": [{"@odata.id": "/redfish/v1/Chassis/Blade3"},
                      {"@odata.id": "/redfish/v1/Chassis/Enclosure"}]})",
  };
  for (const char* order : orders) {
    MockupBmc bmc(kBlade, {{"/redfish/v1/Chassis", order}});
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    // Both chassis are exported as they are; the blade's own is this server's power.
    EXPECT_EQ(ValueWith(sweep, "suanli_redfish_power_watts",
                        {{"chassis", "Enclosure"}, {"chassis_identity", "ENC7741Q2"}}),
              2310)
        << order;
    EXPECT_EQ(Watts(sweep, "Blade3", "PowerControl"), 412) << order;
    EXPECT_EQ(ServerPoints(sweep), 1u) << order;
    EXPECT_EQ(ValueOf(sweep, "suanli_redfish_server_power_watts",
                      {{"chassis", "Blade3"},
                       {"chassis_identity", "BLD9023K7"},
                       {"systems", "1"},
                       {"scope", "server"}}),
              412)
        << order;
  }
}

TEST(RedfishSharedChassisTest, BladeWithoutAReadingFallsBackToItsEnclosureAsShared) {
  MockupBmc bmc(kBlade);
  bmc.Remove("/redfish/v1/Chassis/Blade3/Power");
  bmc.Replace("/redfish/v1/Chassis/Blade3",
              R"({"Id": "Blade3", "ChassisType": "Blade", "SerialNumber": "BLD9023K7",
                  "Links": {"ComputerSystems": [{"@odata.id": "/redfish/v1/Systems/Blade3"}],
                            "ContainedBy": {"@odata.id": "/redfish/v1/Chassis/Enclosure"}}})");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ServerPoints(sweep), 1u);
  EXPECT_EQ(
      ValueWith(sweep, "suanli_redfish_server_power_watts",
                {{"chassis", "Enclosure"}, {"chassis_identity", "ENC7741Q2"}, {"scope", "shared"}}),
      2310);
}

TEST(RedfishSharedChassisTest, NodeOfA2U4NChassisReportsTheChassisAsShared) {
  // The node's own sled has no reading: the chassis' figure covers its four nodes.
  MockupBmc bmc(kTwoUFourN);
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_power_watts",
                    {{"chassis", "2U4N"},
                     {"source", "EnvironmentMetrics"},
                     {"chassis_identity", "2U4N-S7J00482"},
                     {"systems", "4"}}),
            1648);
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_server_power_watts",
                    {{"chassis", "2U4N"},
                     {"chassis_identity", "2U4N-S7J00482"},
                     {"systems", "4"},
                     {"scope", "shared"}}),
            1648);
}

TEST(RedfishSharedChassisTest, ChassisManagerOfFourNodesIsTheSameSharedChassisForEach) {
  MockupBmc bmc(kTwoUFourNManager);
  TempTree host;
  for (int node = 1; node <= 4; ++node) {
    // The host's SMBIOS UUID picks its system; the kernel writes it in lower case, some BMCs
    // in upper case.
    std::string uuid = "A3F1C2D4-2000-4B6E-8F00-00000000000" + std::to_string(node);
    host.Write("product_uuid" + std::to_string(node), uuid + "\n");
    RedfishOptions o = OptionsFor(bmc);
    o.host_uuid_file = host.Path("product_uuid" + std::to_string(node));
    RedfishCollector c(o);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    // No serial number: the chassis' UUID is its identity, the same for every node.
    EXPECT_EQ(ValueOf(sweep, "suanli_redfish_server_power_watts",
                      {{"chassis", "Chassis"},
                       {"chassis_identity", "7e9b3c10-5a21-11ee-8c99-0242ac120002"},
                       {"systems", "4"},
                       {"scope", "shared"}}),
              1720)
        << "node " << node;
  }
  {
    RedfishOptions o = OptionsFor(bmc);
    o.system = "Node3";
    RedfishCollector c(o);
    Sweep sweep;
    ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts", {{"scope", "shared"}}), 1720);
  }
  {
    // Four systems and nothing to tell which is this server: every chassis is exported, none
    // as this server's power, and the message says what to set.
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kOk);
    EXPECT_NE(r.message.find("set collector_config.redfish.system"), std::string::npos)
        << r.message;
    EXPECT_EQ(Watts(sweep, "Chassis", "PowerControl"), 1720);
    EXPECT_EQ(ServerPoints(sweep), 0u);
  }
  {
    RedfishOptions o = OptionsFor(bmc);
    o.system = "Node9";
    RedfishCollector c(o);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
    EXPECT_NE(r.message.find("system \"Node9\" is not in " + bmc.url() +
                             "/redfish/v1/Systems (members: Node1, Node2, Node3, Node4)"),
              std::string::npos)
        << r.message;
  }
}

TEST(RedfishSharedChassisTest, RackAndPowerShelfAreNeverTheServersPower) {
  {
    MockupBmc bmc(kRack);
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(Watts(sweep, "Rack12", "PowerControl"), 11840);
    EXPECT_EQ(Watts(sweep, "PowerShelf1", "EnvironmentMetrics"), 5920);
    EXPECT_EQ(ServerPoints(sweep), 1u);
    EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts",
                        {{"chassis", "R640"}, {"scope", "server"}, {"systems", "1"}}),
              386);
  }
  {
    // The server without a reading: its rack (which its system even links) is no fallback.
    MockupBmc bmc(kRack);
    bmc.Replace("/redfish/v1/Chassis/R640/Power", R"({"PowerControl": []})");
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(Watts(sweep, "Rack12", "PowerControl"), 11840);
    EXPECT_EQ(ServerPoints(sweep), 0u);
  }
}

TEST(RedfishSharedChassisTest, AFailingChassisBesideKeepsTheServersReading) {
  {
    // The rack's power resource fails: the poll is down, the server's own reading stays.
    MockupBmc bmc(kRack);
    bmc.Remove("/redfish/v1/Chassis/Rack12/Power");
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
    EXPECT_NE(r.message.find("chassis Rack12"), std::string::npos) << r.message;
    EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts", {{"chassis", "R640"}}), 386);
  }
  {
    // The blade's own power resource fails: no stand-in from the enclosure for that poll.
    MockupBmc bmc(kBlade);
    bmc.Remove("/redfish/v1/Chassis/Blade3/Power");
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    EXPECT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kFailed);
    EXPECT_EQ(Watts(sweep, "Enclosure", "PowerControl"), 2310);
    EXPECT_EQ(ServerPoints(sweep), 0u);
  }
}

TEST(RedfishSharedChassisTest, SystemsTheBmcWillNotShowAreNoSystems) {
  // The monitoring role may not read Systems: the chassis links still tell the server's own.
  MockupBmc bmc(kRack);
  bmc.Remove("/redfish/v1/Systems");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueWith(sweep, "suanli_redfish_server_power_watts",
                      {{"chassis", "R640"}, {"scope", "server"}}),
            386);
}

TEST(RedfishSharedChassisTest, ChassisRoles) {
  for (const char* t : {"StandAlone", "RackMount", "Blade", "Sled", "Cartridge", "Other", ""}) {
    EXPECT_EQ(ChassisRoleOf(t), ChassisRole::kServer) << t;
  }
  for (const char* t : {"Enclosure", "Drawer"}) {
    EXPECT_EQ(ChassisRoleOf(t), ChassisRole::kEnclosure) << t;
  }
  for (const char* t : {"Card", "Component", "Module", "Expansion", "Sidecar", "IPBasedDrive",
                        "StorageEnclosure"}) {
    EXPECT_EQ(ChassisRoleOf(t), ChassisRole::kPart) << t;
  }
  for (const char* t : {"Rack", "RackGroup", "Row", "Pod", "Zone", "Shelf", "PowerSystem",
                        "ImmersionTank", "HeatExchanger"}) {
    EXPECT_EQ(ChassisRoleOf(t), ChassisRole::kFacility) << t;
  }
}

TEST(RedfishSharedChassisTest, PlaceholderSerialsAreNoIdentity) {
  MockupBmc bmc("public-rackmount1");
  bmc.Replace("/redfish/v1/Chassis/1U",
              R"({"Id": "1U", "ChassisType": "RackMount",
                  "SerialNumber": "To Be Filled By O.E.M.",
                  "UUID": "00000000-0000-0000-0000-000000000000",
                  "Power": {"@odata.id": "/redfish/v1/Chassis/1U/Power"},
                  "Links": {"ComputerSystems": [
                      {"@odata.id": "/redfish/v1/Systems/437XR1138R2"}]}})");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_server_power_watts",
                    {{"chassis", "1U"}, {"systems", "1"}, {"scope", "server"}}),
            344);
}

TEST(RedfishCollectorTest, PowerSubsystemSumsSuppliesInService) {
  // Liquid-cooled without EnvironmentMetrics: Bay1 937.4 W, Bay2 Absent.
  MockupBmc bmc("public-liquid-cooled-server");
  bmc.Remove("/redfish/v1/Chassis/1U/EnvironmentMetrics");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_DOUBLE_EQ(Watts(sweep, "1U", "PowerSubsystem"), 937.4);

  // Tower without Power and EnvironmentMetrics: two supplies of 487.4 W.
  MockupBmc tower("public-tower");
  tower.Remove("/redfish/v1/Chassis/Tower/Power");
  tower.Remove("/redfish/v1/Chassis/Tower/EnvironmentMetrics");
  RedfishCollector t(OptionsFor(tower));
  Sweep ts;
  r = t.Collect(ts);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_DOUBLE_EQ(Watts(ts, "Tower", "PowerSubsystem"), 974.8);
}

TEST(RedfishCollectorTest, SupplyInServiceWithoutReadingMeansNoSum) {
  // Power and EnvironmentMetrics are there but have no reading now (null), as a BMC writes.
  MockupBmc bmc("public-tower");
  bmc.Replace("/redfish/v1/Chassis/Tower/Power",
              R"({"PowerControl": [{"PowerConsumedWatts": null}]})");
  bmc.Replace("/redfish/v1/Chassis/Tower/EnvironmentMetrics",
              R"({"PowerWatts": {"Reading": null}})");
  bmc.Replace("/redfish/v1/Chassis/Tower/PowerSubsystem/PowerSupplies/Bay2/Metrics",
              R"({"InputPowerWatts": {"Reading": null}})");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData) << r.message;
  EXPECT_NE(r.message.find("reports power"), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(sweep, "suanli_redfish_power_watts"), nullptr);
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 1);  // the BMC answered
}

TEST(RedfishCollectorTest, ALinkedResourceThatIsMissingIsAnError) {
  // The chassis links Power and EnvironmentMetrics but they answer 404, and the supplies give
  // no sum: a broken BMC, reported with the first error, not as "no power here".
  MockupBmc bmc("public-tower");
  bmc.Remove("/redfish/v1/Chassis/Tower/Power");
  bmc.Remove("/redfish/v1/Chassis/Tower/EnvironmentMetrics");
  bmc.Replace("/redfish/v1/Chassis/Tower/PowerSubsystem/PowerSupplies/Bay2/Metrics", "{}");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("chassis Tower: GET " + bmc.url() +
                           "/redfish/v1/Chassis/Tower/Power: HTTP 404"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
}

TEST(RedfishCollectorTest, PowerControlPicksTheWholeChassisEntry) {
  const std::string power = "/redfish/v1/Chassis/1U/Power";
  struct Case {
    const char* doc;
    double watts;
    const char* source;
  };
  const Case cases[] = {
      // PhysicalContext "Chassis" wins over an earlier part.
      {R"({"PowerControl": [
          {"MemberId": "0", "Name": "CPU Sub-system Power", "PhysicalContext": "CPUSubsystem",
           "PowerConsumedWatts": 120},
          {"MemberId": "1", "Name": "Server Power Control", "PhysicalContext": "Chassis",
           "PowerConsumedWatts": 410}]})",
       410, "PowerControl"},
      // Else the first entry without a context, after parts.
      {R"({"PowerControl": [
          {"PhysicalContext": "MemorySubsystem", "PowerConsumedWatts": 40},
          {"Name": "System Power Control", "PowerConsumedWatts": 333},
          {"Name": "Other", "PowerConsumedWatts": 1}]})",
       333, "PowerControl"},
      // Only parts: never taken for the whole; EnvironmentMetrics (374 W) instead.
      {R"({"PowerControl": [{"PhysicalContext": "CPUSubsystem", "PowerConsumedWatts": 120}]})", 374,
       "EnvironmentMetrics"},
      // No reading now (null), an absent entry, a negative one: EnvironmentMetrics.
      {R"({"PowerControl": [{"PowerConsumedWatts": null}]})", 374, "EnvironmentMetrics"},
      {R"({"PowerControl": [{"Status": {"State": "Absent"}, "PowerConsumedWatts": 9}]})", 374,
       "EnvironmentMetrics"},
      {R"({"PowerControl": [{"PowerConsumedWatts": -5}]})", 374, "EnvironmentMetrics"},
      {R"({"PowerControl": "none"})", 374, "EnvironmentMetrics"},
      // Malformed: that source fails, the next one answers.
      {R"({"PowerControl": [{"PowerConsumedWatts": 344,}]})", 374, "EnvironmentMetrics"},
  };
  for (const Case& k : cases) {
    MockupBmc bmc("public-rackmount1");
    bmc.Replace(power, k.doc);
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << k.doc << ": " << r.message;
    EXPECT_EQ(Watts(sweep, "1U", k.source), k.watts) << k.doc;
    EXPECT_EQ(PointsOf(sweep, "suanli_redfish_power_watts"), 1u) << k.doc;
  }
}

TEST(RedfishCollectorTest, ReadsTheChassisOnceAndThenOnlyThePowerResource) {
  MockupBmc bmc("public-rackmount1");
  RedfishOptions o = OptionsFor(bmc);
  o.interval = milliseconds(20);
  RedfishCollector c(o);
  CollectResult r;
  Sweep first;
  c.Collect(first);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto count = [&](const std::string& path) {
    auto p = bmc.paths();
    return std::count(p.begin(), p.end(), path);
  };
  while (count("/redfish/v1/Chassis/1U/Power") < 4 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_GE(count("/redfish/v1/Chassis/1U/Power"), 4);
  EXPECT_EQ(count("/redfish/v1/"), 1);
  EXPECT_EQ(count("/redfish/v1/Chassis"), 1);
  EXPECT_EQ(count("/redfish/v1/Chassis/1U"), 1);
  EXPECT_EQ(count("/redfish/v1/Systems"), 1);
  EXPECT_EQ(count("/redfish/v1/Systems/437XR1138R2"), 1);
  EXPECT_EQ(count("/redfish/v1/Chassis/1U/EnvironmentMetrics"), 0);
}

TEST(RedfishCollectorTest, ChassisWithoutPowerAreSkippedAndTheOptionPicksOne) {
  std::map<std::string, std::string> extra = {
      {"/redfish/v1/Chassis",
       R"({"Members": [{"@odata.id": "/redfish/v1/Chassis/1U"},
                       {"@odata.id": "/redfish/v1/Chassis/Backplane"}]})"},
      {"/redfish/v1/Chassis/Backplane", R"({"Id": "Backplane", "ChassisType": "Component"})"},
  };
  {
    MockupBmc bmc("public-rackmount1", extra);
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(Watts(sweep, "1U", "PowerControl"), 344);
    EXPECT_EQ(PointsOf(sweep, "suanli_redfish_power_watts"), 1u);
    EXPECT_EQ(PointsOf(sweep, "suanli_redfish_reading_age_seconds"), 1u);
  }
  {
    MockupBmc bmc("public-rackmount1", extra);
    RedfishOptions o = OptionsFor(bmc);
    o.chassis = "1U";
    RedfishCollector c(o);
    Sweep sweep;
    ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(Watts(sweep, "1U", "PowerControl"), 344);
    auto p = bmc.paths();
    EXPECT_EQ(std::count(p.begin(), p.end(), "/redfish/v1/Chassis/Backplane"), 0);
  }
  {
    MockupBmc bmc("public-rackmount1", extra);
    RedfishOptions o = OptionsFor(bmc);
    o.chassis = "Blade7";
    RedfishCollector c(o);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
    EXPECT_NE(r.message.find("chassis \"Blade7\" is not in " + bmc.url() +
                             "/redfish/v1/Chassis (members: 1U, Backplane)"),
              std::string::npos)
        << r.message;
    EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
  }
}

TEST(RedfishCollectorTest, BmcAnswering500IsDown) {
  MockupBmc bmc("public-rackmount1");
  bmc.SetStatus(500, R"({"error": {"code": "Base.1.8.GeneralError",
      "message": "A general error has occurred. See ExtendedInfo for more information.",
      "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.InternalError",
                                 "Message": "The BMC is busy."}]}})");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("GET " + bmc.url() + "/redfish/v1/: HTTP 500: The BMC is busy."),
            std::string::npos)
      << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
  EXPECT_EQ(FindFamily(sweep, "suanli_redfish_power_watts"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "suanli_redfish_reading_age_seconds"), nullptr);
}

TEST(RedfishCollectorTest, RedirectsAreNotFollowed) {
  MockupBmc bmc("public-rackmount1");
  bmc.SetStatus(301, "", "https://10.0.0.5/redfish/v1/");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("HTTP 301 to https://10.0.0.5/redfish/v1/: set url"), std::string::npos)
      << r.message;
  EXPECT_EQ(bmc.paths().size(), 1u);
}

TEST(RedfishCollectorTest, DropsTheWattsWhileDownAndRecovers) {
  MockupBmc bmc("public-rackmount1");
  RedfishOptions o = OptionsFor(bmc);
  o.interval = milliseconds(30);
  RedfishCollector c(o);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Watts(first, "1U", "PowerControl"), 344);
  bmc.SetStatus(503, "busy");
  CollectResult r;
  Sweep down =
      CollectUntil(c, r, [](const Sweep& s) { return ValueOf(s, "suanli_redfish_up") == 0; });
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("HTTP 503"), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(down, "suanli_redfish_power_watts"), nullptr);
  EXPECT_GE(ValueOf(down, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}}), 0);
  bmc.SetStatus(0);
  Sweep up =
      CollectUntil(c, r, [](const Sweep& s) { return ValueOf(s, "suanli_redfish_up") == 1; });
  EXPECT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Watts(up, "1U", "PowerControl"), 344);
}

TEST(RedfishCollectorTest, BmcThatNeverAnswersNeverBlocksCollect) {
  MockupBmc bmc("public-rackmount1");
  RedfishOptions o = OptionsFor(bmc);
  o.interval = milliseconds(50);
  o.timeout = milliseconds(300);
  RedfishCollector c(o);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(Watts(first, "1U", "PowerControl"), 344);

  bmc.SetHang(true);
  // Polls now wait on curl's timeout; Collect() never does, and once a poll has timed out the
  // last figure is no longer presented.
  CollectResult r;
  Sweep down =
      CollectUntil(c, r, [](const Sweep& s) { return ValueOf(s, "suanli_redfish_up") == 0; });
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  // The poll's timeout, or (on a slow machine, between polls) no poll finished lately.
  EXPECT_NE(r.message.find(bmc.url()), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(down, "suanli_redfish_power_watts"), nullptr);
  EXPECT_TRUE(
      std::isfinite(ValueOf(down, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}})));
  // Many more sweeps while it hangs: all prompt, none with watts.
  for (int i = 0; i < 20; ++i) {
    Sweep sweep;
    EXPECT_LT(TimedCollect(c, sweep, r), milliseconds(100));
    EXPECT_EQ(FindFamily(sweep, "suanli_redfish_power_watts"), nullptr);
    std::this_thread::sleep_for(milliseconds(10));
  }
  bmc.SetHang(false);
}

TEST(RedfishCollectorTest, BmcThatNeverAnswersFromTheStart) {
  MockupBmc bmc("public-rackmount1");
  bmc.SetHang(true);
  RedfishOptions o = OptionsFor(bmc);
  o.interval = milliseconds(50);
  o.timeout = milliseconds(200);
  RedfishCollector c(o);
  Sweep first;
  CollectResult r;
  // The first Collect() waits for the first poll, at most the timeout.
  EXPECT_LT(TimedCollect(c, first, r), milliseconds(1000));
  EXPECT_EQ(FindFamily(first, "suanli_redfish_power_watts"), nullptr);
  Sweep later =
      CollectUntil(c, r, [](const Sweep& s) { return ValueOf(s, "suanli_redfish_up") == 0; });
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_EQ(FindFamily(later, "suanli_redfish_power_watts"), nullptr);
  bmc.SetHang(false);
}

TEST(RedfishCollectorTest, StoppingWaitsForOneRequestNotAWholePoll) {
  // Every answer takes 300 ms: the first poll needs six (root, Chassis, 1U, Systems, its
  // member, Power).
  MockupBmc bmc("public-rackmount1");
  bmc.SetDelay(milliseconds(300));
  RedfishOptions o = OptionsFor(bmc);
  o.timeout = milliseconds(500);
  auto c = std::make_unique<RedfishCollector>(o);
  Sweep sweep;
  CollectResult r;
  TimedCollect(*c, sweep, r);  // returns after 500 ms, in the second request
  EXPECT_NE(r.message.find("no reading yet"), std::string::npos) << r.message;
  auto start = std::chrono::steady_clock::now();
  c.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
}

TEST(RedfishCollectorTest, RefusedConnectionIsDown) {
  std::string url;
  {
    MockupBmc gone("public-rackmount1");
    url = gone.url();
  }
  RedfishOptions o;
  o.url = url;
  o.timeout = milliseconds(1000);
  o.interval = kHour;
  RedfishCollector c(o);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(url), std::string::npos) << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
}

TEST(RedfishCollectorTest, AgeComesFromTheCollectorsClock) {
  MockupBmc bmc("public-rackmount1");
  FakeClock clock;
  RedfishCollector c(OptionsFor(bmc), clock);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(first, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}}), 0);
  clock.AdvanceMs(10000);
  Sweep later;
  ASSERT_EQ(c.Collect(later).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(later, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}}), 10);
  EXPECT_EQ(Watts(later, "1U", "PowerControl"), 344);
  // No poll has finished for 3 hours (past 2 x interval + timeout): not presented any more.
  clock.AdvanceMs(3 * kHour.count());
  Sweep stale;
  CollectResult r = c.Collect(stale);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("not answering"), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(stale, "suanli_redfish_power_watts"), nullptr);
  EXPECT_EQ(ValueOf(stale, "suanli_redfish_up"), 0);
  EXPECT_EQ(ValueOf(stale, "suanli_redfish_reading_age_seconds", {{"chassis", "1U"}}),
            10 + 3 * 3600);
}

TEST(RedfishCollectorTest, MalformedJsonIsAnErrorWithItsPlace) {
  MockupBmc bmc("public-rackmount1");
  bmc.Replace("/redfish/v1/", "{\n  \"Chassis\": {\"@odata.id\": \"/redfish/v1/Chassis\"},\n}");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(
                "/redfish/v1/: not JSON: line 3, column 1: syntax error while parsing object key"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
}

TEST(RedfishCollectorTest, EveryCutOfAPowerDocumentIsHandled) {
  // A BMC that closes early: every prefix of the Power document fails that source cleanly,
  // and the collector falls back to EnvironmentMetrics.
  std::string doc = Slurp(FixturePath("redfish/public-rackmount1/Chassis/1U/Power/index.json"));
  MockupBmc bmc("public-rackmount1");
  for (size_t len : {size_t{0}, size_t{1}, size_t{57}, doc.size() / 2, doc.size() - 2}) {
    bmc.Replace("/redfish/v1/Chassis/1U/Power", doc.substr(0, len));
    RedfishCollector c(OptionsFor(bmc));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << len << ": " << r.message;
    EXPECT_EQ(Watts(sweep, "1U", "EnvironmentMetrics"), 374) << len;
  }
}

TEST(RedfishCollectorTest, LinksToAnotherHostAreNotFollowed) {
  MockupBmc bmc("public-rackmount1");
  bmc.Replace("/redfish/v1/Chassis",
              R"({"Members": [{"@odata.id": "http://198.51.100.7/redfish/v1/Chassis/1U"}]})");
  RedfishCollector c(OptionsFor(bmc));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("is not a path under /redfish/v1/"), std::string::npos) << r.message;
  for (const char* bad : {"/redfish/v1/../../etc/passwd", "//evil/redfish/v1/x",
                          "/redfish/v1/Chassis/1U?x=1", "/other/Chassis/1U"}) {
    bmc.Replace("/redfish/v1/Chassis",
                std::string(R"({"Members": [{"@odata.id": ")") + bad + "\"}]}");
    RedfishCollector d(OptionsFor(bmc));
    Sweep s;
    CollectResult rr = d.Collect(s);
    EXPECT_EQ(rr.kind, CollectResult::Kind::kFailed) << bad;
    EXPECT_NE(rr.message.find("is not a path under"), std::string::npos) << rr.message;
  }
}

TEST(RedfishCollectorTest, SendsBasicAuthAndNeverShowsThePassword) {
  HeaderRecordingBmc bmc("public-rackmount1", kBasicAdmin);
  {
    RedfishOptions o = OptionsFor(bmc.url());
    o.username = "admin";
    o.password = "s3cret!";
    RedfishCollector c(o);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
    EXPECT_EQ(Watts(sweep, "1U", "PowerControl"), 344);
    auto auths = bmc.authorizations();
    // root, Chassis, Chassis/1U, Systems, Systems/437XR1138R2, Chassis/1U/Power
    EXPECT_EQ(auths.size(), 6u);
    for (const std::string& a : auths) EXPECT_EQ(a, kBasicAdmin);
  }
  {
    RedfishOptions o = OptionsFor(bmc.url());
    o.username = "admin";
    o.password = "wrong-Pa55";
    RedfishCollector c(o);
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
    EXPECT_NE(r.message.find("HTTP 401: the BMC refused user \"admin\""), std::string::npos)
        << r.message;
    EXPECT_EQ(r.message.find("wrong-Pa55"), std::string::npos) << r.message;
    EXPECT_EQ(ValueOf(sweep, "suanli_redfish_up"), 0);
  }
  {
    RedfishCollector c(OptionsFor(bmc.url()));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_NE(r.message.find("the BMC wants credentials"), std::string::npos) << r.message;
    EXPECT_EQ(bmc.authorizations().back(), "");  // nothing sent without a username
  }
}

TEST(RedfishCollectorTest, PasswordFileIsReadWhenPolling) {
  HeaderRecordingBmc bmc("public-rackmount1", kBasicAdmin);
  TempTree tree;
  tree.Write("bmc-password", "s3cret!\n");
  RedfishOptions o = OptionsFor(bmc.url());
  o.username = "admin";
  o.password_file = tree.Path("bmc-password");
  RedfishCollector c(o);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(Watts(sweep, "1U", "PowerControl"), 344);
  EXPECT_EQ(bmc.authorizations().back(), kBasicAdmin);

  o.password_file = tree.Path("missing");
  RedfishCollector m(o);
  Sweep ms;
  r = m.Collect(ms);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("password_file"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(tree.Path("missing")), std::string::npos) << r.message;
}

// ---- options ----

Result<std::unique_ptr<Collector>> MakeFrom(const std::string& yaml) {
  auto options = ConfigMap::Parse("agent.yml", yaml.empty() ? "{}" : yaml);
  EXPECT_TRUE(options.ok()) << options.status().message();
  CollectorContext ctx{HostPaths{}, *options, milliseconds(15000)};
  auto made = RedfishCollector::Make(ctx);
  if (made.ok()) {
    Status finish = options->Finish();
    EXPECT_TRUE(finish.ok()) << finish.message();
  }
  return made;
}

TEST(RedfishCollectorTest, EveryOptionIsReadAndNothingIsTouched) {
  // password_file and ca_file do not exist: the factory must not look (--config.check).
  auto made = MakeFrom(
      "url: https://10.0.0.5/redfish/v1/\n"
      "username: monitor\n"
      "password_file: /nonexistent/bmc-password\n"
      "ca_file: /nonexistent/bmc-ca.pem\n"
      "insecure_skip_verify: false\n"
      "timeout: 3s\n"
      "chassis: 1U\n");
  ASSERT_TRUE(made.ok()) << made.status().message();
  // Its first poll stops at the password file, before any request.
  Sweep sweep;
  CollectResult r = (*made)->Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("password_file: /nonexistent/bmc-password"), std::string::npos)
      << r.message;
  EXPECT_TRUE(MakeFrom("url: https://10.0.0.5\nsystem: Node2\n").ok());
}

TEST(RedfishCollectorTest, OptionErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* key;
    const char* what;
  };
  const Case cases[] = {
      {"", "url", "required"},
      {"timeout: 5s\n", "url", "required"},
      {"url: 10.0.0.5\n", "url", "http:// or https://"},
      {"url: https://admin:pw@10.0.0.5\n", "url", "credentials in the URL"},
      {"url: https://10.0.0.5/bmc1\n", "url", "base URL"},
      {"url: https://10.0.0.5/?x=1\n", "url", "query"},
      {"url: https://\n", "url", "no host"},
      {"url: https://10.0.0.5\npassword: x\n", "password", "needs a username"},
      {"url: https://10.0.0.5\nusername: a\n", "username", "needs a password"},
      {"url: https://10.0.0.5\nusername: a\npassword: x\npassword_file: /f\n", "password_file",
       "not both"},
      {"url: https://10.0.0.5\ntimeout: 0s\n", "timeout", "more than 0"},
      {"url: https://10.0.0.5\ninsecure_skip_verify: maybe\n", "insecure_skip_verify", ""},
      {"url: https://10.0.0.5\nchassis: a/b\n", "chassis", "chassis id"},
      {"url: https://10.0.0.5\nsystem: a b\n", "system", "system id"},
      {"url: https://10.0.0.5\nchassis: 1U\nsystem: Node2\n", "system", "not both"},
  };
  for (const Case& k : cases) {
    auto made = MakeFrom(k.yaml);
    ASSERT_FALSE(made.ok()) << k.yaml;
    const std::string& m = made.status().message();
    EXPECT_NE(m.find("agent.yml:"), std::string::npos) << m;
    EXPECT_NE(m.find(std::string(k.key) + ":"), std::string::npos) << k.yaml << " -> " << m;
    EXPECT_NE(m.find(k.what), std::string::npos) << k.yaml << " -> " << m;
    EXPECT_EQ(m.find(":pw@"), std::string::npos) << m;
  }
}

TEST(RedfishCollectorTest, NormalizesTheBaseUrl) {
  for (const auto& [in, want] : std::vector<std::pair<std::string, std::string>>{
           {"https://10.0.0.5", "https://10.0.0.5"},
           {"https://10.0.0.5/", "https://10.0.0.5"},
           {"https://bmc.example:8443/redfish/v1/", "https://bmc.example:8443"},
           {"http://[fd00::5]:8080/redfish/v1", "http://[fd00::5]:8080"},
       }) {
    auto got = NormalizeRedfishUrl(in);
    ASSERT_TRUE(got.ok()) << in << ": " << got.status().message();
    EXPECT_EQ(*got, want) << in;
  }
  for (const char* bad : {"", "ftp://x", "https://:443", "https://a b", "https://u@h"}) {
    EXPECT_FALSE(NormalizeRedfishUrl(bad).ok()) << bad;
  }
}

// ---- the JSON reader (nlohmann::json within bounds) ----

TEST(RedfishJsonReaderTest, ReadsValuesOfEveryType) {
  auto doc = ParseRedfishJson(R"( {"a": [1, -2.5e1, 0, -0, 1E+2], "b": {"c": null, "d": true,
      "e": false}, "s": "x\"\\\/\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00", "n": 12345678901234} )");
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  const Json::array_t* a = AsArray(Member(*doc, "a"));
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->size(), 5u);
  EXPECT_EQ(AsNumber(&(*a)[0]), 1);
  EXPECT_EQ(AsNumber(&(*a)[1]), -25);
  EXPECT_EQ(AsNumber(&(*a)[3]), 0);
  EXPECT_EQ(AsNumber(&(*a)[4]), 100);
  EXPECT_TRUE(MemberPath(*doc, {"b", "c"})->is_null());
  EXPECT_EQ(AsBool(MemberPath(*doc, {"b", "d"})), true);
  EXPECT_EQ(AsBool(MemberPath(*doc, {"b", "e"})), false);
  EXPECT_EQ(*AsString(Member(*doc, "s")), "x\"\\/\b\f\n\r\t\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(AsNumber(Member(*doc, "n")), 12345678901234.0);
  EXPECT_EQ(Member(*doc, "missing"), nullptr);
  EXPECT_EQ(MemberPath(*doc, {"a", "x"}), nullptr);  // not an object
  EXPECT_EQ(AsNumber(Member(*doc, "a")), std::nullopt);
  EXPECT_EQ(AsString(Member(*doc, "a")), nullptr);
  EXPECT_EQ(AsBool(Member(*doc, "n")), std::nullopt);
  EXPECT_EQ(AsString(nullptr), nullptr);
  EXPECT_EQ(AsArray(nullptr), nullptr);
}

TEST(RedfishJsonReaderTest, RepeatedNamesKeepTheLast) {
  auto doc = ParseRedfishJson(R"({"x": 1, "x": 2})");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(AsNumber(Member(*doc, "x")), 2);
  EXPECT_EQ(doc->size(), 1u);
}

// Parses every .json document of the three mockups (FixturePath()); how many there were.
int ParseEveryMockupDocument() {
  int parsed = 0;
  for (const char* mockup : {"public-rackmount1", "public-tower", "public-liquid-cooled-server"}) {
    for (const auto& entry :
         fs::recursive_directory_iterator(FixturePath(std::string("redfish/") + mockup))) {
      if (entry.path().extension() != ".json") continue;
      auto doc = ParseRedfishJson(Slurp(entry.path().string()));
      EXPECT_TRUE(doc.ok()) << entry.path() << ": " << doc.status().message();
      ++parsed;
    }
  }
  return parsed;
}

TEST(RedfishJsonReaderTest, ReadsEveryDocumentOfTheMockups) {
  // The project's copies keep the documents the collector can request (tests/fixtures/README.md).
  EXPECT_EQ(ParseEveryMockupDocument(), 46);
}

TEST(RedfishJsonReaderTestOnUpstreamTrees, ReadsEveryDocumentOfTheMockups) {
  // The whole mockups: every resource DMTF publishes, the collector's or not.
  testing::UpstreamFixtures upstream;
  if (!upstream.found()) GTEST_SKIP() << upstream.SkipMessage();
  EXPECT_GT(ParseEveryMockupDocument(), 1000);
}

TEST(RedfishJsonReaderTest, RefusesWhatIsNotStrictJson) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "line 1, column 1: syntax error while parsing value - unexpected end of input"},
      {"   ", "unexpected end of input"},
      {"{", "unexpected end of input; expected string literal"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\": 1,}", "line 1, column 9: syntax error while parsing object key"},
      {"[1, 2,]", "unexpected ']'"},
      {"[1 2]", "expected ']'"},
      {"{\"a\": 1 \"b\": 2}", "expected '}'"},
      {"// comment\n{}", "invalid literal"},
      {"{'a': 1}", "expected string literal"},
      {"{a: 1}", "expected string literal"},
      {"NaN", "invalid literal"},
      {"Infinity", "invalid literal"},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"01", "expected end of input"},
      {"1.", "expected digit after '.'"},
      {".5", "invalid literal"},
      {"-", "expected digit after '-'"},
      {"1e", "after exponent"},
      {"+1", "invalid literal"},
      {"1e999", "number overflow"},
      {"\"abc", "missing closing quote"},
      {"\"a\tb\"", "control character U+0009"},
      {"\"a\\qb\"", "forbidden character after backslash"},
      {"\"\\u12G4\"", "4 hex digits"},
      {"\"\\u12\"", "4 hex digits"},
      {"\"\\ud83d\"", "must be followed by U+DC00..U+DFFF"},
      {"\"\\ud83d\\u0041\"", "must be followed by U+DC00..U+DFFF"},
      {"\"\\ude00\"", "must follow U+D800..U+DBFF"},
      {"\"\xC3\"", "ill-formed UTF-8"},
      {"\"\xC0\xAF\"", "ill-formed UTF-8"},          // overlong '/'
      {"\"\xED\xA0\x80\"", "ill-formed UTF-8"},      // an encoded surrogate
      {"\"\xF4\x90\x80\x80\"", "ill-formed UTF-8"},  // past U+10FFFF
      {"\"\xFF\"", "ill-formed UTF-8"},
      {"{} {}", "expected end of input"},
      {"[1]\n\n  x", "line 3, column 3: "},
  };
  for (const auto& [text, want] : cases) {
    auto doc = ParseRedfishJson(text);
    ASSERT_FALSE(doc.ok()) << text;
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(doc.status().message().find(want), std::string::npos)
        << text << " -> " << doc.status().message();
  }
  // A NUL byte is not whitespace, nor the end of the text.
  auto nul = ParseRedfishJson(std::string_view("[1]\0", 4));
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.status().message().find("line 1, column 4: a NUL byte"), std::string::npos)
      << nul.status().message();
  EXPECT_FALSE(ParseRedfishJson(std::string_view("\"a\0b\"", 5)).ok());
}

TEST(RedfishJsonReaderTest, ErrorsAreShortPrintableText) {
  // The error quotes the input it stopped at: cut, and in printable ASCII whatever the input.
  std::string unterminated = "\"" + std::string(100'000, 'x');
  auto r = ParseRedfishJson(unterminated);
  ASSERT_FALSE(r.ok());
  EXPECT_LE(r.status().message().size(), 310u);
  EXPECT_NE(r.status().message().find("missing closing quote"), std::string::npos);
  auto bad = ParseRedfishJson("[\"\xFF\xFE\x01\"]");
  ASSERT_FALSE(bad.ok());
  for (char c : bad.status().message()) {
    EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << bad.status().message();
  }
}

TEST(RedfishJsonReaderTest, EdgeNumbers) {
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("1e-999")), 0);  // underflow: zero
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("-0.0000e+0")), 0);
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("0.000001e-400")), 0);
  EXPECT_FALSE(ParseRedfishJson("12345678901234567890e300").ok());
  EXPECT_FALSE(ParseRedfishJson("-1e400").ok());
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("1.7976931348623157e308")), 1.7976931348623157e308);
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("937.4")), 937.4);
  EXPECT_EQ(AsNumber(&*ParseRedfishJson("18446744073709551616")), 18446744073709551616.0);
  EXPECT_TRUE(ParseRedfishJson("\xEF\xBB\xBF{}")->empty());  // a byte-order mark
}

TEST(RedfishJsonReaderTest, DepthAndSizeAreBounded) {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseRedfishJson(ok).ok());
  std::string deep = std::string(65, '[') + std::string(65, ']');
  auto r = ParseRedfishJson(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("line 1, column 65: arrays and objects nested deeper than 64"),
      std::string::npos)
      << r.status().message();
  // Brackets in strings are text.
  EXPECT_TRUE(ParseRedfishJson("[\"" + std::string(1000, '[') + "\\\"{\"]").ok());
  // A hostile document: 100,000 and a million levels, closed or not. No stack overflow.
  EXPECT_FALSE(ParseRedfishJson(std::string(100'000, '[') + std::string(100'000, ']')).ok());
  EXPECT_FALSE(ParseRedfishJson(std::string(1'000'000, '[')).ok());
  EXPECT_FALSE(ParseRedfishJson(std::string(1'000'000, '{')).ok());
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_FALSE(ParseRedfishJson(objects).ok());
  JsonLimits small;
  small.max_bytes = 10;
  auto big = ParseRedfishJson("[1,2,3,4,5,6]", small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the 10-byte limit"), std::string::npos);
}

TEST(RedfishJsonReaderTest, EveryPrefixOfAMockupDocumentFailsCleanly) {
  std::string doc = Slurp(FixturePath("redfish/public-tower/Chassis/Tower/Power/index.json"));
  size_t end = doc.find_last_of('}');
  ASSERT_NE(end, std::string::npos);
  for (size_t len = 0; len <= end; ++len) {
    // An exact-size copy, so that a read past the end is caught by sanitizers.
    std::string prefix = doc.substr(0, len);
    EXPECT_FALSE(ParseRedfishJson(prefix).ok()) << len;
  }
  EXPECT_TRUE(ParseRedfishJson(doc).ok());
}

}  // namespace
}  // namespace suanli::agent
