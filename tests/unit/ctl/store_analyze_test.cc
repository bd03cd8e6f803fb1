// suanlictl store analyze on a store written by the real RocksDbStore (test_store.h).
#include "ctl/store_analyze.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "tests/unit/ctl/test_store.h"

namespace suanli::ctl {
namespace {

using namespace ctl::testing;

class StoreAnalyzeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/store-analyze-" + std::to_string(getpid());
    std::filesystem::remove_all(path_);
    WriteTestStore(path_);
  }
  void TearDown() override { std::filesystem::remove_all(path_); }
  std::string path_;
};

const GroupFigures* Find(const std::vector<GroupFigures>& v, const std::string& name) {
  for (const auto& g : v) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

TEST_F(StoreAnalyzeTest, CountsSeriesSamplesAndBytes) {
  auto reader = storage::StoreReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto report = AnalyzeStore(**reader, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const uint64_t series = TestSeriesSet().size();
  EXPECT_EQ(report->series, series);
  EXPECT_EQ(report->samples, series * kSamplesPerSeries);
  EXPECT_EQ(report->head_samples, series * 10);  // the open hour
  EXPECT_EQ(report->unknown_series_samples, 0u);

  ASSERT_EQ(report->resolutions.size(), 6u);
  const ResolutionFigures& raw = report->resolutions[0];
  EXPECT_EQ(raw.name, "raw");
  EXPECT_EQ(raw.keys, series * kClosedHours);
  EXPECT_EQ(raw.rows, series * kClosedHours * kSamplesPerHour);
  EXPECT_EQ(raw.min_ms, kBaseMs);
  EXPECT_EQ(raw.max_ms, kBaseMs + kClosedHours * int64_t{3'600'000});
  EXPECT_GT(raw.value_bytes, 0u);
  // 1m: 60 records per closed hour; 5m: 12; 1h: 1.
  EXPECT_EQ(report->resolutions[1].rows, series * kClosedHours * 60);
  EXPECT_EQ(report->resolutions[2].rows, series * kClosedHours * 12);
  EXPECT_EQ(report->resolutions[3].rows, series * kClosedHours * 1);
  EXPECT_EQ(report->resolutions[4].name, "head");
  EXPECT_EQ(report->resolutions[4].rows, series * 10);
  EXPECT_EQ(report->resolutions[5].rows, series);

  const GroupFigures* load = Find(report->metrics, "node_load1");
  ASSERT_NE(load, nullptr);
  EXPECT_EQ(load->series, 3u);
  EXPECT_EQ(load->samples, 3u * kSamplesPerSeries);
  EXPECT_EQ(report->metrics[0].name, "node_load1");  // most series first
  const GroupFigures* lanzhou = Find(report->dcs, "lanzhou-1");
  ASSERT_NE(lanzhou, nullptr);
  EXPECT_EQ(lanzhou->series, 3u);
  EXPECT_EQ(Find(report->dcs, "zhongwei-1")->series, 2u);

  // instance has 3 values, __name__ and dc 2, region 1.
  ASSERT_EQ(report->labels.size(), 4u);
  EXPECT_EQ(report->labels[0].name, "instance");
  EXPECT_EQ(report->labels[0].values, 3u);
  EXPECT_EQ(report->labels[0].series, series);
  EXPECT_EQ(report->labels[3].name, "region");
  EXPECT_EQ(report->label_pairs[0].name, "region=\"gansu\"");
  EXPECT_EQ(report->label_pairs[0].series, series);
}

TEST_F(StoreAnalyzeTest, PrintsTheReport) {
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.storage_path = path_;
  o.limit = 1;
  o.progress = false;
  EXPECT_EQ(RunStoreAnalyze(o, out, err), 0) << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("Series: 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Samples: 3,650 (50 in the head)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Series and samples by metric (1 of 2):\nMETRIC      SERIES  SAMPLES\n"
                      "node_load1       3    2,190\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2026-12-04T16:00:00Z .. 2026-12-04T19:00:00Z"), std::string::npos) << text;
}

TEST(StoreAnalyzeErrorsTest, NamesWhatIsMissing) {
  std::ostringstream out, err;
  AnalyzeOptions o;
  o.storage_path = ::testing::TempDir() + "/no-such-store";
  o.progress = false;
  EXPECT_EQ(RunStoreAnalyze(o, out, err), 1);
  EXPECT_EQ(err.str(), "suanlictl store analyze: " + o.storage_path + ": no such directory\n");
  o.storage_path = ::testing::TempDir();
  err.str("");
  EXPECT_EQ(RunStoreAnalyze(o, out, err), 1);
  EXPECT_NE(err.str().find("not a store"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace suanli::ctl
