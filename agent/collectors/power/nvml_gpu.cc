#include "agent/collectors/power/nvml_gpu.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace suanli::agent {

namespace {

// NVML's C ABI as nvml.h documents it, declared here because no NVIDIA header is installed where
// the agent is built. Every entry point used has existed since driver R450 (2020).
using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total;  // bytes
  unsigned long long free;
  unsigned long long used;
};
// nvmlMemory_v2_t (R510+): "used" no longer counts what the driver and firmware set aside, which
// is "reserved"; this is what nvidia-smi shows as Used and Reserved.
struct nvmlMemoryV2_t {
  unsigned int version;
  unsigned long long total;  // bytes
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};
// NVML_STRUCT_VERSION(Memory, 2): the struct's size with the version in the top byte.
constexpr unsigned int kNvmlMemoryV2 = sizeof(nvmlMemoryV2_t) | (2u << 24);
struct nvmlUtilization_t {
  unsigned int gpu;  // percent
  unsigned int memory;
};

constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorNotSupported = 3;
constexpr nvmlReturn_t kNvmlErrorNoPermission = 4;
constexpr nvmlReturn_t kNvmlErrorNotFound = 6;
constexpr nvmlReturn_t kNvmlErrorDriverNotLoaded = 9;
constexpr nvmlReturn_t kNvmlErrorLibraryNotFound = 12;
constexpr nvmlReturn_t kNvmlErrorFunctionNotFound = 13;
constexpr nvmlReturn_t kNvmlErrorGpuIsLost = 15;
constexpr nvmlReturn_t kNvmlErrorArgumentVersionMismatch = 25;
constexpr unsigned int kNvmlDeviceMigEnable = 1;
// nvmlDeviceGetMigMode took 0.5 ms of CPU per call on an H200, and the mode changes only with a
// GPU reset, so it is read again at most this often: instances show within a minute of it.
constexpr std::chrono::seconds kMigModeRecheck{60};
// The v2 buffer sizes (NVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_DEVICE_UUID_V2_BUFFER_SIZE) are the
// largest any NVML asks for; NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE is 80.
constexpr unsigned int kNameBufferSize = 96;
constexpr unsigned int kUuidBufferSize = 96;
constexpr unsigned int kDriverVersionBufferSize = 80;

// Calls an optional entry point; one the library lacks reads as NVML's FUNCTION_NOT_FOUND.
template <typename... P, typename... A>
nvmlReturn_t Call(nvmlReturn_t (*fn)(P...), A... args) {
  return fn == nullptr ? kNvmlErrorFunctionNotFound : fn(args...);
}

std::string StringFrom(const char* buf, size_t size) {
  return std::string(buf, ::strnlen(buf, size));
}

void AddLabel(std::vector<Label>& labels, std::string_view name, const std::string& value) {
  if (!value.empty()) labels.push_back({std::string(name), value});
}

}  // namespace

struct NvmlGpuCollector::Nvml {
  struct Device {
    unsigned int index = 0;
    nvmlDevice_t handle = nullptr;
    std::string uuid;
    std::string model;
    // The last energy reading and when it was taken (energy_interval).
    std::optional<double> energy_joules;
    std::chrono::steady_clock::time_point energy_read_at{};
    // MIG mode as last read (kMigModeRecheck); unset until a read succeeds.
    std::optional<bool> mig_enabled;
    std::chrono::steady_clock::time_point mig_mode_read_at{};
  };

  ~Nvml() {
    if (initialized) Shutdown();
    if (lib != nullptr) ::dlclose(lib);
  }

  std::string Describe(nvmlReturn_t rc) const {
    const char* text = ErrorString != nullptr ? ErrorString(rc) : nullptr;
    return (text != nullptr ? std::string(text) : std::string("NVML error")) + " (" +
           std::to_string(rc) + ")";
  }

  void* lib = nullptr;
  bool initialized = false;  // nvmlInit_v2 succeeded; nvmlShutdown is owed

  // Required entry points.
  nvmlReturn_t (*Init)() = nullptr;
  nvmlReturn_t (*Shutdown)() = nullptr;
  nvmlReturn_t (*GetCount)(unsigned int*) = nullptr;
  nvmlReturn_t (*GetHandleByIndex)(unsigned int, nvmlDevice_t*) = nullptr;
  // Optional ones: null where the library lacks them, which leaves their families out.
  const char* (*ErrorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*GetDriverVersion)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*GetName)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*GetUuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*GetPowerUsage)(nvmlDevice_t, unsigned int*) = nullptr;          // mW
  nvmlReturn_t (*GetTotalEnergy)(nvmlDevice_t, unsigned long long*) = nullptr;   // mJ
  nvmlReturn_t (*GetEnforcedPowerLimit)(nvmlDevice_t, unsigned int*) = nullptr;  // mW
  nvmlReturn_t (*GetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*GetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*GetMemoryInfoV2)(nvmlDevice_t, nvmlMemoryV2_t*) = nullptr;
  nvmlReturn_t (*GetMigMode)(nvmlDevice_t, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*GetMaxMigDeviceCount)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*GetMigDeviceHandleByIndex)(nvmlDevice_t, unsigned int, nvmlDevice_t*) = nullptr;

  std::string driver_version;
  std::vector<Device> devices;
  unsigned int enumerated_count = 0;  // what nvmlDeviceGetCount_v2 said when devices was built
  bool enumerated = false;            // false: list the devices again on the next sweep
};

namespace {

// What one sweep read from one physical GPU; a family the GPU does not support stays empty.
struct Reading {
  struct Mig {
    std::string index;
    std::string uuid;
    std::optional<double> memory_used_bytes, memory_total_bytes, utilization;
  };
  std::optional<double> power_watts, energy_joules, power_limit_watts, utilization,
      memory_utilization, memory_used_bytes, memory_total_bytes, memory_reserved_bytes;
  std::vector<Mig> migs;
};

// Failures of one sweep: the first is reported, the others counted.
struct Failures {
  void Add(std::string why) {
    if (count++ == 0) first = std::move(why);
  }
  int count = 0;
  std::string first;
};

// Memory of a GPU or MIG instance: v2 where the driver has it, so that "used" is what nvidia-smi
// shows (on an H200 with driver 580, v1's "used" is 616 MiB higher: the reserved memory); v1
// otherwise, whose "used" includes the reserved memory and which has no reserved figure.
using MemoryInfoV2Fn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemoryV2_t*);
using MemoryInfoFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
nvmlReturn_t ReadMemory(MemoryInfoV2Fn get_v2, MemoryInfoFn get_v1, nvmlDevice_t device,
                        std::optional<double>& used, std::optional<double>& total,
                        std::optional<double>* reserved) {
  nvmlMemoryV2_t v2 = {};
  v2.version = kNvmlMemoryV2;
  nvmlReturn_t rc = Call(get_v2, device, &v2);
  if (rc == kNvmlSuccess) {
    used = static_cast<double>(v2.used);
    total = static_cast<double>(v2.total);
    if (reserved != nullptr) *reserved = static_cast<double>(v2.reserved);
    return rc;
  }
  if (rc != kNvmlErrorFunctionNotFound && rc != kNvmlErrorNotSupported &&
      rc != kNvmlErrorArgumentVersionMismatch) {
    return rc;
  }
  nvmlMemory_t v1 = {};
  rc = Call(get_v1, device, &v1);
  if (rc == kNvmlSuccess) {
    used = static_cast<double>(v1.used);
    total = static_cast<double>(v1.total);
  }
  return rc;
}

}  // namespace

NvmlGpuCollector::NvmlGpuCollector(std::string library, std::chrono::milliseconds energy_interval,
                                   Clock now)
    : library_(std::move(library)), energy_interval_(energy_interval), now_(std::move(now)) {}

NvmlGpuCollector::~NvmlGpuCollector() = default;

Result<std::unique_ptr<Collector>> NvmlGpuCollector::Make(CollectorContext& ctx) {
  std::string library = kDefaultLibrary;
  RETURN_IF_ERROR(ctx.options.Get("library", &library));
  if (library.empty()) return ctx.options.Error("library", "must not be empty");
  std::chrono::milliseconds energy_interval{0};
  RETURN_IF_ERROR(ctx.options.Get("energy_interval", &energy_interval));
  if (energy_interval.count() < 0) {
    return ctx.options.Error("energy_interval", "must be 0 (every sweep) or more");
  }
  return std::unique_ptr<Collector>(
      std::make_unique<NvmlGpuCollector>(std::move(library), energy_interval));
}

CollectResult NvmlGpuCollector::Open() {
  if (nvml_ != nullptr && nvml_->initialized) return CollectResult::Ok();
  if (nvml_ == nullptr) {
    auto now = std::chrono::steady_clock::now();
    if (now < next_load_attempt_) return last_load_failure_;
    next_load_attempt_ = now + std::chrono::minutes(1);
    ::dlerror();
    void* lib = ::dlopen(library_.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* err = ::dlerror();
      std::string why = err != nullptr ? err : library_ + ": cannot load";
      // A configured file that is there but does not load is a broken set-up, not a host
      // without NVIDIA GPUs.
      if (library_.find('/') != std::string::npos && ::access(library_.c_str(), F_OK) == 0) {
        last_load_failure_ = CollectResult::Failed(why);
      } else {
        last_load_failure_ = CollectResult::NoData("no NVIDIA driver library: " + why);
      }
      return last_load_failure_;
    }
    auto nvml = std::make_unique<Nvml>();
    nvml->lib = lib;
    std::string missing;
    auto resolve = [&](const char* name, auto& fn, bool required) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (fn == nullptr && required && missing.empty()) missing = name;
    };
    resolve("nvmlInit_v2", nvml->Init, true);
    resolve("nvmlShutdown", nvml->Shutdown, true);
    resolve("nvmlDeviceGetCount_v2", nvml->GetCount, true);
    resolve("nvmlDeviceGetHandleByIndex_v2", nvml->GetHandleByIndex, true);
    resolve("nvmlErrorString", nvml->ErrorString, false);
    resolve("nvmlSystemGetDriverVersion", nvml->GetDriverVersion, false);
    resolve("nvmlDeviceGetName", nvml->GetName, false);
    resolve("nvmlDeviceGetUUID", nvml->GetUuid, false);
    resolve("nvmlDeviceGetPowerUsage", nvml->GetPowerUsage, false);
    resolve("nvmlDeviceGetTotalEnergyConsumption", nvml->GetTotalEnergy, false);
    resolve("nvmlDeviceGetEnforcedPowerLimit", nvml->GetEnforcedPowerLimit, false);
    resolve("nvmlDeviceGetUtilizationRates", nvml->GetUtilizationRates, false);
    resolve("nvmlDeviceGetMemoryInfo", nvml->GetMemoryInfo, false);
    resolve("nvmlDeviceGetMemoryInfo_v2", nvml->GetMemoryInfoV2, false);
    resolve("nvmlDeviceGetMigMode", nvml->GetMigMode, false);
    resolve("nvmlDeviceGetMaxMigDeviceCount", nvml->GetMaxMigDeviceCount, false);
    resolve("nvmlDeviceGetMigDeviceHandleByIndex", nvml->GetMigDeviceHandleByIndex, false);
    if (!missing.empty()) {
      return CollectResult::Failed(library_ + " has no " + missing +
                                   ": not NVML, or a driver older than R450");
    }
    nvml_ = std::move(nvml);
  }
  // The library stays loaded while init fails: the driver may be loaded after the agent starts.
  nvmlReturn_t rc = nvml_->Init();
  if (rc == kNvmlErrorDriverNotLoaded || rc == kNvmlErrorLibraryNotFound) {
    return CollectResult::NoData("nvmlInit_v2: " + nvml_->Describe(rc) +
                                 ": no NVIDIA driver is loaded");
  }
  if (rc == kNvmlErrorNoPermission) {
    return CollectResult::Failed("nvmlInit_v2: " + nvml_->Describe(rc) +
                                 ": the agent's user cannot open /dev/nvidiactl");
  }
  if (rc != kNvmlSuccess) return CollectResult::Failed("nvmlInit_v2: " + nvml_->Describe(rc));
  nvml_->initialized = true;
  nvml_->enumerated = false;
  char version[kDriverVersionBufferSize] = {};
  if (Call(nvml_->GetDriverVersion, version, kDriverVersionBufferSize) == kNvmlSuccess) {
    nvml_->driver_version = StringFrom(version, sizeof(version));
  }
  return CollectResult::Ok();
}

CollectResult NvmlGpuCollector::Enumerate(unsigned int count) {
  Nvml& n = *nvml_;
  n.devices.clear();
  n.enumerated_count = count;
  n.enumerated = true;
  Failures failures;
  for (unsigned int i = 0; i < count; ++i) {
    Nvml::Device d;
    d.index = i;
    nvmlReturn_t rc = n.GetHandleByIndex(i, &d.handle);
    if (rc != kNvmlSuccess) {
      // Try again next sweep: a lost GPU may come back after a reset.
      n.enumerated = false;
      failures.Add("GPU " + std::to_string(i) +
                   ": nvmlDeviceGetHandleByIndex_v2: " + n.Describe(rc));
      continue;
    }
    char uuid[kUuidBufferSize] = {};
    if (Call(n.GetUuid, d.handle, uuid, kUuidBufferSize) == kNvmlSuccess) {
      d.uuid = StringFrom(uuid, sizeof(uuid));
    }
    char name[kNameBufferSize] = {};
    if (Call(n.GetName, d.handle, name, kNameBufferSize) == kNvmlSuccess) {
      d.model = StringFrom(name, sizeof(name));
    }
    n.devices.push_back(std::move(d));
  }
  if (failures.count == 0) return CollectResult::Ok();
  return CollectResult::Failed(failures.first);
}

CollectResult NvmlGpuCollector::Collect(Sweep& out) {
  if (CollectResult r = Open(); r.kind != CollectResult::Kind::kOk) return r;
  Nvml& n = *nvml_;
  Failures failures;

  unsigned int count = 0;
  if (nvmlReturn_t rc = n.GetCount(&count); rc != kNvmlSuccess) {
    n.enumerated = false;
    return CollectResult::Failed("nvmlDeviceGetCount_v2: " + n.Describe(rc));
  }
  if (!n.enumerated || count != n.enumerated_count) {
    if (CollectResult r = Enumerate(count); r.kind == CollectResult::Kind::kFailed) {
      failures.Add(r.message);
    }
  }
  if (count == 0) {
    return CollectResult::NoData("NVML (driver " + n.driver_version + ") sees no NVIDIA GPU");
  }

  std::vector<std::pair<const Nvml::Device*, Reading>> readings;
  const auto now = now_();
  for (Nvml::Device& d : n.devices) {
    Reading r;
    bool lost = false;
    const std::string gpu = "GPU " + std::to_string(d.index);
    // True on success; NOT_SUPPORTED and an absent entry point just leave the family out.
    auto ok = [&](nvmlReturn_t rc, const char* call) {
      if (rc == kNvmlSuccess) return true;
      if (rc == kNvmlErrorNotSupported || rc == kNvmlErrorFunctionNotFound) return false;
      if (rc == kNvmlErrorGpuIsLost) {
        lost = true;
      } else {
        failures.Add(gpu + ": " + call + ": " + n.Describe(rc));
      }
      return false;
    };

    unsigned int mw = 0;
    if (ok(Call(n.GetPowerUsage, d.handle, &mw), "nvmlDeviceGetPowerUsage")) {
      r.power_watts = mw / 1e3;
    }
    // The counter costs ~3.4 ms of CPU per read on an H200 (the other calls ~45 us).
    if (energy_interval_.count() > 0 && d.energy_joules &&
        now - d.energy_read_at < energy_interval_) {
      r.energy_joules = d.energy_joules;
    } else if (unsigned long long mj = 0; !lost && ok(Call(n.GetTotalEnergy, d.handle, &mj),
                                                      "nvmlDeviceGetTotalEnergyConsumption")) {
      r.energy_joules = d.energy_joules = static_cast<double>(mj) / 1e3;
      d.energy_read_at = now;
    } else {
      d.energy_joules.reset();
    }
    if (!lost &&
        ok(Call(n.GetEnforcedPowerLimit, d.handle, &mw), "nvmlDeviceGetEnforcedPowerLimit")) {
      r.power_limit_watts = mw / 1e3;
    }
    nvmlUtilization_t util = {};
    if (!lost &&
        ok(Call(n.GetUtilizationRates, d.handle, &util), "nvmlDeviceGetUtilizationRates")) {
      r.utilization = util.gpu / 100.0;
      r.memory_utilization = util.memory / 100.0;
    }
    if (!lost) {
      ok(ReadMemory(n.GetMemoryInfoV2, n.GetMemoryInfo, d.handle, r.memory_used_bytes,
                    r.memory_total_bytes, &r.memory_reserved_bytes),
         "nvmlDeviceGetMemoryInfo");
    }

    if (!lost && (!d.mig_enabled || now - d.mig_mode_read_at >= kMigModeRecheck)) {
      unsigned int mig_mode = 0, pending = 0;
      nvmlReturn_t rc = Call(n.GetMigMode, d.handle, &mig_mode, &pending);
      if (ok(rc, "nvmlDeviceGetMigMode")) {
        d.mig_enabled = mig_mode == kNvmlDeviceMigEnable;
      } else if (rc == kNvmlErrorNotSupported || rc == kNvmlErrorFunctionNotFound) {
        d.mig_enabled = false;  // a GPU without MIG: asked again at the same pace
      } else {
        d.mig_enabled.reset();
      }
      d.mig_mode_read_at = now;
    }
    if (!lost && d.mig_enabled.value_or(false)) {
      unsigned int slots = 0;
      if (ok(Call(n.GetMaxMigDeviceCount, d.handle, &slots), "nvmlDeviceGetMaxMigDeviceCount")) {
        for (unsigned int j = 0; j < slots && !lost; ++j) {
          nvmlDevice_t mig = nullptr;
          nvmlReturn_t rc = Call(n.GetMigDeviceHandleByIndex, d.handle, j, &mig);
          if (rc == kNvmlErrorNotFound) continue;  // an empty slot
          if (!ok(rc, "nvmlDeviceGetMigDeviceHandleByIndex")) continue;
          Reading::Mig m;
          m.index = std::to_string(j);
          char uuid[kUuidBufferSize] = {};
          if (ok(Call(n.GetUuid, mig, uuid, kUuidBufferSize), "nvmlDeviceGetUUID")) {
            m.uuid = StringFrom(uuid, sizeof(uuid));
          }
          ok(ReadMemory(n.GetMemoryInfoV2, n.GetMemoryInfo, mig, m.memory_used_bytes,
                        m.memory_total_bytes, nullptr),
             "nvmlDeviceGetMemoryInfo");
          // NVML answers NOT_SUPPORTED here on current drivers; kept for those that answer.
          nvmlUtilization_t mig_util = {};
          if (ok(Call(n.GetUtilizationRates, mig, &mig_util), "nvmlDeviceGetUtilizationRates")) {
            m.utilization = mig_util.gpu / 100.0;
          }
          // No power or energy for an instance: the board has one power sensor, and giving its
          // reading to each instance too would count it again in any sum over the fleet.
          r.migs.push_back(std::move(m));
        }
      }
    }

    if (lost) {
      // Its handle is stale: list the GPUs again next sweep, and export nothing half-read.
      n.enumerated = false;
      failures.Add(gpu + " (" + d.uuid +
                   ") is lost (NVML_ERROR_GPU_IS_LOST): off the bus or "
                   "needs a reset");
      continue;
    }
    readings.emplace_back(&d, std::move(r));
  }

  auto labels = [](const Nvml::Device& d) {
    std::vector<Label> l = {{"gpu", std::to_string(d.index)}};
    AddLabel(l, "uuid", d.uuid);
    return l;
  };
  // One family at a time, so that each family's points are together.
  for (const auto& [d, r] : readings) {
    std::vector<Label> l = labels(*d);
    AddLabel(l, "model", d->model);
    AddLabel(l, "driver_version", n.driver_version);
    out.Add("suanli_gpu_info",
            "NVIDIA GPU identity: model name and driver version (NVML); always 1.",
            MetricType::kGauge, std::move(l), 1);
  }
  auto emit = [&](std::string_view name, std::string_view help, MetricType type,
                  std::optional<double> Reading::*field) {
    for (const auto& [d, r] : readings) {
      if (r.*field) out.Add(name, help, type, labels(*d), *(r.*field));
    }
  };
  emit("suanli_gpu_power_watts", "Power draw of the GPU board, in watts (NVML).",
       MetricType::kGauge, &Reading::power_watts);
  emit("suanli_gpu_energy_joules_total",
       "Energy the GPU board consumed since the NVIDIA driver was loaded, in joules (NVML).",
       MetricType::kCounter, &Reading::energy_joules);
  emit("suanli_gpu_power_limit_watts", "Power limit the GPU enforces, in watts (NVML).",
       MetricType::kGauge, &Reading::power_limit_watts);
  emit("suanli_gpu_utilization_ratio",
       "Share of the last NVML sample period in which a kernel ran on the GPU (0 to 1).",
       MetricType::kGauge, &Reading::utilization);
  emit("suanli_gpu_memory_utilization_ratio",
       "Share of the last NVML sample period in which GPU memory was read or written (0 to 1).",
       MetricType::kGauge, &Reading::memory_utilization);
  emit("suanli_gpu_memory_used_bytes",
       "GPU memory allocated, in bytes (NVML; as nvidia-smi's Used, without the reserved memory "
       "where the driver reports it apart).",
       MetricType::kGauge, &Reading::memory_used_bytes);
  emit("suanli_gpu_memory_total_bytes", "GPU memory installed, in bytes (NVML).",
       MetricType::kGauge, &Reading::memory_total_bytes);
  emit("suanli_gpu_memory_reserved_bytes",
       "GPU memory the driver and firmware set aside, in bytes (NVML v2, R510+); neither used "
       "nor free.",
       MetricType::kGauge, &Reading::memory_reserved_bytes);

  auto emit_mig = [&](std::string_view name, std::string_view help,
                      std::optional<double> Reading::Mig::*field) {
    for (const auto& [d, r] : readings) {
      for (const Reading::Mig& m : r.migs) {
        if (!(m.*field)) continue;
        std::vector<Label> l = {{"gpu", std::to_string(d->index)}, {"mig_instance", m.index}};
        AddLabel(l, "uuid", m.uuid);
        out.Add(name, help, MetricType::kGauge, std::move(l), *(m.*field));
      }
    }
  };
  emit_mig("suanli_gpu_mig_memory_used_bytes",
           "Memory allocated in a MIG instance, in bytes (NVML); part of its GPU's.",
           &Reading::Mig::memory_used_bytes);
  emit_mig("suanli_gpu_mig_memory_total_bytes",
           "Memory of a MIG instance, in bytes (NVML); part of its GPU's.",
           &Reading::Mig::memory_total_bytes);
  emit_mig("suanli_gpu_mig_utilization_ratio",
           "Share of the last NVML sample period in which a kernel ran on a MIG instance (0 to 1).",
           &Reading::Mig::utilization);

  if (failures.count == 0) return CollectResult::Ok();
  std::string why = failures.first;
  if (failures.count > 1) why += " (and " + std::to_string(failures.count - 1) + " more)";
  return CollectResult::Failed(why);
}

}  // namespace suanli::agent
