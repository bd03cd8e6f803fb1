#include "exporters/scheduler/capacity_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"
#include "tests/unit/exporters/capacity_fixture.h"

namespace suanli::exporters {
namespace {

using it::JsonValue;
using testing::SmallAlliance;

JsonValue Answer(const std::map<std::string, std::string>& params) {
  auto q = ParseCapacityQuery(params);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  auto doc = it::ParseJson(CapacityJson(SmallAlliance(), q.ok() ? *q : CapacityQuery{}));
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["status"].string, "success");
  return doc.ok() ? (*doc)["data"] : JsonValue{};
}

std::vector<std::string> DcNames(const JsonValue& data) {
  std::vector<std::string> out;
  for (const JsonValue& d : data["dcs"].array) out.push_back(d["dc"].string);
  return out;
}

TEST(CapacityJsonTest, EveryEntryCarriesItsFreshnessAndFigures) {
  JsonValue data = Answer({});
  EXPECT_DOUBLE_EQ(data["timestamp"].number, (testing::kT0 + 12'000) / 1000.0);
  EXPECT_DOUBLE_EQ(data["stale_after_seconds"].number, 300);
  EXPECT_EQ(DcNames(data), (std::vector<std::string>{"lz-1", "qy-1", "zw-1"}));
  ASSERT_EQ(data["regions"].array.size(), 2u);
  EXPECT_DOUBLE_EQ(data["alliance"]["freshness_seconds"].number, 2);
  const JsonValue& lz = data["dcs"].array[0];
  EXPECT_EQ(lz["region"].string, "gansu");
  EXPECT_DOUBLE_EQ(lz["freshness_seconds"].number, 2);
  EXPECT_DOUBLE_EQ(lz["newest_sample_timestamp"].number, (testing::kT0 + 10'000) / 1000.0);
  EXPECT_EQ(lz["nodes"]["up"].number, 2);
  EXPECT_DOUBLE_EQ(lz["cpu"]["utilization_ratio"].number, 0.375);
  const JsonValue& fp32 = lz["compute"]["fp32"];
  EXPECT_DOUBLE_EQ(fp32["capacity_flops"].number, 22e12);
  EXPECT_DOUBLE_EQ(fp32["free_flops"].number, 16.25e12);
  EXPECT_DOUBLE_EQ(fp32["by_source"]["gpu"]["free_flops"].number, 15e12);
  EXPECT_DOUBLE_EQ(lz["power"]["watts"].number, 1000);
  EXPECT_DOUBLE_EQ(lz["power"]["pue"].number, 1.3);
  ASSERT_EQ(lz["links"].array.size(), 1u);
  EXPECT_EQ(lz["links"].array[0]["link"].string, "passage \"east\"");
  EXPECT_DOUBLE_EQ(lz["links"].array[0]["utilization_ratio"].number, 0.2);
  EXPECT_TRUE(data["dcs"].array[1]["links"].array.empty());
}

TEST(CapacityJsonTest, PowerSaysWhatComesFromSharedChassis) {
  capacity::CapacityModel m(capacity::CapacityOptions{});
  std::vector<TimeSeries> b;
  for (const char* node : {"n1", "n2", "n3", "n4"}) {
    b.push_back(testing::At(
        "gansu", "lz-1", node, "suanli_node_power_watts",
        {{"source", "redfish_shared"}, {"chassis_identity", "2U4N-S7J00482"}, {"systems", "4"}},
        testing::kT0, 1648));
  }
  b.push_back(testing::At("gansu", "lz-1", "own", "suanli_node_power_watts",
                          {{"source", "ipmi_dcmi"}}, testing::kT0, 352));
  m.Observe(b);
  auto doc = it::ParseJson(CapacityJson(m.Snapshot(testing::kT0 + 1000), CapacityQuery{}));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const JsonValue& power = (*doc)["data"]["dcs"].array[0]["power"];
  EXPECT_DOUBLE_EQ(power["watts"].number, 2000);
  EXPECT_DOUBLE_EQ(power["shared_watts"].number, 1648);
  EXPECT_EQ(power["nodes_reporting"].number, 5);
}

TEST(CapacityJsonTest, Filters) {
  EXPECT_EQ(DcNames(Answer({{"region", "gansu"}})), (std::vector<std::string>{"lz-1", "qy-1"}));
  JsonValue one = Answer({{"dc", "qy-1"}});
  EXPECT_EQ(DcNames(one), (std::vector<std::string>{"qy-1"}));
  EXPECT_EQ(one["regions"].type, JsonValue::Type::kNull);  // a dc question gets dcs
  EXPECT_EQ(one["alliance"].type, JsonValue::Type::kNull);
  // fp16 exists on GPU servers only: zw-1 has none.
  JsonValue fp16 = Answer({{"precision", "fp16"}});
  EXPECT_EQ(DcNames(fp16), (std::vector<std::string>{"lz-1", "qy-1"}));
  EXPECT_EQ(fp16["dcs"].array[0]["compute"].object.size(), 1u);
  // qy-1 runs at 90 %: 30e12 free of 300e12 fp16; lz-1 has 225e12.
  EXPECT_EQ(DcNames(Answer({{"precision", "fp16"}, {"min_free_flops", "1e14"}})),
            (std::vector<std::string>{"lz-1"}));
  EXPECT_EQ(DcNames(Answer({{"min_free_flops", "1e18"}})), std::vector<std::string>{});
  EXPECT_EQ(DcNames(Answer({{"region", "tibet"}})), std::vector<std::string>{});
}

TEST(CapacityJsonTest, BadParametersAreNamed) {
  auto q = ParseCapacityQuery({{"min_free_flops", "lots"}});
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(),
            "min_free_flops: expected a non-negative number of FLOPS, got \"lots\"");
  EXPECT_FALSE(ParseCapacityQuery({{"min_free_flops", "-1"}}).ok());
  EXPECT_FALSE(ParseCapacityQuery({{"min_free_flops", "1e400"}}).ok());
  EXPECT_TRUE(ParseCapacityQuery({{"unknown", "x"}}).ok());
  auto err = it::ParseJson(JsonError("bad_data", "x \"y\""));
  ASSERT_TRUE(err.ok());
  EXPECT_EQ((*err)["status"].string, "error");
  EXPECT_EQ((*err)["errorType"].string, "bad_data");
  EXPECT_EQ((*err)["error"].string, "x \"y\"");
}

// The document the project's own writer produced before rapidjson's Writer took its place
// (kept in tests/fixtures/suanli/json/): the same members in the same order with the same
// values. Only the spelling of numbers differs (1e+15 then, 1000000000000000.0 now), so the
// two are compared as parsed documents, not as bytes.
TEST(CapacityJsonTest, SameDocumentAsTheEarlierWriter) {
  std::string golden =
      it::ReadFileOrEmpty(SUANLI_TEST_FIXTURES_DIR "/suanli/json/capacity_small_alliance.json");
  ASSERT_FALSE(golden.empty());
  std::string now = CapacityJson(SmallAlliance(), {});
  EXPECT_EQ(nlohmann::ordered_json::parse(now), nlohmann::ordered_json::parse(golden)) << now;
}

TEST(CapacityJsonTest, EmptyModel) {
  capacity::CapacitySnapshot empty;
  auto doc = it::ParseJson(CapacityJson(empty, {}));
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE((*doc)["data"]["dcs"].array.empty());
  EXPECT_EQ((*doc)["data"]["alliance"]["freshness_seconds"].type, JsonValue::Type::kNull);
}

}  // namespace
}  // namespace suanli::exporters
