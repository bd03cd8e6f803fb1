// ComputeModelTable: peak compute per hardware model, the data behind
// suanli_node_compute_capacity_flops{precision}: datasheet figures only. A model the table does
// not know has no entry here; the inventory collector then estimates a CPU's capacity from its
// ISA flags (EstimatedFlopsPerCycle(), method="estimated") and counts an unknown GPU as 0.
//
// Precisions (label values): fp64, fp32, fp16 (FP16/BF16, dense: tensor/matrix units where the
// hardware has them, never with 2:4 sparsity), int8 (dense integer operations per second). A
// precision an entry leaves out counts as 0 for that model.
//
// Entries (YAML, the same schema for the shipped table and for users' `models:` list):
//   - kind: cpu | gpu                   required
//     model: "NVIDIA H100 80GB HBM3"    the whole name, compared case-insensitively
//     match: "Xeon(R) Platinum 84"      a case-insensitive substring of the name
//     glob: "AMD EPYC 7??3*"            the whole name against * (any run) and ? (one character)
//     (at least one of model/match/glob; an entry matches when any of those given does;
//      whitespace runs compare as one space, leading and trailing blanks are ignored)
//     source: "where the numbers come from"
//   cpu only:
//     flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
//     base_frequency_hertz: 2.0e9       the all-core base frequency of this SKU (optional)
//   gpu only, per device:
//     peak_flops: {fp64: 67e12, fp32: 67e12, fp16: 989e12, int8: 1979e12}
//     pci_device_ids: [0x2330]          NVIDIA (vendor 0x10de) PCI device ids; needs `model`,
//                                       which is then the name the device is reported as
//     vendor: nvidia                    the vendor label of suanli_node_gpus
// Lookup takes the first entry that matches, in list order: users' entries first, then the
// shipped ones, so an operator's entry overrides a shipped one, and within each list the most
// specific entries come first (a SKU before its family).
//
// CPU peak = physical cores x frequency x FLOPs per cycle per core (CpuPeak()).
// GPU peak = the entry's per-device peak_flops x the device count.
//
// Thread-safety: a built table is immutable; const methods are safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace suanli::agent {

inline constexpr size_t kPrecisionCount = 4;
// Label values of `precision`, in this order everywhere (index = precision).
inline constexpr std::array<std::string_view, kPrecisionCount> kPrecisionNames = {"fp64", "fp32",
                                                                                  "fp16", "int8"};
// A value per precision; nullopt where unknown.
using PerPrecision = std::array<std::optional<double>, kPrecisionCount>;

enum class ComputeKind { kCpu, kGpu };

struct ComputeModel {
  ComputeKind kind = ComputeKind::kCpu;
  std::string model;  // exact name (case-insensitive)
  std::string match;  // substring (case-insensitive)
  std::string glob;   // whole-name pattern with * and ?
  std::string source;

  // CPU: FLOPs (int8: ops) per cycle per physical core, and the SKU's base frequency in hertz.
  PerPrecision flops_per_cycle_per_core;
  std::optional<double> base_frequency_hertz;

  // GPU: peak FLOPS (int8: ops/s) per device, the PCI device ids it is known by, its vendor.
  PerPrecision peak_flops;
  std::vector<uint16_t> pci_device_ids;
  std::string vendor;

  // True when `name` (a /proc/cpuinfo model name or an NVML device name) is this model.
  bool Matches(std::string_view name) const;
};

// The shipped table, in the YAML form above under a top-level `models:` key.
extern const char kEmbeddedComputeModels[];

class ComputeModelTable {
 public:
  ComputeModelTable() = default;
  explicit ComputeModelTable(std::vector<ComputeModel> models) : models_(std::move(models)) {}

  // Parses the list under `key` of `map` (an absent key is an empty list). Errors name file,
  // line and key ("agent.yml:14: collector_config.inventory.models[2].peak_flops.fp16: ...").
  static Result<std::vector<ComputeModel>> ParseList(ConfigMap& map, std::string_view key);
  // The shipped entries (kEmbeddedComputeModels), parsed once.
  static Result<std::vector<ComputeModel>> Shipped();
  // Users' entries from `models` of a collector's options, then the shipped ones.
  static Result<ComputeModelTable> FromOptions(ConfigMap& options);

  // First entry of that kind matching `name`; nullptr when none does.
  const ComputeModel* FindCpu(std::string_view name) const;
  const ComputeModel* FindGpu(std::string_view name) const;
  // First GPU entry listing this PCI device id (vendor 0x10de); nullptr when none does.
  const ComputeModel* FindGpuByPciDevice(uint16_t device_id) const;

  const std::vector<ComputeModel>& models() const { return models_; }

 private:
  const ComputeModel* Find(ComputeKind kind, std::string_view name) const;

  std::vector<ComputeModel> models_;
};

// True when `name` is `model` (the whole name), contains `match`, or matches `glob` (* and ?),
// case-insensitively with whitespace runs as one space; empty patterns never match. The rule of
// ComputeModel::Matches, shared with the power model table.
bool ModelNameMatches(std::string_view model, std::string_view match, std::string_view glob,
                      std::string_view name);

// FLOPs per cycle per core estimated from x86 ISA flags (/proc/cpuinfo "flags"), for a CPU the
// table does not know. fp64 and fp32 only (fp16 and int8 units differ by microarchitecture and
// are left out, counted 0). Lower bounds, per core:
//   avx512f       fp32 32, fp64 16: one 512-bit FMA unit (Xeon Silver, Bronze, many Gold 5xxx)
//                 or two 256-bit FMA pipes running it in halves (AMD Zen 4); Xeons with two
//                 512-bit units reach twice this: give them a table entry
//   avx2 and fma  fp32 32, fp64 16: two 256-bit FMA units (Haswell and later, Zen 2 and later):
//                 2 units x 8 fp32 lanes x 2 (multiply and add)
//   avx           fp32 16, fp64 8: one 256-bit add and one 256-bit multiply per cycle
//   sse2          fp32 8, fp64 4: one 128-bit add and one 128-bit multiply per cycle
// `isa` names the rule used ("avx2+fma"); empty (and nothing set) without any of these flags.
struct FlopsEstimate {
  PerPrecision flops_per_cycle_per_core;
  std::string isa;
};
FlopsEstimate EstimatedFlopsPerCycle(std::string_view cpuinfo_flags);

// Peak of `cores` physical cores at `frequency_hertz` for a CPU entry: cores x frequency x
// flops_per_cycle_per_core, per precision; nullopt where the entry lacks that precision.
PerPrecision CpuPeak(const ComputeModel& cpu, double cores, double frequency_hertz);

// The nominal frequency Intel prints in its model names ("... CPU @ 2.50GHz"), in hertz; nullopt
// when the name has none (AMD, Sapphire Rapids and later Xeons, ARM).
std::optional<double> FrequencyInModelName(std::string_view model_name);

}  // namespace suanli::agent
