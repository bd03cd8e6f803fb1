// Power loss: every acknowledged sample is readable after the machine loses power at any
// moment. The store's files go through PowerLossFs, which remembers per file how many bytes
// were synced; at the power loss every later write, sync, rename and delete is silently lost
// (the process does not notice, as with a real power cut), and afterwards every file is cut
// back to what was synced. Concurrent writers, retried (duplicate) batches, checkpoints and
// hour boundaries run meanwhile; the store is reopened over the cut files and must hold every
// batch acknowledged before the cut.
// Not modelled: directory entries (a file created or renamed is taken as durable at once;
// RocksDB syncs the directory after creating its files).
#include <gtest/gtest.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/store.h"

namespace suanli::storage {
namespace {

using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

class PowerLossFs : public rocksdb::FileSystemWrapper {
 public:
  PowerLossFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "PowerLossFs"; }

  bool dead() const { return dead_.load(); }
  // From now on nothing reaches the disk.
  void PowerLoss() {
    std::lock_guard lock(mu_);
    dead_ = true;
  }
  // Cuts every file back to its synced length (after PowerLoss, the store closed). Returns the
  // number of bytes dropped.
  uint64_t CutToSynced() {
    std::lock_guard lock(mu_);
    uint64_t dropped = 0;
    for (const auto& [name, f] : files_) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(name, ec);
      if (ec || size <= f.synced) continue;
      dropped += size - f.synced;
      EXPECT_EQ(truncate(name.c_str(), static_cast<off_t>(f.synced)), 0)
          << name << ": " << std::strerror(errno);
    }
    return dropped;
  }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& opts,
                           std::unique_ptr<FSWritableFile>* out, IODebugContext* dbg) override {
    return Open(name, opts, out, dbg, /*reopen=*/false);
  }
  IOStatus ReopenWritableFile(const std::string& name, const FileOptions& opts,
                              std::unique_ptr<FSWritableFile>* out, IODebugContext* dbg) override {
    return Open(name, opts, out, dbg, /*reopen=*/true);
  }
  IOStatus ReuseWritableFile(const std::string&, const std::string&, const FileOptions&,
                             std::unique_ptr<FSWritableFile>*, IODebugContext*) override {
    return IOStatus::NotSupported("PowerLossFs: no WAL recycling");
  }
  IOStatus RenameFile(const std::string& from, const std::string& to, const IOOptions& opts,
                      IODebugContext* dbg) override {
    std::lock_guard lock(mu_);
    if (dead_) return IOStatus::OK();
    IOStatus s = target()->RenameFile(from, to, opts, dbg);
    if (s.ok()) {
      auto it = files_.find(from);
      if (it != files_.end()) {
        files_[to] = it->second;
        files_.erase(it);
      } else {
        files_.erase(to);
      }
    }
    return s;
  }
  IOStatus DeleteFile(const std::string& name, const IOOptions& opts,
                      IODebugContext* dbg) override {
    std::lock_guard lock(mu_);
    if (dead_) return IOStatus::OK();
    IOStatus s = target()->DeleteFile(name, opts, dbg);
    if (s.ok()) files_.erase(name);
    return s;
  }

 private:
  struct State {
    uint64_t written = 0;
    uint64_t synced = 0;
  };

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(PowerLossFs* fs, std::string name, std::unique_ptr<FSWritableFile> target)
        : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}
    IOStatus Append(const Slice& data, const IOOptions& opts, IODebugContext* dbg) override {
      std::lock_guard lock(fs_->mu_);
      if (fs_->dead_) return IOStatus::OK();
      IOStatus s = target()->Append(data, opts, dbg);
      if (s.ok()) fs_->files_[name_].written += data.size();
      return s;
    }
    IOStatus Append(const Slice& data, const IOOptions& opts, const rocksdb::DataVerificationInfo&,
                    IODebugContext* dbg) override {
      return Append(data, opts, dbg);
    }
    IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& opts,
                              IODebugContext* dbg) override {
      std::lock_guard lock(fs_->mu_);
      if (fs_->dead_) return IOStatus::OK();
      IOStatus s = target()->PositionedAppend(data, offset, opts, dbg);
      if (s.ok()) {
        State& st = fs_->files_[name_];
        st.written = std::max(st.written, offset + data.size());
      }
      return s;
    }
    IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& opts,
                              const rocksdb::DataVerificationInfo&, IODebugContext* dbg) override {
      return PositionedAppend(data, offset, opts, dbg);
    }
    IOStatus Truncate(uint64_t size, const IOOptions& opts, IODebugContext* dbg) override {
      std::lock_guard lock(fs_->mu_);
      if (fs_->dead_) return IOStatus::OK();
      IOStatus s = target()->Truncate(size, opts, dbg);
      if (s.ok()) {
        State& st = fs_->files_[name_];
        st.written = size;
        st.synced = std::min(st.synced, size);
      }
      return s;
    }
    IOStatus Flush(const IOOptions& opts, IODebugContext* dbg) override {
      if (fs_->dead_) return IOStatus::OK();
      return target()->Flush(opts, dbg);
    }
    IOStatus Sync(const IOOptions& opts, IODebugContext* dbg) override {
      return Synced([&] { return target()->Sync(opts, dbg); });
    }
    IOStatus Fsync(const IOOptions& opts, IODebugContext* dbg) override {
      return Synced([&] { return target()->Fsync(opts, dbg); });
    }
    // Not a durability point: RocksDB syncs the whole file before relying on it.
    IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
      return IOStatus::OK();
    }
    IOStatus Close(const IOOptions& opts, IODebugContext* dbg) override {
      if (fs_->dead_) return IOStatus::OK();
      return target()->Close(opts, dbg);
    }

   private:
    template <typename F>
    IOStatus Synced(F sync) {
      uint64_t covered;
      {
        std::lock_guard lock(fs_->mu_);
        if (fs_->dead_) return IOStatus::OK();
        covered = fs_->files_[name_].written;
      }
      IOStatus s = sync();
      std::lock_guard lock(fs_->mu_);
      // A power loss during the sync: what it covered may or may not have reached the disk;
      // count it as lost (the writer is not acknowledged after the cut anyway).
      if (s.ok() && !fs_->dead_) {
        State& st = fs_->files_[name_];
        st.synced = std::max(st.synced, covered);
      }
      return s;
    }

    PowerLossFs* fs_;
    std::string name_;
  };

  IOStatus Open(const std::string& name, const FileOptions& opts,
                std::unique_ptr<FSWritableFile>* out, IODebugContext* dbg, bool reopen) {
    std::unique_ptr<FSWritableFile> file;
    {
      std::lock_guard lock(mu_);
      if (dead_) {
        // Nothing is created any more: a sink that takes everything.
        class Sink : public FSWritableFile {
         public:
          IOStatus Append(const Slice&, const IOOptions&, IODebugContext*) override {
            return IOStatus::OK();
          }
          IOStatus Close(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
          IOStatus Flush(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
          IOStatus Sync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
          uint64_t GetFileSize(const IOOptions&, IODebugContext*) override { return 0; }
        };
        *out = std::make_unique<Sink>();
        return IOStatus::OK();
      }
      IOStatus s = reopen ? target()->ReopenWritableFile(name, opts, &file, dbg)
                          : target()->NewWritableFile(name, opts, &file, dbg);
      if (!s.ok()) return s;
      State& st = files_[name];
      if (reopen) {
        std::error_code ec;
        st.written = std::filesystem::file_size(name, ec);
        st.synced = std::min(st.synced, st.written);
      } else {
        st = State{};
      }
    }
    *out = std::make_unique<File>(this, name, std::move(file));
    return IOStatus::OK();
  }

  std::mutex mu_;
  std::atomic<bool> dead_{false};
  std::map<std::string, State> files_;  // by path, as RocksDB names them
};

constexpr int kWriters = 4;
constexpr int kSeriesPerWriter = 8;
constexpr int kSamplesPerBatch = 6;
constexpr int64_t kBaseMs = 1'800'000'000'000 - 3'600'000 * 3;  // 3 h before the clock below
constexpr int64_t kStepMs = 60'000;  // a batch spans 6 minutes: hour boundaries every 10

TimeSeries SeriesOf(int cycle, int writer, int series, int64_t batch) {
  TimeSeries ts;
  ts.labels = Labels{{"__name__", "power_loss_test"},
                     {"writer", std::to_string(writer)},
                     {"series", std::to_string(series)}};
  for (int j = 0; j < kSamplesPerBatch; ++j) {
    const int64_t n = batch * kSamplesPerBatch + j;
    ts.samples.push_back(
        {kBaseMs + (int64_t{cycle} * 100'000 + n) * kStepMs,
         static_cast<double>(((cycle * kWriters + writer) * 64 + series) * 1e6 + n)});
  }
  return ts;
}

TEST(PowerLossTest, EveryAcknowledgedBatchSurvivesALossOfPower) {
  std::string tmpl = ::testing::TempDir() + "/power_loss_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
  const std::string dir = tmpl;
  const std::string db = dir + "/db";
  // (cycle, writer, batch) acknowledged before the power loss.
  std::vector<std::tuple<int, int, int64_t>> acked;
  std::mutex acked_mu;
  constexpr int kCycles = 3;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE(cycle);
    auto fs = std::make_shared<PowerLossFs>();
    RocksDbStoreOptions o;
    o.path = db;
    o.file_system = fs;
    o.now_ms = [] { return int64_t{1'800'000'000'000}; };
    o.checkpoint_interval_ms = 1;  // a checkpoint every second of the background loop
    o.head_log_bytes = 64 << 10;   // and one whenever the head log grew by 64 KiB
    auto opened = RocksDbStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto store = std::move(opened).value();

    std::atomic<int> acks{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int64_t b = 0; !fs->dead() && b < 100'000; ++b) {
          std::vector<TimeSeries> batch;
          for (int s = 0; s < kSeriesPerWriter; ++s) batch.push_back(SeriesOf(cycle, w, s, b));
          // Every third batch is sent twice, as a sender retries after a lost answer.
          for (int attempt = 0; attempt < (b % 3 == 0 ? 2 : 1); ++attempt) {
            Result<AppendStats> r = store->Append(batch);
            if (fs->dead()) return;  // the answer may come after the cut: not counted
            ASSERT_TRUE(r.ok()) << r.status().ToString();
            std::lock_guard lock(acked_mu);
            acked.emplace_back(cycle, w, b);
            ++acks;
          }
        }
      });
    }
    // The cut comes while the writers are busy, at a different point each cycle.
    const int cut_after = 150 + cycle * 120;
    while (acks.load() < cut_after) std::this_thread::yield();
    fs->PowerLoss();
    for (std::thread& t : writers) t.join();
    store.reset();  // its last writes go nowhere
    const uint64_t dropped = fs->CutToSynced();
    std::printf("cycle %d: %d acknowledged before the cut, %llu unsynced bytes dropped\n", cycle,
                acks.load(), static_cast<unsigned long long>(dropped));

    // Reopened on the plain file system: every acknowledged batch is there.
    RocksDbStoreOptions plain;
    plain.path = db;
    plain.now_ms = o.now_ms;
    auto reopened = RocksDbStore::Open(plain);
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    auto read = (*reopened)->Select({{MatcherSpec::kEqual, "__name__", "power_loss_test"}},
                                    INT64_MIN, INT64_MAX);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    std::map<std::pair<std::string, std::string>, std::map<int64_t, double>> stored;
    for (const SeriesSamples& s : *read) {
      auto& m = stored[{std::string(s.labels.Get("writer")), std::string(s.labels.Get("series"))}];
      for (const Sample& x : s.samples) m[x.timestamp_ms] = x.value;
    }
    size_t checked = 0, missing = 0;
    for (const auto& [c, w, b] : acked) {
      for (int s = 0; s < kSeriesPerWriter; ++s) {
        const TimeSeries want = SeriesOf(c, w, s, b);
        const auto& have = stored[{std::to_string(w), std::to_string(s)}];
        for (const Sample& x : want.samples) {
          ++checked;
          auto it = have.find(x.timestamp_ms);
          if (it == have.end() || it->second != x.value) {
            if (missing++ == 0) {
              ADD_FAILURE() << "cycle " << c << " writer " << w << " batch " << b << " series " << s
                            << " ts " << x.timestamp_ms << ": acknowledged, "
                            << (it == have.end() ? "missing" : "another value");
            }
          }
        }
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << checked << " acknowledged samples";
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace suanli::storage
