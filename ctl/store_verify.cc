#include "ctl/store_verify.h"

#include <cmath>
#include <cstring>
#include <map>

#include "aggregator/rollup/rollup.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "ctl/progress.h"
#include "ctl/table.h"

namespace suanli::ctl {
namespace {

using rollup::Resolution;
using storage::FamilyInfo;
using storage::FamilyKind;

constexpr int64_t kWindowMs = storage::kStoreWindowMs;

std::string WindowRange(int64_t window_start) {
  return storage::FormatUtc(window_start) + " .. " + storage::FormatUtc(window_start + kWindowMs);
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Sample timestamps inside [window, window + 1 h) and strictly increasing.
std::string CheckSamples(const std::vector<Sample>& samples, int64_t window) {
  for (size_t i = 0; i < samples.size(); ++i) {
    const int64_t ts = samples[i].timestamp_ms;
    if (ts < window || ts - window >= kWindowMs) {
      return "sample " + std::to_string(i) + " at " + storage::FormatUtc(ts) +
             " lies outside the window";
    }
    if (i > 0 && ts <= samples[i - 1].timestamp_ms) {
      return "sample " + std::to_string(i) + " at " + storage::FormatUtc(ts) +
             " is not after the one before";
    }
  }
  return "";
}

// Records on the resolution's grid inside the window, sorted, each consistent in itself.
std::string CheckRecords(const std::vector<rollup::Record>& records, int64_t window, int64_t len) {
  for (size_t i = 0; i < records.size(); ++i) {
    const rollup::Record& r = records[i];
    const std::string which =
        "record " + std::to_string(i) + " (" + storage::FormatUtc(r.start) + ")";
    if (r.start < window || r.start - window >= kWindowMs || (r.start - window) % len != 0) {
      return which + " does not start on the grid inside the window";
    }
    if (i > 0 && r.start <= records[i - 1].start) return which + " is not after the one before";
    if (r.count == 0) return which + " counts no sample";
    if (r.first_ts < r.start || r.last_ts < r.first_ts || r.last_ts - r.start >= len) {
      return which + " has first/last timestamps outside its interval";
    }
    if (r.count == 1 && (r.first_ts != r.last_ts || !SameBits(r.first, r.last))) {
      return which + " counts one sample but has two";
    }
    if (!(r.min <= r.max)) return which + " has min > max";
  }
  return "";
}

std::string DescribeRecords(const rollup::Record& a, const rollup::Record& b) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "interval %s: count %llu vs %llu, sum %.17g vs %.17g, min %.17g vs %.17g, "
                "max %.17g vs %.17g",
                storage::FormatUtc(a.start).c_str(), static_cast<unsigned long long>(a.count),
                static_cast<unsigned long long>(b.count), a.sum, b.sum, a.min, b.min, a.max, b.max);
  return buf;
}

bool SameRecord(const rollup::Record& a, const rollup::Record& b) {
  return a.start == b.start && a.first_ts == b.first_ts && a.last_ts == b.last_ts &&
         a.count == b.count && SameBits(a.sum, b.sum) && SameBits(a.min, b.min) &&
         SameBits(a.max, b.max) && SameBits(a.first, b.first) && SameBits(a.last, b.last) &&
         SameBits(a.increase, b.increase);
}

class Verifier {
 public:
  Verifier(storage::StoreReader& reader, const VerifyProgressFn& progress)
      : reader_(reader), progress_(progress) {
    for (const FamilyInfo& f : reader.families()) {
      total_ += f.estimated_keys;
      if (f.kind == FamilyKind::kPartition) {
        partitions_[static_cast<int>(f.resolution)][f.partition] = &f;
      }
    }
  }

  Result<VerifyReport> Run() {
    CheckFiles();
    for (const FamilyInfo& f : reader_.families()) {
      if (f.kind == FamilyKind::kIndex) Read(f, [&](auto k, auto v) { Index(f, k, v); });
    }
    for (const FamilyInfo& f : reader_.families()) {
      if (f.kind == FamilyKind::kPartition) {
        Read(f, [&](auto k, auto v) { Partition(f, k, v); });
      } else if (f.kind == FamilyKind::kHead) {
        Read(f, [&](auto k, auto v) { Head(f, k, v); });
      }
    }
    return std::move(report_);
  }

 private:
  void Report(std::string what, std::string series, std::string range, std::string family,
              std::string reason) {
    report_.damage.push_back({std::move(what), std::move(series), std::move(range),
                              std::move(family), std::move(reason)});
  }

  std::string SeriesName(uint64_t id) const {
    auto it = labels_.find(id);
    if (it == labels_.end()) return "series " + std::to_string(id) + " (not in the index)";
    return it->second + " (series " + std::to_string(id) + ")";
  }
  bool Known(uint64_t id) const { return labels_.contains(id); }

  // Where a key of `family` points: series and window of a partition key.
  std::string DescribeKey(const std::string& family, const std::string& key) const {
    uint64_t id;
    int64_t window;
    rollup::Resolution res;
    int64_t p;
    if (storage::ParsePartitionName(family, &res, &p) &&
        storage::ParsePartitionKey(key, &id, &window)) {
      return SeriesName(id) + " at " + storage::FormatUtc(window);
    }
    std::string hex;
    for (unsigned char c : key.substr(0, 24)) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", c);
      hex += b;
    }
    return "key " + hex;
  }

  void CheckFiles() {
    std::vector<storage::SstFileInfo> files = reader_.SstFiles();
    // The index first, so that damaged partition files can name their series.
    std::vector<std::pair<storage::SstFileInfo, Status>> damaged;
    for (const storage::SstFileInfo& f : files) {
      ++report_.sst_files;
      if (Status st = reader_.VerifySstFile(f); !st.ok()) damaged.push_back({f, st});
    }
    damaged_files_ = std::move(damaged);
  }

  void ReportFiles() {
    for (const auto& [f, st] : damaged_files_) {
      Report("SST file " + f.path, "",
             "keys " + DescribeKey(f.family, f.smallest_key) + " to " +
                 DescribeKey(f.family, f.largest_key),
             f.family, st.message());
    }
    damaged_files_.clear();
  }

  void Read(const FamilyInfo& f,
            const std::function<void(std::string_view, std::string_view)>& visit) {
    Status st = reader_.ForEach(f, [&](std::string_view key, std::string_view value) {
      if (progress_ && (++done_ & 1023) == 0) progress_(done_, total_, f.name);
      visit(key, value);
      return true;
    });
    if (!st.ok()) Report("column family", "", "", f.name, st.message());
    if (f.kind == FamilyKind::kIndex) ReportFiles();
  }

  void Index(const FamilyInfo& f, std::string_view key, std::string_view value) {
    uint64_t id;
    if (!storage::ParseSeriesKey(key, &id)) return;  // the format key, older index keys
    Labels labels;
    if (!storage::DecodeLabelsBlob(value, &labels)) {
      Report("series index entry", "series " + std::to_string(id), "", f.name,
             "the labels do not decode");
      return;
    }
    ++report_.series;
    labels_[id] = labels.ToString();
  }

  void Partition(const FamilyInfo& f, std::string_view key, std::string_view value) {
    const bool raw = f.resolution == Resolution::kRaw;
    const std::string what =
        raw ? "raw chunk" : std::string(rollup::ResolutionName(f.resolution)) + " rollup block";
    uint64_t id;
    int64_t window;
    if (!storage::ParsePartitionKey(key, &id, &window)) {
      Report(what, "", "", f.name, "malformed key of " + std::to_string(key.size()) + " bytes");
      return;
    }
    raw ? ++report_.raw_chunks : ++report_.rollup_blocks;
    const std::string series = SeriesName(id), range = WindowRange(window);
    // A series with no sample inside any retention leaves the index while its chunks wait for
    // their partition to drop: not damage.
    if (!Known(id)) ++report_.forgotten_series_values;
    if (rollup::IntervalStart(window, kWindowMs) != window || window < f.start_ms ||
        window >= f.end_ms) {
      Report(what, series, range, f.name, "the window does not belong to this partition");
      return;
    }
    if (raw) {
      std::vector<Sample> samples;
      if (Status st = storage::DecodeChunk(value, window, &samples); !st.ok()) {
        Report(what, series, range, f.name, "does not decode: " + st.message());
        return;
      }
      if (std::string bad = CheckSamples(samples, window); !bad.empty()) {
        Report(what, series, range, f.name, bad);
        return;
      }
      CompareRollups(id, window, samples, series, range);
      return;
    }
    std::vector<rollup::Record> records;
    if (Status st = storage::DecodeRollups(value, window, &records); !st.ok()) {
      Report(what, series, range, f.name, "does not decode: " + st.message());
      return;
    }
    if (std::string bad = CheckRecords(records, window, rollup::ResolutionMs(f.resolution));
        !bad.empty()) {
      Report(what, series, range, f.name, bad);
    }
  }

  // The rollups the store derives from a closed chunk, against those it stored.
  void CompareRollups(uint64_t id, int64_t window, const std::vector<Sample>& samples,
                      const std::string& series, const std::string& range) {
    for (int r = 1; r <= rollup::kNumRollupResolutions; ++r) {
      const auto res = static_cast<Resolution>(r);
      const int64_t len = rollup::ResolutionMs(res);
      auto part = partitions_[r].find(storage::PartitionNumber(res, window));
      if (part == partitions_[r].end()) continue;  // expired, or never written
      auto stored = reader_.Get(*part->second, storage::PartitionKey(id, window));
      if (!stored.ok() || !stored->has_value()) continue;  // read errors are reported per family
      std::vector<rollup::Record> records;
      if (!storage::DecodeRollups(**stored, window, &records).ok()) continue;  // reported there
      ++report_.rollups_compared;
      std::vector<rollup::Record> want = rollup::Compute(samples, len);
      std::string diff;
      if (want.size() != records.size()) {
        diff = std::to_string(want.size()) + " intervals from the chunk, " +
               std::to_string(records.size()) + " stored";
      } else {
        for (size_t i = 0; i < want.size() && diff.empty(); ++i) {
          if (!SameRecord(want[i], records[i])) diff = DescribeRecords(want[i], records[i]);
        }
      }
      if (!diff.empty()) {
        Report("raw chunk or its " + std::string(rollup::ResolutionName(res)) + " rollup block",
               series, range,
               storage::PartitionFamilyName(Resolution::kRaw,
                                            storage::PartitionNumber(Resolution::kRaw, window)) +
                   ", " + part->second->name,
               "the rollups of the chunk's samples differ from the stored ones (chunk vs "
               "stored): " +
                   diff);
      }
    }
  }

  void Head(const FamilyInfo& f, std::string_view key, std::string_view value) {
    switch (storage::HeadKeyKindOf(key)) {
      case storage::HeadKeyKind::kHeadChunk: {
        uint64_t id;
        int64_t window;
        std::string_view chunk;
        ++report_.head_chunks;
        if (!storage::ParseHeadChunk(key, value, &id, &window, &chunk)) {
          Report("head chunk", "", "", f.name, "value shorter than its window header");
          return;
        }
        const std::string series = SeriesName(id), range = WindowRange(window);
        if (!Known(id))
          Report("head chunk", series, range, f.name, "its series is not in the index");
        std::vector<Sample> samples;
        if (Status st = storage::DecodeChunk(chunk, window, &samples); !st.ok()) {
          Report("head chunk", series, range, f.name, "does not decode: " + st.message());
        } else if (std::string bad = CheckSamples(samples, window); !bad.empty()) {
          Report("head chunk", series, range, f.name, bad);
        }
        return;
      }
      case storage::HeadKeyKind::kLog: {
        uint64_t seq;
        storage::ParseLogKey(key, &seq);
        ++report_.log_records;
        int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
        uint64_t unknown = 0;
        const bool ok = storage::ReadHeadLog(value, [&](uint64_t id, int64_t ts, uint64_t) {
          min_ts = std::min(min_ts, ts);
          max_ts = std::max(max_ts, ts);
          if (!Known(id) && unknown == 0) unknown = id;
          return true;
        });
        const std::string range =
            min_ts <= max_ts ? storage::FormatUtc(min_ts) + " .. " + storage::FormatUtc(max_ts)
                             : "";
        if (!ok) {
          Report("head log record " + std::to_string(seq), "", range, f.name, "does not decode");
        } else if (unknown != 0) {
          Report("head log record " + std::to_string(seq), SeriesName(unknown), range, f.name,
                 "names a series that is not in the index");
        }
        return;
      }
      case storage::HeadKeyKind::kCursor:
        if (value.size() != 9 || (value[0] != 1 && value[0] != 2)) {
          Report("forwarding cursor", "", "", f.name,
                 "cursor \"" + std::string(key.substr(1)) + "\" is malformed");
        }
        return;
      default:
        return;
    }
  }

  storage::StoreReader& reader_;
  const VerifyProgressFn& progress_;
  uint64_t total_ = 0, done_ = 0;
  std::map<int64_t, const FamilyInfo*> partitions_[4];
  std::map<uint64_t, std::string> labels_;
  std::vector<std::pair<storage::SstFileInfo, Status>> damaged_files_;
  VerifyReport report_;
};

}  // namespace

std::string Damage::ToString() const {
  std::string s = what;
  if (!series.empty()) s += " of " + series;
  if (!range.empty()) s += ", " + range;
  if (!family.empty()) s += " [" + family + "]";
  return s + ": " + reason;
}

Result<VerifyReport> VerifyStore(storage::StoreReader& reader, const VerifyProgressFn& progress) {
  return Verifier(reader, progress).Run();
}

int RunStoreVerify(const VerifyOptions& o, std::ostream& out, std::ostream& err) {
  auto reader = storage::StoreReader::Open(o.storage_path);
  if (!reader.ok()) {
    err << "suanlictl store verify: " << reader.status().message() << "\n";
    return 1;
  }
  ProgressBar bar(o.progress);
  auto report = VerifyStore(**reader, [&](uint64_t done, uint64_t total, const std::string& w) {
    bar.Update(done, total, w);
  });
  bar.Finish();
  if (!report.ok()) {
    err << "suanlictl store verify: " << report.status().message() << "\n";
    return 1;
  }
  for (const Damage& d : report->damage) out << "damaged: " << d.ToString() << "\n";
  const VerifyReport& r = *report;
  out << "checked " << FormatCount(r.sst_files) << " SST files, " << FormatCount(r.series)
      << " series, " << FormatCount(r.raw_chunks) << " raw chunks, " << FormatCount(r.rollup_blocks)
      << " rollup blocks (" << FormatCount(r.rollups_compared) << " compared with their chunk), "
      << FormatCount(r.head_chunks) << " head chunks, " << FormatCount(r.log_records)
      << " head log records";
  if (r.forgotten_series_values > 0) {
    out << " (" << FormatCount(r.forgotten_series_values)
        << " chunks and rollup blocks of series forgotten past retention)";
  }
  out << ": ";
  if (r.damage.empty()) {
    out << "no damage found\n";
    return 0;
  }
  out << FormatCount(r.damage.size()) << " damaged\n";
  return 1;
}

}  // namespace suanli::ctl
