// NvmlGpuCollector: NVIDIA GPUs through NVML (libnvidia-ml.so.1, the library the driver ships),
// loaded with dlopen on the first Collect(): the agent needs no NVIDIA package to build or run.
//
// Families, per physical GPU (labels gpu="<NVML index>", uuid="GPU-..."):
//   suanli_gpu_info{gpu,uuid,model,driver_version}  gauge    always 1
//   suanli_gpu_power_watts                          gauge    nvmlDeviceGetPowerUsage (mW / 1e3)
//   suanli_gpu_energy_joules_total                  counter  nvmlDeviceGetTotalEnergyConsumption
//       (mJ / 1e3); it counts from the last driver load, so a reload reads as a counter reset
//   suanli_gpu_power_limit_watts                    gauge    nvmlDeviceGetEnforcedPowerLimit (mW)
//   suanli_gpu_utilization_ratio                    gauge    share of NVML's last sample period
//       (1/6 s to 1 s, by product) in which a kernel ran, 0..1
//   suanli_gpu_memory_utilization_ratio             gauge    share in which memory was accessed
//   suanli_gpu_memory_used_bytes                    gauge    nvmlDeviceGetMemoryInfo_v2 (R510+):
//       nvidia-smi's Used; an older driver's v1 "used" also counts the reserved memory
//   suanli_gpu_memory_total_bytes                   gauge    nvmlDeviceGetMemoryInfo(_v2)
//   suanli_gpu_memory_reserved_bytes                gauge    v2 only: what the driver and firmware
//       set aside (nvidia-smi's Reserved; 616 MiB on an H200 with driver 580)
// and per MIG instance of a GPU in MIG mode (labels gpu, mig_instance="<MIG device index>",
// uuid="MIG-..."): suanli_gpu_mig_memory_used_bytes, suanli_gpu_mig_memory_total_bytes, and
// suanli_gpu_mig_utilization_ratio where NVML supports it (current drivers do not). MIG instances
// have families of their own so that sum() over a suanli_gpu_* family never adds an instance to
// the GPU that holds it, and they never carry power or energy: those belong to the physical board.
// An entry point a GPU does not support (NOT_SUPPORTED, or absent from an old library) leaves that
// family out for that GPU only.
//
// Life cycle: the library stays loaded and initialised across sweeps; the destructor calls
// nvmlShutdown and dlclose. Handles are enumerated again when the GPU count changes or a call
// returns NVML_ERROR_GPU_IS_LOST. Until the library loads and nvmlInit succeeds, every sweep
// tries again (a driver installed or loaded later is picked up).
//
// Outcomes: no library, or no driver (nvmlInit_v2 says DRIVER_NOT_LOADED or LIBRARY_NOT_FOUND), or
// no GPU is NoData; a configured library file that exists but does not load, a library without
// nvmlInit_v2, any other NVML error and a lost GPU are Failed, after adding what the other GPUs
// gave.
//
// Cost, measured on an H200 with driver 580 (README, "GPU check"): about 3.5 ms of CPU per GPU
// and sweep, nearly all of it in nvmlDeviceGetTotalEnergyConsumption (3.0-3.5 ms per call, up to
// 11 ms on another machine; the field-values API costs the same); nvmlDeviceGetMigMode 0.5 ms,
// so MIG mode is read again at most once a minute (it changes only with a GPU reset; instances
// are listed every sweep while it is on); the others 40-50 us. At the default 15 s interval that is
// 0.02% of a core per GPU (see energy_interval below for fast sampling). nvmlInit maps about 20 MB
// into the agent.
//
// Options (collector_config.gpu): library: path or soname to dlopen (default
// "libnvidia-ml.so.1"; tests point it at a fake). energy_interval (default 0s: every sweep): read
// the energy counter at most this often; the sweeps in between repeat the last reading, so at
// fast sampling on a many-GPU server the counter's cost is paid once per interval. rate() over a
// window is then off by at most one interval's energy at each end; power is read every sweep.
// Thread-safety: not thread-safe; one thread at a time (may_block: the sampler gives it its own
// thread). NVML itself is thread-safe, so several instances may coexist.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agent/collector.h"
#include "core/status.h"

namespace suanli::agent {

class NvmlGpuCollector : public Collector {
 public:
  static constexpr const char* kDefaultLibrary = "libnvidia-ml.so.1";

  // Reads the `library` option; touches nothing on the host.
  static Result<std::unique_ptr<Collector>> Make(CollectorContext& ctx);

  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `now`: a seam for tests of energy_interval.
  explicit NvmlGpuCollector(std::string library = kDefaultLibrary,
                            std::chrono::milliseconds energy_interval = {},
                            Clock now = &std::chrono::steady_clock::now);
  ~NvmlGpuCollector() override;
  NvmlGpuCollector(const NvmlGpuCollector&) = delete;
  NvmlGpuCollector& operator=(const NvmlGpuCollector&) = delete;

  CollectResult Collect(Sweep& out) override;

  // Without a loaded library, Collect() only returns the cached outcome until the next retry.
  bool MayBlockNow() const override {
    return nvml_ != nullptr || std::chrono::steady_clock::now() >= next_load_attempt_;
  }

 private:
  struct Nvml;  // the loaded library, its entry points and the enumerated devices

  // Loads the library and initialises NVML if not done yet; Ok when nvml_ is ready.
  CollectResult Open();
  // Lists the GPUs (handles, UUIDs, names) afresh.
  CollectResult Enumerate(unsigned int count);

  std::string library_;
  std::chrono::milliseconds energy_interval_;
  Clock now_;
  std::unique_ptr<Nvml> nvml_;
  // A failed dlopen searches the whole linker path (measured: the largest CPU cost of a 100 ms
  // sweep on a host without GPUs), so it is retried at most once a minute.
  std::chrono::steady_clock::time_point next_load_attempt_{};
  CollectResult last_load_failure_;
};

}  // namespace suanli::agent
