#include "aggregator/admin_api.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "aggregator/storage/snapshot.h"
#include "exporters/scheduler/capacity_json.h"

namespace suanli::aggregator {

std::string SnapshotDirectory(const std::string& storage_path) {
  return storage_path + "/snapshots";
}

HttpResponse HandleSnapshot(storage::Store& store, const std::string& storage_path, bool enabled,
                            const Clock& clock) {
  HttpResponse resp;
  resp.content_type = exporters::kJsonContentType;
  if (!enabled) {
    resp.status = 503;
    resp.body = exporters::JsonError("unavailable", "admin APIs disabled");
    return resp;
  }
  const std::string dir = SnapshotDirectory(storage_path);
  const std::string name = storage::NewSnapshotName(clock.NowUnixMs());
  const auto start = std::chrono::steady_clock::now();
  if (Status st = storage::CreateSnapshot(store, dir, name); !st.ok()) {
    spdlog::error("snapshot failed dir={} err=\"{}\"", dir, st.message());
    resp.status = 500;
    resp.body = exporters::JsonError("internal", "snapshot failed: " + st.message());
    return resp;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("snapshot created path={}/{} duration_seconds={:.3f}", dir, name, seconds);
  // The name holds only [0-9A-Za-z-]: nothing to escape.
  resp.body = R"({"status":"success","data":{"name":")" + name + R"("}})";
  return resp;
}

}  // namespace suanli::aggregator
