// The aggregator's admin endpoints, in the shape of Prometheus' admin API: served only with
// --web.enable-admin-api (web.enable_admin_api), and, where credentials are configured, to
// credentials holding scope `admin`.
//
// POST /api/v1/admin/snapshot: a consistent snapshot of the store under
// <storage.path>/snapshots/<name> (storage/snapshot.h), answered
// {"status":"success","data":{"name":"<name>"}}. With the admin API off it answers 503
// {"status":"error","errorType":"unavailable","error":"admin APIs disabled"}, as Prometheus does;
// a failed snapshot answers 500 with RocksDB's reason.
// Thread-safety: HandleSnapshot may run concurrently with anything else the store serves.
#pragma once

#include <string>

#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "core/http_server.h"

namespace suanli::aggregator {

// Where snapshots of the store at `storage_path` go.
std::string SnapshotDirectory(const std::string& storage_path);

HttpResponse HandleSnapshot(storage::Store& store, const std::string& storage_path, bool enabled,
                            const Clock& clock);

}  // namespace suanli::aggregator
