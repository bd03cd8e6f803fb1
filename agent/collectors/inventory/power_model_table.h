// PowerModelTable: the idle and full-load power of CPU models, from which the inventory collector
// derives the node's CPU power model (suanli_node_cpu_power_model_{idle,max}_watts) and
// NodePower the estimated suanli_node_power_watts{source="estimated"} of a host that has no
// power meter at all (a virtual machine): P = idle + (max - idle) x CPU utilization.
//
// What it models: the power of the CPU cores the node sees, not memory, disks, fans or power
// supply losses; for a virtual machine, its share of the host's CPUs. An estimate, labelled as
// one, for hosts where nothing is measured.
//
// Entries (YAML; the same schema for the shipped table and users' `power_models:` list under
// collector_config.inventory):
//   - model / match / glob: "AMD EPYC 7763"   as compute model entries (compute_model_table.h)
//     cores: 64               physical cores per socket of the SKU (required)
//     max_watts: 280          full-load power per socket (required): the vendor's TDP
//     idle_watts: 70          idle power per socket (required, below max_watts)
//     source: "..."           where the figures come from
// A node with n physical cores of a matched model gets idle = idle_watts x n / cores and max =
// max_watts x n / cores: all cores of a bare-metal socket give the whole socket, a VM's vCPUs
// their share. Users' entries are tried first, then the shipped ones; the first match wins.
//
// A model no entry matches uses the per-core default, `power_per_core: {idle_watts, max_watts}`
// (default 1.25 W and 5 W per physical core): 5 W is about the TDP per core of current server
// CPUs (EPYC 7763 280 W / 64 = 4.4, EPYC 9654 360 W / 96 = 3.75, Xeon Platinum 8480+ 350 W / 56
// = 6.25, Xeon Platinum 8380 270 W / 40 = 6.75, Xeon Gold 6338 205 W / 32 = 6.4).
//
// Idle figures: vendors publish none. The shipped entries and the default take idle as 25% of
// TDP, Suanli's assumption (a server CPU package with its idle states enabled draws about a
// fifth to a third of TDP with nothing to run); give measured figures in `power_models` where
// they are known.
//
// Thread-safety: a built table is immutable; const methods are safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace suanli::agent {

struct PowerModel {
  std::string model, match, glob;  // as ComputeModel's
  std::string source;
  double cores = 0;       // physical cores per socket of the SKU
  double idle_watts = 0;  // per socket
  double max_watts = 0;   // per socket

  bool Matches(std::string_view name) const;
};

// Watts per physical core for CPU models no entry matches.
struct PerCorePower {
  double idle_watts = 1.25;
  double max_watts = 5;
};

// The shipped entries, in the YAML form above under a top-level `power_models:` key.
extern const char kEmbeddedPowerModels[];

class PowerModelTable {
 public:
  // The shipped entries and the default per-core figures.
  PowerModelTable();
  PowerModelTable(std::vector<PowerModel> models, PerCorePower per_core)
      : models_(std::move(models)), per_core_(per_core) {}

  // Users' `power_models` and `power_per_core` from a collector's options, then the shipped
  // entries. Errors name file, line and key.
  static Result<PowerModelTable> FromOptions(ConfigMap& options);
  static Result<std::vector<PowerModel>> ParseList(ConfigMap& map, std::string_view key);
  // The shipped entries (kEmbeddedPowerModels), parsed once.
  static Result<std::vector<PowerModel>> Shipped();

  // First entry matching `name`; nullptr when none does.
  const PowerModel* Find(std::string_view name) const;
  const PerCorePower& per_core() const { return per_core_; }
  const std::vector<PowerModel>& models() const { return models_; }

 private:
  std::vector<PowerModel> models_;
  PerCorePower per_core_;
};

}  // namespace suanli::agent
