#include "exporters/status/status_page.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

namespace suanli::exporters {
namespace {

using nlohmann::json;

// ---- history ----

// A dc's recorded figures at one rollup interval; NaN: not recorded then.
struct DcPoint {
  double cores = NAN;
  double utilization = NAN;
  double power = NAN;
  std::map<std::string, double> free;  // by precision
};

void AddPoint(std::vector<StatusPoint>& v, int64_t t, double value) {
  if (std::isfinite(value)) v.push_back({t, value});
}

// Regions and the alliance from their dcs, interval by interval.
struct GroupSum {
  double busy_cores = 0, cores = 0, power = 0;
  bool has_utilization = false, has_power = false;
  std::map<std::string, double> free;
  void Add(const DcPoint& p) {
    if (std::isfinite(p.cores) && std::isfinite(p.utilization)) {
      busy_cores += p.cores * p.utilization;
      cores += p.cores;
      has_utilization = true;
    }
    if (std::isfinite(p.power)) {
      power += p.power;
      has_power = true;
    }
    for (const auto& [precision, v] : p.free) free[precision] += v;
  }
  void To(int64_t t, GroupHistory& h) const {
    if (has_utilization && cores > 0) AddPoint(h.cpu_utilization, t, busy_cores / cores);
    if (has_power) AddPoint(h.power_watts, t, power);
    for (const auto& [precision, v] : free) AddPoint(h.free_flops[precision], t, v);
  }
};

// ---- formatting ----

// `fmt` with one double conversion.
std::string Printf(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// 1.23 TFLOPS, 456 W: three significant digits with an SI prefix.
std::string Si(double v, const char* unit) {
  static const char* kPrefixes[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
  int i = 0;
  double a = std::fabs(v);
  while (a >= 999.5 && i < 8) {
    a /= 1000;
    v /= 1000;
    ++i;
  }
  return Printf("%.3g", v) + " " + kPrefixes[i] + unit;
}

std::string Bytes(double v) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int i = 0;
  while (std::fabs(v) >= 1023.5 && i < 6) {
    v /= 1024;
    ++i;
  }
  return Printf("%.3g", v) + " " + kUnits[i];
}

std::string Percent(double ratio) { return Printf("%.1f %%", ratio * 100); }

std::string Seconds(double s) {
  if (std::fabs(s) < 120) return Printf("%.3g s", s);
  if (std::fabs(s) < 7200) return Printf("%.3g min", s / 60);
  if (std::fabs(s) < 2 * 86400) return Printf("%.3g h", s / 3600);
  return Printf("%.3g d", s / 86400);
}

std::string Count(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return Printf("%.0f", v);
  return Printf("%.3g", v);
}

std::string UtcTime(int64_t ms) {
  time_t t = static_cast<time_t>(rollup::FloorDiv(ms, 1000));
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

enum class Unit {
  kCount,
  kRatio,
  kFlops,
  kBytes,
  kBytesPerSecondAsBits,  // link rates: bytes/s in the document, bit/s as links are sold
  kWatts,
  kSeconds,
  kJoules,
  kPue,
  kTime
};

std::string Human(double v, Unit unit) {
  switch (unit) {
    case Unit::kCount:
      return Count(v);
    case Unit::kRatio:
      return Percent(v);
    case Unit::kFlops:
      return Si(v, "FLOPS");
    case Unit::kBytes:
      return Bytes(v);
    case Unit::kBytesPerSecondAsBits:
      return Si(v * 8, "bit/s");
    case Unit::kWatts:
      return Si(v, "W");
    case Unit::kSeconds:
      return Seconds(v);
    case Unit::kJoules:
      return Si(v / 3600, "Wh");
    case Unit::kPue:
      return Printf("%.2f", v);
    case Unit::kTime:
      return UtcTime(static_cast<int64_t>(std::llround(v * 1000)));
  }
  return Count(v);
}

// A JSON pointer's reference token.
std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The member `key` of an object, nullptr when absent or null.
const json* Member(const json* obj, std::string_view key) {
  if (obj == nullptr || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  if (it == obj->end() || it->is_null()) return nullptr;
  return &*it;
}

// Renders the document's figures; `out` is the page being written.
class Page {
 public:
  Page(const StatusPageInput& in, std::string* out) : in_(in), out_(*out) {}

  void Render();

 private:
  void Text(std::string_view s) { out_ += EscapeHtml(s); }
  void Raw(std::string_view s) { out_ += s; }

  // The figure at `pointer` (relative to the document's data) as an element carrying its JSON
  // value; a dash when the document has none.
  void Figure(const json* group, const std::string& pointer, std::string_view path, Unit unit);
  // The JSON value at `path` ("cpu/cores") below `group`.
  const json* At(const json* group, std::string_view path) const;

  void Sparkline(const std::vector<StatusPoint>* points, Unit unit, std::string_view what);
  const GroupHistory* HistoryOf(const json& group, const std::string& kind) const;

  void Header();
  void CapacityTable();
  void GroupRow(const json& group, const std::string& pointer, const std::string& kind);
  void LinksTable();
  void AggregatorState();
  void Script();

  const StatusPageInput& in_;
  std::string& out_;
  json doc_;
  const json* data_ = nullptr;
  std::vector<std::string> precisions_;
  double stale_after_seconds_ = 0;
};

const json* Page::At(const json* group, std::string_view path) const {
  const json* v = group;
  while (v != nullptr && !path.empty()) {
    size_t slash = path.find('/');
    v = Member(v, path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return v;
}

void Page::Figure(const json* group, const std::string& pointer, std::string_view path, Unit unit) {
  const json* v = At(group, path);
  if (v == nullptr || !v->is_number()) {
    Raw("<span class=\"na\">&ndash;</span>");
    return;
  }
  std::string full = pointer;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    full += "/" + PointerToken(path.substr(start, slash - start));
    start = slash + 1;
  }
  Raw("<span class=\"fig\" data-json=\"");
  Text(full);
  Raw("\" data-value=\"");
  Text(v->dump());
  Raw("\">");
  Text(Human(v->get<double>(), unit));
  Raw("</span>");
}

void Page::Sparkline(const std::vector<StatusPoint>* points, Unit unit, std::string_view what) {
  if (points == nullptr || points->empty()) {
    Raw("<span class=\"spark none\" data-points=\"0\" title=\"no recorded history\"></span>");
    return;
  }
  constexpr double kW = 120, kH = 28;
  const double span =
      std::max<double>(1, static_cast<double>(in_.history.to_ms - in_.history.from_ms));
  double lo = 0, hi = unit == Unit::kRatio ? 1 : 0;
  double min = points->front().value, max = min;
  for (const StatusPoint& p : *points) {
    min = std::min(min, p.value);
    max = std::max(max, p.value);
  }
  lo = std::min(lo, min);
  hi = std::max(hi, max);
  if (hi <= lo) hi = lo + 1;
  auto x = [&](const StatusPoint& p) {
    return 1 + (kW - 2) * std::clamp((p.t_ms - in_.history.from_ms) / span, 0.0, 1.0);
  };
  auto y = [&](const StatusPoint& p) { return kH - 2 - (kH - 4) * (p.value - lo) / (hi - lo); };
  Raw("<svg class=\"spark\" viewBox=\"0 0 120 28\" width=\"120\" height=\"28\" role=\"img\" "
      "data-points=\"" +
      std::to_string(points->size()) + "\"><title>");
  Text(std::string(what) + " over the last " + Seconds(span / 1000) + ": last " +
       Human(points->back().value, unit) + ", min " + Human(min, unit) + ", max " +
       Human(max, unit));
  Raw("</title>");
  if (points->size() == 1) {
    Raw(Printf("<circle cx=\"%.1f\"", x(points->front())) +
        Printf(" cy=\"%.1f\" r=\"2\"/>", y(points->front())));
  } else {
    Raw("<polyline points=\"");
    for (const StatusPoint& p : *points) Raw(Printf("%.1f,", x(p)) + Printf("%.1f ", y(p)));
    Raw("\"/>");
  }
  Raw("</svg>");
}

const GroupHistory* Page::HistoryOf(const json& group, const std::string& kind) const {
  if (kind == "alliance") return &in_.history.alliance;
  const json* region = Member(&group, "region");
  std::string r = region && region->is_string() ? region->get<std::string>() : "";
  if (kind == "region") {
    auto it = in_.history.regions.find(r);
    return it == in_.history.regions.end() ? nullptr : &it->second;
  }
  const json* dc = Member(&group, "dc");
  auto it = in_.history.dcs.find({r, dc && dc->is_string() ? dc->get<std::string>() : ""});
  return it == in_.history.dcs.end() ? nullptr : &it->second;
}

void Page::Header() {
  Raw("<header><h1>Suanli aggregator</h1><p>");
  Raw("Capacity at <span class=\"fig\" data-json=\"/timestamp\" data-value=\"");
  const json* ts = Member(data_, "timestamp");
  if (ts != nullptr) {
    Text(ts->dump());
    Raw("\">");
    Text(UtcTime(static_cast<int64_t>(std::llround(ts->get<double>() * 1000))));
  } else {
    Raw("\">&ndash;");
  }
  Raw("</span>; a node is stale after ");
  Figure(data_, "", "stale_after_seconds", Unit::kSeconds);
  Raw(" without a sample. The same figures as JSON: <a href=\"api/v1/capacity\">"
      "/api/v1/capacity</a>. Version ");
  Text(in_.version);
  Raw(". <span id=\"refresh\">Refreshes every ");
  Raw(std::to_string(in_.refresh_seconds));
  Raw(" s.</span></p></header>\n");
}

void Page::GroupRow(const json& group, const std::string& pointer, const std::string& kind) {
  const json* g = &group;
  const json* fresh = Member(g, "freshness_seconds");
  bool stale = fresh == nullptr || (fresh->is_number() && stale_after_seconds_ > 0 &&
                                    fresh->get<double>() > stale_after_seconds_);
  const GroupHistory* h = HistoryOf(group, kind);
  Raw("<tr class=\"" + kind + (stale ? " stale" : "") + "\" data-row=\"");
  Text(pointer.empty() ? "/alliance" : pointer);
  Raw("\"><th scope=\"row\">");
  if (kind == "alliance") {
    Raw("Alliance");
  } else if (kind == "region") {
    Raw("<span class=\"name\" data-json=\"");
    Text(pointer + "/region");
    Raw("\">");
    Text(Member(g, "region") ? Member(g, "region")->get<std::string>() : "");
    Raw("</span>");
  } else {
    Raw("<span class=\"name\" data-json=\"");
    Text(pointer + "/dc");
    Raw("\">");
    Text(Member(g, "dc") ? Member(g, "dc")->get<std::string>() : "");
    Raw("</span> <small data-json=\"");
    Text(pointer + "/region");
    Raw("\">");
    Text(Member(g, "region") ? Member(g, "region")->get<std::string>() : "");
    Raw("</small>");
  }
  if (stale) Raw(" <span class=\"badge\">stale</span>");
  Raw("</th><td>");
  Figure(g, pointer, "nodes/up", Unit::kCount);
  Raw("</td><td>");
  Figure(g, pointer, "nodes/stale", Unit::kCount);
  Raw("</td><td>");
  Figure(g, pointer, "nodes/gone", Unit::kCount);
  Raw("</td><td>");
  Figure(g, pointer, "freshness_seconds", Unit::kSeconds);
  Raw("<br><small>");
  Figure(g, pointer, "newest_sample_timestamp", Unit::kTime);
  Raw("</small></td><td>");
  Figure(g, pointer, "cpu/cores", Unit::kCount);
  Raw("</td><td>");
  Figure(g, pointer, "cpu/utilization_ratio", Unit::kRatio);
  Raw("<br>");
  Sparkline(h ? &h->cpu_utilization : nullptr, Unit::kRatio, "CPU utilization");
  Raw("</td><td>");
  Figure(g, pointer, "memory/available_bytes", Unit::kBytes);
  Raw("<br><small>of ");
  Figure(g, pointer, "memory/total_bytes", Unit::kBytes);
  Raw("</small></td><td>");
  Figure(g, pointer, "gpu/count", Unit::kCount);
  Raw("<br><small>");
  Figure(g, pointer, "gpu/utilization_ratio", Unit::kRatio);
  Raw(", ");
  Figure(g, pointer, "gpu/memory_used_bytes", Unit::kBytes);
  Raw(" of ");
  Figure(g, pointer, "gpu/memory_total_bytes", Unit::kBytes);
  Raw(", ");
  Figure(g, pointer, "gpu/power_watts", Unit::kWatts);
  Raw("</small></td>");
  for (const std::string& p : precisions_) {
    std::string base = "compute/" + p;
    Raw("<td>");
    if (At(g, base) == nullptr) {
      Raw("<span class=\"na\">&ndash;</span></td>");
      continue;
    }
    Figure(g, pointer, base + "/free_flops", Unit::kFlops);
    Raw("<br><small>of ");
    Figure(g, pointer, base + "/capacity_flops", Unit::kFlops);
    if (At(g, base + "/free_ratio") != nullptr) {
      Raw(" (");
      Figure(g, pointer, base + "/free_ratio", Unit::kRatio);
      Raw(" free)");
    }
    Raw("</small><br>");
    const std::vector<StatusPoint>* free = nullptr;
    if (h != nullptr) {
      auto it = h->free_flops.find(p);
      if (it != h->free_flops.end()) free = &it->second;
    }
    Sparkline(free, Unit::kFlops, "free " + p);
    Raw("</td>");
  }
  Raw("<td>");
  Figure(g, pointer, "power/watts", Unit::kWatts);
  Raw("<br><small>");
  Figure(g, pointer, "power/nodes_reporting", Unit::kCount);
  Raw(" nodes");
  if (At(g, "power/shared_watts") != nullptr) {
    Raw(", ");
    Figure(g, pointer, "power/shared_watts", Unit::kWatts);
    Raw(" from shared chassis");
  }
  Raw("</small><br>");
  Sparkline(h ? &h->power_watts : nullptr, Unit::kWatts, "measured power");
  Raw("</td><td>");
  // Nodes without a meter, from the agents' utilization model: apart from the measured power.
  Figure(g, pointer, "power/estimated_watts", Unit::kWatts);
  if (At(g, "power/estimated_nodes") != nullptr) {
    Raw("<br><small>");
    Figure(g, pointer, "power/estimated_nodes", Unit::kCount);
    Raw(" nodes</small>");
  }
  if (At(g, "power/estimated_energy_joules_total") != nullptr) {
    Raw("<br><small>");
    Figure(g, pointer, "power/estimated_energy_joules_total", Unit::kJoules);
    Raw("</small>");
  }
  Raw("</td><td>");
  Figure(g, pointer, "power/facility_watts", Unit::kWatts);
  Raw("<br><small>PUE ");
  Figure(g, pointer, "power/pue", Unit::kPue);
  Raw("</small></td><td>");
  Figure(g, pointer, "power/energy_joules_total", Unit::kJoules);
  Raw("</td></tr>\n");
}

void Page::CapacityTable() {
  Raw("<section><h2>Capacity</h2><div class=\"scroll\"><table id=\"capacity\"><thead><tr>"
      "<th>Where</th><th>Nodes up</th><th>Stale</th><th>Gone</th><th>Freshness</th>"
      "<th>Cores</th><th>CPU</th><th>Memory free</th><th>GPUs</th>");
  for (const std::string& p : precisions_) {
    Raw("<th>Free ");
    Text(p);
    Raw("</th>");
  }
  Raw("<th>Power measured</th><th>Power estimated</th><th>Facility</th><th>Energy</th>"
      "</tr></thead><tbody>\n");
  if (const json* a = Member(data_, "alliance")) GroupRow(*a, "/alliance", "alliance");
  const json* regions = Member(data_, "regions");
  const json* dcs = Member(data_, "dcs");
  // Each region's row, then its dcs (both arrays are sorted by region).
  size_t d = 0;
  auto region_of = [](const json& g) {
    const json* r = Member(&g, "region");
    return r && r->is_string() ? r->get<std::string>() : std::string();
  };
  // The dcs up to and including `region` (all that are left: nullptr).
  auto dc_rows_through = [&](const std::string* region) {
    while (dcs && dcs->is_array() && d < dcs->size() &&
           (region == nullptr || region_of((*dcs)[d]) <= *region)) {
      GroupRow((*dcs)[d], "/dcs/" + std::to_string(d), "dc");
      ++d;
    }
  };
  for (size_t r = 0; regions && regions->is_array() && r < regions->size(); ++r) {
    GroupRow((*regions)[r], "/regions/" + std::to_string(r), "region");
    std::string name = region_of((*regions)[r]);
    dc_rows_through(&name);
  }
  dc_rows_through(nullptr);
  Raw("</tbody></table></div>");
  if (!in_.history.error.empty()) {
    Raw("<p class=\"warn\">History not read from the store: ");
    Text(in_.history.error);
    Raw("</p>");
  } else if (in_.history.dcs.empty()) {
    Raw("<p class=\"note\">No recorded history: the charts draw the suanli_dc_* figures the "
        "store holds, which this aggregator records every <code>capacity.evaluation_interval"
        "</code> (unless <code>capacity.record</code> is off and no forward target has "
        "<code>select: capacity</code>), or which a lower tier forwards to it.</p>");
  } else {
    Raw("<p class=\"note\">Charts: the last ");
    Text(Seconds(static_cast<double>(in_.history.to_ms - in_.history.from_ms) / 1000));
    Raw(" from the ");
    Text(rollup::ResolutionName(in_.history.resolution));
    Raw(" rollups of the recorded figures.</p>");
  }
  Raw("</section>\n");
}

void Page::LinksTable() {
  Raw("<section><h2>Links</h2><div class=\"scroll\"><table id=\"links\"><thead><tr>"
      "<th>Data center</th><th>Link</th><th>Peer</th><th>Capacity</th><th>Receive</th>"
      "<th>Transmit</th><th>Utilization</th></tr></thead><tbody>\n");
  size_t rows = 0;
  const json* dcs = Member(data_, "dcs");
  for (size_t d = 0; dcs && dcs->is_array() && d < dcs->size(); ++d) {
    const json* links = Member(&(*dcs)[d], "links");
    for (size_t i = 0; links && links->is_array() && i < links->size(); ++i) {
      const json* l = &(*links)[i];
      std::string pointer = "/dcs/" + std::to_string(d) + "/links/" + std::to_string(i);
      const json* dc = Member(&(*dcs)[d], "dc");
      const json* name = Member(l, "link");
      const json* peer = Member(l, "peer_dc");
      Raw("<tr><th scope=\"row\">");
      Text(dc && dc->is_string() ? dc->get<std::string>() : "");
      Raw("</th><td data-json=\"");
      Text(pointer + "/link");
      Raw("\">");
      Text(name && name->is_string() ? name->get<std::string>() : "");
      Raw("</td><td data-json=\"");
      Text(pointer + "/peer_dc");
      Raw("\">");
      Text(peer && peer->is_string() ? peer->get<std::string>() : "");
      Raw("</td><td>");
      Figure(l, pointer, "capacity_bytes_per_second", Unit::kBytesPerSecondAsBits);
      Raw("</td><td>");
      Figure(l, pointer, "receive_bytes_per_second", Unit::kBytesPerSecondAsBits);
      Raw("</td><td>");
      Figure(l, pointer, "transmit_bytes_per_second", Unit::kBytesPerSecondAsBits);
      Raw("</td><td>");
      Figure(l, pointer, "utilization_ratio", Unit::kRatio);
      Raw("</td></tr>\n");
      ++rows;
    }
  }
  if (rows == 0) Raw("<tr><td colspan=\"7\">No links declared.</td></tr>\n");
  Raw("</tbody></table></div></section>\n");
}

// A figure of the aggregator's own state: data-status names it.
std::string StateFigure(std::string_view name, double v, Unit unit) {
  char value[32];
  std::snprintf(value, sizeof value, "%.17g", v);
  return "<span class=\"fig\" data-status=\"" + EscapeHtml(name) + "\" data-value=\"" + value +
         "\">" + EscapeHtml(Human(v, unit)) + "</span>";
}

// A URL without user information and query, which may hold secrets.
std::string UrlForDisplay(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  size_t scheme = out.find("://");
  size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  size_t at = out.find('@', host);
  if (at != std::string::npos && at < out.find('/', host)) out.erase(host, at + 1 - host);
  return out;
}

void Page::AggregatorState() {
  const storage::StoreStats& s = in_.store;
  Raw("<section><h2>This aggregator</h2><h3>Storage</h3><div class=\"scroll\"><table "
      "id=\"storage\"><tbody>");
  Raw("<tr><th scope=\"row\">Path</th><td>");
  Text(in_.storage_path);
  Raw("</td></tr><tr><th scope=\"row\">State</th><td data-status=\"store.healthy\" "
      "data-value=\"");
  Raw(in_.store_healthy ? "1\">writable" : "0\" class=\"bad\">failed: refusing writes");
  Raw("</td></tr>");
  const std::pair<const char*, std::pair<const char*, double>> rows[] = {
      {"Series", {"store.series", double(s.series)}},
      {"Series with an open chunk", {"store.head_series", double(s.head_series)}},
      {"Samples refused: too old", {"store.rejected_too_old", double(s.rejected_too_old)}},
      {"Batches refused: series limit",
       {"store.rejected_series_limit", double(s.rejected_series_limit)}},
      {"Batches refused: labels limit",
       {"store.rejected_labels_limit", double(s.rejected_labels_limit)}},
      {"Partitions dropped by retention",
       {"store.partitions_dropped", double(s.partitions_dropped)}},
      {"Head checkpoints", {"store.checkpoints", double(s.checkpoints)}},
  };
  Raw("<tr><th scope=\"row\">On disk</th><td>" +
      StateFigure("store.disk_bytes", double(s.disk_bytes), Unit::kBytes) + "</td></tr>");
  for (const auto& [label, fig] : rows) {
    Raw(std::string("<tr><th scope=\"row\">") + label + "</th><td>" +
        StateFigure(fig.first, fig.second, Unit::kCount) + "</td></tr>");
  }
  Raw("</tbody></table></div>\n<h3>Forwarding</h3>");
  if (in_.forward.empty()) {
    Raw("<p id=\"forwarding\">No forward targets.</p>\n");
  } else {
    Raw("<div class=\"scroll\"><table id=\"forwarding\"><thead><tr><th>Target</th><th>Select</th>"
        "<th>URL</th><th>Backlog</th><th>State</th><th>Last success</th><th>Samples sent</th>"
        "</tr></thead><tbody>\n");
    for (const ForwardTargetState& f : in_.forward) {
      const std::string key = "forward." + f.name;
      Raw("<tr data-target=\"");
      Text(f.name);
      Raw("\"><th scope=\"row\">");
      Text(f.name);
      Raw("</th><td>");
      Text(f.select);
      Raw("</td><td>");
      Text(UrlForDisplay(f.url));
      Raw("</td><td>" + StateFigure(key + ".backlog_seconds", f.backlog_seconds, Unit::kSeconds));
      Raw("</td><td data-status=\"");
      Text(key + ".blocked");
      Raw(f.blocked ? "\" data-value=\"1\" class=\"bad\">blocked (401, 403, 404 or 3xx: check "
                      "credentials and URL)"
                    : "\" data-value=\"0\">sending");
      Raw("</td><td>");
      if (f.last_success_seconds > 0) {
        Raw(StateFigure(key + ".last_success", f.last_success_seconds, Unit::kTime));
      } else {
        Raw("never");
      }
      Raw("</td><td>" + StateFigure(key + ".samples_sent", f.samples_sent, Unit::kCount) +
          "</td></tr>\n");
    }
    Raw("</tbody></table></div>\n");
  }
  Raw("<h3>HA pairs</h3>");
  if (in_.ha_replica_label.empty()) {
    Raw("<p id=\"ha\">HA deduplication is off (no <code>ha.replica_label</code>).</p>\n");
  } else {
    Raw("<p>Replica label <code>");
    Text(in_.ha_replica_label);
    Raw("</code>.</p>");
    Raw("<div class=\"scroll\"><table id=\"ha\"><thead><tr><th>Region</th><th>Data center</th>"
        "<th>Shard</th><th>Elected replica</th><th>Last heard</th></tr></thead><tbody>\n");
    for (const aggregator::HaElection& e : in_.ha) {
      Raw("<tr><td>");
      Text(e.region);
      Raw("</td><td>");
      Text(e.dc);
      Raw("</td><td>");
      Text(e.shard);
      Raw("</td><td class=\"replica\">");
      Text(e.replica);
      Raw("</td><td>");
      Text(Seconds(static_cast<double>(in_.now_ms - e.last_heard_ms) / 1000) + " ago");
      Raw("</td></tr>\n");
    }
    if (in_.ha.empty()) Raw("<tr><td colspan=\"5\">No pair heard yet.</td></tr>\n");
    Raw("</tbody></table></div>\n");
  }
  Raw("</section>\n");
}

// Replaces <main> with a fresh copy of the page every refresh_seconds, while the page is
// visible; says when that fails (credentials expired, aggregator down). The document's
// data-refreshed counts the replacements.
void Page::Script() {
  Raw("<script nonce=\"" + EscapeHtml(in_.nonce) + "\">\n");
  Raw("(function () {\n"
      "  var root = document.documentElement, refreshed = 0;\n"
      "  function say(text) { document.getElementById('refresh').textContent = text; }\n"
      "  root.setAttribute('data-refresh', 'on');\n"
      "  setInterval(function () {\n"
      "    if (document.hidden) return;\n"
      "    fetch(location.href, {cache: 'no-store', credentials: 'same-origin'})\n"
      "      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); "
      "return r.text(); })\n"
      "      .then(function (t) {\n"
      "        var fresh = new DOMParser().parseFromString(t, 'text/html').querySelector('main');\n"
      "        if (!fresh) throw new Error('not a status page');\n"
      "        document.querySelector('main').replaceWith(fresh);\n"
      "        root.setAttribute('data-refreshed', String(++refreshed));\n"
      "        say('Updated ' + new Date().toLocaleTimeString() + '.');\n"
      "      })\n"
      "      .catch(function (e) { say('Refresh failed: ' + e.message + '.'); });\n"
      "  }, " +
      std::to_string(std::max(1, in_.refresh_seconds) * 1000) + ");\n})();\n</script>\n");
}

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:8px;max-width:1600px;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.2em;margin:1em 0 .3em}h3{font-size:1em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;white-space:nowrap}
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
th[scope=row],thead th{text-align:left}
thead th{position:sticky;top:0;background:#f4f4f4}
#capacity th[scope=row]{position:sticky;left:0;z-index:1;background:#fff;white-space:normal;
min-width:7em;max-width:16em;overflow-wrap:anywhere}
#storage td{white-space:normal;overflow-wrap:anywhere}
#capacity tr.alliance>*{background:#eef3fb;font-weight:600}
#capacity tr.region>*{background:#f7f9fc}
tr.dc th[scope=row]{padding-left:1.5em}
tr.stale{color:#888}
.badge{font-size:.75em;padding:0 4px;border-radius:3px;background:#c60;color:#fff}
.bad{color:#b00;font-weight:600}.na{color:#aaa}small{color:#666}
.note,.warn{color:#555;font-size:.9em}.warn{color:#b00}
svg.spark{display:inline-block;vertical-align:middle}
svg.spark polyline{fill:none;stroke:#36c;stroke-width:1.5}svg.spark circle{fill:#36c}
@media (max-width:600px){body{font-size:13px;padding:4px}}
)";

void Page::Render() {
  Raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Suanli aggregator</title>\n<link rel=\"icon\" href=\"data:,\">\n<style nonce=\"" +
      EscapeHtml(in_.nonce) + "\">");
  Raw(kStyle);
  Raw("</style></head><body>\n<main>\n");
  doc_ = json::parse(in_.capacity_json, nullptr, /*allow_exceptions=*/false);
  data_ = doc_.is_discarded() ? nullptr : Member(&doc_, "data");
  if (data_ == nullptr || !data_->is_object()) {
    Raw("<p class=\"warn\">The capacity document could not be read.</p>\n");
    data_ = nullptr;
  } else {
    if (const json* s = Member(data_, "stale_after_seconds"); s && s->is_number()) {
      stale_after_seconds_ = s->get<double>();
    }
    std::set<std::string> precisions;
    auto collect = [&](const json* g) {
      const json* c = Member(g, "compute");
      if (c == nullptr || !c->is_object()) return;
      for (auto it = c->begin(); it != c->end(); ++it) precisions.insert(it.key());
    };
    collect(Member(data_, "alliance"));
    for (const char* list : {"regions", "dcs"}) {
      const json* a = Member(data_, list);
      for (size_t i = 0; a && a->is_array() && i < a->size(); ++i) collect(&(*a)[i]);
    }
    precisions_.assign(precisions.begin(), precisions.end());
    Header();
    CapacityTable();
    LinksTable();
  }
  AggregatorState();
  Raw("</main>\n");
  Script();
  Raw("</body></html>\n");
}

}  // namespace

StatusHistory ReadStatusHistory(storage::Store& store, int64_t now_ms,
                                std::chrono::milliseconds span, rollup::Resolution resolution) {
  StatusHistory h;
  h.from_ms = now_ms - span.count();
  h.to_ms = now_ms;
  h.resolution = resolution;
  std::map<capacity::Location, std::map<int64_t, DcPoint>> by_dc;
  auto read = [&](const char* name, auto&& put) {
    if (!h.error.empty()) return;
    auto r = store.SelectRecords({{storage::MatcherSpec::kEqual, "__name__", name}}, h.from_ms,
                                 now_ms, resolution);
    if (!r.ok()) {
      h.error = std::string(name) + ": " + r.status().message();
      return;
    }
    for (const storage::SeriesRecords& s : *r) {
      capacity::Location loc{std::string(s.labels.Get("region")), std::string(s.labels.Get("dc"))};
      auto& points = by_dc[loc];
      for (const rollup::Record& rec : s.records) {
        if (rec.count > 0) put(points[rec.start], s.labels, rec.sum / double(rec.count));
      }
    }
  };
  read("suanli_dc_cpu_cores", [](DcPoint& p, const Labels&, double v) { p.cores = v; });
  read("suanli_dc_cpu_utilization_ratio",
       [](DcPoint& p, const Labels&, double v) { p.utilization = v; });
  read("suanli_dc_power_watts", [](DcPoint& p, const Labels&, double v) { p.power = v; });
  read("suanli_dc_compute_free_flops",
       [](DcPoint& p, const Labels& l, double v) { p.free[std::string(l.Get("precision"))] = v; });
  if (!h.error.empty()) return h;
  std::map<std::string, std::map<int64_t, GroupSum>> regions;
  std::map<int64_t, GroupSum> alliance;
  for (const auto& [loc, points] : by_dc) {
    GroupHistory& dc = h.dcs[loc];
    for (const auto& [t, p] : points) {
      AddPoint(dc.cpu_utilization, t, p.utilization);
      AddPoint(dc.power_watts, t, p.power);
      for (const auto& [precision, v] : p.free) AddPoint(dc.free_flops[precision], t, v);
      regions[loc.region][t].Add(p);
      alliance[t].Add(p);
    }
  }
  for (const auto& [region, sums] : regions) {
    for (const auto& [t, sum] : sums) sum.To(t, h.regions[region]);
  }
  for (const auto& [t, sum] : alliance) sum.To(t, h.alliance);
  return h;
}

std::string RenderStatusPage(const StatusPageInput& in) {
  std::string out;
  out.reserve(64 << 10);
  Page(in, &out).Render();
  return out;
}

std::string StatusPageNonce() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j, v >>= 4) out.push_back(kHex[v & 0xf]);
  }
  return out;
}

std::string StatusPageSecurityPolicy(std::string_view nonce) {
  std::string n(nonce);
  return "default-src 'none'; style-src 'nonce-" + n + "'; script-src 'nonce-" + n +
         "'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'";
}

std::string EscapeHtml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace suanli::exporters
