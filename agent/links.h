// Links: the inter-dc links ("sharing passage") this server terminates, declared in the agent's
// configuration, exported as suanli_link_* so that the aggregator can compute link utilization.
// A link on a local NIC is derived from the sweep's node_network_* families (the netdev and
// netclass collectors), so a NIC is read once per sweep whatever it is used for. A link that
// ends on a router (an `snmp:` section instead of `device`) is read from the router's IF-MIB by
// a poller thread (agent/collectors/network/snmp_links.h) and copied into each sweep.
// Thread-safety: Derive() from the sampling thread only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/network/snmp_links.h"
#include "core/config.h"

namespace suanli::agent {

struct LinkSpec {
  std::string device;   // the NIC carrying the link, e.g. "eth1" or "bond0.100"
  std::string name;     // the link's name, the same on both ends, e.g. "gansu-beijing-1"
  std::string peer_dc;  // the data center at the other end
  double capacity_bits_per_second = 0;  // provisioned capacity (router links: 0 = ifHighSpeed)
  std::optional<SnmpLinkOptions> snmp;  // set (and device empty) for a router's interface
};

// Reads the `links:` list; capacity accepts a number of bits/s or a suffix (10G, 400M, 1.6T).
// An entry has a device or an snmp section, not both; capacity is optional with snmp.
Result<std::vector<LinkSpec>> ParseLinks(ConfigMap& root);

// Parses "100G" (bits/s, SI): K, M, G, T suffixes, optional "bps".
Result<double> ParseBitsPerSecond(const std::string& text);

class Links {
 public:
  // `snmp_interval`: how often routers are polled (the sample interval, at least 5s: a router's
  // SNMP agent is slow, and many refresh their counters every few seconds only).
  explicit Links(std::vector<LinkSpec> specs,
                 std::chrono::milliseconds snmp_interval = std::chrono::seconds(15));
  // Adds suanli_link_{receive,transmit}_bytes_total{link,peer_dc,device},
  // suanli_link_capacity_bits_per_second{link,peer_dc} and suanli_link_up{link,peer_dc}, and
  // for router links the same with source="snmp:TARGET" from the latest poll (the first call
  // starts the poller). Returns the devices declared but absent from the sweep (for a warning).
  std::vector<std::string> Derive(Sweep& sweep);

 private:
  std::vector<LinkSpec> specs_;              // links on a local NIC
  std::unique_ptr<SnmpLinkPoller> routers_;  // links on a router; null when there are none
};

}  // namespace suanli::agent
