#include "exporters/scheduler/load_watcher.h"

#include "core/config.h"
#include "exporters/scheduler/json_writer.h"

namespace suanli::exporters {
namespace {

// The names load-watcher's Prometheus provider reports (node-mixin recording rules): ours
// measure the same thing, so dashboards and logs read alike.
constexpr const char* kCpuName = "instance:node_cpu:ratio";
constexpr const char* kMemoryName = "instance:node_memory_utilisation:ratio";

void WriteMetric(JsonWriter& w, const char* name, const char* type, const char* op,
                 const std::string& rollup, double ratio) {
  w.BeginObject();
  w.Key("name").String(name).Key("type").String(type).Key("operator").String(op);
  w.Key("rollup").String(rollup).Key("value").Number(ratio * 100);
  w.EndObject();
}

void WriteNode(JsonWriter& w, const capacity::NodeLoad& l, const std::string& rollup) {
  w.Key(l.instance).BeginObject();
  w.Key("metrics").BeginArray();
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
  w.Key("tags").BeginObject().EndObject();
  w.Key("metadata").BeginObject().Key("dataCenter").String(l.location.dc).EndObject();
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
  JsonWriter w;
  w.BeginObject().Key("timestamp").Int(end);
  w.Key("window").BeginObject();
  w.Key("duration")
      .String(rollup)
      .Key("start")
      .Int(end - window.count() / 1000)
      .Key("end")
      .Int(end);
  w.EndObject();
  w.Key("source").String(kWatcherSource);
  w.Key("data").BeginObject().Key("NodeMetricsMap").BeginObject();
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
  w.EndObject().EndObject().EndObject();
  if (!host.empty() && !found) return WatcherAnswer{404, ""};
  return WatcherAnswer{200, std::move(w).Take()};
}

}  // namespace suanli::exporters
