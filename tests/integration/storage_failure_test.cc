// What suanli-aggregator does when its disk fails it, with the real binary:
// - a write error (here EFBIG past RLIMIT_FSIZE) is fatal: it logs why and exits 1, so that
//   systemd restarts it, and every acknowledged sample is in the store;
// - a full disk (ENOSPC, a tmpfs filled with ballast; needs root) is not: writes get 503 with a
//   reason, and once space returns writing resumes by itself; every acknowledged sample is
//   readable after a restart.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "aggregator/storage/store.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr int kSeries = 100;
constexpr int kSamplesPerBatch = 10;

std::map<std::string, std::string> WriteHeaders() {
  return {{"Content-Type", remote::kWriteContentType},
          {"Content-Encoding", remote::kContentEncoding},
          {remote::kWriteVersionHeader, remote::kWriteVersion}};
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Batch `b`: kSamplesPerBatch samples for each of kSeries series, at base + (b * 10 + j) s,
// with values that are hard to compress (the WAL grows quickly).
std::string Batch(int64_t base, int b) {
  remote::WriteRequest req;
  for (int s = 0; s < kSeries; ++s) {
    TimeSeries ts;
    ts.labels = Labels{{"__name__", "storage_failure_test"}, {"s", std::to_string(s)}};
    for (int j = 0; j < kSamplesPerBatch; ++j) {
      const int64_t i = int64_t{b} * kSamplesPerBatch + j;
      ts.samples.push_back({base + i * 1000, static_cast<double>(i * 7919 + s) / 3.0});
    }
    req.series.push_back(std::move(ts));
  }
  return remote::EncodeWriteRequest(req);
}

HttpClientResponse Post(const Daemon& d, const std::string& body) {
  HttpClient::Options o;
  o.timeout = std::chrono::seconds(20);
  HttpClient client(o);
  auto r = client.Post(d.Url("/api/v1/write"), body, WriteHeaders());
  return r.ok() ? *r : HttpClientResponse{};
}

// Every acknowledged batch (0..acked-1, plus those in `extra`) is in the store at `path`,
// whole, with the values it was sent with.
void ExpectAcknowledgedBatches(const std::string& path, int64_t base, int acked,
                               const std::vector<int>& extra = {}) {
  storage::RocksDbStoreOptions o;
  o.path = path;
  auto store = storage::OpenRocksDbStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto read = (*store)->Select({{storage::MatcherSpec::kEqual, "__name__", "storage_failure_test"}},
                               INT64_MIN, INT64_MAX);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), static_cast<size_t>(kSeries));
  std::vector<int> batches;
  for (int b = 0; b < acked; ++b) batches.push_back(b);
  batches.insert(batches.end(), extra.begin(), extra.end());
  for (const storage::SeriesSamples& series : *read) {
    const int s = std::stoi(std::string(series.labels.Get("s")));
    std::map<int64_t, double> got;
    for (const Sample& x : series.samples) got[x.timestamp_ms] = x.value;
    for (int b : batches) {
      for (int j = 0; j < kSamplesPerBatch; ++j) {
        const int64_t i = int64_t{b} * kSamplesPerBatch + j;
        auto it = got.find(base + i * 1000);
        ASSERT_NE(it, got.end()) << "series " << s << " lost acknowledged batch " << b;
        EXPECT_EQ(it->second, static_cast<double>(i * 7919 + s) / 3.0);
      }
    }
  }
}

// A write error that is not a full disk: the aggregator cannot know what reached the disk, so
// it says so and exits 1 (systemd's Restart= brings it back; the WAL has every acknowledged
// batch).
TEST(StorageFailureTest, WriteErrorEndsTheProcessWithExitCode1) {
  TempDir tmp("suanli-it-storage-failure");
  // The child inherits a 2 MiB file size limit and an ignored SIGXFSZ: past it, writes to the
  // WAL fail with EFBIG.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = 2 << 20;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  auto started = StartAggregator(tmp.path(), {});
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Daemon agg = std::move(started).value();

  const int64_t base = NowMs() - 3'600'000;
  int acked = 0;
  HttpClientResponse r;
  for (; acked < 1000; ++acked) {
    r = Post(agg, Batch(base, acked));
    if (r.status != 204) break;
  }
  ASSERT_LT(acked, 1000) << "the WAL never reached the file size limit";
  EXPECT_EQ(r.status, 500) << r.body;
  auto exit = agg.process->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit.has_value()) << "still running after a fatal write error\n"
                                << agg.process->LogTail();
  EXPECT_TRUE(exit->exited && exit->code == 1) << exit->ToString() << "\n"
                                               << agg.process->LogTail();
  EXPECT_NE(agg.process->Log().find("exiting so that the service manager restarts it"),
            std::string::npos)
      << agg.process->LogTail();
  ExpectAcknowledgedBatches(tmp.Sub("data"), base, acked);
}

// A small tmpfs mounted for the test, unmounted (lazily) at the end.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    if (geteuid() != 0) {
      why_ = "needs root to mount a tmpfs";
    } else if (mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      why_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
    } else {
      mounted_ = true;
    }
  }
  ~Tmpfs() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::string path_;
  std::string why_;
  bool mounted_ = false;
};

TEST(StorageFailureTest, FullDiskAnswers503AndWritingResumesWhenSpaceReturns) {
  TempDir tmp("suanli-it-disk-full");
  // RocksDB resumes after ENOSPC only with room to flush a whole memtable (64 MiB, the
  // aggregator's write buffer) free: 96 MiB, 88 of them ballast that the test deletes to give
  // the space back; the database fills the rest.
  Tmpfs disk(tmp.Sub("disk"), "96m");
  if (!disk.mounted()) GTEST_SKIP() << disk.why();
  const std::string ballast = tmp.Sub("disk/ballast");
  {
    std::ofstream out(ballast, std::ios::binary);
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 88; ++i) out << mib;
    ASSERT_TRUE(out.good());
  }
  const std::string data = tmp.Sub("disk/data");
  auto started = StartAggregator(tmp.path(), {"--storage.path=" + data});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Daemon agg = std::move(started).value();

  const int64_t base = NowMs() - 3'600'000;
  int acked = 0;
  HttpClientResponse r;
  for (; acked < 2000; ++acked) {
    r = Post(agg, Batch(base, acked));
    if (r.status != 204) break;
  }
  ASSERT_LT(acked, 2000) << "the disk never filled";
  ASSERT_EQ(r.status, 503) << r.body << "\n" << agg.process->LogTail();
  EXPECT_NE(r.body.find("out of disk space"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "5");
  // Still full: refused again, and the process keeps running and healthy.
  EXPECT_EQ(Post(agg, Batch(base, acked)).status, 503);
  auto healthy = HttpGet(agg.Url("/-/healthy"));
  ASSERT_TRUE(healthy.ok());
  EXPECT_EQ(healthy->status, 200);

  ASSERT_EQ(unlink(ballast.c_str()), 0) << std::strerror(errno);
  // The refused batch goes through once the store has resumed (the sender's retry).
  int status = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        status = Post(agg, Batch(base, acked)).status;
        return status == 204;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(250)))
      << "last status " << status << "\n"
      << agg.process->LogTail();
  const int resumed_at = acked;
  std::vector<int> after = {resumed_at};
  for (int b = resumed_at + 1; b < resumed_at + 5; ++b) {
    ASSERT_EQ(Post(agg, Batch(base, b)).status, 204) << agg.process->LogTail();
    after.push_back(b);
  }
  agg.process->Signal(SIGTERM);
  auto exit = agg.process->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->ok()) << exit->ToString() << "\n" << agg.process->LogTail();
  ExpectAcknowledgedBatches(data, base, acked, after);
}

}  // namespace
}  // namespace suanli::it
