// The router-link poller against a real Debian snmpd started on a loopback port by each test:
// its IF-MIB counters for `lo` are Linux's own (/proc/net/dev), so they are checked against that.
#include "agent/collectors/network/snmp_links.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kSnmpd[] = "/usr/sbin/snmpd";

// lo's byte counters from /proc/net/dev.
struct LoBytes {
  double receive = 0, transmit = 0;
};
LoBytes ReadLo() {
  std::ifstream in("/proc/net/dev");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    std::vector<double> v(16);
    for (double& x : v) fields >> x;
    return {v[0], v[8]};
  }
  ADD_FAILURE() << "no lo in /proc/net/dev";
  return {};
}

int FreeUdpPort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A Debian snmpd on 127.0.0.1:port with a community and two SNMPv3 users, its persistent state
// in a temporary directory (nothing written under /var/lib/snmp).
class Snmpd {
 public:
  static constexpr char kCommunity[] = "suanli-ro";
  Snmpd() {
    std::string tmpl = testing::TempDir() + "/snmpd-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    dir_ = ::mkdtemp(buf.data());
    std::ofstream(dir_ + "/snmpd.conf")
        << "rocommunity " << kCommunity << " 127.0.0.1\n"
        << "createUser privuser SHA \"auth-pass-1\" AES \"priv-pass-1\"\n"
        << "createUser authuser SHA-256 \"auth-pass-2\"\n"
        << "rouser privuser priv\n"
        << "rouser authuser auth\n";
    port_ = FreeUdpPort();
  }
  ~Snmpd() {
    Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }

  // Starts it and waits until it answers (the first start also creates the v3 users).
  void Start() {
    fs::create_directories(dir_ + "/persist");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("SNMP_PERSISTENT_DIR", (dir_ + "/persist").c_str(), 1);
      ::setenv("SNMPCONFPATH", dir_.c_str(), 1);
      std::string log = dir_ + "/snmpd.log";
      std::string conf = dir_ + "/snmpd.conf";
      std::string listen = "udp:" + target();
      ::execl(kSnmpd, kSnmpd, "-f", "-Lf", log.c_str(), "-C", "-c", conf.c_str(), listen.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0);
    SnmpSessionOptions o;
    o.target = target();
    o.community = kCommunity;
    o.timeout = milliseconds(200);
    o.retries = 0;
    auto session = SnmpSession::Open(o);
    ASSERT_TRUE(session.ok()) << session.status().message();
    // Loose: snmpd starts in well under a second; 20 s only tells a hang from a slow machine.
    for (int i = 0; i < 100; ++i) {
      if ((*session)->Get({{1, 3, 6, 1, 2, 1, 1, 3, 0}}).ok()) return;
      std::this_thread::sleep_for(milliseconds(20));  // an unbound port answers at once
    }
    FAIL() << "snmpd did not answer on " << target() << "; see " << dir_ << "/snmpd.log";
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

const Point* FindPoint(const Sweep& sweep, const std::string& family, const std::string& label,
                       const std::string& value) {
  const Family* f = sweep.Find(family);
  if (f == nullptr) return nullptr;
  for (const Point& p : f->points) {
    for (const Label& l : p.labels) {
      if (l.name == label && l.value == value) return &p;
    }
  }
  return nullptr;
}

SnmpLink V2cLink(const Snmpd& snmpd, const std::string& name, const std::string& if_name) {
  SnmpLink l;
  l.name = name;
  l.peer_dc = "beijing-1";
  l.snmp.session.target = snmpd.target();
  l.snmp.session.community = Snmpd::kCommunity;
  l.snmp.session.timeout = milliseconds(2000);
  l.snmp.if_name = if_name;
  return l;
}

class SnmpLinksTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kSnmpd)) {
      GTEST_SKIP() << kSnmpd << " is absent (Debian package snmpd): router link tests skipped";
    }
    snmpd_ = std::make_unique<Snmpd>();
    snmpd_->Start();
  }
  std::unique_ptr<Snmpd> snmpd_;
};

TEST_F(SnmpLinksTest, LoCountersMatchProcNetDevAndIfNameResolves) {
  SnmpLinkPoller poller({V2cLink(*snmpd_, "gansu-beijing-1", "lo")});
  Sweep before_poll;
  poller.AddTo(before_poll);  // no reading yet: nothing to export, and no wait
  EXPECT_EQ(before_poll.Find("suanli_link_receive_bytes_total"), nullptr);
  EXPECT_EQ(before_poll.Find("suanli_snmp_up"), nullptr);

  // snmpd answers from /proc/net/dev as it read it at most 3 s earlier (net-snmp caches its
  // interface table for 3 s), so its figures lie between what Linux said 3 s before the poll
  // (4 s: a margin) and after it.
  LoBytes before = ReadLo();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  poller.PollOnce();
  LoBytes after = ReadLo();
  Sweep sweep;
  poller.AddTo(sweep);
  const std::string source = "snmp:" + snmpd_->target();
  const Point* rx = FindPoint(sweep, "suanli_link_receive_bytes_total", "device", "lo");
  const Point* tx = FindPoint(sweep, "suanli_link_transmit_bytes_total", "device", "lo");
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(rx->labels, (std::vector<Label>{{"device", "lo"},
                                            {"link", "gansu-beijing-1"},
                                            {"peer_dc", "beijing-1"},
                                            {"source", source}}));
  EXPECT_GE(rx->value, before.receive);
  EXPECT_LE(rx->value, after.receive);
  EXPECT_GE(tx->value, before.transmit);
  EXPECT_LE(tx->value, after.transmit);
  EXPECT_GT(rx->value, 0);
  EXPECT_EQ(sweep.Find("suanli_link_receive_bytes_total")->type, MetricType::kCounter);
  // lo is up; Linux gives it no speed, which net-snmp reports as 10 Mbit/s (ifHighSpeed 10).
  EXPECT_EQ(FindPoint(sweep, "suanli_link_up", "source", source)->value, 1);
  EXPECT_EQ(FindPoint(sweep, "suanli_link_capacity_bits_per_second", "source", source)->value,
            10e6);
  EXPECT_EQ(FindPoint(sweep, "suanli_snmp_up", "target", snmpd_->target())->value, 1);
  EXPECT_EQ(FindPoint(sweep, "suanli_snmp_counter_resets_total", "target", snmpd_->target())->value,
            0);
  EXPECT_EQ(sweep.Find("suanli_snmp_poll_failures_total"), nullptr);
}

TEST_F(SnmpLinksTest, IfIndexNamesTheDeviceAndAnUnknownNameIsACountedFailure) {
  SnmpLink by_index = V2cLink(*snmpd_, "by-index", "");
  by_index.snmp.if_index = 1;  // lo is interface 1 on Linux
  by_index.capacity_bits_per_second = 100e9;
  SnmpLinkPoller poller({by_index, V2cLink(*snmpd_, "missing", "nosuch0")});
  poller.PollOnce();
  poller.PollOnce();
  Sweep sweep;
  poller.AddTo(sweep);
  const Point* rx = FindPoint(sweep, "suanli_link_receive_bytes_total", "link", "by-index");
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->labels[0], (Label{"device", "lo"}));  // ifName.1, read from the router
  EXPECT_EQ(FindPoint(sweep, "suanli_link_capacity_bits_per_second", "link", "by-index")->value,
            100e9);  // configured capacity wins over ifHighSpeed
  EXPECT_EQ(FindPoint(sweep, "suanli_link_receive_bytes_total", "link", "missing"), nullptr);
  const Point* failures =
      FindPoint(sweep, "suanli_snmp_poll_failures_total", "reason", "no_such_interface");
  ASSERT_NE(failures, nullptr);
  EXPECT_EQ(failures->value, 2);  // once per poll
  EXPECT_EQ(FindPoint(sweep, "suanli_snmp_up", "target", snmpd_->target())->value, 1);
}

TEST_F(SnmpLinksTest, SnmpV3AuthPrivAndAuthFromFileWork) {
  SnmpLink priv = V2cLink(*snmpd_, "v3-priv", "lo");
  priv.snmp.session.version = 3;
  priv.snmp.session.community.clear();
  priv.snmp.session.user = "privuser";
  priv.snmp.session.auth_protocol = "SHA";
  priv.snmp.session.auth_passphrase = "auth-pass-1";
  priv.snmp.session.priv_protocol = "AES";
  priv.snmp.session.priv_passphrase = "priv-pass-1";
  SnmpLink auth = V2cLink(*snmpd_, "v3-auth", "lo");
  auth.snmp.session.version = 3;
  auth.snmp.session.community.clear();
  auth.snmp.session.user = "authuser";
  auth.snmp.session.auth_protocol = "SHA-256";
  auth.snmp.auth_passphrase_file = snmpd_->dir() + "/auth-pass";
  std::ofstream(auth.snmp.auth_passphrase_file) << "auth-pass-2\n";
  SnmpLink wrong = priv;
  wrong.name = "v3-wrong";
  wrong.snmp.session.auth_passphrase = "not-the-passphrase";
  {
    // First, so that no session with the right keys ran before on this engine.
    SnmpLinkPoller refused({wrong});
    refused.PollOnce();
    Sweep sweep;
    refused.AddTo(sweep);
    EXPECT_EQ(sweep.Find("suanli_link_receive_bytes_total"), nullptr);
    const Point* failures = FindPoint(sweep, "suanli_snmp_poll_failures_total", "reason", "auth");
    ASSERT_NE(failures, nullptr);
    EXPECT_EQ(failures->value, 1);
  }
  // One router, one set of credentials per poller (the configuration insists): two pollers.
  for (const SnmpLink& link : {priv, auth}) {
    SnmpLinkPoller poller({link});
    poller.PollOnce();
    Sweep sweep;
    poller.AddTo(sweep);
    const Point* rx = FindPoint(sweep, "suanli_link_receive_bytes_total", "link", link.name);
    ASSERT_NE(rx, nullptr) << link.name;
    EXPECT_GT(rx->value, 0);
    EXPECT_EQ(sweep.Find("suanli_snmp_poll_failures_total"), nullptr) << link.name;
  }
  // And a wrong passphrase after the right one is refused too (net-snmp's process-wide USM user
  // would otherwise keep signing with the keys that worked).
  SnmpLinkPoller refused_again({wrong});
  refused_again.PollOnce();
  Sweep sweep;
  refused_again.AddTo(sweep);
  EXPECT_EQ(sweep.Find("suanli_link_receive_bytes_total"), nullptr);
  EXPECT_NE(FindPoint(sweep, "suanli_snmp_poll_failures_total", "reason", "auth"), nullptr);
}

TEST_F(SnmpLinksTest, WrongCommunityAndClosedPortAreCountedTimeouts) {
  SnmpLink wrong = V2cLink(*snmpd_, "wrong-community", "lo");
  wrong.snmp.session.community = "not-the-community";
  wrong.snmp.session.timeout = milliseconds(200);
  wrong.snmp.session.retries = 0;
  SnmpLink closed = wrong;
  closed.name = "closed-port";
  closed.snmp.session.community = Snmpd::kCommunity;
  closed.snmp.session.target = "127.0.0.1:" + std::to_string(FreeUdpPort());
  closed.capacity_bits_per_second = 10e9;
  SnmpLinkPoller poller({wrong, closed});
  poller.PollOnce();
  poller.PollOnce();
  Sweep sweep;
  poller.AddTo(sweep);
  EXPECT_EQ(sweep.Find("suanli_link_receive_bytes_total"), nullptr);
  for (const std::string& target : {wrong.snmp.session.target, closed.snmp.session.target}) {
    const Family* failures = sweep.Find("suanli_snmp_poll_failures_total");
    ASSERT_NE(failures, nullptr);
    bool found = false;
    for (const Point& p : failures->points) {
      if (p.labels == std::vector<Label>{{"reason", "timeout"}, {"target", target}}) {
        found = true;
        EXPECT_EQ(p.value, 2) << target;
      }
    }
    EXPECT_TRUE(found) << target;
    EXPECT_EQ(FindPoint(sweep, "suanli_snmp_up", "target", target)->value, 0);
  }
  // The configured capacity stays: it is the link's, whatever the router says.
  EXPECT_EQ(FindPoint(sweep, "suanli_link_capacity_bits_per_second", "link", "closed-port")->value,
            10e9);
}

TEST_F(SnmpLinksTest, ASweepNeverWaitsForAPollInFlight) {
  SnmpLink silent = V2cLink(*snmpd_, "silent", "lo");
  silent.snmp.session.community = "not-the-community";  // snmpd drops these without an answer
  silent.snmp.session.timeout = milliseconds(5000);
  silent.snmp.session.retries = 1;  // a poll takes 10 s
  silent.capacity_bits_per_second = 10e9;
  SnmpLinkPoller poller({silent});
  Sweep sweep;
  poller.AddTo(sweep);  // starts the poller thread, whose first poll now waits on snmpd
  std::this_thread::sleep_for(milliseconds(100));
  Sweep during;
  poller.AddTo(during);
  // Had AddTo() waited for the poll, the target would have its outcome (suanli_snmp_up).
  EXPECT_EQ(during.Find("suanli_snmp_up"), nullptr);
  EXPECT_EQ(during.Find("suanli_link_capacity_bits_per_second")->points[0].value, 10e9);
}

TEST_F(SnmpLinksTest, ARestartOfTheAgentIsACounterReset) {
  SnmpLinkPoller poller({V2cLink(*snmpd_, "gansu-beijing-1", "lo")});
  // sysUpTime must have grown past what the restarted snmpd will answer.
  std::this_thread::sleep_for(milliseconds(1500));
  poller.PollOnce();
  snmpd_->Stop();
  snmpd_->Start();
  poller.PollOnce();
  Sweep sweep;
  poller.AddTo(sweep);
  EXPECT_EQ(FindPoint(sweep, "suanli_snmp_counter_resets_total", "target", snmpd_->target())->value,
            1);
  // lo was found again after the restart and read.
  EXPECT_NE(FindPoint(sweep, "suanli_link_receive_bytes_total", "device", "lo"), nullptr);
}

}  // namespace
}  // namespace suanli::agent
