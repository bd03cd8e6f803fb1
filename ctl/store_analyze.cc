#include "ctl/store_analyze.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "aggregator/storage/head_log.h"
#include "ctl/progress.h"
#include "ctl/table.h"

namespace suanli::ctl {
namespace {

using storage::FamilyInfo;
using storage::FamilyKind;

constexpr const char* kResolutionNames[] = {"raw", "1m", "5m", "1h"};
enum Row { kRaw = 0, k1m, k5m, k1h, kHead, kIndex, kRows };

struct SeriesInfo {
  uint32_t metric = 0, dc = 0;  // into the interned names
  bool known = false;
};

// Interns strings into dense ids.
struct Interner {
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> names;
  uint32_t Id(const std::string& s) {
    auto [it, added] = ids.try_emplace(s, static_cast<uint32_t>(names.size()));
    if (added) names.push_back(s);
    return it->second;
  }
};

void Cover(ResolutionFigures* f, int64_t window_start) {
  f->min_ms = std::min(f->min_ms, window_start);
  f->max_ms = std::max(f->max_ms, window_start + storage::kStoreWindowMs);
}

template <typename T>
void SortAndCut(std::vector<T>* v, auto key) {
  std::sort(v->begin(), v->end(), [&](const T& a, const T& b) {
    return key(a) != key(b) ? key(a) > key(b) : a.name < b.name;
  });
}

std::string Range(const ResolutionFigures& f) {
  if (f.min_ms > f.max_ms) return "-";
  return storage::FormatUtc(f.min_ms) + " .. " + storage::FormatUtc(f.max_ms);
}

}  // namespace

Result<AnalyzeReport> AnalyzeStore(storage::StoreReader& reader, const ProgressFn& progress) {
  AnalyzeReport report;
  report.path = reader.path();
  report.resolutions.resize(kRows);
  for (int r = 0; r < 4; ++r) report.resolutions[r].name = kResolutionNames[r];
  report.resolutions[kHead].name = "head";
  report.resolutions[kIndex].name = "index";

  uint64_t total = 0, done = 0;
  for (const FamilyInfo& f : reader.families()) total += f.estimated_keys;
  auto tick = [&](const std::string& what) {
    if (progress && (++done & 1023) == 0) progress(done, total, what);
  };

  // The index: every series, its metric and dc, its labels.
  Interner metrics, dcs;
  std::vector<SeriesInfo> series;  // by id
  std::unordered_map<std::string, std::unordered_set<std::string>> values_of;
  std::unordered_map<std::string, uint64_t> series_with_label;
  std::unordered_map<std::string, uint64_t> pairs;
  Status bad_series = Status::Ok();
  for (const FamilyInfo& f : reader.families()) {
    if (f.kind == FamilyKind::kIndex) {
      ResolutionFigures& fig = report.resolutions[kIndex];
      ++fig.families;
      fig.sst_bytes += f.sst_bytes;
      RETURN_IF_ERROR(reader.ForEach(f, [&](std::string_view key, std::string_view value) {
        tick("index");
        ++fig.keys;
        fig.value_bytes += value.size();
        uint64_t id;
        if (!storage::ParseSeriesKey(key, &id)) return true;  // the format key
        Labels labels;
        if (!storage::DecodeLabelsBlob(value, &labels)) {
          bad_series = InvalidArgument("series " + std::to_string(id) +
                                       ": its labels do not decode (run suanlictl store verify)");
          return false;
        }
        if (id >= series.size()) series.resize(std::max<size_t>(id + 1, series.size() * 2));
        SeriesInfo& s = series[id];
        s.known = true;
        s.metric = metrics.Id(std::string(labels.MetricName()));
        s.dc = dcs.Id(std::string(labels.Get("dc")));
        for (const Label& l : labels.items()) {
          values_of[l.name].insert(l.value);
          ++series_with_label[l.name];
          ++pairs[l.name + "=\"" + l.value + "\""];
        }
        ++fig.rows;
        ++report.series;
        return true;
      }));
      RETURN_IF_ERROR(bad_series);
    }
  }

  std::vector<uint64_t> samples_of(series.size());
  auto add_samples = [&](uint64_t id, uint64_t n) {
    if (id < series.size() && series[id].known) {
      samples_of[id] += n;
    } else {
      report.unknown_series_samples += n;
    }
  };

  for (const FamilyInfo& f : reader.families()) {
    if (f.kind == FamilyKind::kPartition) {
      const int r = static_cast<int>(f.resolution);
      ResolutionFigures& fig = report.resolutions[r];
      ++fig.families;
      fig.sst_bytes += f.sst_bytes;
      RETURN_IF_ERROR(reader.ForEach(f, [&](std::string_view key, std::string_view value) {
        tick(f.name);
        ++fig.keys;
        fig.value_bytes += value.size();
        uint64_t id;
        int64_t window;
        if (!storage::ParsePartitionKey(key, &id, &window)) return true;
        Cover(&fig, window);
        const uint64_t rows = storage::ValueRowCount(value).value_or(0);
        fig.rows += rows;
        if (r == 0) add_samples(id, rows);
        return true;
      }));
    } else if (f.kind == FamilyKind::kHead) {
      ResolutionFigures& fig = report.resolutions[kHead];
      ++fig.families;
      fig.sst_bytes += f.sst_bytes;
      RETURN_IF_ERROR(reader.ForEach(f, [&](std::string_view key, std::string_view value) {
        tick("head");
        ++fig.keys;
        fig.value_bytes += value.size();
        uint64_t id, seq;
        int64_t window;
        std::string_view chunk;
        if (storage::ParseHeadChunk(key, value, &id, &window, &chunk)) {
          Cover(&fig, window);
          const uint64_t n = storage::ValueRowCount(chunk).value_or(0);
          fig.rows += n;
          report.head_samples += n;
          add_samples(id, n);
        } else if (storage::ParseLogKey(key, &seq) && seq >= reader.replay_from()) {
          // Batches before replay_from are in chunks already (kept for forwarding cursors).
          storage::ReadHeadLog(value, [&](uint64_t sid, int64_t ts, uint64_t) {
            Cover(&fig, rollup::IntervalStart(ts, storage::kStoreWindowMs));
            ++fig.rows;
            ++report.head_samples;
            add_samples(sid, 1);
            return true;
          });
        }
        return true;
      }));
    }
  }

  // Per metric and per dc.
  std::vector<GroupFigures> by_metric(metrics.names.size()), by_dc(dcs.names.size());
  for (size_t i = 0; i < by_metric.size(); ++i) by_metric[i].name = metrics.names[i];
  for (size_t i = 0; i < by_dc.size(); ++i) {
    by_dc[i].name = dcs.names[i].empty() ? "(no dc)" : dcs.names[i];
  }
  for (size_t id = 0; id < series.size(); ++id) {
    if (!series[id].known) continue;
    by_metric[series[id].metric].series++;
    by_metric[series[id].metric].samples += samples_of[id];
    by_dc[series[id].dc].series++;
    by_dc[series[id].dc].samples += samples_of[id];
    report.samples += samples_of[id];
  }
  report.samples += report.unknown_series_samples;
  SortAndCut(&by_metric, [](const GroupFigures& g) { return g.series; });
  SortAndCut(&by_dc, [](const GroupFigures& g) { return g.series; });
  report.metrics = std::move(by_metric);
  report.dcs = std::move(by_dc);
  for (const auto& [name, values] : values_of) {
    report.labels.push_back({name, values.size(), series_with_label[name]});
  }
  SortAndCut(&report.labels, [](const LabelFigures& l) { return l.values; });
  for (const auto& [pair, n] : pairs) report.label_pairs.push_back({pair, n, 0});
  SortAndCut(&report.label_pairs, [](const GroupFigures& g) { return g.series; });
  return report;
}

std::string RenderAnalyzeReport(const AnalyzeReport& r, size_t limit) {
  using A = Table::Align;
  std::string out;
  out += "Store: " + r.path + "\n";
  out += "Series: " + FormatCount(r.series) + "\n";
  out +=
      "Samples: " + FormatCount(r.samples) + " (" + FormatCount(r.head_samples) + " in the head)\n";
  if (r.unknown_series_samples > 0) {
    out += "Samples of series no longer in the index: " + FormatCount(r.unknown_series_samples) +
           " (forgotten past retention; they go when their partitions drop)\n";
  }

  out += "\nBytes per resolution:\n";
  Table res({{"RESOLUTION"},
             {"FAMILIES", A::kRight},
             {"KEYS", A::kRight},
             {"ROWS", A::kRight},
             {"SST BYTES", A::kRight},
             {"VALUE BYTES", A::kRight},
             {"BYTES/ROW", A::kRight},
             {"RANGE"}});
  for (const ResolutionFigures& f : r.resolutions) {
    res.AddRow({f.name, FormatCount(f.families), FormatCount(f.keys), FormatCount(f.rows),
                FormatBytes(double(f.sst_bytes)), FormatBytes(double(f.value_bytes)),
                f.rows > 0 ? FormatBytes(double(f.value_bytes) / double(f.rows)) : "-", Range(f)});
  }
  out += res.Render();
  out +=
      "(ROWS: samples for raw and head, records for rollups, series for the index; SST "
      "bytes are compressed, value bytes as encoded)\n";

  auto groups = [&](const std::string& title, const std::string& column,
                    const std::vector<GroupFigures>& v, bool with_samples) {
    out += "\n" + title + " (" + std::to_string(std::min(limit, v.size())) + " of " +
           FormatCount(v.size()) + "):\n";
    std::vector<Table::Column> cols = {{column}, {"SERIES", A::kRight}};
    if (with_samples) cols.push_back({"SAMPLES", A::kRight});
    Table t(cols);
    for (size_t i = 0; i < v.size() && i < limit; ++i) {
      t.AddRow({v[i].name, FormatCount(v[i].series), FormatCount(v[i].samples)});
    }
    out += t.Render();
  };
  groups("Series and samples by metric", "METRIC", r.metrics, true);
  groups("Series and samples by dc", "DC", r.dcs, true);

  out += "\nHighest cardinality labels (" + std::to_string(std::min(limit, r.labels.size())) +
         " of " + FormatCount(r.labels.size()) + "):\n";
  Table labels({{"LABEL"}, {"VALUES", A::kRight}, {"SERIES", A::kRight}});
  for (size_t i = 0; i < r.labels.size() && i < limit; ++i) {
    labels.AddRow(
        {r.labels[i].name, FormatCount(r.labels[i].values), FormatCount(r.labels[i].series)});
  }
  out += labels.Render();
  groups("Most common label pairs", "LABEL PAIR", r.label_pairs, false);
  return out;
}

int RunStoreAnalyze(const AnalyzeOptions& o, std::ostream& out, std::ostream& err) {
  auto reader = storage::StoreReader::Open(o.storage_path);
  if (!reader.ok()) {
    err << "suanlictl store analyze: " << reader.status().message() << "\n";
    return 1;
  }
  ProgressBar bar(o.progress);
  auto report = AnalyzeStore(**reader, [&](uint64_t done, uint64_t total, const std::string& w) {
    bar.Update(done, total, w);
  });
  bar.Finish();
  if (!report.ok()) {
    err << "suanlictl store analyze: " << report.status().message() << "\n";
    return 1;
  }
  out << RenderAnalyzeReport(*report, o.limit);
  return 0;
}

}  // namespace suanli::ctl
