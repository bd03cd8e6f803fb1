// The status page's rendering (figures carry the document's values, outside names are escaped,
// a broken document is reported on the page) and its history: suanli_dc_* rollups read from a
// real RocksDB store, summed into regions and the alliance. The browser test is
// tests/integration/status_page_test.cc.
#include "exporters/status/status_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "tests/integration/harness.h"

namespace suanli::exporters {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kDocument = R"({"status":"success","data":{
  "timestamp":1700000100.5,"stale_after_seconds":300,
  "alliance":{"freshness_seconds":0.5,"newest_sample_timestamp":1700000100,
    "nodes":{"up":2,"stale":0,"gone":0},"cpu":{"cores":8.0,"utilization_ratio":0.25},
    "compute":{"fp32":{"capacity_flops":1e12,"free_flops":7.5e11,"free_ratio":0.75}},
    "power":{"watts":400.0,"nodes_reporting":2,"energy_joules_total":3600000.0,"pue":1.3,
      "estimated_watts":150.0,"estimated_nodes":1}},
  "regions":[{"region":"<r>","freshness_seconds":0.5,"newest_sample_timestamp":1700000100,
    "nodes":{"up":2,"stale":0,"gone":0},"cpu":{"cores":8.0,"utilization_ratio":0.25}}],
  "dcs":[{"region":"<r>","dc":"<script>alert(1)</script>","freshness_seconds":400,
    "newest_sample_timestamp":1699999700.5,"nodes":{"up":0,"stale":2,"gone":0},
    "cpu":{"cores":8.0,"utilization_ratio":0.25},
    "links":[{"link":"l\"1","peer_dc":"b&c","capacity_bytes_per_second":1.25e9,
      "receive_bytes_per_second":1e8,"transmit_bytes_per_second":2e8,"utilization_ratio":0.16}]}]
}})";

TEST(StatusPage, EscapesText) {
  EXPECT_EQ(EscapeHtml("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(StatusPage, EveryFigureCarriesTheDocumentsValue) {
  StatusPageInput in;
  in.capacity_json = kDocument;
  in.nonce = "abc";
  in.storage_path = "/var/lib/<x>";
  in.forward = {{"up\"stream", "https://user:secret@alliance:9466/api/v1/write?token=t", "capacity",
                 12.5, true, 0, 10}};
  in.ha_replica_label = "__replica__";
  in.ha = {{"east", "a", "", "<replica>", 0}};
  const std::string page = RenderStatusPage(in);
  const nlohmann::json data = nlohmann::json::parse(kDocument)["data"];
  static const std::regex kFigure(R"re(data-json="([^"]*)" data-value="([^"]*)">)re");
  int figures = 0;
  for (std::sregex_iterator it(page.begin(), page.end(), kFigure), end; it != end; ++it) {
    const nlohmann::json::json_pointer ptr((*it)[1].str());
    ASSERT_TRUE(data.contains(ptr)) << (*it)[1];
    EXPECT_EQ(std::stod((*it)[2]), data[ptr].get<double>()) << (*it)[1];
    ++figures;
  }
  EXPECT_GE(figures, 30);
  EXPECT_THAT(
      page, HasSubstr("data-json=\"/alliance/power/estimated_watts\" data-value=\"150.0\">150 W"));
  // Names from outside are text; only the page's own script is a script.
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(page, HasSubstr("l&quot;1"));
  EXPECT_THAT(page, HasSubstr("b&amp;c"));
  EXPECT_THAT(page, HasSubstr("&lt;replica&gt;"));
  EXPECT_THAT(page, HasSubstr("/var/lib/&lt;x&gt;"));
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_THAT(page, HasSubstr("<script nonce=\"abc\">"));
  // The stale dc is marked; the blocked target says so; the URL loses its secrets.
  EXPECT_THAT(page, HasSubstr("<tr class=\"dc stale\""));
  EXPECT_THAT(page, HasSubstr("data-status=\"forward.up&quot;stream.blocked\" data-value=\"1\""));
  EXPECT_THAT(page, HasSubstr("https://alliance:9466/api/v1/write<"));
  EXPECT_THAT(page, Not(HasSubstr("secret")));
  EXPECT_THAT(page, Not(HasSubstr("token=t")));
  EXPECT_THAT(page, HasSubstr("name=\"viewport\""));
  EXPECT_THAT(StatusPageSecurityPolicy("abc"), HasSubstr("script-src 'nonce-abc'"));
}

TEST(StatusPage, BrokenDocumentIsReportedOnThePage) {
  StatusPageInput in;
  in.capacity_json = "{\"status\":";
  const std::string page = RenderStatusPage(in);
  EXPECT_THAT(page, HasSubstr("The capacity document could not be read."));
  EXPECT_THAT(page, HasSubstr("id=\"storage\""));
}

TEST(StatusPage, HistorySumsTheRecordedDcFigures) {
  it::TempDir dir("status-history");
  storage::RocksDbStoreOptions opts;
  opts.path = dir.Sub("db");
  auto store = storage::OpenRocksDbStore(opts);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const int64_t t0 = rollup::IntervalStart(it::UnixNowMs(), 300'000) - 600'000;
  auto series = [&](const char* name, const char* dc, double v,
                    std::vector<Label> extra = {}) -> TimeSeries {
    std::vector<Label> labels = {{"__name__", name}, {"region", "gansu"}, {"dc", dc}};
    labels.insert(labels.end(), extra.begin(), extra.end());
    return {Labels(std::move(labels)), {{t0 + 1000, v}, {t0 + 2000, v}}};
  };
  ASSERT_TRUE(
      (*store)
          ->Append({series("suanli_dc_cpu_cores", "a", 10),
                    series("suanli_dc_cpu_utilization_ratio", "a", 0.5),
                    series("suanli_dc_cpu_cores", "b", 30),
                    series("suanli_dc_cpu_utilization_ratio", "b", 0.1),
                    series("suanli_dc_power_watts", "a", 100),
                    series("suanli_dc_power_watts", "b", 300),
                    series("suanli_dc_compute_free_flops", "a", 1e12, {{"precision", "fp32"}}),
                    series("suanli_dc_compute_free_flops", "b", 2e12, {{"precision", "fp32"}})})
          .ok());
  StatusHistory h = ReadStatusHistory(**store, t0 + 3'600'000, std::chrono::hours(6));
  ASSERT_TRUE(h.error.empty()) << h.error;
  ASSERT_EQ(h.dcs.size(), 2u);
  const GroupHistory& a = h.dcs.at({"gansu", "a"});
  ASSERT_EQ(a.cpu_utilization.size(), 1u);
  EXPECT_EQ(a.cpu_utilization[0].t_ms, t0);
  EXPECT_DOUBLE_EQ(a.cpu_utilization[0].value, 0.5);
  const GroupHistory& region = h.regions.at("gansu");
  ASSERT_EQ(region.cpu_utilization.size(), 1u);
  EXPECT_DOUBLE_EQ(region.cpu_utilization[0].value, (10 * 0.5 + 30 * 0.1) / 40);
  ASSERT_EQ(h.alliance.power_watts.size(), 1u);
  EXPECT_DOUBLE_EQ(h.alliance.power_watts[0].value, 400);
  EXPECT_DOUBLE_EQ(h.alliance.free_flops.at("fp32").at(0).value, 3e12);

  // Drawn: the charts carry their points.
  StatusPageInput in;
  in.capacity_json = kDocument;
  in.history = h;
  const std::string page = RenderStatusPage(in);
  EXPECT_THAT(page, HasSubstr("<svg class=\"spark\""));
  EXPECT_THAT(page, HasSubstr("data-points=\"1\""));
}

}  // namespace
}  // namespace suanli::exporters
