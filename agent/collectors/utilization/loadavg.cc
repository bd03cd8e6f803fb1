#include "agent/collectors/utilization/loadavg.h"

#include <array>
#include <string_view>

namespace suanli::agent {

LoadavgCollector::LoadavgCollector(const HostPaths& paths)
    : loadavg_(paths.procfs + "/loadavg", 128, ProcFile::Layout::kWhole) {}

CollectResult LoadavgCollector::Collect(Sweep& out) {
  if (Status st = loadavg_.Read(); !st.ok()) return CollectResult::Failed(st.message());

  // "0.21 0.37 0.39 1/719 19737": the last two fields (tasks, last pid) are not exported, but
  // requiring them catches a line cut short inside the 15-minute figure.
  std::string_view rest = loadavg_.contents();
  std::string_view line = NextLine(rest);
  std::array<double, 3> load{};
  for (double& v : load) {
    if (!ParseDouble(NextField(line), v)) {
      return CollectResult::Failed(LineError(loadavg_.path(), 1, "want three load averages"));
    }
  }
  if (NextField(line).empty() || NextField(line).empty()) {
    return CollectResult::Failed(
        LineError(loadavg_.path(), 1, "truncated: want \"load1 load5 load15 tasks pid\""));
  }
  out.Add("node_load1", "1m load average.", MetricType::kGauge, {}, load[0]);
  out.Add("node_load5", "5m load average.", MetricType::kGauge, {}, load[1]);
  out.Add("node_load15", "15m load average.", MetricType::kGauge, {}, load[2]);
  return CollectResult::Ok();
}

}  // namespace suanli::agent
