// SnmpLinkPoller: the inter-dc links that end on a router rather than on this server, read from
// the router's IF-MIB over SNMP (v2c or v3) and exported as the same suanli_link_* series as a
// local NIC's link (agent/links.h), so that the aggregator needs nothing new.
//
// Per link (a `links:` entry with an `snmp:` section, see docs/configuration.md):
//   suanli_link_receive_bytes_total{device,link,peer_dc,source}   ifHCInOctets
//   suanli_link_transmit_bytes_total{device,link,peer_dc,source}  ifHCOutOctets
//   suanli_link_capacity_bits_per_second{link,peer_dc,source}     the configured capacity, else
//       ifHighSpeed x 1e6 (not exported when neither is known)
//   suanli_link_up{link,peer_dc,source}                           ifOperStatus == up(1)
// source is "snmp:TARGET" (the target as configured); device the interface's ifName (if_name as
// configured, or ifName read for an if_index). Per router (target):
//   suanli_snmp_up{target}                      1 when the latest poll answered and is recent
//   suanli_snmp_poll_failures_total{reason,target}  polls that failed: timeout, auth, error,
//       no_such_interface (once per link and poll), config (an unreadable secret file),
//       library (net-snmp cannot be loaded)
//   suanli_snmp_counter_resets_total{target}    polls that saw the router restart (sysUpTime
//       went back, its 497-day wrap excepted) or a link counter go back
//
// Counters are exported as the router reads them. A 64-bit counter wraps after centuries at
// 100 Gbit/s; a router restart or a cleared counter makes it go back, which Prometheus' rate()
// and the aggregator (CounterRate) take for a counter reset, never a negative rate. The poller
// sees a restart in sysUpTime too: it counts it, logs it, and resolves if_name again (ifIndex
// may be renumbered by a restart) before reading the counters of that poll.
//
// Never blocking a sweep: a poller thread (BmcPoller) polls every target in turn, every
// `interval`, each request bounded by the target's timeout x (retries + 1); AddTo() copies the
// latest readings and never waits on the network. Until a target's first poll has finished its
// links have no series ("no reading yet"); a link's counters are exported only while they come
// from the latest poll of their target and are younger than 2 x interval plus the poll's time
// budget (a router that stopped answering never has its last figures presented as current).
// A target that fails is logged once per change of state (failing, failing for another reason,
// answering again), and counted every poll.
// Thread-safety: AddTo() from one thread at a time (the sampling thread); PollOnce() from the
// poller thread (or a test's, without Start()); they share only what mu_ guards.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/network/snmp_client.h"
#include "agent/collectors/power/bmc_poller.h"
#include "core/clock.h"
#include "core/config.h"

namespace suanli::agent {

// A link's `snmp:` section.
struct SnmpLinkOptions {
  SnmpSessionOptions session;  // its secrets as configured inline (files are read when polling)
  std::string community_file;  // instead of community
  std::string auth_passphrase_file;
  std::string priv_passphrase_file;
  std::string if_name;   // ifName (else ifDescr) of the interface, or
  int64_t if_index = 0;  // its ifIndex
};

// Reads an `snmp:` section; errors name file, line and key. Touches nothing on the host.
Result<SnmpLinkOptions> ParseSnmpLinkOptions(ConfigMap& m);

struct SnmpLink {
  std::string name;
  std::string peer_dc;
  double capacity_bits_per_second = 0;  // 0: from ifHighSpeed
  SnmpLinkOptions snmp;
};

class SnmpLinkPoller {
 public:
  explicit SnmpLinkPoller(std::vector<SnmpLink> links,
                          std::chrono::milliseconds interval = std::chrono::seconds(15),
                          const Clock& clock = SystemClock::Get());
  ~SnmpLinkPoller();  // stops the thread, after the request in flight

  // Starts the poller thread (the first AddTo() does it).
  void Start();
  // Adds the latest readings to `out`; never waits on a router.
  void AddTo(Sweep& out);
  // One poll of every target, on the caller's thread.
  void PollOnce();

 private:
  struct LinkState {
    SnmpLink spec;
    size_t target = 0;
    std::optional<uint32_t> index;  // resolved ifIndex
    std::string device;             // the label
    std::string problem;            // why the latest poll has no reading for it ("" if none)
    std::string logged_problem;     // the problem last logged
  };
  struct TargetState {
    SnmpLinkOptions options;  // of its first link; if_name/if_index ignored
    std::string source;       // "snmp:TARGET"
    std::vector<size_t> links;
    std::unique_ptr<SnmpSession> session;
    SnmpSessionOptions opened_with;  // secrets included: a changed file reopens the session
    std::optional<uint32_t> uptime;  // sysUpTime of the latest successful poll
    std::chrono::steady_clock::time_point uptime_at;
    std::string logged_state = "ok";  // "ok" or the reason last logged
  };
  // A link's reading, shared with AddTo().
  struct Reading {
    double receive_bytes = 0, transmit_bytes = 0;
    double speed_bits_per_second = 0;  // 0: unknown
    bool up = false;
    std::string device;
    uint64_t poll = 0;  // the target poll it came from
  };
  struct TargetShared {
    bool polled = false;
    bool ok = false;
    uint64_t poll = 0;  // polls finished
    std::chrono::steady_clock::time_point at;
    std::map<std::string, uint64_t> failures;  // reason -> polls
    uint64_t resets = 0;
  };

  void PollTarget(size_t t);
  // Fails the target's poll: counts `reason`, logs on a change of state.
  void Fail(size_t t, const std::string& reason, const std::string& message);
  Status ResolveIndexes(TargetState& target);
  static std::string ReasonOf(const Status& st);

  const std::chrono::milliseconds interval_;
  const Clock& clock_;
  std::chrono::milliseconds stale_after_;

  // Poller thread only (or PollOnce()'s caller).
  std::vector<LinkState> links_;
  std::vector<TargetState> targets_;

  std::mutex mu_;
  std::map<size_t, Reading> readings_;  // link index -> latest reading
  std::vector<TargetShared> shared_;    // per target
  std::vector<Label> scratch_;          // AddTo()'s label buffer

  BmcPoller poller_;  // last: stopped before the members its thread uses go away
};

}  // namespace suanli::agent
