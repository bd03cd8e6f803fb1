#include "agent/spool.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "core/clock.h"

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

double Metric(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label) have[l.name] = l.value;
      if (have != labels) continue;
      return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return NAN;
}

std::string Body(uint64_t i, size_t size = 100) {
  std::string s = "record-" + std::to_string(i) + ":";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}

std::vector<uint64_t> Seqs(const std::vector<SpoolRecord>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r.seq);
  return out;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "/spool-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    ASSERT_NE(mkdtemp(buf.data()), nullptr);
    root_ = buf.data();
    dir_ = root_ + "/spool";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  SpoolOptions Options() const {
    SpoolOptions o;
    o.directory = dir_;
    o.fsync = FsyncPolicy::kNever;  // tests do not survive power cuts anyway
    o.disk_retry_interval = std::chrono::seconds(10);
    return o;
  }

  std::unique_ptr<Spool> Open(const SpoolOptions& o, std::vector<std::string> endpoints = {"a"}) {
    return std::make_unique<Spool>(o, std::move(endpoints), clock_, registry_);
  }

  // Appends records [from, to) with 10 samples each, timestamp 1000 * i.
  void Fill(Spool& s, uint64_t from, uint64_t to, size_t size = 100) {
    for (uint64_t i = from; i < to; ++i) {
      s.Append(Body(i, size), 10, static_cast<int64_t>(i) * 1000, static_cast<int64_t>(i) * 1000);
    }
  }

  // Every record the endpoint gets, in the order NextBatch gives them, acknowledging each batch.
  std::vector<SpoolRecord> Drain(Spool& s, size_t endpoint = 0,
                                 ReplayOrder order = ReplayOrder::kOldestFirst,
                                 size_t max_samples = 1000000) {
    std::vector<SpoolRecord> out;
    for (;;) {
      auto batch = s.NextBatch(endpoint, order, max_samples);
      if (batch.empty()) return out;
      s.Ack(endpoint, Seqs(batch));
      out.insert(out.end(), batch.begin(), batch.end());
    }
  }

  std::vector<std::string> Segments() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".seg") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string root_, dir_;
  FakeClock clock_;
  prometheus::Registry registry_;
};

TEST_F(SpoolTest, RecordsAndCursorsSurviveARestart) {
  {
    auto s = Open(Options());
    Fill(*s, 0, 5);
    auto batch = s->NextBatch(0, ReplayOrder::kOldestFirst, 30);
    ASSERT_THAT(Seqs(batch), ElementsAre(0, 1, 2));  // 3 x 10 samples fit in 30
    EXPECT_EQ(*batch[1].body, Body(1));
    EXPECT_EQ(batch[2].min_ts_ms, 2000);
    s->Ack(0, Seqs(batch));
    EXPECT_EQ(s->PendingSamples(0), 20u);
  }  // as after SIGKILL: the cursor was persisted by Ack, the records by Append
  auto s = Open(Options());
  EXPECT_EQ(s->PendingSamples(0), 20u);
  auto rest = Drain(*s);
  ASSERT_THAT(Seqs(rest), ElementsAre(3, 4));
  EXPECT_EQ(*rest[0].body, Body(3));
  EXPECT_EQ(rest[1].samples, 10u);
  Fill(*s, 5, 6);
  EXPECT_EQ(s->NextBatch(0, ReplayOrder::kOldestFirst, 100).front().seq, 5u);
}

TEST_F(SpoolTest, EveryEndpointGetsEveryRecordAndOnlyThenItIsReleased) {
  SpoolOptions o = Options();
  o.segment_bytes = 1000;  // about 7 records per segment
  auto s = Open(o, {"a", "b"});
  Fill(*s, 0, 20);
  EXPECT_EQ(Seqs(Drain(*s, 0)).size(), 20u);
  EXPECT_EQ(s->Stats().records, 20u);  // b has not had them yet
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_pending_samples", {{"endpoint", "a"}}), 0);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_pending_samples", {{"endpoint", "b"}}),
            200);
  EXPECT_EQ(Seqs(Drain(*s, 1)).size(), 20u);
  SpoolStats st = s->Stats();
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.segments, 1u);  // only the segment being appended to stays
  EXPECT_EQ(Segments().size(), 1u);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_samples"), 0);
}

TEST_F(SpoolTest, NewEndpointStartsAtTheEndAndARemovedOneIsForgotten) {
  { Fill(*Open(Options(), {"a"}), 0, 4); }
  auto s = Open(Options(), {"b"});  // a is gone, b is new
  EXPECT_EQ(s->PendingSamples(0), 0u);
  EXPECT_EQ(s->Stats().records, 0u);  // nobody needs them any more
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_dropped_samples_total",
                   {{"reason", "endpoint_removed"}}),
            40);
  Fill(*s, 4, 6);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(4, 5));
  int cursors = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    cursors += e.path().filename().string().rfind("cursor-", 0) == 0;
  }
  EXPECT_EQ(cursors, 1);  // a's file is gone
}

TEST_F(SpoolTest, TornTailIsCutOffCountedAndEverythingBeforeKept) {
  { Fill(*Open(Options()), 0, 10); }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  uint64_t size = fs::file_size(segs[0]);
  // A power cut in the middle of the last record: half of it reached the disk.
  fs::resize_file(segs[0], size - 70);
  auto s = Open(Options());
  SpoolStats st = s->Stats();
  EXPECT_EQ(st.records, 9u);
  EXPECT_EQ(st.corrupt_records, 1u);
  EXPECT_EQ(st.corrupt_bytes, 140u - 70u);  // a record is 40 header + 100 body bytes
  EXPECT_EQ(fs::file_size(segs[0]), size - 140);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_corrupt_records_total"), 1);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_corrupt_bytes_total"), 70);
  Fill(*s, 9, 11);  // appends go on after the cut
  auto all = Drain(*s);
  ASSERT_EQ(all.size(), 11u);
  for (uint64_t i = 0; i < 11; ++i) {
    EXPECT_EQ(all[i].seq, i);
    EXPECT_EQ(*all[i].body, Body(i));
  }
}

TEST_F(SpoolTest, CorruptRecordCutsTheRestOfItsSegment) {
  { Fill(*Open(Options()), 0, 10); }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 + 6 * 140 + 40 + 50);  // a byte in record 6's body
    f.put('#');
  }
  auto s = Open(Options());
  EXPECT_EQ(s->Stats().records, 6u);
  EXPECT_EQ(s->Stats().corrupt_bytes, 4u * 140);
  EXPECT_EQ(fs::file_size(segs[0]), 32u + 6 * 140);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST_F(SpoolTest, ZeroFilledTailIsCut) {
  { Fill(*Open(Options()), 0, 3); }
  auto segs = Segments();
  // ext4 after a power cut: the file grew but the data blocks never came.
  { std::ofstream(segs[0], std::ios::app | std::ios::binary) << std::string(4096, '\0'); }
  auto s = Open(Options());
  EXPECT_EQ(s->Stats().records, 3u);
  EXPECT_EQ(s->Stats().corrupt_bytes, 4096u);
}

TEST_F(SpoolTest, CorruptSegmentHeaderLosesOnlyThatSegment) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 3 * 140;  // 3 records per segment
  { Fill(*Open(o), 0, 9); }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 3u);
  {
    std::fstream f(segs[1], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2);
    f.put('X');
  }
  auto s = Open(o);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(0, 1, 2, 6, 7, 8));
  EXPECT_EQ(s->Stats().corrupt_records, 1u);
  EXPECT_FALSE(fs::exists(segs[1]));
}

// What a newer agent leaves behind: its segments' header carries a higher format version.
void BumpSegmentVersion(const std::string& path, char version) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8);  // the little-endian version after the 8-byte magic
  f.put(version);
}

std::string FileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The next sequence number written in an endpoint's cursor file (its second line).
uint64_t CursorFileSeq(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("cursor-", 0) != 0) continue;
    std::string text = FileBytes(e.path().string());
    size_t nl = text.find('\n');
    return std::stoull(text.substr(nl + 1));
  }
  return UINT64_MAX;
}

TEST_F(SpoolTest, NewerVersionSegmentIsKeptReportedAndNeverDeleted) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 3 * 140;  // 3 records per segment
  { Fill(*Open(o), 0, 9); }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 3u);  // records 0-2, 3-5, 6-8
  BumpSegmentVersion(segs[1], 2);
  const std::string kept = FileBytes(segs[1]);
  {
    auto s = Open(o);
    SpoolStats st = s->Stats();
    EXPECT_EQ(st.unreadable_segments, 1u);
    EXPECT_EQ(st.corrupt_records, 0u);
    EXPECT_EQ(st.records, 6u);
    EXPECT_EQ(st.segments, 2u);
    EXPECT_EQ(
        Metric(registry_, "suanli_agent_spool_unreadable_segments", {{"reason", "newer_version"}}),
        1);
    EXPECT_EQ(Metric(registry_, "suanli_agent_spool_corrupt_records_total"), 0);
    // Sequence numbers go on past anything the kept segment can hold: 3 + its size.
    EXPECT_EQ(st.next_seq, 3u + kept.size());
    EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(0, 1, 2, 6, 7, 8));
    Fill(*s, 9, 10);
    EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(3 + kept.size()));
  }
  // The cursor file stays at the kept segment's first record, for the newer agent to send it.
  EXPECT_EQ(CursorFileSeq(dir_), 3u);
  EXPECT_EQ(FileBytes(segs[1]), kept);  // untouched
  // Opened again (rolled back still): kept again and counted once. The held-back cursor makes
  // this build send again what its spool still holds past the kept segment (the record of its
  // open segment): a duplicate, which receivers drop, never a hole.
  auto s = Open(o);
  EXPECT_EQ(s->Stats().unreadable_segments, 1u);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(3 + kept.size()));
  EXPECT_EQ(FileBytes(segs[1]), kept);
  EXPECT_EQ(
      Metric(registry_, "suanli_agent_spool_unreadable_segments", {{"reason", "newer_version"}}),
      1);
}

TEST_F(SpoolTest, NewerVersionSegmentSurvivesTheCapAndSortsFirst) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 3 * 140;
  o.max_bytes = 2 * o.segment_bytes;
  { Fill(*Open(o), 0, 3); }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  BumpSegmentVersion(segs[0], 7);
  const std::string kept = FileBytes(segs[0]);
  auto s = Open(o);
  EXPECT_EQ(s->Stats().unreadable_segments, 1u);
  EXPECT_EQ(s->Stats().records, 0u);
  // Far more than max_bytes: the cap deletes this build's oldest segments, never the kept one.
  Fill(*s, 0, 30);
  EXPECT_GT(s->Stats().dropped_samples["cap"], 0u);
  EXPECT_EQ(FileBytes(segs[0]), kept);
  auto now = Segments();
  ASSERT_GE(now.size(), 2u);
  EXPECT_EQ(now.front(), segs[0]);  // this build's segments sort after it
}

TEST_F(SpoolTest, CapDropsTheOldestFirstAndCountsThem) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 5 * 140;  // 5 records per segment
  o.max_bytes = 3 * o.segment_bytes;
  auto s = Open(o, {"a", "b"});
  Fill(*s, 0, 40);
  SpoolStats st = s->Stats();
  EXPECT_LE(st.disk_bytes, static_cast<uint64_t>(o.max_bytes));
  auto kept = Drain(*s, 0);
  ASSERT_FALSE(kept.empty());
  // What is left is the newest, without holes.
  EXPECT_EQ(kept.back().seq, 39u);
  for (size_t i = 1; i < kept.size(); ++i) EXPECT_EQ(kept[i].seq, kept[i - 1].seq + 1);
  const double dropped = 10.0 * (40 - kept.size());
  EXPECT_EQ(kept.size(), 15u);  // 3 segments of 5: the active one is never dropped
  EXPECT_EQ(st.dropped_samples.at("cap"), dropped);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_dropped_samples_total", {{"reason", "cap"}}),
            dropped);
  EXPECT_EQ(Metric(registry_, "suanli_agent_remote_write_samples_dropped_total",
                   {{"endpoint", "b"}, {"reason", "cap"}}),
            dropped);
  EXPECT_EQ(Segments().size(), 3u);
}

TEST_F(SpoolTest, CapDoesNotCountWhatEveryEndpointAlreadyHad) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 5 * 140;
  o.max_bytes = 3 * o.segment_bytes;
  auto s = Open(o);
  for (uint64_t i = 0; i < 40; ++i) {
    Fill(*s, i, i + 1);
    Drain(*s);
  }
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_dropped_samples_total", {{"reason", "cap"}}), 0);
}

TEST_F(SpoolTest, NewestFirstSendsTheFreshRecordThenTheBacklogInOrder) {
  auto s = Open(Options());
  Fill(*s, 0, 6);
  auto first = s->NextBatch(0, ReplayOrder::kNewestFirst, 1000);
  ASSERT_THAT(Seqs(first), ElementsAre(5));
  s->Ack(0, Seqs(first));
  Fill(*s, 6, 7);  // a fresh sweep arrives during the replay: it jumps the queue again
  auto fresh = s->NextBatch(0, ReplayOrder::kNewestFirst, 1000);
  ASSERT_THAT(Seqs(fresh), ElementsAre(6));
  s->Ack(0, Seqs(fresh));
  auto backlog = s->NextBatch(0, ReplayOrder::kNewestFirst, 1000);
  EXPECT_THAT(Seqs(backlog), ElementsAre(0, 1, 2, 3, 4));
  s->Ack(0, Seqs(backlog));
  EXPECT_EQ(s->PendingSamples(0), 0u);
  EXPECT_EQ(s->Stats().records, 0u);
}

TEST_F(SpoolTest, NewestFirstWaitsUntilTheBacklogFitsTheReceiversWindow) {
  auto s = Open(Options());
  Fill(*s, 0, 20);  // timestamps 0 s .. 19 s
  // A 10 s window: jumping ahead now would make the first 10 s "too old" at the receiver.
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kNewestFirst, 50, 0, 10000)),
              ElementsAre(0, 1, 2, 3, 4));
  s->Ack(0, {0, 1, 2, 3, 4, 5, 6, 7, 8});  // 9 s .. 19 s: still too far apart
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kNewestFirst, 50, 0, 10000)),
              ElementsAre(9, 10, 11, 12, 13));
  s->Ack(0, {9});  // 10 s .. 19 s is within 90% of 10 s
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kNewestFirst, 50, 0, 10000)), ElementsAre(19));
}

TEST_F(SpoolTest, BatchesStopAtTheSampleLimitAndWhenTheClockSteppedBack) {
  auto s = Open(Options());
  Fill(*s, 0, 3);
  s->Append("back", 10, 1500, 1500);  // the wall clock stepped back
  Fill(*s, 4, 6);
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kOldestFirst, 1000)), ElementsAre(0, 1, 2));
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kOldestFirst, 15)), ElementsAre(0));
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kOldestFirst, 1000, /*single_until=*/2)),
              ElementsAre(0));
  s->Ack(0, {0, 1, 2});
  EXPECT_THAT(Seqs(s->NextBatch(0, ReplayOrder::kOldestFirst, 1000)), ElementsAre(3, 4, 5));
}

TEST_F(SpoolTest, AckOutOfOrderKeepsTheCursorAtTheFirstUnsentRecord) {
  {
    auto s = Open(Options());
    Fill(*s, 0, 4);
    s->Ack(0, {1, 3});
    EXPECT_EQ(s->PendingSamples(0), 20u);
  }
  auto s = Open(Options());  // only the contiguous prefix is persisted: 1 and 3 come again
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(0, 1, 2, 3));
}

TEST_F(SpoolTest, UnusableDirectoryIsDegradedModeInMemoryThenRecovers) {
  { std::ofstream(root_ + "/blocker") << "a file where a directory should be"; }
  SpoolOptions o = Options();
  o.directory = root_ + "/blocker/spool";
  auto s = Open(o);
  EXPECT_TRUE(s->Stats().degraded);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_degraded"), 1);
  EXPECT_GE(Metric(registry_, "suanli_agent_spool_disk_errors_total", {{"op", "open"}}), 1);
  Fill(*s, 0, 3);
  EXPECT_EQ(s->Stats().memory_bytes, 300u);
  auto early = s->NextBatch(0, ReplayOrder::kOldestFirst, 10);  // sending goes on from memory
  ASSERT_EQ(early.size(), 1u);
  s->Ack(0, Seqs(early));

  fs::remove(root_ + "/blocker");
  fs::create_directories(root_ + "/blocker");
  Fill(*s, 3, 4);  // before the retry interval: still memory
  EXPECT_TRUE(s->Stats().degraded);
  clock_.AdvanceMs(10000);
  Fill(*s, 4, 5);
  SpoolStats st = s->Stats();
  EXPECT_FALSE(st.degraded);
  EXPECT_EQ(st.memory_bytes, 0u);
  EXPECT_GT(st.disk_bytes, 0u);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_degraded"), 0);
  s.reset();
  auto again = Open(o);  // what moved to disk survives a restart
  auto rest = Drain(*again);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(*rest[0].body, Body(1));
  EXPECT_EQ(*rest[3].body, Body(4));
}

TEST_F(SpoolTest, DirectoryLockedByAnotherAgentIsOpenedLaterInOrder) {
  { Fill(*Open(Options()), 0, 3); }  // an earlier run left 3 unsent records
  int fd = ::open((dir_ + "/LOCK").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto s = Open(Options());
  EXPECT_TRUE(s->Stats().degraded);
  s->Append("m0", 10, 10000, 10000);
  s->Append("m1", 10, 11000, 11000);
  ::close(fd);  // the other agent is gone
  clock_.AdvanceMs(10000);
  s->Append("m2", 10, 12000, 12000);
  EXPECT_FALSE(s->Stats().degraded);
  std::vector<std::string> bodies;
  for (const auto& r : Drain(*s)) bodies.push_back(*r.body);
  EXPECT_THAT(bodies, ElementsAre(Body(0), Body(1), Body(2), "m0", "m1", "m2"));
}

TEST_F(SpoolTest, NewerVersionSegmentInADirectoryOpenedLaterIsKeptToo) {
  SpoolOptions o = Options();
  o.segment_bytes = 32 + 3 * 140;
  { Fill(*Open(o), 0, 6); }  // records 0-2 and 3-5; a newer agent wrote the second segment
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 2u);
  BumpSegmentVersion(segs[1], 3);
  const std::string kept = FileBytes(segs[1]);
  int fd = ::open((dir_ + "/LOCK").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto s = Open(o);
  EXPECT_TRUE(s->Stats().degraded);
  EXPECT_EQ(s->Stats().unreadable_segments, 0u);  // not looked at yet
  s->Append("m0", 10, 10000, 10000);
  ::close(fd);
  clock_.AdvanceMs(10000);
  s->Append("m1", 10, 11000, 11000);
  EXPECT_FALSE(s->Stats().degraded);
  EXPECT_EQ(s->Stats().unreadable_segments, 1u);
  EXPECT_EQ(
      Metric(registry_, "suanli_agent_spool_unreadable_segments", {{"reason", "newer_version"}}),
      1);
  std::vector<std::string> bodies;
  for (const auto& r : Drain(*s)) bodies.push_back(*r.body);
  EXPECT_THAT(bodies, ElementsAre(Body(0), Body(1), Body(2), "m0", "m1"));
  EXPECT_EQ(FileBytes(segs[1]), kept);
}

TEST_F(SpoolTest, MemoryOnlySpoolDropsTheOldestAtItsCap) {
  SpoolOptions o = Options();
  o.directory = "";
  o.max_memory_bytes = 1000;
  auto s = Open(o);
  Fill(*s, 0, 15);
  EXPECT_FALSE(s->Stats().degraded);  // configured that way: not a degraded mode
  auto kept = Drain(*s);
  ASSERT_EQ(kept.size(), 10u);
  EXPECT_EQ(kept.front().seq, 5u);
  EXPECT_EQ(
      Metric(registry_, "suanli_agent_spool_dropped_samples_total", {{"reason", "memory_cap"}}),
      50);
}

TEST_F(SpoolTest, OldestSampleAgeFollowsTheClock) {
  auto s = Open(Options());
  s->Append(Body(0), 10, clock_.NowUnixMs(), clock_.NowUnixMs());
  clock_.AdvanceMs(5000);
  s->Append(Body(1), 10, clock_.NowUnixMs(), clock_.NowUnixMs());
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_oldest_sample_age_seconds"), 5);
  Drain(*s);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_oldest_sample_age_seconds"), 0);
}

// kInterval writes a cursor at most once per fsync_interval while records are acknowledged
// (a crash resends at most that much), and always when the spool closes.
TEST_F(SpoolTest, IntervalPolicyWritesCursorsAtMostOncePerInterval) {
  SpoolOptions o = Options();
  o.fsync = FsyncPolicy::kInterval;
  o.fsync_interval = std::chrono::seconds(1);
  auto cursor_text = [&] {
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("cursor-", 0) == 0) {
        std::ifstream in(e.path());
        std::string magic, next;
        std::getline(in, magic);
        std::getline(in, next);
        return next;
      }
    }
    return std::string("none");
  };
  {
    auto s = Open(o);
    Fill(*s, 0, 4);
    EXPECT_EQ(cursor_text(), "0");  // written at open
    s->Ack(0, {0});
    EXPECT_EQ(cursor_text(), "0");  // within the interval: not yet
    clock_.AdvanceMs(1000);
    s->Ack(0, {1});
    EXPECT_EQ(cursor_text(), "2");
    s->Ack(0, {2});
    EXPECT_EQ(cursor_text(), "2");
  }
  EXPECT_EQ(cursor_text(), "3");  // closing writes it
  auto s = Open(o);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(3));
}

// kInterval syncs a segment only for records an endpoint still needs: what every endpoint
// accepted before a sync was due never costs an fdatasync (the steady state of a host whose
// receivers keep up), while a record still held when the interval has passed is synced by the
// next append.
TEST_F(SpoolTest, IntervalPolicySyncsOnlyRecordsStillHeld) {
  SpoolOptions o = Options();
  o.fsync = FsyncPolicy::kInterval;
  o.fsync_interval = std::chrono::seconds(1);
  auto s = Open(o, {"a", "b"});
  auto syncs = [&] { return s->Stats().segment_syncs; };
  Fill(*s, 0, 1);  // creates the segment (synced once, with the directory)
  const uint64_t base = syncs();
  EXPECT_EQ(base, 1u);
  Drain(*s, 0);
  Drain(*s, 1);
  clock_.AdvanceMs(2000);
  Fill(*s, 1, 2);  // record 0 was accepted by both endpoints: no sync
  EXPECT_EQ(syncs(), base);
  Drain(*s, 0);  // record 1: endpoint b has not accepted it
  clock_.AdvanceMs(2000);
  Fill(*s, 2, 3);  // record 1 is still held: synced (with 2)
  EXPECT_EQ(syncs(), base + 1);
  Fill(*s, 3, 4);  // within the interval of that sync
  EXPECT_EQ(syncs(), base + 1);
  clock_.AdvanceMs(2000);
  Drain(*s, 0);
  Drain(*s, 1);
  Fill(*s, 4, 5);  // records 2 and 3 were accepted: no sync, though the interval has passed
  EXPECT_EQ(syncs(), base + 1);
  clock_.AdvanceMs(100);
  Fill(*s, 5, 6);  // record 4 is held and the interval is still due: synced
  EXPECT_EQ(syncs(), base + 2);
  EXPECT_EQ(Metric(registry_, "suanli_agent_spool_syncs_total", {{"file", "segment"}}),
            static_cast<double>(base + 2));
  // A restart finds every record the endpoints had not accepted.
  s.reset();
  s = Open(o, {"a", "b"});
  EXPECT_THAT(Seqs(Drain(*s, 0)), ElementsAre(4, 5));
  EXPECT_THAT(Seqs(Drain(*s, 1)), ElementsAre(4, 5));
}

TEST_F(SpoolTest, SyncCountsFollowThePolicy) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    SCOPED_TRACE(static_cast<int>(policy));
    SpoolOptions o = Options();
    o.directory = dir_ + "-" + std::to_string(static_cast<int>(policy));
    o.fsync = policy;
    o.fsync_interval = std::chrono::seconds(1);
    auto s = Open(o);
    Fill(*s, 0, 3);
    for (uint64_t i = 0; i < 3; ++i) {
      clock_.AdvanceMs(1000);
      s->Ack(0, {i});
    }
    SpoolStats st = s->Stats();
    switch (policy) {
      case FsyncPolicy::kAlways:
        EXPECT_EQ(st.segment_syncs, 4u);  // the new segment, then every record
        EXPECT_EQ(st.cursor_syncs, 4u);   // the first cursor (replaced whole), then every Ack
        break;
      case FsyncPolicy::kInterval:
        // The new segment only: the records came within one interval. The cursor's first write
        // is synced before its rename; its updates in place are not (they bound duplicates).
        EXPECT_EQ(st.segment_syncs, 1u);
        EXPECT_EQ(st.cursor_syncs, 1u);
        break;
      case FsyncPolicy::kNever:
        EXPECT_EQ(st.segment_syncs, 0u);
        EXPECT_EQ(st.cursor_syncs, 0u);
        break;
    }
    s.reset();
    EXPECT_THAT(Seqs(Drain(*Open(o))), ::testing::IsEmpty());  // every Ack's cursor persisted
  }
}

TEST_F(SpoolTest, UnreadableCursorResendsEverything) {
  { Fill(*Open(Options()), 0, 3); }
  {
    auto s = Open(Options());
    Drain(*s);
    Fill(*s, 3, 5);
  }
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().filename().string().rfind("cursor-", 0) == 0) {
      std::ofstream(e.path()) << "garbage";
    }
  }
  auto s = Open(Options());
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(3, 4));  // duplicates would be fine, holes are not
}

// The cursor file is replaced whole at its first write in a run, then overwritten in place:
// same file, same size.
TEST_F(SpoolTest, CursorIsUpdatedInPlaceAfterItsFirstWrite) {
  auto cursor_file = [&] {
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("cursor-", 0) == 0) return e.path();
    }
    return fs::path();
  };
  SpoolOptions o = Options();
  o.fsync = FsyncPolicy::kAlways;  // every Ack writes the cursor
  {
    auto s = Open(o);
    Fill(*s, 0, 12);
    s->Ack(0, {0});
    fs::path path = cursor_file();
    ASSERT_FALSE(path.empty());
    struct stat first {};
    ASSERT_EQ(::stat(path.c_str(), &first), 0);
    for (uint64_t seq = 1; seq < 11; ++seq) s->Ack(0, {seq});  // 1 digit, then 2
    struct stat later {};
    ASSERT_EQ(::stat(path.c_str(), &later), 0);
    EXPECT_EQ(later.st_ino, first.st_ino);
    EXPECT_EQ(later.st_size, first.st_size);
    std::ifstream in(path);
    std::string magic, next;
    std::getline(in, magic);
    std::getline(in, next);
    EXPECT_EQ(next, "11");
  }
  auto s = Open(o);
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(11));
}

// A cursor whose CRC does not match (an in-place update torn by a power cut) is unreadable:
// everything held is sent again, whatever sequence number the torn text shows.
TEST_F(SpoolTest, TornCursorResendsEverything) {
  {
    auto s = Open(Options());
    Fill(*s, 0, 3);
    Drain(*s);
  }
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().filename().string().rfind("cursor-", 0) != 0) continue;
    std::string text;
    {
      std::ifstream in(e.path());
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    size_t nl = text.find('\n');
    ASSERT_EQ(text.substr(nl + 1, 2), "3\n");
    text[nl + 1] = '2';  // one digit of the new value never reached the disk
    std::ofstream(e.path()) << text;
  }
  auto s = Open(Options());
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(0, 1, 2));
}

// Cursor files of earlier agents (three lines, no CRC) are read.
TEST_F(SpoolTest, CursorWithoutCrcLineIsRead) {
  {
    auto s = Open(Options());
    Fill(*s, 0, 4);
  }
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().filename().string().rfind("cursor-", 0) == 0) {
      std::ofstream(e.path()) << "suanli-spool-cursor 1\n2\na\n";
    }
  }
  auto s = Open(Options());
  EXPECT_THAT(Seqs(Drain(*s)), ElementsAre(2, 3));
}

TEST(SpoolConfigTest, DefaultsAndEveryKey) {
  auto d = ParseAgentConfig("a.yml", "remote_write:\n  - url: http://x/w\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->spool.directory, "data/agent-spool");
  EXPECT_EQ(d->spool.fsync, FsyncPolicy::kInterval);
  EXPECT_EQ(d->spool.fsync_interval, std::chrono::seconds(1));
  EXPECT_EQ(d->remote_write[0].replay_order, ReplayOrder::kOldestFirst);
  EXPECT_EQ(d->remote_write[0].max_samples_per_send, 20000);

  auto c = ParseAgentConfig("a.yml",
                            "remote_write:\n"
                            "  - url: http://x/w\n"
                            "    max_samples_per_send: 500\n"
                            "    replay_order: newest_first\n"
                            "    out_of_order_window: 30m\n"
                            "    min_backoff: 100ms\n"
                            "    max_backoff: 5s\n"
                            "spool:\n"
                            "  directory: /var/lib/suanli-agent/spool\n"
                            "  max_bytes: 1048576\n"
                            "  segment_bytes: 65536\n"
                            "  max_memory_bytes: 2097152\n"
                            "  fsync: never\n"
                            "  fsync_interval: 250ms\n"
                            "  disk_retry_interval: 5s\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->spool.directory, "/var/lib/suanli-agent/spool");
  EXPECT_EQ(c->spool.max_bytes, 1048576);
  EXPECT_EQ(c->spool.segment_bytes, 65536);
  EXPECT_EQ(c->spool.max_memory_bytes, 2097152);
  EXPECT_EQ(c->spool.fsync, FsyncPolicy::kNever);
  EXPECT_EQ(c->spool.fsync_interval, std::chrono::milliseconds(250));
  EXPECT_EQ(c->spool.disk_retry_interval, std::chrono::seconds(5));
  EXPECT_EQ(c->remote_write[0].max_samples_per_send, 500);
  EXPECT_EQ(c->remote_write[0].replay_order, ReplayOrder::kNewestFirst);
  EXPECT_EQ(c->remote_write[0].out_of_order_window, std::chrono::minutes(30));
  EXPECT_EQ(c->remote_write[0].min_backoff, std::chrono::milliseconds(100));
  EXPECT_EQ(c->remote_write[0].max_backoff, std::chrono::seconds(5));
}

TEST(SpoolConfigTest, ErrorsNameLineAndKey) {
  EXPECT_EQ(ParseAgentConfig("a.yml", "spool:\n  fsync: sometimes\n").status().message(),
            "a.yml:2: spool.fsync: must be always, interval or never, got \"sometimes\"");
  EXPECT_EQ(ParseAgentConfig("a.yml", "spool:\n  fsync_interval: 0s\n").status().message(),
            "a.yml:2: spool.fsync_interval: must be positive");
  EXPECT_EQ(ParseAgentConfig("a.yml", "spool:\n  max_bytes: 100000\n").status().message(),
            "a.yml:2: spool.max_bytes: must be at least twice segment_bytes");
  EXPECT_EQ(
      ParseAgentConfig("a.yml", "remote_write:\n  - url: http://x/w\n    replay_order: random\n")
          .status()
          .message(),
      "a.yml:3: remote_write[0].replay_order: must be oldest_first or newest_first, got "
      "\"random\"");
  EXPECT_EQ(ParseAgentConfig("a.yml", "remote_write:\n  - url: http://x/w\n  - url: http://x/w\n")
                .status()
                .message(),
            "a.yml:3: remote_write[1].url: \"http://x/w\" is listed twice");
}

// A real full disk: a 64 KiB tmpfs. Needs root (CAP_SYS_ADMIN); skipped otherwise.
class SpoolDiskFullTest : public SpoolTest {
 protected:
  void SetUp() override {
    SpoolTest::SetUp();
    mnt_ = root_ + "/mnt";
    fs::create_directories(mnt_);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=64k") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
    }
    mounted_ = true;
    dir_ = mnt_ + "/spool";
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    SpoolTest::TearDown();
  }
  std::string mnt_;
  bool mounted_ = false;
};

TEST_F(SpoolDiskFullTest, FullDiskKeepsEverythingInMemoryAndGoesBackToDisk) {
  SpoolOptions o = Options();
  o.segment_bytes = 16 << 10;
  o.max_bytes = 1 << 20;  // the disk fills long before the cap
  auto s = Open(o);
  uint64_t n = 0;
  while (!s->Stats().degraded && n < 200) {
    Fill(*s, n, n + 1, 2000);
    ++n;
  }
  ASSERT_TRUE(s->Stats().degraded) << "the 64 KiB tmpfs never filled";
  EXPECT_GE(Metric(registry_, "suanli_agent_spool_disk_errors_total", {{"op", "write"}}), 1);
  Fill(*s, n, n + 5, 2000);  // sampling goes on
  n += 5;
  EXPECT_GT(s->Stats().memory_bytes, 0u);

  // Someone frees space: the spool goes back to disk at the next retry.
  Drain(*s);  // everything sent: the full segments are released...
  EXPECT_EQ(s->Stats().records, 0u);
  Fill(*s, n, n + 3, 2000);  // ...but records stay in memory until the retry
  EXPECT_TRUE(s->Stats().degraded);
  clock_.AdvanceMs(10000);
  Fill(*s, n + 3, n + 4, 2000);
  EXPECT_FALSE(s->Stats().degraded);
  EXPECT_EQ(s->Stats().memory_bytes, 0u);
  auto rest = Drain(*s);
  ASSERT_EQ(rest.size(), 4u);
  for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(*rest[i].body, Body(n + i, 2000));
}

}  // namespace
}  // namespace suanli::agent
