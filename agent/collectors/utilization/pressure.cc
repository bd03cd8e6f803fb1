#include "agent/collectors/utilization/pressure.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <cerrno>
#include <string_view>

namespace suanli::agent {

namespace {

struct Resource {
  std::string_view file;
  // Family for the "some" and the "full" line; empty where node_exporter exports none.
  std::string_view some_name, some_help;
  std::string_view full_name, full_help;
};

constexpr std::array<Resource, 4> kResources = {{
    {"cpu", "node_pressure_cpu_waiting_seconds_total",
     "Total time in seconds that processes have waited for CPU time", "", ""},
    {"io", "node_pressure_io_waiting_seconds_total",
     "Total time in seconds that processes have waited due to IO congestion",
     "node_pressure_io_stalled_seconds_total",
     "Total time in seconds no process could make progress due to IO congestion"},
    {"memory", "node_pressure_memory_waiting_seconds_total",
     "Total time in seconds that processes have waited for memory",
     "node_pressure_memory_stalled_seconds_total",
     "Total time in seconds no process could make progress due to memory congestion"},
    {"irq", "", "", "node_pressure_irq_stalled_seconds_total",
     "Total time in seconds no process could make progress due to IRQ congestion"},
}};

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781": the kind and the total in
// microseconds. False when the line is not of that form.
bool ParsePsiLine(std::string_view line, std::string_view& kind, uint64_t& total_us) {
  kind = NextField(line);
  if (kind != "some" && kind != "full") return false;
  for (std::string_view f = NextField(line); !f.empty(); f = NextField(line)) {
    if (f.substr(0, 6) == "total=") return ParseUint64(f.substr(6), total_us);
  }
  return false;
}

}  // namespace

PressureCollector::PressureCollector(const HostPaths& paths)
    : root_(paths.procfs),
      dir_(paths.procfs + "/pressure"),
      files_{ProcFile(dir_ + "/cpu", 256, ProcFile::Layout::kWhole),
             ProcFile(dir_ + "/io", 256, ProcFile::Layout::kWhole),
             ProcFile(dir_ + "/memory", 256, ProcFile::Layout::kWhole),
             ProcFile(dir_ + "/irq", 256, ProcFile::Layout::kWhole)} {}

bool PressureCollector::OnProcfs() {
  if (on_procfs_ < 0) {
    struct statfs fs {};
    bool ok =
        ::statfs(dir_.c_str(), &fs) == 0 || (errno == ENOENT && ::statfs(root_.c_str(), &fs) == 0);
    on_procfs_ = ok && fs.f_type == PROC_SUPER_MAGIC ? 1 : 0;
  }
  return on_procfs_ == 1;
}

CollectResult PressureCollector::Collect(Sweep& out) {
  int found = 0;
  std::string failure;     // the first read error, or file without one valid line
  std::string first_skip;  // the first malformed line
  int skipped = 0;
  for (size_t r = 0; r < kResources.size(); ++r) {
    const Resource& res = kResources[r];
    ProcFile& file = files_[r];
    if (gone_[r]) continue;
    if (Status st = file.Read(); !st.ok()) {
      if (file.error_number() == ENOENT) {
        gone_[r] = OnProcfs();
        continue;
      }
      if (file.error_number() == EOPNOTSUPP) {
        return CollectResult::NoData(file.path() +
                                     ": PSI is disabled in this kernel (boot with psi=1)");
      }
      if (failure.empty()) failure = st.message();
      continue;
    }
    bool valid = false;
    bool seen_some = false, seen_full = false;
    std::string file_error;
    std::string_view rest = file.contents();
    for (int line_no = 1; !rest.empty(); ++line_no) {
      std::string_view line = NextLine(rest);
      if (TrimBlanks(line).empty()) continue;
      std::string_view kind;
      uint64_t total_us = 0;
      if (!ParsePsiLine(line, kind, total_us)) {
        if (file_error.empty()) {
          file_error = LineError(file.path(), line_no, "want \"some|full ... total=MICROSECONDS\"");
        }
        if (first_skip.empty()) first_skip = file_error;
        ++skipped;
        continue;
      }
      valid = true;
      bool& seen = kind == "some" ? seen_some : seen_full;
      if (seen) continue;  // a repeated line would make a duplicate series
      seen = true;
      std::string_view name = kind == "some" ? res.some_name : res.full_name;
      std::string_view help = kind == "some" ? res.some_help : res.full_help;
      if (name.empty()) continue;
      // Two divisions, as node_exporter, so that values match it to the last bit.
      out.Add(name, help, MetricType::kCounter, {},
              static_cast<double>(total_us) / 1000.0 / 1000.0);
    }
    if (valid) {
      ++found;
    } else if (failure.empty()) {
      failure = file_error.empty() ? file.path() + ": no \"some\" or \"full\" line" : file_error;
    }
  }
  if (!failure.empty()) return CollectResult::Failed(failure);
  if (found == 0) {
    return CollectResult::NoData("no " + dir_ +
                                 ": kernel without PSI (needs Linux >= 4.20 with CONFIG_PSI=y)");
  }
  if (skipped > 0) {
    return {CollectResult::Kind::kOk,
            "skipped " + std::to_string(skipped) + " malformed line(s); first: " + first_skip};
  }
  return CollectResult::Ok();
}

}  // namespace suanli::agent
