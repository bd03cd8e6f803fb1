#include "ctl/capacity_command.h"

#include <gtest/gtest.h>

namespace suanli::ctl {
namespace {

// The shape of GET /api/v1/capacity (docs/operating.md), cut to one region and one dc.
constexpr const char* kAnswer = R"({
 "status": "success",
 "data": {
  "timestamp": 1796463176.321,
  "stale_after_seconds": 300,
  "alliance": {"freshness_seconds": 0.013, "nodes": {"up": 2, "stale": 1, "gone": 0},
               "cpu": {"cores": 32, "utilization_ratio": 0.3252009781784698},
               "memory": {"total_bytes": 549755813888, "available_bytes": 332535974048.9929},
               "gpu": {"count": 4, "utilization_ratio": 0.3163435803738255},
               "compute": {"fp16": {"capacity_flops": 1250560000000000.0,
                                    "free_flops": 854930697189329,
                                    "free_ratio": 0.6836382877985294}},
               "power": {"watts": 1132.8277583976376}},
  "regions": [{"region": "gansu", "freshness_seconds": 75,
               "nodes": {"up": 2, "stale": 1, "gone": 0}, "cpu": {"cores": 32},
               "gpu": {"count": 0}, "compute": {}, "power": {"watts": 0}}],
  "dcs": [{"region": "gansu", "dc": "gansu-1", "freshness_seconds": null,
           "nodes": {"up": 2, "stale": 1, "gone": 0}, "cpu": {"cores": 32},
           "compute": {"fp32": {"capacity_flops": 5e12, "free_flops": 1e12}}, "links": []}]
 }
})";

TEST(CapacityCommandTest, RendersOneRowPerScope) {
  auto table = RenderCapacityTable(nlohmann::json::parse(kAnswer), "fp16");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(*table,
            "SCOPE     REGION  DC       UP  STALE  CORES    CPU  MEM FREE  MEM TOTAL  GPUS    GPU  "
            " FP16 FREE  FP16 CAPACITY   FREE    POWER    AGE\n"
            "alliance  -       -         2      1     32  32.5%   310 GiB    512 GiB     4  31.6%  "
            "855 TFLOPS    1.25 PFLOPS  68.4%  1.13 kW   13ms\n"
            "region    gansu   -         2      1     32      -         -          -     0      -  "
            "         -              -      -      0 W  1m15s\n"
            "dc        gansu   gansu-1   2      1     32      -         -          -     -      -  "
            "         -              -      -        -      -\n");
}

TEST(CapacityCommandTest, OtherPrecisionAndFilters) {
  auto table = RenderCapacityTable(nlohmann::json::parse(kAnswer), "fp32");
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->find("FP32 FREE"), std::string::npos);
  EXPECT_NE(table->find("1.00 TFLOPS"), std::string::npos);
  EXPECT_NE(table->find("5.00 TFLOPS"), std::string::npos);
  CapacityOptions o;
  EXPECT_EQ(CapacityPath(o), "/api/v1/capacity");
  o.region = "gansu";
  o.dc = "a b&c";
  EXPECT_EQ(CapacityPath(o), "/api/v1/capacity?region=gansu&dc=a%20b%26c");
}

TEST(CapacityCommandTest, RefusesAnswersOfAnotherShape) {
  EXPECT_FALSE(RenderCapacityTable(nlohmann::json::parse(R"({"status":"success"})"), "fp16").ok());
  EXPECT_FALSE(RenderCapacityTable(nlohmann::json::parse(R"({"data":{"dcs":{}}})"), "fp16").ok());
  auto empty = RenderCapacityTable(nlohmann::json::parse(R"({"data":{"dcs":[]}})"), "fp16");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "no capacity figures (yet) for this selection\n");
}

}  // namespace
}  // namespace suanli::ctl
