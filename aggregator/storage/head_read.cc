// RocksDbStore's read path: postings, then per series the head copies taken under head_mu and
// the closed chunks or rollup blocks read from a RocksDB snapshot outside every lock.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "aggregator/storage/rocksdb_store_impl.h"

namespace suanli::storage {

std::vector<uint64_t> RocksDbStore::Impl::PostingsForValue(const std::string& name,
                                                           const std::string& value) {
  std::vector<uint64_t> ids;
  std::shared_lock lock(index_mu);
  auto by_name = postings.find(name);
  if (by_name == postings.end()) return ids;
  auto by_value = by_name->second.find(value);
  if (by_value == by_name->second.end()) return ids;
  ids.reserve(by_value->second.size());
  for (uint64_t id : by_value->second) {
    if (ById(id)->durable.load(std::memory_order_acquire)) ids.push_back(id);
  }
  return ids;
}

std::vector<uint64_t> RocksDbStore::Impl::PostingsForName(const LabelMatcher& matcher) {
  std::vector<uint64_t> ids;
  std::shared_lock lock(index_mu);
  auto by_name = postings.find(matcher.name());
  if (by_name == postings.end()) return ids;
  for (const auto& [value, list] : by_name->second) {
    if (!matcher.Matches(value)) continue;
    for (uint64_t id : list) {
      if (ById(id)->durable.load(std::memory_order_acquire)) ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<std::vector<SeriesSamples>> RocksDbStore::Select(const std::vector<MatcherSpec>& matchers,
                                                        int64_t min_ms, int64_t max_ms) {
  return SelectRollup(matchers, min_ms, max_ms, Resolution::kRaw, rollup::Aggregate::kRaw);
}

Result<std::vector<SeriesSamples>> RocksDbStore::SelectRollup(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms, Resolution resolution,
    rollup::Aggregate aggregate) {
  return SelectImpl(matchers, min_ms, max_ms, resolution, aggregate, nullptr);
}

Result<std::vector<SeriesRecords>> RocksDbStore::SelectRecords(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms,
    Resolution resolution) {
  if (resolution == Resolution::kRaw) return InvalidArgument("SelectRecords needs a rollup");
  std::vector<SeriesRecords> out;
  RETURN_IF_ERROR(
      SelectImpl(matchers, min_ms, max_ms, resolution, rollup::Aggregate::kRaw, &out).status());
  return out;
}

// Select, SelectRollup and SelectRecords: with `records` (a rollup resolution), each matching
// series' records in range go there and no samples are returned.
Result<std::vector<SeriesSamples>> RocksDbStore::SelectImpl(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms, Resolution resolution,
    rollup::Aggregate aggregate, std::vector<SeriesRecords>* records) {
  Impl& d = *impl_;
  const int res = static_cast<int>(resolution);
  ASSIGN_OR_RETURN(std::vector<LabelMatcher> compiled, CompileMatchers(matchers));
  std::vector<SeriesSamples> out;
  min_ms = std::max(min_ms, d.Cutoff(res));  // exact retention on reads
  if (min_ms > max_ms) return out;
  const EntryPins::Pin pin = d.pins.Enter();  // the entries found below stay allocated

  // Candidates from the postings (one snapshot of the index).
  std::optional<std::vector<uint64_t>> ids;
  {
    for (const LabelMatcher& m : compiled) {
      if (m.spec().type != MatcherSpec::kEqual || m.spec().value.empty()) continue;
      std::vector<uint64_t> posting = d.PostingsForValue(m.name(), m.spec().value);
      if (ids) {
        std::vector<uint64_t> both;
        std::set_intersection(ids->begin(), ids->end(), posting.begin(), posting.end(),
                              std::back_inserter(both));
        ids = std::move(both);
      } else {
        ids = std::move(posting);
      }
      if (ids->empty()) return out;
    }
    if (!ids) {
      for (const LabelMatcher& m : compiled) {
        if (m.Matches("")) continue;
        ids = d.PostingsForName(m);
        break;
      }
    }
  }
  if (!ids) return Internal("no selective matcher after CompileMatchers");

  struct Found {
    SeriesEntry* entry;
    Labels labels;
    int64_t head_window = kNoSamples;
    std::string head;  // the open chunk, if any
    bool has_head = false;
    int64_t closing_window = kNoSamples;
    std::string closing;  // the previous window, closed but not yet written, if any
    bool has_closing = false;
    std::vector<Sample> samples;
    std::vector<rollup::Record> records;
  };
  std::vector<Found> series;
  {
    std::shared_lock lock(d.index_mu);
    for (uint64_t id : *ids) {
      SeriesEntry* e = d.ById(id);
      if (e == nullptr) continue;  // forgotten since the postings were read
      Labels labels;
      if (!DecodeLabels(e->labels_blob, &labels)) return Internal("malformed labels in memory");
      bool match = std::all_of(compiled.begin(), compiled.end(), [&](const LabelMatcher& m) {
        return m.Matches(labels.Get(m.name()));
      });
      if (match) series.push_back(Found{e, std::move(labels), kNoSamples, {}, false, {}, {}});
    }
  }
  const int64_t wlo = WindowOf(min_ms), whi = WindowOf(max_ms);
  {
    // Copies of the open chunks and of the closed ones not yet written (`closing`), under
    // head_mu but without writing or reading RocksDB there, so that a query never holds
    // ingest up (at an hour boundary every series has a closing chunk). Then, outside the
    // lock, every batch queued before the copy is waited for: a window such a batch closed is
    // then readable below, and a window copied here is skipped there (the copy holds all of
    // it that this query can see).
    uint64_t queued_before = 0;
    {
      std::lock_guard lock(d.head_mu);
      for (Found& f : series) {
        SeriesEntry* e = f.entry;
        if (e->has_head && e->head.window_start() >= wlo && e->head.window_start() <= whi) {
          f.has_head = true;
          f.head_window = e->head.window_start();
          f.head = e->head.Finish();
        }
        const ChunkEncoder* c = e->closing_chunk;
        if (c != nullptr && c->window_start() >= wlo && c->window_start() <= whi) {
          f.has_closing = true;
          f.closing_window = c->window_start();
          f.closing = c->Finish();
        }
      }
      queued_before = d.next_seq - 1;
    }
    d.WaitDone(queued_before);
  }

  SnapshotGuard snapshot(d.db);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  const int64_t len = rollup::ResolutionMs(resolution);
  uint64_t total = 0;
  auto count = [&](size_t n) -> Status {
    total += n;
    if (total > d.options.max_select_samples) {
      return ResourceExhausted("query selects more than " +
                               std::to_string(d.options.max_select_samples) + " samples");
    }
    return Status::Ok();
  };
  {
    std::shared_lock lock(d.cf_mu);
    auto first = d.parts[res].lower_bound(PartitionOf(res, wlo));
    auto last = d.parts[res].upper_bound(PartitionOf(res, whi));
    for (auto p = first; p != last; ++p) {
      std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, p->second));
      for (Found& f : series) {
        std::string lower = ChunkKey(f.entry->id, wlo), upper = ChunkKey(f.entry->id, whi);
        for (it->Seek(lower); it->Valid() && it->key().compare(upper) <= 0; it->Next()) {
          if (it->key().size() != 16) return Internal("malformed chunk key");
          int64_t window = UnflipTimestamp(GetBE64(it->key().data() + 8));
          // A copy taken above holds all of that window.
          if (f.has_head && window == f.head_window) continue;
          if (f.has_closing && window == f.closing_window) continue;
          if (res == 0) {
            std::vector<Sample> chunk;
            RETURN_IF_ERROR(DecodeChunk(View(it->value()), window, &chunk));
            size_t before = f.samples.size();
            for (const Sample& s : chunk) {
              if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) f.samples.push_back(s);
            }
            RETURN_IF_ERROR(count(f.samples.size() - before));
          } else {
            size_t before = f.records.size();
            RETURN_IF_ERROR(DecodeRollups(View(it->value()), window, &f.records));
            RETURN_IF_ERROR(count(f.records.size() - before));
          }
        }
        RETURN_IF_ERROR(FromRocks(it->status(), "reading chunks"));
      }
    }
  }
  for (Found& f : series) {
    for (auto [has, chunk, window] : {std::tuple{f.has_head, &f.head, f.head_window},
                                      std::tuple{f.has_closing, &f.closing, f.closing_window}}) {
      if (!has) continue;
      std::vector<Sample> head;
      RETURN_IF_ERROR(DecodeChunk(*chunk, window, &head));
      if (res == 0) {
        size_t before = f.samples.size();
        for (const Sample& s : head) {
          if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) f.samples.push_back(s);
        }
        RETURN_IF_ERROR(count(f.samples.size() - before));
      } else {
        std::vector<rollup::Record> r = rollup::Compute(head, len);
        f.records.insert(f.records.end(), r.begin(), r.end());
      }
    }
    SeriesSamples result;
    if (res == 0) {
      std::sort(f.samples.begin(), f.samples.end(),
                [](const Sample& a, const Sample& b) { return a.timestamp_ms < b.timestamp_ms; });
      for (const Sample& s : f.samples) {
        if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) result.samples.push_back(s);
      }
    } else {
      std::sort(f.records.begin(), f.records.end(),
                [](const rollup::Record& a, const rollup::Record& b) {
                  return a.start != b.start ? a.start < b.start : a.count > b.count;
                });
      // One record per interval. Two for the same interval (seen after a restart under a
      // catch-up load; the cause is not found yet) would give two values at one timestamp:
      // the one with more samples covers the other.
      auto dup = std::unique(
          f.records.begin(), f.records.end(),
          [](const rollup::Record& a, const rollup::Record& b) { return a.start == b.start; });
      if (dup != f.records.end()) {
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true)) {
          spdlog::warn(
              "storage: two rollup records for one interval of {} (start {}); using the "
              "one with more samples",
              f.labels.ToString(), dup->start);
        }
        f.records.erase(dup, f.records.end());
      }
      // Records of intervals that end before min_ms add nothing (and would seed the counter
      // with a value from outside the range).
      std::vector<rollup::Record> in_range;
      for (const rollup::Record& r : f.records) {
        if (r.last_ts >= min_ms && r.first_ts <= max_ms) in_range.push_back(r);
      }
      if (records != nullptr) {
        if (!in_range.empty()) records->push_back({std::move(f.labels), std::move(in_range)});
        continue;
      }
      rollup::Emit(in_range, aggregate, min_ms, max_ms, &result.samples);
    }
    if (result.samples.empty()) continue;
    result.labels = std::move(f.labels);
    out.push_back(std::move(result));
  }
  std::sort(out.begin(), out.end(),
            [](const SeriesSamples& a, const SeriesSamples& b) { return a.labels < b.labels; });
  if (records != nullptr) {
    std::sort(records->begin(), records->end(),
              [](const SeriesRecords& a, const SeriesRecords& b) { return a.labels < b.labels; });
  }
  return out;
}

}  // namespace suanli::storage
