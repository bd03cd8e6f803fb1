#include "agent/collectors/power/ipmi_dcmi.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <linux/ipmi.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/config.h"
#include "core/file_util.h"

namespace suanli::agent {

namespace {

std::string Hex(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", b);
  return buf;
}

std::string Errno(int e) { return std::strerror(e); }

uint16_t Le16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] | (b[at + 1] << 8));
}

uint32_t Le32(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint32_t>(b[at]) | (static_cast<uint32_t>(b[at + 1]) << 8) |
         (static_cast<uint32_t>(b[at + 2]) << 16) | (static_cast<uint32_t>(b[at + 3]) << 24);
}

// A relative device name without ".." (the option must not escape the device root).
bool IsDeviceName(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

// ---- transport ----

IpmiDeviceTransport::IpmiDeviceTransport(std::vector<std::string> paths)
    : paths_(std::move(paths)) {}

IpmiDeviceTransport::~IpmiDeviceTransport() { Close(); }

void IpmiDeviceTransport::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status IpmiDeviceTransport::Open() {
  std::string tried;
  for (const std::string& path : paths_) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      fd_ = fd;
      path_ = path;
      return Status::Ok();
    }
    int e = errno;
    // ENXIO/ENODEV: a node left behind without its driver.
    if (e == ENOENT || e == ENXIO || e == ENODEV || e == ENOTDIR) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    if (e == EACCES || e == EPERM) {
      return PermissionDenied(path + ": " + Errno(e) +
                              ": the agent needs read-write access to the IPMI device; run it as "
                              "root, or give its user the device with a udev rule such as "
                              "KERNEL==\"ipmi*\", GROUP=\"suanli\", MODE=\"0660\"");
    }
    return Unavailable(path + ": " + Errno(e));
  }
  return NotFound("no IPMI device (" + tried +
                  "): load ipmi_si and ipmi_devintf (modprobe ipmi_si ipmi_devintf), or this "
                  "host has no BMC");
}

Result<std::vector<uint8_t>> IpmiDeviceTransport::Request(uint8_t netfn, uint8_t cmd,
                                                          std::span<const uint8_t> data,
                                                          std::chrono::milliseconds timeout) {
  if (fd_ < 0) RETURN_IF_ERROR(Open());
  auto r = Exchange(netfn, cmd, data, timeout);
  // Reopen next time: a fresh file also drops a late answer to this request.
  if (!r.ok()) Close();
  return r;
}

Result<std::vector<uint8_t>> IpmiDeviceTransport::Exchange(uint8_t netfn, uint8_t cmd,
                                                           std::span<const uint8_t> data,
                                                           std::chrono::milliseconds timeout) {
  if (data.size() > IPMI_MAX_MSG_LENGTH) return InvalidArgument("IPMI request too long");
  ipmi_system_interface_addr bmc{};
  bmc.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE;
  bmc.channel = IPMI_BMC_CHANNEL;
  bmc.lun = 0;
  std::vector<unsigned char> request_data(data.begin(), data.end());  // the kernel wants non-const
  ipmi_req req{};
  req.addr = reinterpret_cast<unsigned char*>(&bmc);
  req.addr_len = sizeof(bmc);
  req.msgid = ++msgid_;
  req.msg.netfn = netfn;
  req.msg.cmd = cmd;
  req.msg.data_len = static_cast<unsigned short>(request_data.size());
  req.msg.data = request_data.data();
  while (::ioctl(fd_, IPMICTL_SEND_COMMAND, &req) < 0) {
    if (errno == EINTR) continue;
    return Unavailable(path_ + ": sending the request to the BMC: " + Errno(errno));
  }

  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return DeadlineExceeded(path_ + ": no answer from the BMC within " + FormatDuration(timeout));
    }
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(path_ + ": waiting for the BMC: " + Errno(errno));
    }
    if (n == 0) continue;  // the deadline check above ends the loop
    if ((p.revents & POLLIN) == 0) {
      return Unavailable(path_ + ": the IPMI device reported an error while waiting");
    }
    unsigned char response[IPMI_MAX_MSG_LENGTH];
    ipmi_addr from{};
    ipmi_recv recv{};
    recv.addr = reinterpret_cast<unsigned char*>(&from);
    recv.addr_len = sizeof(from);
    recv.msg.data = response;
    recv.msg.data_len = sizeof(response);
    if (::ioctl(fd_, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      // EMSGSIZE: cut to our buffer (never for DCMI answers); the parser judges what is left.
      if (errno != EMSGSIZE) return Unavailable(path_ + ": reading the answer: " + Errno(errno));
    }
    // An event, or a late answer to an earlier request that timed out: not ours.
    if (recv.recv_type != IPMI_RESPONSE_RECV_TYPE || recv.msgid != req.msgid) continue;
    size_t len = std::min<size_t>(recv.msg.data_len, sizeof(response));
    return std::vector<uint8_t>(response, response + len);
  }
}

// ---- parsing ----

const char* IpmiCompletionCodeText(uint8_t code) {
  switch (code) {
    case 0x00:
      return "success";
    case 0xC0:
      return "node busy";
    case 0xC1:
      return "invalid command";
    case 0xC2:
      return "command invalid for given LUN";
    case 0xC3:
      return "timeout while processing command";
    case 0xC4:
      return "out of space";
    case 0xC5:
      return "reservation canceled or invalid";
    case 0xC6:
      return "request data truncated";
    case 0xC7:
      return "request data length invalid";
    case 0xC8:
      return "request data field length limit exceeded";
    case 0xC9:
      return "parameter out of range";
    case 0xCA:
      return "cannot return number of requested data bytes";
    case 0xCB:
      return "requested sensor, data, or record not present";
    case 0xCC:
      return "invalid data field in request";
    case 0xCD:
      return "command illegal for specified sensor or record type";
    case 0xCE:
      return "command response could not be provided";
    case 0xCF:
      return "cannot execute duplicated request";
    case 0xD0:
      return "SDR repository in update mode";
    case 0xD1:
      return "device in firmware update mode";
    case 0xD2:
      return "BMC initialization in progress";
    case 0xD3:
      return "destination unavailable";
    case 0xD4:
      return "insufficient privilege level";
    case 0xD5:
      return "command not supported in present state";
    case 0xD6:
      return "sub-function disabled or unavailable";
    case 0xFF:
      return "unspecified error";
    default:
      return "unknown";
  }
}

Result<DcmiPowerReading> ParseDcmiPowerReading(std::span<const uint8_t> b) {
  if (b.empty()) return InvalidArgument("empty response: no completion code");
  if (uint8_t cc = b[0]; cc != 0) {
    std::string what = "completion code " + Hex(cc) + " (" + IpmiCompletionCodeText(cc) +
                       (cc == 0xC1 ? ": the BMC does not implement DCMI Get Power Reading)" : ")");
    if (cc == 0xC1) return NotFound(std::move(what));
    if (cc == 0xD4) return PermissionDenied(std::move(what));
    return Unavailable(std::move(what));
  }
  if (b.size() < kDcmiPowerReadingSize) {
    return InvalidArgument("truncated response: " + std::to_string(b.size()) + " bytes, want " +
                           std::to_string(kDcmiPowerReadingSize));
  }
  if (b[1] != kDcmiGroupExtension) {
    return InvalidArgument("group extension " + Hex(b[1]) + ", want 0xDC (DCMI)");
  }
  DcmiPowerReading r;
  r.current_watts = Le16(b, 2);
  r.min_watts = Le16(b, 4);
  r.max_watts = Le16(b, 6);
  r.average_watts = Le16(b, 8);
  r.timestamp = Le32(b, 10);
  r.period_ms = Le32(b, 14);
  r.state = b[18];
  return r;
}

// ---- shared chassis ----

DmiNames ReadDmiNames(const std::string& dmi_dir) {
  auto read = [&](const char* name) {
    auto text = ReadFileToString(dmi_dir + "/" + name);
    if (!text.ok()) return std::string();
    std::string v = std::move(text).value();
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    return v;
  };
  DmiNames n;
  n.sys_vendor = read("sys_vendor");
  n.product_name = read("product_name");
  n.board_name = read("board_name");
  n.chassis_serial = read("chassis_serial");  // root only on most kernels
  return n;
}

const DcmiChassisPlatform* MatchDcmiChassisPlatform(
    const std::vector<DcmiChassisPlatform>& platforms, const DmiNames& host) {
  auto matches = [](const std::string& pattern, const std::string& value) {
    return pattern.empty() || ::fnmatch(pattern.c_str(), value.c_str(), 0) == 0;
  };
  for (const DcmiChassisPlatform& p : platforms) {
    if (matches(p.sys_vendor, host.sys_vendor) && matches(p.product_name, host.product_name) &&
        matches(p.board_name, host.board_name)) {
      return &p;
    }
  }
  return nullptr;
}

void IpmiDcmiCollector::MatchPlatform() {
  platform_matched_ = true;
  if (shared_options_.platforms.empty()) return;
  DmiNames host = ReadDmiNames(shared_options_.dmi_dir);
  const DcmiChassisPlatform* p = MatchDcmiChassisPlatform(shared_options_.platforms, host);
  std::string platform =
      "\"" + host.sys_vendor + "\" \"" + host.product_name + "\" \"" + host.board_name + "\"";
  if (p == nullptr) {
    spdlog::info(
        "ipmi_dcmi collector: no chassis_platforms rule matches this host ({}): its "
        "DCMI reading is its own",
        platform);
    return;
  }
  std::string identity = shared_options_.chassis_identity;
  if (identity.empty()) identity = host.chassis_serial;
  std::vector<std::pair<std::string, std::string>> labels{{"scope", "shared"}};
  if (!identity.empty()) labels.emplace_back("chassis_identity", identity);
  labels.emplace_back("systems", std::to_string(p->systems));
  if (identity.empty()) {
    spdlog::warn(
        "ipmi_dcmi collector: this host's ({}) DCMI reading covers the {} servers "
        "of its chassis, but has no chassis identity ({}/chassis_serial unreadable or empty): "
        "set collector_config.ipmi_dcmi.chassis_identity, the same on every node of the "
        "chassis; until then the aggregator counts this node's 1/{} of it",
        platform, p->systems, shared_options_.dmi_dir, p->systems);
  } else {
    spdlog::info(
        "ipmi_dcmi collector: this host's ({}) DCMI reading covers the {} servers "
        "of its chassis; chassis identity \"{}\"",
        platform, p->systems, identity);
  }
  std::lock_guard lock(mu_);
  shared_labels_ = std::move(labels);
}

// ---- collector ----

Result<std::unique_ptr<Collector>> IpmiDcmiCollector::Make(CollectorContext& ctx) {
  std::string device;
  RETURN_IF_ERROR(ctx.options.Get("device", &device));
  std::chrono::milliseconds timeout = kDefaultTimeout;
  RETURN_IF_ERROR(ctx.options.Get("timeout", &timeout));
  if (timeout.count() <= 0) return ctx.options.Error("timeout", "must be more than 0");
  DcmiSharedChassisOptions shared;
  shared.dmi_dir = ctx.paths.sysfs + "/class/dmi/id";
  RETURN_IF_ERROR(ctx.options.Get("chassis_identity", &shared.chassis_identity));
  ASSIGN_OR_RETURN(std::vector<ConfigMap> platforms, ctx.options.List("chassis_platforms"));
  for (ConfigMap& m : platforms) {
    DcmiChassisPlatform p;
    RETURN_IF_ERROR(m.Get("sys_vendor", &p.sys_vendor));
    RETURN_IF_ERROR(m.Get("product_name", &p.product_name));
    RETURN_IF_ERROR(m.Get("board_name", &p.board_name));
    int64_t systems = 0;
    RETURN_IF_ERROR(m.Get("systems", &systems));
    RETURN_IF_ERROR(m.Finish());
    if (p.sys_vendor.empty() && p.product_name.empty() && p.board_name.empty()) {
      return m.Error("",
                     "want at least one of sys_vendor, product_name, board_name (shell "
                     "globs on /sys/class/dmi/id)");
    }
    if (systems < 2 || systems > 1024) {
      return m.Error("systems",
                     "want the number of servers whose power the reading covers, "
                     "at least 2");
    }
    p.systems = static_cast<int>(systems);
    shared.platforms.push_back(std::move(p));
  }
  std::vector<std::string> paths;
  if (ctx.options.Has("device")) {
    if (!IsDeviceName(device)) {
      return ctx.options.Error("device",
                               "want a device node name under the device root, such as ipmi0 or "
                               "ipmi/0 (not an absolute path, no \"..\")");
    }
    paths.push_back(ctx.paths.devfs + "/" + device);
  } else {
    for (const char* name : {"ipmi0", "ipmi/0", "ipmidev/0"}) {
      paths.push_back(ctx.paths.devfs + "/" + name);
    }
  }
  auto c = std::make_unique<IpmiDcmiCollector>(
      std::make_unique<IpmiDeviceTransport>(std::move(paths)), ctx.sample_interval, timeout);
  c->set_shared_chassis(std::move(shared));
  return std::unique_ptr<Collector>(std::move(c));
}

IpmiDcmiCollector::IpmiDcmiCollector(std::unique_ptr<IpmiTransport> transport,
                                     std::chrono::milliseconds interval,
                                     std::chrono::milliseconds timeout, const Clock& clock)
    : transport_(std::move(transport)),
      interval_(interval),
      timeout_(timeout),
      clock_(clock),
      poller_(interval, [this] { Poll(); }) {}

IpmiDcmiCollector::~IpmiDcmiCollector() { poller_.Stop(); }

void IpmiDcmiCollector::Poll() {
  if (!platform_matched_) MatchPlatform();
  auto response =
      transport_->Request(kDcmiNetFn, kDcmiGetPowerReading, kDcmiGetPowerReadingData, timeout_);
  CollectResult outcome;
  std::optional<DcmiPowerReading> reading;
  if (!response.ok()) {
    const Status& st = response.status();
    outcome = st.code() == StatusCode::kNotFound ? CollectResult::NoData(st.message())
                                                 : CollectResult::Failed(st.message());
    // No device node: the modules are rarely loaded later; look again once a minute.
    if (st.code() == StatusCode::kNotFound) poller_.RestAtLeast(std::chrono::minutes(1));
  } else if (auto parsed = ParseDcmiPowerReading(*response); !parsed.ok()) {
    std::string why = "DCMI Get Power Reading: " + parsed.status().message();
    outcome = parsed.status().code() == StatusCode::kNotFound ? CollectResult::NoData(why)
                                                              : CollectResult::Failed(why);
  } else {
    reading = *parsed;
  }
  auto at = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  polled_ = true;
  last_ = std::move(outcome);
  if (reading) {
    reading_ = reading;
    reading_at_ = at;
  }
}

CollectResult IpmiDcmiCollector::Collect(Sweep& out) {
  poller_.Start();
  if (!waited_first_) {
    waited_first_ = true;
    poller_.WaitForFirstPoll(timeout_);
  }
  std::lock_guard lock(mu_);
  if (!polled_) {
    return {CollectResult::Kind::kOk,
            "no reading yet: the first request to the BMC is still running after " +
                FormatDuration(timeout_)};
  }
  if (!reading_) return last_;

  double age =
      std::max(0.0, std::chrono::duration<double>(clock_.SteadyNow() - reading_at_).count());
  out.Add("suanli_ipmi_dcmi_reading_age_seconds",
          "Age of the latest successful DCMI power reading from the BMC.", MetricType::kGauge, {},
          age);
  auto stale_after = std::chrono::duration<double>(2 * interval_ + timeout_).count();
  if (last_.kind != CollectResult::Kind::kOk) return last_;
  if (age > stale_after) {
    return CollectResult::Failed("no answer from the BMC for " +
                                 std::to_string(static_cast<int64_t>(age)) +
                                 "s: its latest reading is too old to export");
  }
  const DcmiPowerReading& r = *reading_;
  out.Add("suanli_ipmi_dcmi_power_measurement_active",
          "1 when the BMC reports DCMI power measurement active, else 0 (and no watts).",
          MetricType::kGauge, {}, r.active() ? 1 : 0);
  if (!r.active()) {
    return {CollectResult::Kind::kOk,
            "the BMC reports DCMI power measurement not active (power reading state " +
                Hex(r.state) + ")"};
  }
  std::vector<Label> labels;
  for (const auto& [name, value] : shared_labels_) labels.push_back({name, value});
  out.Add("suanli_ipmi_dcmi_power_watts",
          "Whole-server power the BMC measures now (DCMI); scope=\"shared\" where a platform rule "
          "says it covers the chassis' servers.",
          MetricType::kGauge, std::move(labels), r.current_watts);
  out.Add("suanli_ipmi_dcmi_power_average_watts",
          "Average whole-server power over the BMC's DCMI statistics period.", MetricType::kGauge,
          {}, r.average_watts);
  out.Add("suanli_ipmi_dcmi_power_min_watts",
          "Minimum whole-server power over the BMC's DCMI statistics period.", MetricType::kGauge,
          {}, r.min_watts);
  out.Add("suanli_ipmi_dcmi_power_max_watts",
          "Maximum whole-server power over the BMC's DCMI statistics period.", MetricType::kGauge,
          {}, r.max_watts);
  return CollectResult::Ok();
}

}  // namespace suanli::agent
