// RedfishCollector: whole-server power from the BMC's Redfish service over HTTP(S) (libcurl,
// core/http_client.h), per chassis.
//
// Families:
//   suanli_redfish_power_watts{chassis,source}  gauge  the chassis' power; source says where
//       it was read (one source per chassis, the first of these that has a reading):
//       "PowerControl": Chassis/{id}/Power, PowerControl[].PowerConsumedWatts (Power is
//           deprecated since 2020.4 but is what most BMCs in service implement). The DMTF
//           schema makes each PowerControl entry a power domain and PhysicalContext says which;
//           the entry whose PhysicalContext is "Chassis" is the whole chassis, else the first
//           entry without a PhysicalContext (what the DMTF mockups and most BMCs write for the
//           whole system). Entries with another context (CPUSubsystem, MemorySubsystem, ...)
//           are parts, never summed and never taken for the whole.
//       "EnvironmentMetrics": Chassis/{id}/EnvironmentMetrics, PowerWatts.Reading: the
//           replacement of PowerConsumedWatts in the current schema (one request).
//       "PowerSubsystem": the sum of InputPowerWatts.Reading over the chassis' power supplies
//           (PowerSubsystem/PowerSupplies/{n}/Metrics), skipping supplies whose Status.State
//           is Absent, Disabled, StandbyOffline or UnavailableOffline and have no reading; if a
//           supply in service has no reading there is no sum (a partial sum would read low).
//       A PowerControl entry or supply whose Status.State is "Absent" is skipped.
//   suanli_redfish_reading_age_seconds{chassis}  gauge  age of the chassis' latest reading
//   suanli_redfish_up                            gauge  1 when the latest poll read every
//       chassis it set out to read and is recent, else 0
// A chassis can contain another (Links.ContainedBy): a blade's power is inside its enclosure's.
// All chassis are exported; pick one with `chassis` where that would double count.
//
// Never blocking a sweep: a Redfish BMC takes from 0.1 s to several seconds per request and a
// poll needs one request per chassis (more on the PowerSubsystem path), while the sampler's
// deadline runner (may_block) discards late answers. So a BmcPoller thread polls every sample
// interval and keeps the latest readings with the time they arrived; Collect() copies them and
// their age and never waits on the BMC (except the first Collect(), which waits up to `timeout`
// for the first poll). Watts are exported only when they come from the latest finished poll
// and are younger than 2 x interval + timeout: a BMC that stopped answering never has its last
// figure presented as current (up is 0, the age family grows).
//
// Requests: the service root /redfish/v1/, the Chassis collection and each chassis are read
// once (and again after any failed poll); each poll then reads only the power resources. Only
// links under /redfish/v1/ on the configured BMC are followed (credentials never go to another
// host). A network failure or timeout ends the poll; an HTTP error or a resource without a
// reading moves on to the next source. Basic authentication on every request (the Redfish
// spec requires services to accept it); no sessions.
//
// Options (collector_config.redfish): url (required: "https://10.0.0.5"; no path but an optional
// /redfish/v1, no credentials in it), username, password or password_file (re-read every poll,
// trailing newline dropped; a change is picked up without a restart), ca_file,
// insecure_skip_verify (default false), timeout (per request, default 5s), chassis (an id from
// /redfish/v1/Chassis; default: every member). The password is never logged or put in a
// message; the URL is.
// Thread-safety: Collect() from one thread at a time; the poller thread shares only the state
// guarded by mu_. Destroying the collector waits for the request in flight (at most `timeout`).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/power/bmc_poller.h"
#include "agent/collectors/power/json_reader.h"
#include "core/clock.h"
#include "core/http_client.h"
#include "core/status.h"

namespace suanli::agent {

struct RedfishOptions {
  std::string url;  // "https://host[:port]", without a trailing "/" or "/redfish/v1"
  std::string username;
  std::string password;
  std::string password_file;  // read on the poller thread, never by the factory
  std::string ca_file;
  bool insecure_skip_verify = false;
  std::chrono::milliseconds timeout{5000};  // per request
  std::string chassis;                      // empty: every member of the Chassis collection
  std::chrono::milliseconds interval{15000};
};

// Checks and normalises a BMC base URL ("https://10.0.0.5/" -> "https://10.0.0.5"). The error
// says what is wrong, without the URL's credentials.
Result<std::string> NormalizeRedfishUrl(const std::string& url);

class RedfishCollector : public Collector {
 public:
  // Reads the options above; the sample interval becomes the poll interval. Touches nothing on
  // the host (password_file is read when polling).
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);

  explicit RedfishCollector(RedfishOptions options, const Clock& clock = SystemClock::Get());
  ~RedfishCollector() override;

  CollectResult Collect(Sweep& out) override;

  // After the first wait for the poller, Collect() only copies what the poller fetched.
  bool MayBlockNow() const override { return !waited_first_; }

 private:
  // Where a chassis keeps its power figures (paths under /redfish/v1/; empty when absent).
  struct ChassisLinks {
    std::string id;
    std::string power, environment_metrics, power_subsystem;
  };
  struct Reading {
    double watts = 0;
    std::string source;
    std::chrono::steady_clock::time_point at;
  };
  // How reading a chassis went: a reading, nothing to read, or an error.
  struct ChassisOutcome {
    std::optional<Reading> reading;
    Status error;
    bool network_error = false;  // the BMC is unreachable: stop the poll
  };

  void Poll();  // on the poller thread, like every method below
  Status EnsureClient();
  Result<JsonValue> Get(const std::string& path, bool* network_error);
  Status Discover(bool* network_error);
  ChassisOutcome ReadChassis(const ChassisLinks& links);
  std::optional<double> ReadPowerControl(const std::string& path, Status* error, bool* network);
  std::optional<double> ReadEnvironmentMetrics(const std::string& path, Status* error,
                                               bool* network);
  std::optional<double> ReadPowerSubsystem(const std::string& path, Status* error, bool* network);

  const RedfishOptions options_;
  const Clock& clock_;
  bool waited_first_ = false;  // Collect() thread only

  // Poller thread only.
  std::unique_ptr<HttpClient> client_;
  std::string client_password_;  // what client_ was built with
  bool warned_plain_http_ = false;
  bool discovered_ = false;
  std::vector<ChassisLinks> chassis_;

  std::mutex mu_;
  std::map<std::string, Reading> readings_;  // chassis id -> its latest reading
  std::vector<std::string> last_read_;       // chassis read by the latest finished poll
  CollectResult last_;                       // the latest finished poll's outcome
  std::chrono::steady_clock::time_point last_at_;
  bool polled_ = false;

  BmcPoller poller_;  // last: stopped before the members its thread uses go away
};

}  // namespace suanli::agent
