#include "agent/collectors/inventory/compute_model_table.h"

#include <charconv>
#include <cmath>
#include <utility>

namespace suanli::agent {

// Every figure comes from the vendor's public datasheet or specification named in `source`;
// a model or precision that could not be confirmed is left out (capacity 0, never a guess).
// GPU conventions: fp16 and int8 are the dense Tensor Core figures (NVIDIA's datasheets print
// the 2:4-sparse figure, twice as high, with a footnote); fp64 is the FP64 Tensor Core figure
// where the GPU has one (what DGEMM/HPL reaches), else the FP64 vector figure.
const char kEmbeddedComputeModels[] = R"yaml(
models:
  # ---- NVIDIA GPUs: model = the name NVML reports; pci_device_ids from NVIDIA's open GPU
  # kernel modules README (supported-GPU table) and the PCI ID database.
  - kind: gpu
    model: "NVIDIA H100 80GB HBM3"
    pci_device_ids: [0x2330]
    vendor: nvidia
    peak_flops: {fp64: 67e12, fp32: 67e12, fp16: 989e12, int8: 1979e12}
    source: "NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column"
  - kind: gpu
    model: "NVIDIA H100 PCIe"
    pci_device_ids: [0x2331]
    vendor: nvidia
    peak_flops: {fp64: 51e12, fp32: 51e12, fp16: 756e12, int8: 1513e12}
    source: "NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe column"
  - kind: gpu
    model: "NVIDIA H200"
    pci_device_ids: [0x2335]
    vendor: nvidia
    peak_flops: {fp64: 67e12, fp32: 67e12, fp16: 989e12, int8: 1979e12}
    source: "NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (same compute as H100 SXM)"
  - kind: gpu
    model: "NVIDIA H800"
    pci_device_ids: [0x2324]
    vendor: nvidia
    peak_flops: {fp32: 67e12, fp16: 989e12, int8: 1979e12}
    source: "NVIDIA H800 SXM5: H100 SXM compute, cut FP64 and NVLink; FP64 left out (unconfirmed)"
  - kind: gpu
    model: "NVIDIA H20"
    pci_device_ids: [0x2329]
    vendor: nvidia
    peak_flops: {fp32: 44e12, fp16: 148e12, int8: 296e12}
    source: "NVIDIA H20 specifications published by NVIDIA partners; FP64 left out (unconfirmed)"
  - kind: gpu
    model: "NVIDIA A100-SXM4-80GB"
    pci_device_ids: [0x20b2]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A100 Tensor Core GPU datasheet, A100 80GB SXM column"
  - kind: gpu
    model: "NVIDIA A100-SXM4-40GB"
    pci_device_ids: [0x20b0]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A100 Tensor Core GPU datasheet (40GB SXM)"
  - kind: gpu
    model: "NVIDIA A100 80GB PCIe"
    pci_device_ids: [0x20b5]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A100 Tensor Core GPU datasheet, A100 80GB PCIe column"
  - kind: gpu
    model: "NVIDIA A100-PCIE-40GB"
    pci_device_ids: [0x20f1]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A100 Tensor Core GPU datasheet (40GB PCIe)"
  - kind: gpu
    model: "NVIDIA A800-SXM4-80GB"
    pci_device_ids: [0x20f3]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A800 (A100 with reduced NVLink): A100 datasheet figures"
  - kind: gpu
    model: "NVIDIA A800-SXM4-40GB"
    pci_device_ids: [0x20bd]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A800 (A100 with reduced NVLink): A100 datasheet figures"
  - kind: gpu
    model: "NVIDIA A800 80GB PCIe"
    pci_device_ids: [0x20f5]
    vendor: nvidia
    peak_flops: {fp64: 19.5e12, fp32: 19.5e12, fp16: 312e12, int8: 624e12}
    source: "NVIDIA A800 (A100 with reduced NVLink): A100 datasheet figures"
  - kind: gpu
    model: "NVIDIA L40S"
    pci_device_ids: [0x26b9]
    vendor: nvidia
    peak_flops: {fp32: 91.6e12, fp16: 362.05e12, int8: 733e12}
    source: "NVIDIA L40S datasheet"
  - kind: gpu
    model: "NVIDIA L40"
    pci_device_ids: [0x26b5]
    vendor: nvidia
    peak_flops: {fp32: 90.5e12, fp16: 181.05e12, int8: 362e12}
    source: "NVIDIA L40 datasheet"
  - kind: gpu
    model: "NVIDIA A40"
    pci_device_ids: [0x2235]
    vendor: nvidia
    peak_flops: {fp32: 37.4e12, fp16: 149.7e12, int8: 299.3e12}
    source: "NVIDIA A40 datasheet"
  - kind: gpu
    model: "NVIDIA A10"
    pci_device_ids: [0x2236]
    vendor: nvidia
    peak_flops: {fp32: 31.2e12, fp16: 125e12, int8: 250e12}
    source: "NVIDIA A10 Tensor Core GPU datasheet"
  - kind: gpu
    model: "Tesla T4"
    pci_device_ids: [0x1eb8]
    vendor: nvidia
    peak_flops: {fp32: 8.1e12, fp16: 65e12, int8: 130e12}
    source: "NVIDIA T4 Tensor Core GPU datasheet (fp16: mixed-precision FP16/FP32)"
  - kind: gpu
    model: "Tesla V100-SXM2-16GB"
    pci_device_ids: [0x1db1]
    vendor: nvidia
    peak_flops: {fp64: 7.8e12, fp32: 15.7e12, fp16: 125e12}
    source: "NVIDIA Tesla V100 datasheet, V100 SXM2 column (fp16: Tensor performance)"
  - kind: gpu
    model: "Tesla V100-SXM2-32GB"
    pci_device_ids: [0x1db5]
    vendor: nvidia
    peak_flops: {fp64: 7.8e12, fp32: 15.7e12, fp16: 125e12}
    source: "NVIDIA Tesla V100 datasheet, V100 SXM2 column (fp16: Tensor performance)"
  - kind: gpu
    model: "Tesla V100-PCIE-16GB"
    pci_device_ids: [0x1db4]
    vendor: nvidia
    peak_flops: {fp64: 7e12, fp32: 14e12, fp16: 112e12}
    source: "NVIDIA Tesla V100 datasheet, V100 PCIe column (fp16: Tensor performance)"
  - kind: gpu
    model: "Tesla V100-PCIE-32GB"
    pci_device_ids: [0x1db6]
    vendor: nvidia
    peak_flops: {fp64: 7e12, fp32: 14e12, fp16: 112e12}
    source: "NVIDIA Tesla V100 datasheet, V100 PCIe column (fp16: Tensor performance)"

  # ---- Intel Xeon Scalable. Every Platinum and Gold 6xxx part has AVX-512 with two FMA units
  # per core: fp64 32 and fp32 64 FLOP/cycle/core. 4th and 5th gen add AMX: 1024 BF16 FLOP and
  # 2048 INT8 ops per cycle per core. Cascade Lake and Ice Lake names carry the base frequency
  # ("@ 2.50GHz"); later ones do not, hence per-SKU entries with base_frequency_hertz.
  - kind: cpu
    match: "Xeon(R) Platinum 8480+"
    base_frequency_hertz: 2.0e9
    flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
    source: "Intel Xeon Platinum 8480+ specification (56 cores, 2.0 GHz base); Intel AMX rates"
  - kind: cpu
    match: "Xeon(R) Platinum 84"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
    source: "4th gen Xeon Scalable (Sapphire Rapids): AVX-512 2 FMA units; Intel AMX rates"
  - kind: cpu
    match: "Xeon(R) Gold 64"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
    source: "4th gen Xeon Scalable (Sapphire Rapids): AVX-512 2 FMA units; Intel AMX rates"
  - kind: cpu
    match: "Xeon(R) Platinum 85"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
    source: "5th gen Xeon Scalable (Emerald Rapids): AVX-512 2 FMA units; Intel AMX rates"
  - kind: cpu
    match: "Xeon(R) Gold 65"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64, fp16: 1024, int8: 2048}
    source: "5th gen Xeon Scalable (Emerald Rapids): AVX-512 2 FMA units; Intel AMX rates"
  - kind: cpu
    match: "Xeon(R) Platinum 83"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "3rd gen Xeon Scalable (Ice Lake): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Gold 63"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "3rd gen Xeon Scalable (Ice Lake): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Platinum 82"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "2nd gen Xeon Scalable (Cascade Lake): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Platinum 92"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "2nd gen Xeon Scalable (Cascade Lake-AP): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Gold 62"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "2nd gen Xeon Scalable (Cascade Lake): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Platinum 81"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "1st gen Xeon Scalable (Skylake-SP): AVX-512 2 FMA units"
  - kind: cpu
    match: "Xeon(R) Gold 61"
    flops_per_cycle_per_core: {fp64: 32, fp32: 64}
    source: "1st gen Xeon Scalable (Skylake-SP): AVX-512 2 FMA units"

  # ---- AMD EPYC. Zen 2, Zen 3 and Zen 4 cores have two 256-bit FMA pipes (Zen 4 runs AVX-512
  # on them in two halves): fp64 16 and fp32 32 FLOP/cycle/core. The names carry no frequency;
  # base frequencies of the 3rd gen (Milan) SKUs are from AMD's launch specifications.
  - kind: cpu
    match: "AMD EPYC 7763"
    base_frequency_hertz: 2.45e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7763: 64 cores, 2.45 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7713"
    base_frequency_hertz: 2.0e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7713/7713P: 64 cores, 2.0 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7643"
    base_frequency_hertz: 2.3e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7643: 48 cores, 2.3 GHz base)"
  - kind: cpu
    match: "AMD EPYC 75F3"
    base_frequency_hertz: 2.95e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (75F3: 32 cores, 2.95 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7543"
    base_frequency_hertz: 2.8e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7543/7543P: 32 cores, 2.8 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7513"
    base_frequency_hertz: 2.6e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7513: 32 cores, 2.6 GHz base)"
  - kind: cpu
    match: "AMD EPYC 74F3"
    base_frequency_hertz: 3.2e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (74F3: 24 cores, 3.2 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7443"
    base_frequency_hertz: 2.85e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7443/7443P: 24 cores, 2.85 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7413"
    base_frequency_hertz: 2.65e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7413: 24 cores, 2.65 GHz base)"
  - kind: cpu
    match: "AMD EPYC 73F3"
    base_frequency_hertz: 3.5e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (73F3: 16 cores, 3.5 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7343"
    base_frequency_hertz: 3.2e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7343: 16 cores, 3.2 GHz base)"
  - kind: cpu
    match: "AMD EPYC 7313"
    base_frequency_hertz: 3.0e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (7313/7313P: 16 cores, 3.0 GHz base)"
  - kind: cpu
    match: "AMD EPYC 72F3"
    base_frequency_hertz: 3.7e9
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "AMD EPYC 7003 series specifications (72F3: 8 cores, 3.7 GHz base)"
  - kind: cpu
    glob: "AMD EPYC 7??3*"
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "3rd gen EPYC (Milan, Zen 3): 2x256-bit FMA per core"
  - kind: cpu
    glob: "AMD EPYC 7??2*"
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "2nd gen EPYC (Rome, Zen 2): 2x256-bit FMA per core"
  - kind: cpu
    glob: "AMD EPYC 9??4*"
    flops_per_cycle_per_core: {fp64: 16, fp32: 32}
    source: "4th gen EPYC (Genoa, Zen 4): AVX-512 on 2x256-bit FMA pipes per core"

  # ---- Hygon C86 7100/7200 (Dhyana: AMD Zen 1 cores, two 128-bit FMA pipes): fp64 8, fp32 16.
  - kind: cpu
    match: "Hygon C86 71"
    flops_per_cycle_per_core: {fp64: 8, fp32: 16}
    source: "Hygon Dhyana = AMD Zen 1 microarchitecture: 2x128-bit FMA per core"
  - kind: cpu
    match: "Hygon C86 72"
    flops_per_cycle_per_core: {fp64: 8, fp32: 16}
    source: "Hygon Dhyana = AMD Zen 1 microarchitecture: 2x128-bit FMA per core"

  # ---- HiSilicon Kunpeng 920 (TaiShan v110): one 128-bit NEON unit, one FP64 vector FMA per
  # cycle (512 GFLOPS at 64 cores x 2 GHz): fp64 4. fp32 left out (not confirmed). ARM cpuinfo
  # has no model name: the collector names it "<implementer> <part>" as lscpu does.
  - kind: cpu
    model: "HiSilicon Kunpeng-920"
    flops_per_cycle_per_core: {fp64: 4}
    source: "WikiChip, HiSilicon TaiShan v110 microarchitecture (ASIMD section)"
)yaml";

namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Lower-cased, leading/trailing blanks dropped, inner blank runs as one space: cpuinfo pads
// some names ("Intel(R) Xeon(R) CPU           E5-2680 v4") and users type one space.
std::string Normalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += Lower(c);
  }
  return out;
}

// Whole-string match with * (any run, possibly empty) and ? (one character); both normalized.
bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Reads {fp64: N, fp32: N, fp16: N, int8: N} under `key`; every value given must be > 0.
Result<PerPrecision> ParsePrecisions(ConfigMap& entry, std::string_view key) {
  PerPrecision out;
  if (!entry.Has(key)) return out;
  ASSIGN_OR_RETURN(ConfigMap map, entry.Map(key));
  for (const std::string& k : map.Keys()) {
    bool known = false;
    for (std::string_view name : kPrecisionNames) known = known || k == name;
    if (!known) {
      return map.Error(k, "unknown precision: use fp64, fp32, fp16 (FP16/BF16) or int8");
    }
  }
  for (size_t i = 0; i < kPrecisionCount; ++i) {
    std::string_view name = kPrecisionNames[i];
    if (!map.Has(name)) continue;
    double v = 0;
    RETURN_IF_ERROR(map.Get(name, &v));
    if (!(v > 0)) return map.Error(name, "must be a positive number");
    out[i] = v;
  }
  return out;
}

bool AnySet(const PerPrecision& p) {
  for (const auto& v : p) {
    if (v) return true;
  }
  return false;
}

// "0x2330" or "2330" (hex) -> 0x2330.
std::optional<uint16_t> ParsePciId(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty() || s.size() > 4) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return static_cast<uint16_t>(v);
}

Result<ComputeModel> ParseEntry(ConfigMap& e) {
  ComputeModel m;
  std::string kind;
  RETURN_IF_ERROR(e.Get("kind", &kind));
  if (kind == "cpu") {
    m.kind = ComputeKind::kCpu;
  } else if (kind == "gpu") {
    m.kind = ComputeKind::kGpu;
  } else {
    return e.Error("kind",
                   kind.empty() ? "required: cpu or gpu" : "\"" + kind + "\" is not cpu or gpu");
  }
  RETURN_IF_ERROR(e.Get("model", &m.model));
  RETURN_IF_ERROR(e.Get("match", &m.match));
  RETURN_IF_ERROR(e.Get("glob", &m.glob));
  RETURN_IF_ERROR(e.Get("source", &m.source));
  if (Normalize(m.model).empty() && Normalize(m.match).empty() && Normalize(m.glob).empty()) {
    return e.Error("", "needs model (the exact name), match (a substring) or glob");
  }

  const char* other = m.kind == ComputeKind::kCpu ? "gpu" : "cpu";
  auto only_for_other = [&](std::string_view key) {
    return e.Error(key, std::string("only for kind: ") + other);
  };
  if (m.kind == ComputeKind::kCpu) {
    for (std::string_view key : {"peak_flops", "pci_device_ids", "vendor"}) {
      if (e.Has(key)) return only_for_other(key);
    }
    ASSIGN_OR_RETURN(m.flops_per_cycle_per_core, ParsePrecisions(e, "flops_per_cycle_per_core"));
    if (!AnySet(m.flops_per_cycle_per_core)) {
      return e.Error("flops_per_cycle_per_core",
                     "required for kind: cpu (FLOPs per cycle per core for fp64, fp32, fp16 "
                     "and/or int8)");
    }
    if (e.Has("base_frequency_hertz")) {
      double hz = 0;
      RETURN_IF_ERROR(e.Get("base_frequency_hertz", &hz));
      if (!(hz > 0)) return e.Error("base_frequency_hertz", "must be a positive number of hertz");
      m.base_frequency_hertz = hz;
    }
  } else {
    for (std::string_view key : {"flops_per_cycle_per_core", "base_frequency_hertz"}) {
      if (e.Has(key)) return only_for_other(key);
    }
    ASSIGN_OR_RETURN(m.peak_flops, ParsePrecisions(e, "peak_flops"));
    if (!AnySet(m.peak_flops)) {
      return e.Error("peak_flops",
                     "required for kind: gpu (peak per device for fp64, fp32, fp16 and/or int8)");
    }
    std::vector<std::string> ids;
    RETURN_IF_ERROR(e.Get("pci_device_ids", &ids));
    for (const std::string& id : ids) {
      std::optional<uint16_t> v = ParsePciId(id);
      if (!v) {
        return e.Error("pci_device_ids", "\"" + id + "\" is not a PCI device id such as 0x2330");
      }
      m.pci_device_ids.push_back(*v);
    }
    if (!m.pci_device_ids.empty() && Normalize(m.model).empty()) {
      return e.Error("pci_device_ids", "needs model: the name to report these devices as");
    }
    RETURN_IF_ERROR(e.Get("vendor", &m.vendor));
  }
  RETURN_IF_ERROR(e.Finish());
  return m;
}

}  // namespace

bool ModelNameMatches(std::string_view model, std::string_view match, std::string_view glob,
                      std::string_view name) {
  std::string n = Normalize(name);
  if (!model.empty()) {
    std::string m = Normalize(model);
    if (!m.empty() && n == m) return true;
  }
  if (!match.empty()) {
    std::string m = Normalize(match);
    if (!m.empty() && n.find(m) != std::string::npos) return true;
  }
  if (!glob.empty() && GlobMatch(Normalize(glob), n)) return true;
  return false;
}

bool ComputeModel::Matches(std::string_view name) const {
  return ModelNameMatches(model, match, glob, name);
}

FlopsEstimate EstimatedFlopsPerCycle(std::string_view flags) {
  bool avx512f = false, avx2 = false, fma = false, avx = false, sse2 = false;
  while (!flags.empty()) {
    size_t end = flags.find_first_of(" \t");
    std::string_view flag = flags.substr(0, end);
    flags = end == std::string_view::npos ? std::string_view{} : flags.substr(end + 1);
    avx512f = avx512f || flag == "avx512f";
    avx2 = avx2 || flag == "avx2";
    fma = fma || flag == "fma";
    avx = avx || flag == "avx";
    sse2 = sse2 || flag == "sse2";
  }
  FlopsEstimate e;
  auto set = [&](const char* isa, double fp64, double fp32) {
    e.isa = isa;
    e.flops_per_cycle_per_core[0] = fp64;
    e.flops_per_cycle_per_core[1] = fp32;
  };
  if (avx512f) {
    set("avx512f", 16, 32);
  } else if (avx2 && fma) {
    set("avx2+fma", 16, 32);
  } else if (avx) {
    set("avx", 8, 16);
  } else if (sse2) {
    set("sse2", 4, 8);
  }
  return e;
}

Result<std::vector<ComputeModel>> ComputeModelTable::ParseList(ConfigMap& map,
                                                               std::string_view key) {
  ASSIGN_OR_RETURN(std::vector<ConfigMap> entries, map.List(key));
  std::vector<ComputeModel> out;
  out.reserve(entries.size());
  for (ConfigMap& e : entries) {
    ASSIGN_OR_RETURN(ComputeModel m, ParseEntry(e));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<ComputeModel>> ComputeModelTable::Shipped() {
  // Parsed once: the text is a constant (a test keeps it parsing).
  static const Result<std::vector<ComputeModel>> kShipped =
      []() -> Result<std::vector<ComputeModel>> {
    ASSIGN_OR_RETURN(ConfigMap root,
                     ConfigMap::Parse("<embedded compute models>", kEmbeddedComputeModels));
    ASSIGN_OR_RETURN(std::vector<ComputeModel> models, ParseList(root, "models"));
    RETURN_IF_ERROR(root.Finish());
    return models;
  }();
  return kShipped;
}

Result<ComputeModelTable> ComputeModelTable::FromOptions(ConfigMap& options) {
  ASSIGN_OR_RETURN(std::vector<ComputeModel> models, ParseList(options, "models"));
  ASSIGN_OR_RETURN(std::vector<ComputeModel> shipped, Shipped());
  models.insert(models.end(), std::make_move_iterator(shipped.begin()),
                std::make_move_iterator(shipped.end()));
  return ComputeModelTable(std::move(models));
}

const ComputeModel* ComputeModelTable::Find(ComputeKind kind, std::string_view name) const {
  for (const ComputeModel& m : models_) {
    if (m.kind == kind && m.Matches(name)) return &m;
  }
  return nullptr;
}

const ComputeModel* ComputeModelTable::FindCpu(std::string_view name) const {
  return Find(ComputeKind::kCpu, name);
}

const ComputeModel* ComputeModelTable::FindGpu(std::string_view name) const {
  return Find(ComputeKind::kGpu, name);
}

const ComputeModel* ComputeModelTable::FindGpuByPciDevice(uint16_t device_id) const {
  for (const ComputeModel& m : models_) {
    if (m.kind != ComputeKind::kGpu) continue;
    for (uint16_t id : m.pci_device_ids) {
      if (id == device_id) return &m;
    }
  }
  return nullptr;
}

PerPrecision CpuPeak(const ComputeModel& cpu, double cores, double frequency_hertz) {
  PerPrecision out;
  for (size_t i = 0; i < kPrecisionCount; ++i) {
    if (cpu.flops_per_cycle_per_core[i]) {
      out[i] = cores * frequency_hertz * *cpu.flops_per_cycle_per_core[i];
    }
  }
  return out;
}

std::optional<double> FrequencyInModelName(std::string_view name) {
  size_t at = name.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = name.substr(at + 1);
  while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
  while (!rest.empty() && IsSpace(rest.back())) rest.remove_suffix(1);
  size_t i = 0;
  while (i < rest.size() && ((rest[i] >= '0' && rest[i] <= '9') || rest[i] == '.')) ++i;
  double v = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + i, v);
  if (i == 0 || ec != std::errc() || p != rest.data() + i || !(v > 0)) return std::nullopt;
  std::string unit = Normalize(rest.substr(i));
  if (unit == "ghz") return v * 1e9;
  if (unit == "mhz") return v * 1e6;
  return std::nullopt;
}

}  // namespace suanli::agent
