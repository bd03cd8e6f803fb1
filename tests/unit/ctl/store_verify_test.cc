// suanlictl store verify: a clean store passes; a chunk value changed through RocksDB (so every
// RocksDB checksum still holds) and a byte flipped inside an SST file are both found, named by
// series and time range, with exit code 1.
#include "ctl/store_verify.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "aggregator/storage/gorilla.h"
#include "tests/unit/ctl/test_store.h"

namespace suanli::ctl {
namespace {

using namespace ctl::testing;

class StoreVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/store-verify-" + std::to_string(getpid());
    std::filesystem::remove_all(path_);
    WriteTestStore(path_);
  }
  void TearDown() override { std::filesystem::remove_all(path_); }

  int Verify(std::string* out) {
    std::ostringstream o, e;
    VerifyOptions opts;
    opts.storage_path = path_;
    opts.progress = false;
    int code = RunStoreVerify(opts, o, e);
    *out = o.str() + e.str();
    return code;
  }

  // Opens the store's RocksDB directly, with every column family, and runs fn on it.
  void WithDb(const std::function<void(rocksdb::DB*, std::vector<rocksdb::ColumnFamilyHandle*>&,
                                       const std::vector<std::string>&)>& fn) {
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, path_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path_, cfs, &handles, &db).ok());
    fn(db, handles, names);
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }

  std::string path_;
};

TEST_F(StoreVerifyTest, CleanStorePasses) {
  std::string out;
  EXPECT_EQ(Verify(&out), 0) << out;
  const uint64_t series = TestSeriesSet().size();
  EXPECT_NE(
      out.find(std::to_string(series) + " series, " + std::to_string(series * kClosedHours) +
               " raw chunks, " + std::to_string(3 * series * kClosedHours) + " rollup blocks (" +
               std::to_string(3 * series * kClosedHours) + " compared with their chunk)"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("no damage found"), std::string::npos) << out;
}

TEST_F(StoreVerifyTest, FindsAChangedSampleValueInAChunk) {
  // Series 1 (the first appended), the second closed hour: one sample's value bits changed in
  // its column-coded chunk, re-encoded so that it decodes cleanly; only the rollups betray it.
  const int64_t window = kBaseMs + 3'600'000;
  WithDb([&](rocksdb::DB* db, auto& handles, const auto& names) {
    rocksdb::ColumnFamilyHandle* raw = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i].starts_with("raw_")) raw = handles[i];
    }
    ASSERT_NE(raw, nullptr);
    const std::string key = storage::PartitionKey(1, window);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), raw, key, &value).ok());
    std::vector<Sample> samples;
    ASSERT_TRUE(storage::DecodeChunk(value, window, &samples).ok());
    samples[100].value += 1;
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), raw, key, storage::EncodeChunk(window, samples)).ok());
  });
  std::string out;
  EXPECT_EQ(Verify(&out), 1) << out;
  EXPECT_NE(out.find("damaged: raw chunk or its 1m rollup block of "
                     "node_load1{dc=\"lanzhou-1\",instance=\"a\",region=\"gansu\"} (series 1), "
                     "2026-12-04T17:00:00Z .. 2026-12-04T18:00:00Z [raw_20791, 1m_2970]: the "
                     "rollups of the chunk's samples differ from the stored ones (chunk vs "
                     "stored): interval 2026-12-04T17:25:00Z: count 4 vs 4, sum 1369 vs 1368"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("3 damaged"), std::string::npos) << out;  // 1m, 5m and 1h disagree
}

TEST_F(StoreVerifyTest, FindsGarbledChunkBytes) {
  const int64_t window = kBaseMs;
  WithDb([&](rocksdb::DB* db, auto& handles, const auto& names) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (!names[i].starts_with("raw_")) continue;
      const std::string key = storage::PartitionKey(2, window);
      std::string value;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), handles[i], key, &value).ok());
      value.resize(value.size() / 2);  // cut in the middle
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], key, value).ok());
    }
  });
  std::string out;
  EXPECT_EQ(Verify(&out), 1) << out;
  EXPECT_NE(out.find("damaged: raw chunk of node_load1{dc=\"lanzhou-1\",instance=\"b\","
                     "region=\"gansu\"} (series 2), "
                     "2026-12-04T16:00:00Z .. 2026-12-04T17:00:00Z [raw_20791]: does not decode"),
            std::string::npos)
      << out;
}

TEST_F(StoreVerifyTest, FindsAFlippedByteInAnSstFile) {
  // Compact so that the raw chunks sit in one SST file, then flip a byte in its middle.
  WithDb([&](rocksdb::DB* db, auto& handles, const auto&) {
    for (auto* h : handles) ASSERT_TRUE(db->CompactRange({}, h, nullptr, nullptr).ok());
  });
  std::string victim;
  uint64_t biggest = 0;
  for (const auto& e : std::filesystem::directory_iterator(path_)) {
    if (e.path().extension() == ".sst" && e.file_size() > biggest) {
      biggest = e.file_size();
      victim = e.path().string();
    }
  }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(biggest / 3));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(biggest / 3));
    f.put(static_cast<char>(c ^ 0x5a));
  }
  std::string out;
  EXPECT_EQ(Verify(&out), 1) << out;
  EXPECT_NE(out.find("damaged: SST file " + victim), std::string::npos) << out;
  EXPECT_NE(out.find("Corruption"), std::string::npos) << out;
}

}  // namespace
}  // namespace suanli::ctl
