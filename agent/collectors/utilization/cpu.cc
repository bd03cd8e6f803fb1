#include "agent/collectors/utilization/cpu.h"

#include <string_view>

namespace suanli::agent {

namespace {

constexpr std::string_view kSecondsName = "node_cpu_seconds_total";
constexpr std::string_view kSecondsHelp = "Seconds the CPUs spent in each mode.";
constexpr std::string_view kGuestName = "node_cpu_guest_seconds_total";
constexpr std::string_view kGuestHelp = "Seconds the CPUs spent in guests (VMs) for each mode.";

// /proc/stat column order; the last two are guest and guest_nice, exported as guest "user" and
// "nice".
constexpr std::array<std::string_view, CpuCollector::kFields> kModeNames = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "user", "nice"};
constexpr int kIdle = 3;

// sysconf(_SC_CLK_TCK) is 100 on every Linux architecture: /proc/stat is in USER_HZ.
constexpr double kUserHz = 100.0;
// An idle counter that falls this far (seconds) means the CPU went offline and came back.
constexpr double kJumpBackSeconds = 3.0;
// Bounds the state vector against a corrupt "cpu4294967295" line.
constexpr uint64_t kMaxCpus = 1 << 16;

}  // namespace

CpuCollector::CpuCollector(const HostPaths& paths)
    : stat_(paths.procfs + "/stat", 16384, ProcFile::Layout::kWhole) {}

CollectResult CpuCollector::Collect(Sweep& out) {
  if (Status st = stat_.Read(); !st.ok()) return CollectResult::Failed(st.message());

  seen_.assign(cpus_.size(), false);
  std::string first_error;
  int skipped = 0;
  int parsed = 0;
  std::string_view rest = stat_.contents();
  for (int line_no = 1; !rest.empty(); ++line_no) {
    bool terminated = false;
    std::string_view line = NextLine(rest, &terminated);
    // Per-CPU lines are "cpuN ..."; the aggregate "cpu " line is not exported.
    if (line.size() < 4 || line.substr(0, 3) != "cpu" || line[3] < '0' || line[3] > '9') continue;

    auto skip = [&](std::string_view why) {
      if (first_error.empty()) first_error = LineError(stat_.path(), line_no, why);
      ++skipped;
    };
    if (!terminated) {
      skip("truncated line (no newline)");
      continue;
    }
    std::string_view name = NextField(line);
    uint64_t cpu = 0;
    if (!ParseUint64(name.substr(3), cpu) || cpu >= kMaxCpus) {
      skip("bad CPU name");
      continue;
    }
    // Kernels before 2.6.33 print fewer columns; user..idle exist everywhere.
    std::array<double, kFields> ticks{};
    int n = 0;
    bool bad = false;
    for (std::string_view field = NextField(line); !field.empty() && n < kFields;
         field = NextField(line), ++n) {
      uint64_t v = 0;
      if (!ParseUint64(field, v)) {
        bad = true;
        break;
      }
      ticks[n] = static_cast<double>(v) / kUserHz;
    }
    if (bad || n < 4) {
      skip(bad ? "non-numeric CPU time" : "fewer than 4 CPU time columns");
      continue;
    }

    if (cpu >= cpus_.size()) {
      cpus_.resize(cpu + 1);
      seen_.resize(cpu + 1, false);
    }
    CpuState& s = cpus_[cpu];
    if (seen_[cpu]) {
      skip("CPU listed twice");
      continue;
    }
    seen_[cpu] = true;
    ++parsed;
    if (s.labels[0].empty()) {
      std::string id = std::to_string(cpu);
      for (int m = 0; m < kFields; ++m) {
        s.labels[m] = {Label{"cpu", id}, Label{"mode", std::string(kModeNames[m])}};
      }
    }
    if (!s.present || s.seconds[kIdle] - ticks[kIdle] >= kJumpBackSeconds) s.seconds = {};
    s.present = true;
    for (int m = 0; m < kFields; ++m) {
      if (ticks[m] >= s.seconds[m]) s.seconds[m] = ticks[m];
    }
  }

  // CPUs gone offline are dropped (and restart from zero state if they come back).
  for (size_t i = 0; i < cpus_.size(); ++i) {
    if (!seen_[i]) cpus_[i].present = false;
  }
  if (parsed == 0) {
    return CollectResult::Failed(first_error.empty() ? stat_.path() + ": no per-CPU \"cpuN\" lines"
                                                     : first_error);
  }
  for (const CpuState& s : cpus_) {
    if (!s.present) continue;
    for (int m = 0; m < kModes; ++m) {
      out.Add(kSecondsName, kSecondsHelp, MetricType::kCounter, s.labels[m], s.seconds[m]);
    }
  }
  for (const CpuState& s : cpus_) {
    if (!s.present) continue;
    for (int m = kModes; m < kFields; ++m) {
      out.Add(kGuestName, kGuestHelp, MetricType::kCounter, s.labels[m], s.seconds[m]);
    }
  }
  if (skipped > 0) {
    return {CollectResult::Kind::kOk,
            "skipped " + std::to_string(skipped) + " malformed line(s); first: " + first_error};
  }
  return CollectResult::Ok();
}

}  // namespace suanli::agent
