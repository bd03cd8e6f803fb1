// The one explicit list of the agent's collectors. Each entry names a collector (its
// --collector.NAME / --no-collector.NAME flag), says whether it runs by default, describes it for
// --help, and makes an instance for a host. Nothing registers itself: to add a collector, add a
// line to AllCollectors() in registry.cc.
// Thread-safety: AllCollectors() is safe from any thread (a constant list); what `make` returns
// follows Collector's contract.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/collector.h"

namespace suanli::agent {

struct CollectorSpec {
  std::string name;  // [a-z0-9_]+, as node_exporter's collector names
  bool enabled_by_default = true;
  std::string help;  // one line for --help
  // Builds the collector from its context; a configuration error names file, line and key.
  std::function<Result<std::unique_ptr<Collector>>(CollectorContext&)> make;
  // True for collectors whose reads can stall (a BMC, a stuck I2C sensor, a GPU driver): the
  // sampler runs them on their own thread with a deadline so that they never delay a sweep.
  bool may_block = false;
};

// Every collector, in the order they run in a sweep.
const std::vector<CollectorSpec>& AllCollectors();

}  // namespace suanli::agent
