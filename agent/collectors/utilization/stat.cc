#include "agent/collectors/utilization/stat.h"

#include <array>
#include <string_view>

namespace suanli::agent {

namespace {

struct StatLine {
  std::string_view key;  // first field of the /proc/stat line
  std::string_view name;
  std::string_view help;
  MetricType type;
};

// In node_exporter's family order.
constexpr std::array<StatLine, 6> kLines = {{
    {"intr", "node_intr_total", "Total number of interrupts serviced.", MetricType::kCounter},
    {"ctxt", "node_context_switches_total", "Total number of context switches.",
     MetricType::kCounter},
    {"btime", "node_boot_time_seconds", "Node boot time, in unixtime.", MetricType::kGauge},
    {"processes", "node_forks_total", "Total number of forks.", MetricType::kCounter},
    {"procs_running", "node_procs_running", "Number of processes in runnable state.",
     MetricType::kGauge},
    {"procs_blocked", "node_procs_blocked",
     "Number of processes blocked waiting for I/O to complete.", MetricType::kGauge},
}};

}  // namespace

StatCollector::StatCollector(const HostPaths& paths)
    : stat_(paths.procfs + "/stat", 16384, ProcFile::Layout::kWhole) {}

CollectResult StatCollector::Collect(Sweep& out) {
  if (Status st = stat_.Read(); !st.ok()) return CollectResult::Failed(st.message());

  std::array<double, kLines.size()> values{};
  std::array<bool, kLines.size()> found{};
  std::string first_error;
  int skipped = 0;
  std::string_view rest = stat_.contents();
  for (int line_no = 1; !rest.empty(); ++line_no) {
    bool terminated = false;
    std::string_view line = NextLine(rest, &terminated);
    std::string_view key = NextField(line);
    size_t i = 0;
    while (i < kLines.size() && kLines[i].key != key) ++i;
    if (i == kLines.size()) continue;  // cpu, softirq, ...: other collectors' lines

    uint64_t v = 0;
    if (!terminated || !ParseUint64(NextField(line), v)) {
      if (first_error.empty()) {
        first_error = LineError(stat_.path(), line_no,
                                std::string(key) + (terminated ? ": not a number" : ": truncated"));
      }
      ++skipped;
      continue;
    }
    values[i] = static_cast<double>(v);
    found[i] = true;
  }

  int emitted = 0;
  for (size_t i = 0; i < kLines.size(); ++i) {
    if (!found[i]) continue;
    out.Add(kLines[i].name, kLines[i].help, kLines[i].type, {}, values[i]);
    ++emitted;
  }
  if (emitted == 0) {
    return CollectResult::Failed(
        first_error.empty() ? stat_.path() + ": no intr, ctxt, btime, processes or procs_* lines"
                            : first_error);
  }
  if (skipped > 0) {
    return {CollectResult::Kind::kOk,
            "skipped " + std::to_string(skipped) + " malformed line(s); first: " + first_error};
  }
  return CollectResult::Ok();
}

}  // namespace suanli::agent
