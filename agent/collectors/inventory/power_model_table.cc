#include "agent/collectors/inventory/power_model_table.h"

#include <utility>

#include "agent/collectors/inventory/compute_model_table.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

// max_watts: the vendor's TDP (thermal design power) per socket, from the SKU's public
// specification; cores: the SKU's physical cores. idle_watts: 25% of TDP, Suanli's assumption
// (power_model_table.h), not a vendor figure.
const char kEmbeddedPowerModels[] = R"yaml(
power_models:
  - match: "AMD EPYC 7763"
    cores: 64
    max_watts: 280
    idle_watts: 70
    source: "AMD EPYC 7763 specification: 64 cores, default TDP 280 W; idle 25% of TDP (assumed)"
  - match: "AMD EPYC 7713"
    cores: 64
    max_watts: 225
    idle_watts: 56.25
    source: "AMD EPYC 7713 specification: 64 cores, default TDP 225 W; idle 25% of TDP (assumed)"
  - match: "AMD EPYC 9654"
    cores: 96
    max_watts: 360
    idle_watts: 90
    source: "AMD EPYC 9654 specification: 96 cores, default TDP 360 W; idle 25% of TDP (assumed)"
  - match: "Xeon(R) Platinum 8480+"
    cores: 56
    max_watts: 350
    idle_watts: 87.5
    source: "Intel Xeon Platinum 8480+ specification: 56 cores, TDP 350 W; idle 25% of TDP (assumed)"
  - match: "Xeon(R) Platinum 8380"
    cores: 40
    max_watts: 270
    idle_watts: 67.5
    source: "Intel Xeon Platinum 8380 specification: 40 cores, TDP 270 W; idle 25% of TDP (assumed)"
  - match: "Xeon(R) Gold 6338"
    cores: 32
    max_watts: 205
    idle_watts: 51.25
    source: "Intel Xeon Gold 6338 specification: 32 cores, TDP 205 W; idle 25% of TDP (assumed)"
)yaml";

namespace {

Status ReadPositive(ConfigMap& e, std::string_view key, double* out) {
  if (!e.Has(key)) return e.Error(key, "required");
  RETURN_IF_ERROR(e.Get(key, out));
  if (!(*out > 0)) return e.Error(key, "must be a positive number");
  return Status::Ok();
}

Result<PowerModel> ParseEntry(ConfigMap& e) {
  PowerModel m;
  RETURN_IF_ERROR(e.Get("model", &m.model));
  RETURN_IF_ERROR(e.Get("match", &m.match));
  RETURN_IF_ERROR(e.Get("glob", &m.glob));
  RETURN_IF_ERROR(e.Get("source", &m.source));
  if (TrimBlanks(m.model).empty() && TrimBlanks(m.match).empty() && TrimBlanks(m.glob).empty()) {
    return e.Error("", "needs model (the exact name), match (a substring) or glob");
  }
  RETURN_IF_ERROR(ReadPositive(e, "cores", &m.cores));
  RETURN_IF_ERROR(ReadPositive(e, "max_watts", &m.max_watts));
  if (!e.Has("idle_watts")) return e.Error("idle_watts", "required");
  RETURN_IF_ERROR(e.Get("idle_watts", &m.idle_watts));
  if (!(m.idle_watts >= 0) || !(m.idle_watts < m.max_watts)) {
    return e.Error("idle_watts", "must be at least 0 and below max_watts");
  }
  RETURN_IF_ERROR(e.Finish());
  return m;
}

}  // namespace

bool PowerModel::Matches(std::string_view name) const {
  return ModelNameMatches(model, match, glob, name);
}

PowerModelTable::PowerModelTable() {
  auto shipped = Shipped();
  if (shipped.ok()) models_ = *shipped;  // a unit test keeps the shipped text parsing
}

Result<std::vector<PowerModel>> PowerModelTable::ParseList(ConfigMap& map, std::string_view key) {
  ASSIGN_OR_RETURN(std::vector<ConfigMap> entries, map.List(key));
  std::vector<PowerModel> out;
  out.reserve(entries.size());
  for (ConfigMap& e : entries) {
    ASSIGN_OR_RETURN(PowerModel m, ParseEntry(e));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<PowerModel>> PowerModelTable::Shipped() {
  static const Result<std::vector<PowerModel>> kShipped = []() -> Result<std::vector<PowerModel>> {
    ASSIGN_OR_RETURN(ConfigMap root,
                     ConfigMap::Parse("<embedded power models>", kEmbeddedPowerModels));
    ASSIGN_OR_RETURN(std::vector<PowerModel> models, ParseList(root, "power_models"));
    RETURN_IF_ERROR(root.Finish());
    return models;
  }();
  return kShipped;
}

Result<PowerModelTable> PowerModelTable::FromOptions(ConfigMap& options) {
  ASSIGN_OR_RETURN(std::vector<PowerModel> models, ParseList(options, "power_models"));
  ASSIGN_OR_RETURN(std::vector<PowerModel> shipped, Shipped());
  models.insert(models.end(), std::make_move_iterator(shipped.begin()),
                std::make_move_iterator(shipped.end()));
  PerCorePower per_core;
  if (options.Has("power_per_core")) {
    ASSIGN_OR_RETURN(ConfigMap pc, options.Map("power_per_core"));
    RETURN_IF_ERROR(pc.Get("idle_watts", &per_core.idle_watts));
    RETURN_IF_ERROR(pc.Get("max_watts", &per_core.max_watts));
    if (!(per_core.max_watts > 0)) return pc.Error("max_watts", "must be a positive number");
    if (!(per_core.idle_watts >= 0) || !(per_core.idle_watts < per_core.max_watts)) {
      return pc.Error("idle_watts", "must be at least 0 and below max_watts");
    }
    RETURN_IF_ERROR(pc.Finish());
  }
  return PowerModelTable(std::move(models), per_core);
}

const PowerModel* PowerModelTable::Find(std::string_view name) const {
  for (const PowerModel& m : models_) {
    if (m.Matches(name)) return &m;
  }
  return nullptr;
}

}  // namespace suanli::agent
