#include "exporters/remote_write/forward_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <unordered_map>

namespace suanli::exporters {

bool IsCounterName(std::string_view n) {
  return n.ends_with("_total") || n.ends_with("_count") || n.ends_with("_sum") ||
         n.ends_with("_bucket");
}

namespace {

using storage::Cursor;
using storage::CursorKind;

// Compiled `match` selectors: a series is sent when it matches every matcher of one selector.
class SeriesFilter {
 public:
  explicit SeriesFilter(const std::vector<std::vector<storage::MatcherSpec>>& selectors) {
    for (const auto& specs : selectors) {
      auto compiled = storage::CompileMatchers(specs);
      if (compiled.ok()) selectors_.push_back(std::move(compiled).value());  // checked at load
    }
  }
  bool all() const { return selectors_.empty(); }
  bool Matches(const Labels& labels) const {
    if (selectors_.empty()) return true;
    for (const auto& sel : selectors_) {
      if (std::all_of(sel.begin(), sel.end(), [&](const storage::LabelMatcher& m) {
            return m.Matches(labels.Get(m.name()));
          })) {
        return true;
      }
    }
    return false;
  }

 private:
  std::vector<std::vector<storage::LabelMatcher>> selectors_;
};

// Every part at once: raw and capacity units are already bounded when read.
std::function<bool(size_t, std::vector<EncodedSeries>*)> TakeAll(
    std::vector<EncodedSeries> series) {
  auto held = std::make_shared<std::vector<EncodedSeries>>(std::move(series));
  return [held](size_t, std::vector<EncodedSeries>* out) {
    if (held->empty()) return false;
    *out = std::move(*held);
    held->clear();
    return true;
  };
}

void AddExternal(const std::map<std::string, std::string>& external, Labels* labels) {
  for (const auto& [name, value] : external) {
    if (labels->Get(name).empty()) labels->Set(name, value);
  }
}

// A series with the external labels, encoded.
EncodedSeries EncodeWithExternal(Labels labels, std::vector<Sample> samples,
                                 const std::map<std::string, std::string>& external) {
  AddExternal(external, &labels);
  return {std::make_shared<const std::string>(EncodeLabels(labels)), labels.Hash(),
          std::move(samples)};
}

// ---- raw ----

class RawSource final : public ForwardSource {
 public:
  RawSource(const ForwardTarget& t, storage::Store& store)
      : target_(t), store_(store), filter_(t.matchers) {}

  Cursor Start(int64_t) override {
    return {CursorKind::kLog, static_cast<int64_t>(store_.LogEnd())};
  }
  bool Accepts(const Cursor& c) const override { return c.kind == CursorKind::kLog; }

  Result<ForwardBatch> Next(const Cursor& cursor, int64_t now_ms, size_t max_samples,
                            std::optional<Cursor> until) override {
    ASSIGN_OR_RETURN(storage::LogRead read,
                     until ? store_.ReadLog(static_cast<uint64_t>(cursor.value), SIZE_MAX,
                                            static_cast<uint64_t>(until->value))
                           : store_.ReadLog(static_cast<uint64_t>(cursor.value), max_samples));
    ForwardBatch batch;
    batch.next = {CursorKind::kLog, static_cast<int64_t>(read.next_seq)};
    batch.caught_up = read.caught_up;
    const int64_t cutoff = now_ms - target_.max_backlog.count();
    std::unordered_map<uint64_t, size_t> slot_of;
    std::vector<EncodedSeries> series;
    for (const storage::LogSample& s : read.samples) {
      if (s.timestamp_ms < cutoff) {
        ++batch.skipped_samples;
        continue;
      }
      auto [it, fresh] = slot_of.try_emplace(s.series_id, series.size());
      if (fresh) {
        ASSIGN_OR_RETURN(const Known* known, Lookup(s.series_id));
        if (known->labels == nullptr) {  // not matched by `match`
          it->second = SIZE_MAX;
          continue;
        }
        series.push_back({known->labels, known->hash, {}});
      }
      if (it->second == SIZE_MAX) continue;
      series[it->second].samples.push_back({s.timestamp_ms, s.value});
      batch.oldest_ms = std::min(batch.oldest_ms, s.timestamp_ms);
    }
    for (EncodedSeries& es : series) {
      // One log batch holds a series once, in time order; several batches are in commit
      // order, which is time order unless the store took a sample out of order.
      std::stable_sort(es.samples.begin(), es.samples.end(), [](const Sample& a, const Sample& b) {
        return a.timestamp_ms < b.timestamp_ms;
      });
    }
    batch.take = TakeAll(std::move(series));
    return batch;
  }

 private:
  // A series as this target sends it: its encoded labels (external labels added), or null
  // when `match` leaves it out. Decided and encoded once per series: the store's ids are
  // never reused, and the cache is dropped when it grows past kMaxKnown (series churn).
  struct Known {
    std::shared_ptr<const std::string> labels;
    uint64_t hash = 0;
  };
  static constexpr size_t kMaxKnown = 2'000'000;

  Result<const Known*> Lookup(uint64_t id) {
    auto it = known_.find(id);
    if (it != known_.end()) return &it->second;
    if (known_.size() >= kMaxKnown) known_.clear();
    auto labels = store_.SeriesLabels(id);
    if (!labels.ok()) return labels.status().WithContext("forwarding raw");
    Known k;
    if (filter_.Matches(*labels)) {
      AddExternal(target_.external_labels, &*labels);
      k.labels = std::make_shared<const std::string>(EncodeLabels(*labels));
      k.hash = labels->Hash();
    }
    return &known_.emplace(id, std::move(k)).first->second;
  }

  const ForwardTarget target_;
  storage::Store& store_;
  const SeriesFilter filter_;
  std::unordered_map<uint64_t, Known> known_;
};

// ---- rollups ----

// Intervals read per unit: few enough that one unit's records (every matching series, for
// these intervals and the one before) stay small at 100k series.
int64_t IntervalsPerUnit(rollup::Resolution r) {
  switch (r) {
    case rollup::Resolution::k1m:
      return 5;
    case rollup::Resolution::k5m:
      return 3;
    default:
      return 1;
  }
}

class RollupSource final : public ForwardSource {
 public:
  RollupSource(const ForwardTarget& t, storage::Store& store)
      : target_(t), store_(store), len_(rollup::ResolutionMs(t.resolution)) {
    selectors_ = t.matchers;
    if (selectors_.empty())
      selectors_.push_back({{storage::MatcherSpec::kRegex, "__name__", ".+"}});
  }

  Cursor Start(int64_t now_ms) override {
    return {CursorKind::kTime, rollup::IntervalStart(now_ms, len_)};
  }
  bool Accepts(const Cursor& c) const override { return c.kind == CursorKind::kTime; }

  Result<ForwardBatch> Next(const Cursor& cursor, int64_t now_ms, size_t,
                            std::optional<Cursor> until) override {
    ForwardBatch batch;
    // A cursor from another resolution: the next interval of this one.
    int64_t start = rollup::IntervalStart(cursor.value, len_);
    if (start < cursor.value) start += len_;
    const int64_t cutoff = rollup::IntervalStart(now_ms - target_.max_backlog.count(), len_);
    if (start < cutoff) {
      batch.skipped_ms = cutoff - start;
      start = cutoff;
    }
    const int64_t ready = (now_ms - target_.rollup_delay.count() - start) / len_;
    batch.next = {CursorKind::kTime, start};
    if (ready <= 0) {
      batch.caught_up = true;
      batch.take = TakeAll({});
      return batch;
    }
    int64_t k = std::min(ready, IntervalsPerUnit(target_.resolution));
    if (until && until->value > start && (until->value - start) % len_ == 0) {
      k = std::min(ready, (until->value - start) / len_);
    }
    const int64_t end = start + k * len_;  // exclusive
    batch.next = {CursorKind::kTime, end};
    batch.caught_up = k == ready;
    batch.oldest_ms = start + len_;

    // Records of these intervals and of the one before (its last value seeds `increase`).
    auto all = std::make_shared<std::vector<storage::SeriesRecords>>();
    for (const auto& selector : selectors_) {
      ASSIGN_OR_RETURN(std::vector<storage::SeriesRecords> part,
                       store_.SelectRecords(selector, start - len_, end - 1, target_.resolution));
      for (auto& s : part) all->push_back(std::move(s));
    }
    if (selectors_.size() > 1) {  // a series matching two selectors is sent once
      std::sort(all->begin(), all->end(),
                [](const auto& a, const auto& b) { return a.labels < b.labels; });
      all->erase(std::unique(all->begin(), all->end(),
                             [](const auto& a, const auto& b) { return a.labels == b.labels; }),
                 all->end());
    }
    auto pos = std::make_shared<size_t>(0);
    const std::string suffix = std::string(":") + rollup::ResolutionName(target_.resolution) + "_";
    const int64_t len = len_;
    const auto external = target_.external_labels;
    batch.take = [all, pos, suffix, start, end, len, external](size_t max_samples,
                                                               std::vector<EncodedSeries>* out) {
      out->clear();
      size_t samples = 0;
      while (*pos < all->size() && (samples == 0 || samples < max_samples)) {
        const storage::SeriesRecords& s = (*all)[(*pos)++];
        samples += Outputs(s, suffix, start, end, len, external, out);
      }
      return !out->empty() || *pos < all->size();
    };
    return batch;
  }

 private:
  // The output series of one input series for the intervals [start, end); returns the samples.
  static size_t Outputs(const storage::SeriesRecords& s, const std::string& suffix, int64_t start,
                        int64_t end, int64_t len,
                        const std::map<std::string, std::string>& external,
                        std::vector<EncodedSeries>* out) {
    const std::string name(s.labels.MetricName());
    const bool counter = IsCounterName(name);
    static constexpr const char* kOutputs[] = {"min",           "max",  "avg",
                                               "count_samples", "last", "increase"};
    const size_t outputs = counter ? 6 : 5;
    std::vector<Sample> values[6];
    size_t samples = 0;
    const rollup::Record* prev = nullptr;
    for (const rollup::Record& r : s.records) {
      if (r.start >= start && r.start < end && r.count > 0) {
        const int64_t at = r.start + len;
        double increase = r.increase;
        if (prev != nullptr && prev->start == r.start - len) {
          increase += r.first >= prev->last ? r.first - prev->last : r.first;  // reset: from 0
        }
        const double value[] = {
            r.min,  r.max,   r.sum / static_cast<double>(r.count), static_cast<double>(r.count),
            r.last, increase};
        for (size_t o = 0; o < outputs; ++o) values[o].push_back({at, value[o]});
        samples += outputs;
      }
      prev = &r;
    }
    if (samples == 0) return 0;
    for (size_t o = 0; o < outputs; ++o) {
      Labels labels = s.labels;
      labels.Set("__name__", name + suffix + kOutputs[o]);
      out->push_back(EncodeWithExternal(std::move(labels), std::move(values[o]), external));
    }
    return samples;
  }

  const ForwardTarget target_;
  storage::Store& store_;
  const int64_t len_;
  std::vector<std::vector<storage::MatcherSpec>> selectors_;
};

// ---- capacity ----

class CapacitySource final : public ForwardSource {
 public:
  CapacitySource(const ForwardTarget& t, storage::Store& store, const CapacityProgress* progress)
      : target_(t), store_(store), progress_(progress) {}

  Cursor Start(int64_t now_ms) override { return {CursorKind::kTime, now_ms}; }
  bool Accepts(const Cursor& c) const override { return c.kind == CursorKind::kTime; }

  Result<ForwardBatch> Next(const Cursor& cursor, int64_t now_ms, size_t,
                            std::optional<Cursor> until) override {
    ForwardBatch batch;
    int64_t from = cursor.value;
    const int64_t cutoff = now_ms - target_.max_backlog.count();
    if (from < cutoff) {
      batch.skipped_ms = cutoff - from;
      from = cutoff;
    }
    const int64_t recorded = progress_ != nullptr ? progress_->last_recorded_ms.load()
                                                  : std::numeric_limits<int64_t>::min();
    batch.next = {CursorKind::kTime, from};
    if (recorded <= from && !(until && until->value > from)) {
      batch.caught_up = true;
      batch.take = TakeAll({});
      return batch;
    }
    // An hour of evaluations at most per unit (some 50 series per dc at 15 s: ~12k samples).
    int64_t to = std::min(recorded, from + 3'600'000);
    if (until && until->value > from) to = until->value;  // recorded before a restart
    batch.next = {CursorKind::kTime, to};
    batch.caught_up = to == recorded;
    ASSIGN_OR_RETURN(
        std::vector<storage::SeriesSamples> found,
        store_.Select({{storage::MatcherSpec::kRegex, "__name__", "suanli_dc_.+|suanli_link_.+"}},
                      from + 1, to));
    std::vector<EncodedSeries> series;
    series.reserve(found.size());
    for (storage::SeriesSamples& s : found) {
      if (!s.samples.empty()) {
        batch.oldest_ms = std::min(batch.oldest_ms, s.samples.front().timestamp_ms);
      }
      series.push_back(
          EncodeWithExternal(std::move(s.labels), std::move(s.samples), target_.external_labels));
    }
    batch.take = TakeAll(std::move(series));
    return batch;
  }

 private:
  const ForwardTarget target_;
  storage::Store& store_;
  const CapacityProgress* progress_;
};

}  // namespace

std::unique_ptr<ForwardSource> MakeForwardSource(const ForwardTarget& target, storage::Store& store,
                                                 const CapacityProgress* capacity) {
  switch (target.select) {
    case ForwardSelect::kRaw:
      return std::make_unique<RawSource>(target, store);
    case ForwardSelect::kRollups:
      return std::make_unique<RollupSource>(target, store);
    case ForwardSelect::kCapacity:
      return std::make_unique<CapacitySource>(target, store, capacity);
  }
  return nullptr;
}

}  // namespace suanli::exporters
