// IpmiDcmiCollector: whole-server power from the BMC with the DCMI "Get Power Reading" command
// (NetFn 0x2C Group Extension, command 0x02, data DC 01 00 00: system power statistics), sent
// through the Linux IPMI device (/dev/ipmi0, ipmi_devintf) to the BMC's system interface. No
// ipmitool: one ioctl to send, poll() with a timeout, one ioctl to receive.
//
// Families (no labels but the shared ones below; watts are whole numbers, as DCMI gives them):
//   suanli_ipmi_dcmi_power_watts               gauge  current power; where a platform rule
//       says the reading covers the chassis: {scope="shared", chassis_identity, systems}
//   suanli_ipmi_dcmi_power_average_watts       gauge  average over the BMC's statistics period
//   suanli_ipmi_dcmi_power_min_watts           gauge  minimum over that period
//   suanli_ipmi_dcmi_power_max_watts           gauge  maximum over that period
//   suanli_ipmi_dcmi_power_measurement_active  gauge  1 when the BMC says it measures (state
//       bit 0x40); 0: the BMC answers but does not measure, and no watts are exported
//   suanli_ipmi_dcmi_reading_age_seconds       gauge  age of the latest successful reading,
//       on the agent's clock (the BMC's own timestamp is often wrong and is not used)
//
// Never blocking a sweep: a KCS interface answers in tens of milliseconds, but a busy or hung
// BMC takes seconds, and the sampler's deadline runner (may_block) discards a late answer and
// skips the collector while a call runs. So a BmcPoller thread asks the BMC every sample
// interval (each request bounded by `timeout`) and keeps the latest reading with the time it
// arrived; Collect() copies that reading and its age and never waits on the BMC. The one
// exception is the first Collect(), which waits up to `timeout` for the first poll so that the
// first sweep has a figure. Readings are up to one interval old; the age family says how old.
// Watts are exported only when the latest poll succeeded and its reading is younger than
// 2 x interval + timeout: a reading of a BMC that stopped answering is never presented as
// current (the age family keeps growing instead).
//
// Outcomes: no IPMI device is NoData (naming the modules to load); a BMC that answers completion
// code 0xC1 (invalid command: no DCMI) is NoData; EACCES, a timeout, another completion code and
// a malformed answer are Failed with the reason; "measurement not active" is Ok with a message.
// The device stays open across polls and is reopened after any error. A host without a device
// node is looked at again once a minute, not every interval.
//
// Shared chassis: on multi-node platforms (2U4N and other chassis of several servers with one
// power supply bay) some BMCs answer Get Power Reading with the whole chassis' power, the same
// figure on every node. DCMI has no field that says so, so a rule per platform does: the
// first rule whose patterns all match this host's SMBIOS names (sys_vendor, product_name,
// board_name under /sys/class/dmi/id, shell globs) makes the reading shared by `systems`
// servers; its identity is chassis_identity, else SMBIOS chassis_serial (the enclosure's
// serial on such platforms). No platform is built in: the project holds no measurement that
// shows one. Tell one by comparing the nodes' readings of one chassis: equal figures that
// move together are the chassis'. The rule matched, or that none did, is logged once.
//
// Options (collector_config.ipmi_dcmi): device: the node under the device root (default: the
// first of ipmi0, ipmi/0, ipmidev/0 that exists, as ipmitool looks); timeout: per request
// (default 2s); chassis_platforms: a list of {sys_vendor, product_name, board_name, systems}
// (at least one pattern; systems at least 2); chassis_identity: overrides chassis_serial.
// Thread-safety: Collect() from one thread at a time; the poller thread shares only the state
// guarded by mu_. An IpmiTransport is used from one thread at a time. Destroying the collector
// waits for the request in flight (at most `timeout`).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/power/bmc_poller.h"
#include "core/clock.h"
#include "core/status.h"

namespace suanli::agent {

// One IPMI request/response exchange with the local BMC. A seam: tests replay recorded bytes.
class IpmiTransport {
 public:
  virtual ~IpmiTransport() = default;
  // Sends netfn/cmd/data to the BMC and returns the response data, completion code first.
  // Errors: kNotFound (no device), kPermissionDenied, kDeadlineExceeded (no answer within
  // `timeout`), kUnavailable (the driver failed).
  virtual Result<std::vector<uint8_t>> Request(uint8_t netfn, uint8_t cmd,
                                               std::span<const uint8_t> data,
                                               std::chrono::milliseconds timeout) = 0;
};

// The Linux IPMI device (ipmi_devintf). Opens the first of `paths` that exists on first use,
// keeps it open, closes it after any error so that the next request reopens it (and drops
// late answers to timed-out requests).
class IpmiDeviceTransport final : public IpmiTransport {
 public:
  explicit IpmiDeviceTransport(std::vector<std::string> paths);
  ~IpmiDeviceTransport() override;
  IpmiDeviceTransport(const IpmiDeviceTransport&) = delete;
  IpmiDeviceTransport& operator=(const IpmiDeviceTransport&) = delete;

  Result<std::vector<uint8_t>> Request(uint8_t netfn, uint8_t cmd, std::span<const uint8_t> data,
                                       std::chrono::milliseconds timeout) override;

 private:
  Status Open();
  void Close();
  Result<std::vector<uint8_t>> Exchange(uint8_t netfn, uint8_t cmd, std::span<const uint8_t> data,
                                        std::chrono::milliseconds timeout);

  std::vector<std::string> paths_;
  std::string path_;  // the one open
  int fd_ = -1;
  long msgid_ = 0;  // NOLINT(runtime/int): the kernel's type
};

// DCMI Get Power Reading, its request and its response.
inline constexpr uint8_t kDcmiNetFn = 0x2C;  // Group Extension request
inline constexpr uint8_t kDcmiGetPowerReading = 0x02;
inline constexpr uint8_t kDcmiGroupExtension = 0xDC;
inline constexpr uint8_t kDcmiPowerMeasurementActive = 0x40;  // bit 6 of the state byte
inline constexpr size_t kDcmiPowerReadingSize = 19;           // completion code included
// Mode 0x01 (system power statistics), no mode attributes, reserved byte.
inline constexpr uint8_t kDcmiGetPowerReadingData[] = {kDcmiGroupExtension, 0x01, 0x00, 0x00};

struct DcmiPowerReading {
  uint16_t current_watts = 0;
  uint16_t min_watts = 0;      // over the statistics period
  uint16_t max_watts = 0;      // over the statistics period
  uint16_t average_watts = 0;  // over the statistics period
  uint32_t timestamp = 0;      // the BMC's clock, seconds since 1970 (IPMI timestamp)
  uint32_t period_ms = 0;      // statistics reporting period
  uint8_t state = 0;           // power reading state
  bool active() const { return (state & kDcmiPowerMeasurementActive) != 0; }
};

// Parses a Get Power Reading response (completion code first, multi-byte fields LSB first).
// Errors: a completion code other than 0 names it ("completion code 0xC1 (invalid command)")
// and is kNotFound for 0xC1 (the BMC has no DCMI), kPermissionDenied for 0xD4, kUnavailable
// otherwise; a short response or a wrong group extension is kInvalidArgument. Never reads past
// `response`.
Result<DcmiPowerReading> ParseDcmiPowerReading(std::span<const uint8_t> response);

// "invalid command", "node busy", ... for an IPMI completion code; "unknown" when not standard.
const char* IpmiCompletionCodeText(uint8_t code);

// A platform whose DCMI reading covers its whole chassis: each pattern (a shell glob; empty:
// any) must match the host's SMBIOS name of that field.
struct DcmiChassisPlatform {
  std::string sys_vendor, product_name, board_name;
  int systems = 0;  // servers in the chassis, at least 2
};

// The host's SMBIOS names (/sys/class/dmi/id), as far as readable.
struct DmiNames {
  std::string sys_vendor, product_name, board_name, chassis_serial;
};
DmiNames ReadDmiNames(const std::string& dmi_dir);

// The first platform that matches `host`; nullptr when none does.
const DcmiChassisPlatform* MatchDcmiChassisPlatform(
    const std::vector<DcmiChassisPlatform>& platforms, const DmiNames& host);

struct DcmiSharedChassisOptions {
  std::vector<DcmiChassisPlatform> platforms;
  std::string chassis_identity;  // empty: the host's SMBIOS chassis_serial
  std::string dmi_dir;           // "<sysfs>/class/dmi/id"
};

class IpmiDcmiCollector : public Collector {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{2000};

  // Reads `device` and `timeout`; touches nothing on the host.
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);

  // `interval`: how often the poller asks the BMC; `timeout`: per request.
  IpmiDcmiCollector(std::unique_ptr<IpmiTransport> transport, std::chrono::milliseconds interval,
                    std::chrono::milliseconds timeout, const Clock& clock = SystemClock::Get());
  ~IpmiDcmiCollector() override;

  // Rules for shared chassis; before the first Collect().
  void set_shared_chassis(DcmiSharedChassisOptions options) {
    shared_options_ = std::move(options);
  }

  CollectResult Collect(Sweep& out) override;

  // After the first wait for the poller, Collect() only copies what the poller fetched.
  bool MayBlockNow() const override { return !waited_first_; }

 private:
  void Poll();           // on the poller thread
  void MatchPlatform();  // on the poller thread, once

  std::unique_ptr<IpmiTransport> transport_;
  const std::chrono::milliseconds interval_;
  const std::chrono::milliseconds timeout_;
  const Clock& clock_;
  bool waited_first_ = false;  // Collect() thread only
  DcmiSharedChassisOptions shared_options_;
  bool platform_matched_ = false;  // poller thread only

  std::mutex mu_;
  // The latest successful reading and when it arrived.
  std::optional<DcmiPowerReading> reading_;
  std::chrono::steady_clock::time_point reading_at_;
  // The outcome of the latest finished poll (Ok when it gave reading_).
  CollectResult last_;
  bool polled_ = false;
  // Set when a platform rule says the reading covers the chassis: the labels of the watts.
  std::vector<std::pair<std::string, std::string>> shared_labels_;

  BmcPoller poller_;  // last: stopped before the members its thread uses go away
};

}  // namespace suanli::agent
