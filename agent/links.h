// Links: the inter-dc links ("sharing passage") this server terminates, declared in the agent's
// configuration, exported as suanli_link_* so that the aggregator can compute link utilization.
// Derived from the sweep's node_network_* families (the netdev and netclass collectors), so a
// NIC is read once per sweep whatever it is used for.
// Thread-safety: Derive() from the sampling thread only.
#pragma once

#include <string>
#include <vector>

#include "agent/collector.h"
#include "core/config.h"

namespace suanli::agent {

struct LinkSpec {
  std::string device;   // the NIC carrying the link, e.g. "eth1" or "bond0.100"
  std::string name;     // the link's name, the same on both ends, e.g. "gansu-beijing-1"
  std::string peer_dc;  // the data center at the other end
  double capacity_bits_per_second = 0;  // provisioned capacity
};

// Reads the `links:` list; capacity accepts a number of bits/s or a suffix (10G, 400M, 1.6T).
Result<std::vector<LinkSpec>> ParseLinks(ConfigMap& root);

// Parses "100G" (bits/s, SI): K, M, G, T suffixes, optional "bps".
Result<double> ParseBitsPerSecond(const std::string& text);

class Links {
 public:
  explicit Links(std::vector<LinkSpec> specs) : specs_(std::move(specs)) {}
  // Adds suanli_link_{receive,transmit}_bytes_total{link,peer_dc,device},
  // suanli_link_capacity_bits_per_second{link,peer_dc} and suanli_link_up{link,peer_dc}.
  // Returns the devices declared but absent from the sweep (for a warning).
  std::vector<std::string> Derive(Sweep& sweep) const;

 private:
  std::vector<LinkSpec> specs_;
};

}  // namespace suanli::agent
