// RedfishCollector: whole-server power from the BMC's Redfish service over HTTP(S) (libcurl,
// core/http_client.h), per chassis.
//
// Families:
//   suanli_redfish_power_watts{chassis,source,chassis_identity,systems}  gauge  the chassis'
//       power; source says where it was read (one source per chassis, the first of these that
//       has a reading):
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
//       chassis_identity: the chassis' SerialNumber, else its UUID (absent when it has
//       neither, or only a placeholder such as "To Be Filled By O.E.M."): the same on every
//       node of a shared chassis. systems: the ComputerSystems the reading covers, those the
//       chassis links (Links.ComputerSystems) and those of the chassis inside it.
//   suanli_redfish_server_power_watts{chassis,chassis_identity,systems,scope}  gauge  this
//       server's power: the reading of the chassis chosen below. scope="server": it covers this
//       server alone; scope="shared": it covers several (a multi-node chassis, the enclosure of
//       a blade), so a dc must count it once per chassis_identity, never once per node.
//   suanli_redfish_reading_age_seconds{chassis}  gauge  age of the chassis' latest reading
//   suanli_redfish_up                            gauge  1 when the latest poll read every
//       chassis it set out to read and is recent, else 0
//
// Which chassis is this server's. A BMC lists blades' enclosures, racks, power shelves and
// drawers beside the server's own chassis, in any order, so the choice follows the links, never
// the order or the largest figure:
//   1. This server's ComputerSystem: the `system` option; else the only member of the Systems
//      collection; else the member whose UUID is the host's SMBIOS UUID
//      (/sys/class/dmi/id/product_uuid, where readable); else, without a Systems collection,
//      the one system the chassis link to. Several systems and none of these: no server
//      reading (every chassis is still exported), and a message says to set `system`.
//   2. Its chassis: those in its Links.Chassis and those whose Links.ComputerSystems hold it;
//      of these, server chassis (any ChassisType but those below) before enclosures, the
//      innermost (not ContainedBy another candidate), then the one covering the fewest systems.
//      Without any system (no Systems collection, chassis that link none): the one server
//      chassis, if there is exactly one. A Systems collection the BMC refuses counts as none.
//   3. When that chassis has no reading, Links.ContainedBy upwards, until one has; a chassis
//      of that chain whose read failed ends the walk for the poll (no stand-in for a blip).
// Never one server's power, neither chosen nor walked to: racks and facility (Rack, RackGroup,
// Row, Pod, Zone, Shelf, PowerSystem, ImmersionTank, HeatExchanger) and parts (Card,
// Component, Module, Expansion, Sidecar, IPBasedDrive, StorageEnclosure). Enclosures
// (Enclosure, Drawer) only as a shared fallback. A reading is shared when it comes from above
// the server's own chassis, from an enclosure, or covers more than one system. The choice and
// why are logged once, and again when it changes.
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
// Requests: the service root /redfish/v1/, the Chassis and Systems collections and their
// members are read once (and again after any failed poll); each poll then reads only the power
// resources. Only
// links under /redfish/v1/ on the configured BMC are followed (credentials never go to another
// host). A network failure or timeout ends the poll; an HTTP error or a resource without a
// reading moves on to the next source. Basic authentication on every request (the Redfish
// spec requires services to accept it); no sessions.
//
// Options (collector_config.redfish): url (required: "https://10.0.0.5"; no path but an optional
// /redfish/v1, no credentials in it), username, password or password_file (re-read every poll,
// trailing newline dropped; a change is picked up without a restart), ca_file,
// insecure_skip_verify (default false), timeout (per request, default 5s), chassis (an id from
// /redfish/v1/Chassis: read only that one, and take it for this server's own; default: every
// member, chosen as above), system (an id from /redfish/v1/Systems: this server's, where the
// BMC serves several). The password is never logged or put in a message; the URL is.
// Thread-safety: Collect() from one thread at a time; the poller thread shares only the state
// guarded by mu_. Destroying the collector waits for the request in flight (at most `timeout`).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/power/bmc_poller.h"
#include "agent/collectors/power/redfish_json.h"
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
  std::string system;                       // empty: found as in the header comment
  std::string host_uuid_file;               // the host's SMBIOS UUID; empty: not read
  std::chrono::milliseconds interval{15000};
};

// What a chassis can be to one server, by its Redfish ChassisType.
enum class ChassisRole {
  kServer,     // StandAlone, RackMount, Blade, Sled, Cartridge, Other, none: may be its own
  kEnclosure,  // Enclosure, Drawer: holds several servers; only a shared fallback
  kPart,       // Card, Component, Module, ...: a part of a server, never the whole
  kFacility,   // Rack, Row, Zone, Shelf, PowerSystem, ...: never one server's power
};
ChassisRole ChassisRoleOf(std::string_view chassis_type);

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
  // A chassis as discovered: where it keeps its power figures (paths under /redfish/v1/; empty
  // when absent) and how it relates to the others.
  struct ChassisLinks {
    std::string id, path, type;
    std::string identity;               // SerialNumber, else UUID; "" when neither
    std::vector<std::string> systems;   // Links.ComputerSystems
    std::string contained_by;           // Links.ContainedBy
    std::vector<std::string> contains;  // Links.Contains
    std::string power, environment_metrics, power_subsystem;
    int systems_covered = 0;  // this chassis' systems and those of the chassis inside it
    bool has_power_links() const {
      return !power.empty() || !environment_metrics.empty() || !power_subsystem.empty();
    }
  };
  // This server's chassis, then what contains it: the readings to try, in order.
  struct ServerChoice {
    std::vector<size_t> chain;  // indexes into chassis_
    std::string why;            // logged once; the message when the chain is empty
  };
  struct Reading {
    double watts = 0;
    std::string source;
    std::chrono::steady_clock::time_point at;
  };
  // The chassis whose reading is this server's power, as of the latest poll.
  struct ServerReading {
    std::string chassis;
    bool shared = false;
  };
  // How reading a chassis went: a reading, nothing to read, or an error.
  struct ChassisOutcome {
    std::optional<Reading> reading;
    Status error;
    bool network_error = false;  // the BMC is unreachable: stop the poll
  };

  void Poll();  // on the poller thread, like every method below
  Status EnsureClient();
  Result<Json> Get(const std::string& path, bool* network_error);
  Status Discover(bool* network_error);
  // This server's ComputerSystem (its path) among `systems` (path -> document); "" with *why
  // set when it cannot be told.
  std::string OwnSystem(const std::map<std::string, Json>& systems, std::string* why);
  ServerChoice ChooseServerChassis(const std::string& system_path,
                                   const std::map<std::string, Json>& systems) const;
  const ChassisLinks* ChassisAt(const std::string& path) const;
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
  ServerChoice server_choice_;
  std::string logged_choice_;  // the choice last logged

  std::mutex mu_;
  std::map<std::string, Reading> readings_;  // chassis id -> its latest reading
  std::vector<std::string> last_read_;       // chassis read by the latest finished poll
  std::map<std::string, std::pair<std::string, int>> labels_;  // id -> (identity, systems)
  std::optional<ServerReading> server_;                        // from the latest finished poll
  CollectResult last_;                                         // the latest finished poll's outcome
  std::chrono::steady_clock::time_point last_at_;
  bool polled_ = false;

  BmcPoller poller_;  // last: stopped before the members its thread uses go away
};

}  // namespace suanli::agent
