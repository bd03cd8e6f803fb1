#include "exporters/scheduler/load_watcher.h"

#include "core/config.h"
#include "exporters/scheduler/json_output.h"

namespace suanli::exporters {
namespace {

using json::IntMember;
using json::Key;
using json::NumberMember;
using json::StringMember;
using json::Writer;

// The names load-watcher's Prometheus provider reports (node-mixin recording rules): ours
// measure the same thing, so dashboards and logs read alike.
constexpr const char* kCpuName = "instance:node_cpu:ratio";
constexpr const char* kMemoryName = "instance:node_memory_utilisation:ratio";

void WriteMetric(Writer& w, const char* name, const char* type, const char* op,
                 const std::string& rollup, double ratio) {
  w.StartObject();
  StringMember(w, "name", name);
  StringMember(w, "type", type);
  StringMember(w, "operator", op);
  StringMember(w, "rollup", rollup);
  NumberMember(w, "value", ratio * 100);
  w.EndObject();
}

void WriteNode(Writer& w, const capacity::NodeLoad& l, const std::string& rollup) {
  Key(w, l.instance);
  w.StartObject();
  Key(w, "metrics");
  w.StartArray();
  struct Kind {
    const char* name;
    const char* type;
    const capacity::WindowStats* stats;
  };
  const Kind kinds[] = {{kCpuName, "CPU", &l.cpu}, {kMemoryName, "Memory", &l.memory}};
  for (const Kind& k : kinds) {
    if (k.stats->samples > 0) WriteMetric(w, k.name, k.type, "Latest", rollup, k.stats->latest);
  }
  for (const Kind& k : kinds) {
    if (k.stats->samples > 0) WriteMetric(w, k.name, k.type, "AVG", rollup, k.stats->mean);
  }
  for (const Kind& k : kinds) {
    if (k.stats->samples > 0) WriteMetric(w, k.name, k.type, "STD", rollup, k.stats->stddev);
  }
  w.EndArray();
  Key(w, "tags");
  w.StartObject();
  w.EndObject();
  Key(w, "metadata");
  w.StartObject();
  StringMember(w, "dataCenter", l.location.dc);
  w.EndObject();
  w.EndObject();
}

}  // namespace

WatcherAnswer WatcherMetricsJson(const std::vector<capacity::NodeLoad>& loads, int64_t now_ms,
                                 std::chrono::milliseconds window,
                                 const std::map<std::string, std::string>& query) {
  std::string host;
  if (auto it = query.find("host"); it != query.end()) host = it->second;
  const std::string rollup = FormatDuration(window);
  const int64_t end = now_ms / 1000;
  rapidjson::StringBuffer out;
  Writer w(out);
  w.StartObject();
  IntMember(w, "timestamp", end);
  Key(w, "window");
  w.StartObject();
  StringMember(w, "duration", rollup);
  IntMember(w, "start", end - window.count() / 1000);
  IntMember(w, "end", end);
  w.EndObject();
  StringMember(w, "source", kWatcherSource);
  Key(w, "data");
  w.StartObject();
  Key(w, "NodeMetricsMap");
  w.StartObject();
  bool found = false;
  const std::string* previous = nullptr;
  for (const capacity::NodeLoad& l : loads) {
    if (!host.empty() && l.instance != host) continue;
    if (l.cpu.samples == 0 && l.memory.samples == 0) continue;  // nothing measured yet
    // One entry per name: the same instance in two dcs would be two keys of one JSON object.
    if (previous && *previous == l.instance) continue;
    previous = &l.instance;
    WriteNode(w, l, rollup);
    found = true;
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  if (!host.empty() && !found) return WatcherAnswer{404, ""};
  return WatcherAnswer{200, json::Text(out)};
}

}  // namespace suanli::exporters
