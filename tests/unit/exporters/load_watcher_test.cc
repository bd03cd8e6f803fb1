#include "exporters/scheduler/load_watcher.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace suanli::exporters {
namespace {

using it::JsonValue;

capacity::NodeLoad Load(std::string dc, std::string instance, double cpu_mean, double mem_mean) {
  capacity::NodeLoad l;
  l.location = {"gansu", std::move(dc)};
  l.instance = std::move(instance);
  l.cpu = {10, cpu_mean, 0.05, 0.5};
  l.memory = {10, mem_mean, 0, mem_mean};
  return l;
}

TEST(LoadWatcherTest, ExactlyLoadWatchersShape) {
  std::vector<capacity::NodeLoad> loads = {Load("lz-1", "node-1", 0.25, 0.5)};
  WatcherAnswer a = WatcherMetricsJson(loads, 1'700'000'900'500, std::chrono::minutes(15), {});
  EXPECT_EQ(a.status, 200);
  // Field names, nesting and order as load-watcher's gojay encoder writes them (numbers keep
  // a ".0" that gojay leaves out; the Go client reads both as the same float64).
  EXPECT_EQ(
      a.body,
      R"({"timestamp":1700000900,"window":{"duration":"15m","start":1700000000,)"
      R"("end":1700000900},"source":"Suanli","data":{"NodeMetricsMap":{"node-1":{"metrics":[)"
      R"({"name":"instance:node_cpu:ratio","type":"CPU","operator":"Latest","rollup":"15m","value":50.0},)"
      R"({"name":"instance:node_memory_utilisation:ratio","type":"Memory","operator":"Latest","rollup":"15m","value":50.0},)"
      R"({"name":"instance:node_cpu:ratio","type":"CPU","operator":"AVG","rollup":"15m","value":25.0},)"
      R"({"name":"instance:node_memory_utilisation:ratio","type":"Memory","operator":"AVG","rollup":"15m","value":50.0},)"
      R"({"name":"instance:node_cpu:ratio","type":"CPU","operator":"STD","rollup":"15m","value":5.0},)"
      R"({"name":"instance:node_memory_utilisation:ratio","type":"Memory","operator":"STD","rollup":"15m","value":0.0}],)"
      R"("tags":{},"metadata":{"dataCenter":"lz-1"}}}}})");
}

TEST(LoadWatcherTest, TargetLoadPackingReadsTheAverage) {
  // TargetLoadPacking keeps the last CPU metric whose operator is AVG or Latest.
  std::vector<capacity::NodeLoad> loads = {Load("lz-1", "node-1", 0.25, 0.5)};
  auto doc = it::ParseJson(
      WatcherMetricsJson(loads, 1'700'000'000'000, std::chrono::minutes(15), {}).body);
  ASSERT_TRUE(doc.ok());
  double tlp = -1;
  for (const JsonValue& m : (*doc)["data"]["NodeMetricsMap"]["node-1"]["metrics"].array) {
    if (m["type"].string == "CPU" &&
        (m["operator"].string == "AVG" || m["operator"].string == "Latest")) {
      tlp = m["value"].number;
    }
  }
  EXPECT_DOUBLE_EQ(tlp, 25);
}

TEST(LoadWatcherTest, HostFilterAndUnknownHost) {
  std::vector<capacity::NodeLoad> loads = {Load("lz-1", "a", 0.1, 0.1),
                                           Load("qy-1", "b", 0.2, 0.2)};
  auto one = WatcherMetricsJson(loads, 1'700'000'000'000, std::chrono::minutes(5), {{"host", "b"}});
  ASSERT_EQ(one.status, 200);
  auto doc = it::ParseJson(one.body);
  ASSERT_TRUE(doc.ok());
  const auto& map = (*doc)["data"]["NodeMetricsMap"].object;
  ASSERT_EQ(map.size(), 1u);
  EXPECT_EQ(map.begin()->first, "b");
  EXPECT_EQ((*doc)["window"]["duration"].string, "5m");
  auto none =
      WatcherMetricsJson(loads, 1'700'000'000'000, std::chrono::minutes(5), {{"host", "z"}});
  EXPECT_EQ(none.status, 404);
}

TEST(LoadWatcherTest, NodesWithoutMeasurementsAreLeftOut) {
  capacity::NodeLoad fresh;
  fresh.instance = "new";
  auto a = WatcherMetricsJson({fresh}, 1'700'000'000'000, std::chrono::minutes(15), {});
  auto doc = it::ParseJson(a.body);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["data"]["NodeMetricsMap"].type, JsonValue::Type::kObject);
  EXPECT_TRUE((*doc)["data"]["NodeMetricsMap"].object.empty());
}

// The document the project's own writer produced before rapidjson's Writer took its place
// (tests/fixtures/suanli/json/), compared as parsed documents: numbers may be spelled otherwise.
TEST(LoadWatcherTest, SameDocumentAsTheEarlierWriter) {
  std::string golden =
      it::ReadFileOrEmpty(SUANLI_TEST_FIXTURES_DIR "/suanli/json/watcher_two_nodes.json");
  ASSERT_FALSE(golden.empty());
  std::vector<capacity::NodeLoad> loads = {Load("lz-1", "node-1", 0.25, 0.5),
                                           Load("lz-1", "node-\"2\"", 0.1, 1.0 / 3)};
  WatcherAnswer a = WatcherMetricsJson(loads, 1'700'000'012'000, std::chrono::minutes(15), {});
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(nlohmann::ordered_json::parse(a.body), nlohmann::ordered_json::parse(golden)) << a.body;
}

}  // namespace
}  // namespace suanli::exporters
