// `suanlictl snapshot`: asks a running aggregator for a snapshot of its store
// (POST /api/v1/admin/snapshot, which needs --web.enable-admin-api and, with credentials, scope
// admin) and prints the snapshot's name, the folder under <storage.path>/snapshots/.
// Thread-safety: one call at a time.
#pragma once

#include <ostream>

#include "ctl/aggregator_client.h"

namespace suanli::ctl {

int RunSnapshot(AggregatorClient& client, std::ostream& out, std::ostream& err);

}  // namespace suanli::ctl
