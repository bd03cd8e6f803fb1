// A stand-in for libnvidia-ml.so.1, built as the shared library fake_nvml for
// nvml_gpu_test.cc. It exports exactly the NVML entry points NvmlGpuCollector resolves, with
// NVML's documented C ABI and return codes, over an in-memory set of up to 8 GPUs with up to 7
// MIG slots each, and a small control API (fake_nvml_*) that the test reaches with dlsym on the
// same handle. Behaviour copied from real drivers: every call but nvmlInit_v2 answers
// UNINITIALIZED before init; a parent GPU in MIG mode answers NOT_SUPPORTED for utilization, and
// so does a MIG instance. Power on a MIG handle answers with the parent's reading (the worst a
// driver could do) and is counted, so a test can prove the collector never asks.
// Thread-safety: none; the tests call it from one thread.
#include <cstring>
#include <set>
#include <string>

namespace {

using nvmlReturn_t = int;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlMemory_v2_t {
  unsigned int version;
  unsigned long long total, reserved, free, used;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
constexpr unsigned int kMemoryV2 = sizeof(nvmlMemory_v2_t) | (2u << 24);

constexpr nvmlReturn_t kSuccess = 0;
constexpr nvmlReturn_t kUninitialized = 1;
constexpr nvmlReturn_t kInvalidArgument = 2;
constexpr nvmlReturn_t kNotSupported = 3;
constexpr nvmlReturn_t kNotFound = 6;
constexpr nvmlReturn_t kInsufficientSize = 7;
constexpr nvmlReturn_t kGpuIsLost = 15;
constexpr nvmlReturn_t kArgumentVersionMismatch = 25;

constexpr unsigned int kMaxGpus = 8;
constexpr unsigned int kMigSlots = 7;

struct FakeDevice {
  bool present = false;  // MIG slots: an instance is there
  unsigned int power_mw = 0;
  unsigned long long energy_mj = 0;
  unsigned int power_limit_mw = 0;
  unsigned int util_gpu = 0, util_memory = 0;
  // memory_used is v2's (without the reserved memory); v1's "used" adds memory_reserved to it,
  // as the drivers do.
  unsigned long long memory_total = 0, memory_used = 0, memory_reserved = 0;
  std::string name, uuid;
  std::set<std::string> not_supported;  // entry point names
  bool lost = false;
  bool mig_enabled = false;
};

struct State {
  State() {
    for (unsigned int i = 0; i < kMaxGpus; ++i) {
      FakeDevice& g = gpus[i];
      g.name = "NVIDIA H100 80GB HBM3";
      g.uuid = "GPU-00000000-0000-0000-0000-00000000000" + std::to_string(i);
      for (unsigned int j = 0; j < kMigSlots; ++j) {
        FakeDevice& m = migs[i][j];
        m.uuid = "MIG-0000000" + std::to_string(i) + "-000" + std::to_string(j) +
                 "-0000-0000-000000000000";
        m.memory_total = 10ull << 30;
      }
    }
  }
  nvmlReturn_t init_result = kSuccess;
  int init_refs = 0;  // NVML counts nvmlInit/nvmlShutdown pairs
  int init_calls = 0;
  int handle_lookups = 0;
  int mig_power_calls = 0;
  int energy_calls = 0;
  int mig_mode_calls = 0;
  unsigned int count = 0;
  std::string driver_version = "550.54.15";
  FakeDevice gpus[kMaxGpus];
  FakeDevice migs[kMaxGpus][kMigSlots];
};

State g;

struct Found {
  FakeDevice* device = nullptr;
  int gpu = -1;  // the physical GPU (the parent of a MIG instance)
  bool mig = false;
};

Found Find(void* handle) {
  for (unsigned int i = 0; i < kMaxGpus; ++i) {
    if (handle == &g.gpus[i]) return {&g.gpus[i], static_cast<int>(i), false};
    for (unsigned int j = 0; j < kMigSlots; ++j) {
      if (handle == &g.migs[i][j]) return {&g.migs[i][j], static_cast<int>(i), true};
    }
  }
  return {};
}

// The common checks of a device query: initialised, a known handle, not lost, supported.
nvmlReturn_t Check(void* handle, const void* out, const char* fn, Found& f) {
  if (g.init_refs == 0) return kUninitialized;
  f = Find(handle);
  if (f.device == nullptr || out == nullptr) return kInvalidArgument;
  if (g.gpus[f.gpu].lost) return kGpuIsLost;
  if (f.device->not_supported.count(fn) != 0) return kNotSupported;
  return kSuccess;
}

nvmlReturn_t CopyString(const std::string& s, char* buf, unsigned int length) {
  if (buf == nullptr) return kInvalidArgument;
  if (length < s.size() + 1) return kInsufficientSize;
  std::memcpy(buf, s.c_str(), s.size() + 1);
  return kSuccess;
}

FakeDevice* Gpu(unsigned int i) { return i < kMaxGpus ? &g.gpus[i] : nullptr; }

}  // namespace

extern "C" {

// NVML entry points.

const char* nvmlErrorString(nvmlReturn_t rc) {
  switch (rc) {
    case 0:
      return "Success";
    case 1:
      return "Uninitialized";
    case 3:
      return "Not Supported";
    case 4:
      return "Insufficient Permissions";
    case 9:
      return "Driver Not Loaded";
    case 12:
      return "NVML Shared Library Not Found";
    case 15:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlInit_v2() {
  ++g.init_calls;
  if (g.init_result != kSuccess) return g.init_result;
  ++g.init_refs;
  return kSuccess;
}

nvmlReturn_t nvmlShutdown() {
  if (g.init_refs == 0) return kUninitialized;
  --g.init_refs;
  return kSuccess;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (g.init_refs == 0) return kUninitialized;
  return CopyString(g.driver_version, version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (g.init_refs == 0) return kUninitialized;
  if (count == nullptr) return kInvalidArgument;
  *count = g.count;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (g.init_refs == 0) return kUninitialized;
  if (device == nullptr || index >= g.count) return kInvalidArgument;
  ++g.handle_lookups;
  if (g.gpus[index].lost) return kGpuIsLost;
  *device = &g.gpus[index];
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  Found f;
  if (nvmlReturn_t rc = Check(device, name, __func__, f); rc != kSuccess) return rc;
  return CopyString(f.device->name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(void* device, char* uuid, unsigned int length) {
  Found f;
  if (nvmlReturn_t rc = Check(device, uuid, __func__, f); rc != kSuccess) return rc;
  return CopyString(f.device->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(void* device, unsigned int* power) {
  Found f;
  if (nvmlReturn_t rc = Check(device, power, __func__, f); rc != kSuccess) return rc;
  if (f.mig) ++g.mig_power_calls;
  *power = g.gpus[f.gpu].power_mw;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* energy) {
  Found f;
  ++g.energy_calls;
  if (nvmlReturn_t rc = Check(device, energy, __func__, f); rc != kSuccess) return rc;
  if (f.mig) ++g.mig_power_calls;
  *energy = g.gpus[f.gpu].energy_mj;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void* device, unsigned int* limit) {
  Found f;
  if (nvmlReturn_t rc = Check(device, limit, __func__, f); rc != kSuccess) return rc;
  if (f.mig) ++g.mig_power_calls;
  *limit = g.gpus[f.gpu].power_limit_mw;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(void* device, nvmlUtilization_t* util) {
  Found f;
  if (nvmlReturn_t rc = Check(device, util, __func__, f); rc != kSuccess) return rc;
  if (f.mig || g.gpus[f.gpu].mig_enabled) return kNotSupported;
  util->gpu = f.device->util_gpu;
  util->memory = f.device->util_memory;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(void* device, nvmlMemory_t* memory) {
  Found f;
  if (nvmlReturn_t rc = Check(device, memory, __func__, f); rc != kSuccess) return rc;
  memory->total = f.device->memory_total;
  memory->used = f.device->memory_used + f.device->memory_reserved;
  memory->free = memory->total - memory->used;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void* device, nvmlMemory_v2_t* memory) {
  Found f;
  if (nvmlReturn_t rc = Check(device, memory, __func__, f); rc != kSuccess) return rc;
  if (memory->version != kMemoryV2) return kArgumentVersionMismatch;
  if (f.device->not_supported.count("v2_version_mismatch") != 0) return kArgumentVersionMismatch;
  memory->total = f.device->memory_total;
  memory->reserved = f.device->memory_reserved;
  memory->used = f.device->memory_used;
  memory->free = memory->total - memory->reserved - memory->used;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetMigMode(void* device, unsigned int* current, unsigned int* pending) {
  ++g.mig_mode_calls;
  Found f;
  if (nvmlReturn_t rc = Check(device, current, __func__, f); rc != kSuccess) return rc;
  if (pending == nullptr || f.mig) return kInvalidArgument;
  *current = *pending = f.device->mig_enabled ? 1 : 0;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void* device, unsigned int* count) {
  Found f;
  if (nvmlReturn_t rc = Check(device, count, __func__, f); rc != kSuccess) return rc;
  *count = f.mig ? 0 : kMigSlots;
  return kSuccess;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void* device, unsigned int index, void** mig) {
  Found f;
  if (nvmlReturn_t rc = Check(device, mig, __func__, f); rc != kSuccess) return rc;
  if (f.mig || index >= kMigSlots) return kInvalidArgument;
  if (!f.device->mig_enabled) return kNotSupported;
  if (!g.migs[f.gpu][index].present) return kNotFound;
  *mig = &g.migs[f.gpu][index];
  return kSuccess;
}

// Control API for the tests. GPU indexes past the fake's 8 are ignored.

void fake_nvml_reset() { g = State(); }
void fake_nvml_set_init_result(int code) { g.init_result = code; }
void fake_nvml_set_gpu_count(unsigned int n) { g.count = n < kMaxGpus ? n : kMaxGpus; }
void fake_nvml_set_driver_version(const char* v) { g.driver_version = v; }

void fake_nvml_set_power_mw(unsigned int i, unsigned int mw) {
  if (FakeDevice* d = Gpu(i)) d->power_mw = mw;
}
void fake_nvml_set_energy_mj(unsigned int i, unsigned long long mj) {
  if (FakeDevice* d = Gpu(i)) d->energy_mj = mj;
}
void fake_nvml_set_power_limit_mw(unsigned int i, unsigned int mw) {
  if (FakeDevice* d = Gpu(i)) d->power_limit_mw = mw;
}
void fake_nvml_set_utilization(unsigned int i, unsigned int gpu, unsigned int memory) {
  if (FakeDevice* d = Gpu(i)) {
    d->util_gpu = gpu;
    d->util_memory = memory;
  }
}
void fake_nvml_set_memory(unsigned int i, unsigned long long total, unsigned long long used) {
  if (FakeDevice* d = Gpu(i)) {
    d->memory_total = total;
    d->memory_used = used;
  }
}
void fake_nvml_set_memory_reserved(unsigned int i, unsigned long long reserved) {
  if (FakeDevice* d = Gpu(i)) d->memory_reserved = reserved;
}
void fake_nvml_set_name(unsigned int i, const char* name) {
  if (FakeDevice* d = Gpu(i)) d->name = name;
}
// Makes `fn` answer NOT_SUPPORTED for GPU i; "v2_version_mismatch" makes
// nvmlDeviceGetMemoryInfo_v2 answer ARGUMENT_VERSION_MISMATCH, as a driver that knows only v1.
void fake_nvml_set_not_supported(unsigned int i, const char* fn) {
  if (FakeDevice* d = Gpu(i)) d->not_supported.insert(fn);
}
// Every call on GPU i (and its MIG instances) answers GPU_IS_LOST while `lost`.
void fake_nvml_set_lost(unsigned int i, int lost) {
  if (FakeDevice* d = Gpu(i)) d->lost = lost != 0;
}
// MIG mode on GPU i, with instances in the first `count` of its 7 slots.
void fake_nvml_set_mig(unsigned int i, int enabled, unsigned int count) {
  if (i >= kMaxGpus) return;
  g.gpus[i].mig_enabled = enabled != 0;
  for (unsigned int j = 0; j < kMigSlots; ++j) g.migs[i][j].present = j < count;
}
void fake_nvml_set_mig_memory(unsigned int i, unsigned int j, unsigned long long total,
                              unsigned long long used) {
  if (i >= kMaxGpus || j >= kMigSlots) return;
  g.migs[i][j].memory_total = total;
  g.migs[i][j].memory_used = used;
}

int fake_nvml_init_refs() { return g.init_refs; }
int fake_nvml_init_calls() { return g.init_calls; }
int fake_nvml_handle_lookups() { return g.handle_lookups; }
int fake_nvml_mig_power_calls() { return g.mig_power_calls; }
int fake_nvml_energy_calls() { return g.energy_calls; }
int fake_nvml_mig_mode_calls() { return g.mig_mode_calls; }

}  // extern "C"
