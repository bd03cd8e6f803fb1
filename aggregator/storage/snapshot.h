// Snapshots of a running store, as Prometheus makes them (POST /api/v1/admin/snapshot): a
// RocksDB checkpoint under <dir>/<name>, made of hard links to the store's SST files (so it
// takes seconds and little space even for a large store) plus copies of the small files
// (MANIFEST, OPTIONS, the live WAL). Starting an aggregator with that folder as its
// --storage.path restores it.
//
// Consistency: the checkpoint is one point in RocksDB's write order, taken while writes go on.
// Everything the store keeps is in RocksDB (the series index, closed chunks and rollups, the
// head's checkpointed open chunks and the head log that holds every acknowledged sample since),
// and an append is acknowledged only once its batch is in the WAL, so every sample acknowledged
// before CreateSnapshot was called is in the snapshot; the restored store rebuilds its head
// from it exactly as after a restart.
// Thread-safety: may run concurrently with every Store method.
#pragma once

#include <cstdint>
#include <string>

#include "aggregator/storage/store.h"
#include "core/status.h"

namespace suanli::storage {

// Prometheus' form: the UTC time as 20261205T150405Z, '-', 16 random hex digits.
std::string NewSnapshotName(int64_t now_ms);

// Creates `dir` (and its parents) if missing, then the snapshot <dir>/<name>, which must not
// exist. Internal for a store that is not a RocksDbStore.
Status CreateSnapshot(Store& store, const std::string& dir, const std::string& name);

}  // namespace suanli::storage
