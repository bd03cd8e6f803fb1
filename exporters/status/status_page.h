// The aggregator's status page (GET /): one server-rendered HTML page for people, with the
// alliance, its regions and data centers (nodes, cores and utilization, free compute per
// precision, measured and estimated power, PUE, links, each row's freshness), small inline SVG
// charts of the last hours from the store's rollups of the recorded suanli_dc_* figures, and
// the aggregator's own state (storage, forwarding targets, HA elections).
//
// The capacity figures are rendered from the /api/v1/capacity document of the same snapshot,
// so the page shows exactly what the API answers: every figure is an element with
// data-json (the JSON pointer of the figure in the document's "data") and data-value (the
// number as the JSON has it), holding a human-readable text. Every outside string (region, dc,
// link names, URLs) is HTML-escaped. No framework and no outside request: one inline style
// sheet and a few lines of script (refreshing the page's <main> every refresh_seconds), both
// allowed by a per-response nonce in the Content-Security-Policy.
// Thread-safety: free functions over values; ReadStatusHistory uses the (thread-safe) store.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/capacity/capacity_model.h"
#include "aggregator/ingest/ha_tracker.h"
#include "aggregator/storage/store.h"
#include "core/status.h"
#include "exporters/remote_write/forwarder.h"

namespace suanli::exporters {

// One point of a chart: a rollup interval's start and its mean.
struct StatusPoint {
  int64_t t_ms = 0;
  double value = 0;
};

// The charted figures of a dc, a region or the alliance.
struct GroupHistory {
  std::vector<StatusPoint> cpu_utilization;                    // ratio 0-1, weighted by cores
  std::vector<StatusPoint> power_watts;                        // measured
  std::map<std::string, std::vector<StatusPoint>> free_flops;  // by precision
};

struct StatusHistory {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  rollup::Resolution resolution = rollup::Resolution::k5m;
  GroupHistory alliance;
  std::map<std::string, GroupHistory> regions;
  std::map<capacity::Location, GroupHistory> dcs;
  std::string error;  // set when the store could not be read: the page says so
};

// What the charts span, and at which rollup resolution they read it.
inline constexpr std::chrono::hours kStatusHistorySpan{6};
inline constexpr rollup::Resolution kStatusHistoryResolution = rollup::Resolution::k5m;

// The suanli_dc_* figures in the store over [now - span, now] at `resolution`, one point per
// rollup interval (its mean); regions and the alliance sum their dcs (utilization weighted by
// cores). They are in the store where this aggregator records its evaluations (capacity.record,
// on by default, or a `select: capacity` forward target) or a lower tier forwards them.
StatusHistory ReadStatusHistory(storage::Store& store, int64_t now_ms,
                                std::chrono::milliseconds span = kStatusHistorySpan,
                                rollup::Resolution resolution = kStatusHistoryResolution);

struct StatusPageInput {
  int64_t now_ms = 0;
  std::string version;
  // /api/v1/capacity's answer for the snapshot, unfiltered (CapacityJson(snapshot, {})).
  std::string capacity_json;
  StatusHistory history;
  std::string storage_path;
  storage::StoreStats store;
  bool store_healthy = true;
  std::vector<ForwardTargetState> forward;
  std::string ha_replica_label;  // empty: HA deduplication off
  std::vector<aggregator::HaElection> ha;
  int refresh_seconds = 30;
  std::string nonce;  // for the inline style and script (StatusPageNonce)
};

// The page. A capacity document that does not parse (it always should) is shown as an error
// on the page rather than failing the request.
std::string RenderStatusPage(const StatusPageInput& in);

// A fresh random nonce, and the Content-Security-Policy header value that allows only the
// page's own inline style and script with it, and requests to the page's own origin.
std::string StatusPageNonce();
std::string StatusPageSecurityPolicy(std::string_view nonce);

// `s` with &, <, >, " and ' replaced by character references (text and attribute values).
std::string EscapeHtml(std::string_view s);

inline constexpr const char* kHtmlContentType = "text/html; charset=utf-8";

}  // namespace suanli::exporters
