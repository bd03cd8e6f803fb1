#include "agent/collectors/power/ipmi_dcmi.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

using std::chrono::milliseconds;
using testing::FindFamily;
using testing::TempTree;
using testing::ValueOf;

// A Get Power Reading answer laid out as DCMI 1.5 table 6-16 shows it: completion code 00,
// group extension DC, current 200 W (C8 00, LSB first), minimum 150 W, maximum 300 W,
// average 190 W, timestamp 1600000000 (0x5F5E1000), statistics period 60000 ms (0xEA60),
// state 0x40 (measurement active).
const std::vector<uint8_t> kActive200W = {0x00, 0xDC, 0xC8, 0x00, 0x96, 0x00, 0x2C,
                                          0x01, 0xBE, 0x00, 0x00, 0x10, 0x5E, 0x5F,
                                          0x60, 0xEA, 0x00, 0x00, 0x40};

// The shape a 2-socket server's BMC sends: 1 kW-class figures with both bytes in use (0x01A4 =
// 420 W now, 0x0136 = 310, 0x02EE = 750, 0x01C2 = 450), a 1 s period, and the reserved
// bits of the state byte set besides bit 6, which must not matter.
const std::vector<uint8_t> kActive420W = {0x00, 0xDC, 0xA4, 0x01, 0x36, 0x01, 0xEE,
                                          0x02, 0xC2, 0x01, 0x78, 0x56, 0x34, 0x12,
                                          0xE8, 0x03, 0x00, 0x00, 0x41};

// Same as kActive200W with state 0x00: the BMC answers but does not measure.
std::vector<uint8_t> NotActive() {
  std::vector<uint8_t> b = kActive200W;
  b[18] = 0x00;
  return b;
}

TEST(IpmiDcmiParseTest, ReadsEveryFieldOfASpecShapedAnswer) {
  auto r = ParseDcmiPowerReading(kActive200W);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->current_watts, 200);
  EXPECT_EQ(r->min_watts, 150);
  EXPECT_EQ(r->max_watts, 300);
  EXPECT_EQ(r->average_watts, 190);
  EXPECT_EQ(r->timestamp, 1600000000u);
  EXPECT_EQ(r->period_ms, 60000u);
  EXPECT_EQ(r->state, 0x40);
  EXPECT_TRUE(r->active());
}

TEST(IpmiDcmiParseTest, MultiByteFieldsAreLsbFirst) {
  auto r = ParseDcmiPowerReading(kActive420W);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->current_watts, 420);
  EXPECT_EQ(r->min_watts, 310);
  EXPECT_EQ(r->max_watts, 750);
  EXPECT_EQ(r->average_watts, 450);
  EXPECT_EQ(r->timestamp, 0x12345678u);
  EXPECT_EQ(r->period_ms, 1000u);
  EXPECT_TRUE(r->active());
}

TEST(IpmiDcmiParseTest, StateWithoutBit6IsNotActive) {
  auto r = ParseDcmiPowerReading(NotActive());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->active());
  std::vector<uint8_t> other_bits = kActive200W;
  other_bits[18] = 0xBF;  // every bit but 6
  EXPECT_FALSE(ParseDcmiPowerReading(other_bits)->active());
}

TEST(IpmiDcmiParseTest, CompletionCodeC1MeansNoDcmi) {
  // A BMC without DCMI answers the completion code alone.
  auto r = ParseDcmiPowerReading(std::vector<uint8_t>{0xC1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("0xC1"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("invalid command"), std::string::npos);
  EXPECT_NE(r.status().message().find("DCMI"), std::string::npos);
}

TEST(IpmiDcmiParseTest, CompletionCodeD4IsInsufficientPrivilege) {
  auto r = ParseDcmiPowerReading(std::vector<uint8_t>{0xD4});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("0xD4"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("insufficient privilege"), std::string::npos);
}

TEST(IpmiDcmiParseTest, OtherCompletionCodesAreNamedEvenWithTrailingBytes) {
  // A non-zero code wins over whatever follows it.
  std::vector<uint8_t> busy = kActive200W;
  busy[0] = 0xC0;
  auto r = ParseDcmiPowerReading(busy);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("0xC0 (node busy)"), std::string::npos)
      << r.status().message();
  auto odd = ParseDcmiPowerReading(std::vector<uint8_t>{0x85});
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.status().message().find("0x85 (unknown)"), std::string::npos);
}

TEST(IpmiDcmiParseTest, EveryTruncationIsAClearErrorNeverACrash) {
  for (size_t len = 0; len < kActive200W.size(); ++len) {
    // A copy of exactly `len` bytes, so that a read past the end is caught by sanitizers.
    std::vector<uint8_t> cut(kActive200W.begin(), kActive200W.begin() + len);
    auto r = ParseDcmiPowerReading(cut);
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << len;
    if (len == 0) {
      EXPECT_NE(r.status().message().find("empty"), std::string::npos) << r.status().message();
    } else {
      EXPECT_NE(r.status().message().find("truncated response: " + std::to_string(len) +
                                          " bytes, want 19"),
                std::string::npos)
          << r.status().message();
    }
  }
}

TEST(IpmiDcmiParseTest, LongerAnswersAreReadAsTheKnownPrefix) {
  std::vector<uint8_t> longer = kActive200W;
  longer.push_back(0xAA);  // a later DCMI revision may append fields
  auto r = ParseDcmiPowerReading(longer);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->current_watts, 200);
}

TEST(IpmiDcmiParseTest, WrongGroupExtensionIsAnError) {
  std::vector<uint8_t> b = kActive200W;
  b[1] = 0xDD;
  auto r = ParseDcmiPowerReading(b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("group extension 0xDD"), std::string::npos)
      << r.status().message();
}

// ---- the collector over a fake transport ----

// Replays scripted answers (the last one repeats) and records what it was asked. An answer may
// be held until the test releases it, to play a BMC that does not answer.
class FakeTransport : public IpmiTransport {
 public:
  struct Answer {
    Result<std::vector<uint8_t>> result;
    bool hold = false;  // block until Release()
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Answer> script;
    bool released = false;
    int requests = 0;
    uint8_t netfn = 0, cmd = 0;
    std::vector<uint8_t> data;
    milliseconds timeout{0};
    void Release() {
      {
        std::lock_guard lock(mu);
        released = true;
      }
      cv.notify_all();
    }
    int Requests() {
      std::lock_guard lock(mu);
      return requests;
    }
  };

  explicit FakeTransport(std::shared_ptr<Shared> s) : s_(std::move(s)) {}

  Result<std::vector<uint8_t>> Request(uint8_t netfn, uint8_t cmd, std::span<const uint8_t> data,
                                       milliseconds timeout) override {
    std::unique_lock lock(s_->mu);
    ++s_->requests;
    s_->netfn = netfn;
    s_->cmd = cmd;
    s_->data.assign(data.begin(), data.end());
    s_->timeout = timeout;
    Answer a = s_->script.front();
    if (s_->script.size() > 1) s_->script.pop_front();
    if (a.hold) s_->cv.wait(lock, [this] { return s_->released; });
    return a.result;
  }

 private:
  std::shared_ptr<Shared> s_;
};

// Releases held answers when it goes out of scope; declared after the collector, so that it
// runs first and the collector's poller can be joined.
struct ReleaseAtEnd {
  std::shared_ptr<FakeTransport::Shared> s;
  ~ReleaseAtEnd() { s->Release(); }
};

std::shared_ptr<FakeTransport::Shared> Script(std::vector<FakeTransport::Answer> answers) {
  auto s = std::make_shared<FakeTransport::Shared>();
  for (auto& a : answers) s->script.push_back(std::move(a));
  return s;
}

constexpr milliseconds kHour{3600 * 1000};

TEST(IpmiDcmiCollectorTest, ExportsTheReadingAndItsAge) {
  auto s = Script({{kActive200W}});
  FakeClock clock;
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000), clock);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_watts"), 200);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_min_watts"), 150);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_max_watts"), 300);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_average_watts"), 190);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_measurement_active"), 1);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_reading_age_seconds"), 0);
  EXPECT_EQ(sweep.families().size(), 6u);
  for (const Family& f : sweep.families()) {
    EXPECT_TRUE(IsValidMetricName(f.name)) << f.name;
    EXPECT_EQ(f.type, MetricType::kGauge) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  // What went to the BMC: DCMI Get Power Reading, system power statistics.
  EXPECT_EQ(s->netfn, 0x2C);
  EXPECT_EQ(s->cmd, 0x02);
  EXPECT_EQ(s->data, (std::vector<uint8_t>{0xDC, 0x01, 0x00, 0x00}));
  EXPECT_EQ(s->timeout, milliseconds(2000));

  // The same reading 5 s later (the next poll is an hour away) is 5 s old.
  clock.AdvanceMs(5000);
  Sweep later;
  ASSERT_EQ(c.Collect(later).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(later, "suanli_ipmi_dcmi_reading_age_seconds"), 5);
  EXPECT_EQ(ValueOf(later, "suanli_ipmi_dcmi_power_watts"), 200);
  EXPECT_EQ(s->Requests(), 1);
}

TEST(IpmiDcmiCollectorTest, AReadingTooOldIsNotExportedAsWatts) {
  auto s = Script({{kActive200W}});
  FakeClock clock;
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000), clock);
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  clock.AdvanceMs(3 * kHour.count());  // past 2 x interval + timeout
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("too old"), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(sweep, "suanli_ipmi_dcmi_power_watts"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "suanli_ipmi_dcmi_power_average_watts"), nullptr);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_reading_age_seconds"), 3 * 3600);
}

TEST(IpmiDcmiCollectorTest, MeasurementNotActiveIsReportedWithoutWatts) {
  auto s = Script({{NotActive()}});
  FakeClock clock;
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000), clock);
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_NE(r.message.find("power measurement not active"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("0x00"), std::string::npos) << r.message;
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_measurement_active"), 0);
  EXPECT_EQ(FindFamily(sweep, "suanli_ipmi_dcmi_power_watts"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "suanli_ipmi_dcmi_power_min_watts"), nullptr);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_reading_age_seconds"), 0);
}

TEST(IpmiDcmiCollectorTest, BmcWithoutDcmiIsNoData) {
  auto s = Script({{std::vector<uint8_t>{0xC1}}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("0xC1"), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(IpmiDcmiCollectorTest, InsufficientPrivilegeFails) {
  auto s = Script({{std::vector<uint8_t>{0xD4}}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("0xD4"), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(IpmiDcmiCollectorTest, TransportErrorsMapToOutcomes) {
  struct Case {
    Status error;
    CollectResult::Kind kind;
  };
  for (const Case& k : {Case{NotFound("no IPMI device (/dev/ipmi0)"), CollectResult::Kind::kNoData},
                        Case{PermissionDenied("/dev/ipmi0: Permission denied: run it as root"),
                             CollectResult::Kind::kFailed},
                        Case{DeadlineExceeded("/dev/ipmi0: no answer from the BMC within 2s"),
                             CollectResult::Kind::kFailed}}) {
    auto s = Script({{k.error}});
    IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
    Sweep sweep;
    CollectResult r = c.Collect(sweep);
    EXPECT_EQ(r.kind, k.kind) << k.error.message();
    EXPECT_EQ(r.message, k.error.message());
    EXPECT_EQ(sweep.PointCount(), 0u);
  }
}

TEST(IpmiDcmiCollectorTest, AFailedPollDropsTheWattsButKeepsTheAge) {
  // Good, then the BMC starts answering "node busy" on the next polls.
  auto s = Script({{kActive200W}, {std::vector<uint8_t>{0xC0}}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), milliseconds(20), milliseconds(500));
  Sweep first;
  ASSERT_EQ(c.Collect(first).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(first, "suanli_ipmi_dcmi_power_watts"), 200);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (s->Requests() < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find("0xC0 (node busy)"), std::string::npos) << r.message;
  EXPECT_EQ(FindFamily(sweep, "suanli_ipmi_dcmi_power_watts"), nullptr);
  EXPECT_GE(ValueOf(sweep, "suanli_ipmi_dcmi_reading_age_seconds"), 0);
}

TEST(IpmiDcmiCollectorTest, ASlowBmcNeverBlocksCollect) {
  // The first answer comes late (the fake ignores the timeout, as a wedged driver could), then
  // answers come, then the BMC hangs for good.
  auto s = Script({{kActive420W, /*hold=*/true}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), milliseconds(50), milliseconds(100));
  ReleaseAtEnd release{s};

  auto timed = [&](Sweep& sweep, CollectResult& r) {
    auto start = std::chrono::steady_clock::now();
    r = c.Collect(sweep);
    return std::chrono::steady_clock::now() - start;
  };
  // The first Collect waits for the first poll, but no longer than the timeout.
  Sweep first;
  CollectResult r;
  auto took = timed(first, r);
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_GE(took, milliseconds(90));
  EXPECT_EQ(r.kind, CollectResult::Kind::kOk);
  EXPECT_NE(r.message.find("no reading yet"), std::string::npos) << r.message;
  EXPECT_EQ(first.PointCount(), 0u);
  // Later ones do not wait at all while the poll is stuck.
  for (int i = 0; i < 5; ++i) {
    Sweep sweep;
    EXPECT_LT(timed(sweep, r), milliseconds(50));
  }
  // The held answer is let go; the next one comes at once, the one after it (repeated from
  // then on) is held again once `released` goes back to false below.
  {
    std::lock_guard lock(s->mu);
    s->script.clear();
    s->script.push_back({kActive420W, /*hold=*/false});
    s->script.push_back({kActive420W, /*hold=*/true});  // and then the BMC hangs
    s->released = true;
  }
  s->cv.notify_all();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  Sweep got;
  while (std::chrono::steady_clock::now() < give_up) {
    got.Clear();
    timed(got, r);
    if (!std::isnan(ValueOf(got, "suanli_ipmi_dcmi_power_watts"))) break;
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(ValueOf(got, "suanli_ipmi_dcmi_power_watts"), 420);
  {
    std::lock_guard lock(s->mu);
    s->released = false;  // the next poll hangs
  }
  // While the poll hangs, Collect stays prompt and, once the reading is older than
  // 2 x 50 ms + 100 ms, stops presenting its watts.
  give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool dropped = false;
  while (std::chrono::steady_clock::now() < give_up) {
    Sweep sweep;
    EXPECT_LT(timed(sweep, r), milliseconds(50));
    if (std::isnan(ValueOf(sweep, "suanli_ipmi_dcmi_power_watts"))) {
      dropped = true;
      EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
      EXPECT_GT(ValueOf(sweep, "suanli_ipmi_dcmi_reading_age_seconds"), 0.2);
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(dropped);
}

// ---- the device transport and the factory ----

std::unique_ptr<Collector> MakeWith(const std::string& devfs, const std::string& yaml,
                                    Status* error = nullptr) {
  auto options = ConfigMap::Parse("agent.yml", yaml.empty() ? "{}" : yaml);
  EXPECT_TRUE(options.ok()) << options.status().message();
  CollectorContext ctx{HostPaths{"/proc", "/sys", devfs}, *options, milliseconds(15000)};
  auto made = IpmiDcmiCollector::Make(ctx);
  if (!made.ok()) {
    if (error != nullptr) *error = made.status();
    return nullptr;
  }
  Status finish = options->Finish();
  EXPECT_TRUE(finish.ok()) << finish.message();
  return std::move(made).value();
}

TEST(IpmiDcmiDeviceTest, NoDeviceIsNoDataNamingTheModules) {
  TempTree devfs;
  auto c = MakeWith(devfs.root(), "");
  ASSERT_NE(c, nullptr);
  Sweep sweep;
  CollectResult r = c->Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("no IPMI device"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(devfs.Path("ipmi0")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(devfs.Path("ipmi/0")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("ipmi_si"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("ipmi_devintf"), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);
}

TEST(IpmiDcmiDeviceTest, ConfiguredDeviceIsTheOnlyOneTried) {
  TempTree devfs;
  auto c = MakeWith(devfs.root(), "device: ipmi3\ntimeout: 500ms\n");
  ASSERT_NE(c, nullptr);
  Sweep sweep;
  CollectResult r = c->Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find(devfs.Path("ipmi3")), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find(devfs.Path("ipmi0")), std::string::npos) << r.message;
}

TEST(IpmiDcmiDeviceTest, AFileThatIsNoIpmiDeviceFailsCleanly) {
  // open() succeeds, the ioctl does not (ENOTTY): an error, never a crash or a hang.
  TempTree devfs;
  devfs.Write("ipmi0", "");
  auto c = MakeWith(devfs.root(), "timeout: 200ms\n");
  ASSERT_NE(c, nullptr);
  Sweep sweep;
  CollectResult r = c->Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(devfs.Path("ipmi0") + ": sending the request"), std::string::npos)
      << r.message;
}

TEST(IpmiDcmiDeviceTest, UnreadableDeviceFailsWithAnActionableMessage) {
  if (::geteuid() == 0) GTEST_SKIP() << "root opens a mode-000 file anyway";
  TempTree devfs;
  devfs.Write("ipmi0", "");
  ASSERT_EQ(::chmod(devfs.Path("ipmi0").c_str(), 0), 0);
  IpmiDeviceTransport t({devfs.Path("ipmi0")});
  auto r = t.Request(kDcmiNetFn, kDcmiGetPowerReading, kDcmiGetPowerReadingData, milliseconds(100));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("run it as root"), std::string::npos) << r.status().message();
}

TEST(IpmiDcmiDeviceTest, OptionErrorsNameTheKey) {
  for (const char* yaml : {"device: /dev/ipmi0\n", "device: ../ipmi0\n", "device: \"\"\n",
                           "timeout: 0s\n", "timeout: soon\n"}) {
    Status error;
    EXPECT_EQ(MakeWith("/nonexistent", yaml, &error), nullptr) << yaml;
    EXPECT_NE(error.message().find("agent.yml:1:"), std::string::npos) << error.message();
    std::string key = std::string(yaml).substr(0, std::string(yaml).find(':'));
    EXPECT_NE(error.message().find(key), std::string::npos) << error.message();
  }
}

// ---- shared chassis ----

// A node of a four-node chassis, as SMBIOS names it.
void WriteDmi(const TempTree& t, const std::string& chassis_serial) {
  t.Write("sys_vendor", "Lenovo\n");
  t.Write("product_name", "ThinkSystem SD530 -[7X21CTO1WW]-\n");
  t.Write("board_name", "7X21CTO1WW\n");
  t.Write("chassis_serial", chassis_serial + "\n");
}

DcmiSharedChassisOptions Sd530Rule(const TempTree& dmi) {
  DcmiSharedChassisOptions o;
  o.platforms.push_back({"", "ThinkSystem SD530*", "", 4});
  o.dmi_dir = dmi.root();
  return o;
}

TEST(IpmiDcmiSharedChassisTest, APlatformRuleMarksTheReadingAsTheChassis) {
  TempTree dmi;
  WriteDmi(dmi, "J300XYZ");
  auto s = Script({{kActive200W}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
  c.set_shared_chassis(Sd530Rule(dmi));
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_watts",
                    {{"scope", "shared"}, {"chassis_identity", "J300XYZ"}, {"systems", "4"}}),
            200);
  // The statistics stay as they are: only the figure taken as power says what it covers.
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_average_watts"), 190);
}

TEST(IpmiDcmiSharedChassisTest, IdentityFromTheOptionElseNone) {
  TempTree dmi;
  WriteDmi(dmi, "");
  {
    auto s = Script({{kActive200W}});
    IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
    DcmiSharedChassisOptions o = Sd530Rule(dmi);
    o.chassis_identity = "rack7-u12";
    c.set_shared_chassis(o);
    Sweep sweep;
    ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_watts",
                      {{"scope", "shared"}, {"chassis_identity", "rack7-u12"}, {"systems", "4"}}),
              200);
  }
  {
    // No identity anywhere: still shared (the aggregator counts this node's quarter), warned.
    auto s = Script({{kActive200W}});
    IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
    c.set_shared_chassis(Sd530Rule(dmi));
    Sweep sweep;
    ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
    EXPECT_EQ(
        ValueOf(sweep, "suanli_ipmi_dcmi_power_watts", {{"scope", "shared"}, {"systems", "4"}}),
        200);
  }
}

TEST(IpmiDcmiSharedChassisTest, OtherPlatformsKeepTheirOwnReading) {
  TempTree dmi;
  WriteDmi(dmi, "J300XYZ");
  dmi.Write("product_name", "ThinkSystem SR650\n");
  auto s = Script({{kActive200W}});
  IpmiDcmiCollector c(std::make_unique<FakeTransport>(s), kHour, milliseconds(2000));
  c.set_shared_chassis(Sd530Rule(dmi));
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(ValueOf(sweep, "suanli_ipmi_dcmi_power_watts"), 200);

  // Every pattern of a rule must match; the first matching rule wins.
  DmiNames host{"Lenovo", "ThinkSystem SD530", "7X21", ""};
  std::vector<DcmiChassisPlatform> rules{{"Dell*", "ThinkSystem SD530", "", 2},
                                         {"Lenovo", "ThinkSystem SD5?0", "", 4},
                                         {"", "*", "", 8}};
  const DcmiChassisPlatform* m = MatchDcmiChassisPlatform(rules, host);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->systems, 4);
  EXPECT_EQ(MatchDcmiChassisPlatform({}, host), nullptr);
}

TEST(IpmiDcmiSharedChassisTest, PlatformOptionsAreCheckedWithTheirKey) {
  EXPECT_NE(MakeWith("/nonexistent",
                     "chassis_identity: rack7-u12\n"
                     "chassis_platforms:\n"
                     "  - {sys_vendor: Lenovo, product_name: \"ThinkSystem SD530*\", "
                     "board_name: \"*\", systems: 4}\n"),
            nullptr);
  const std::pair<const char*, const char*> cases[] = {
      {"chassis_platforms:\n  - {systems: 4}\n", "at least one of sys_vendor"},
      {"chassis_platforms:\n  - {product_name: X, systems: 1}\n", "systems"},
      {"chassis_platforms:\n  - {product_name: X}\n", "systems"},
      {"chassis_platforms:\n  - {product_name: X, systems: 4, model: Y}\n", "model"},
  };
  for (const auto& [yaml, what] : cases) {
    Status error;
    EXPECT_EQ(MakeWith("/nonexistent", yaml, &error), nullptr) << yaml;
    EXPECT_NE(error.message().find("agent.yml:2:"), std::string::npos) << error.message();
    EXPECT_NE(error.message().find(what), std::string::npos) << error.message();
  }
}

TEST(IpmiDcmiDeviceTest, MakeTouchesNothing) {
  // Built for --config.check against a device root that does not exist: fine, and destroying
  // a collector that never ran starts and joins nothing.
  auto c = MakeWith("/nonexistent", "device: ipmi/0\n");
  EXPECT_NE(c, nullptr);
}

}  // namespace
}  // namespace suanli::agent
