#include "aggregator/aggregator_config.h"

#include <gtest/gtest.h>

#include "core/file_util.h"

namespace suanli::aggregator {
namespace {

TEST(AggregatorConfigTest, DefaultsAndExample) {
  auto c = ParseAggregatorConfig("<embedded default>", kEmbeddedAggregatorConfig);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen_address, ":9466");
  EXPECT_EQ(c->stale_after, std::chrono::minutes(5));
  auto text = ReadFileToString(std::string(SUANLI_SOURCE_DIR) + "/deploy/aggregator.example.yml");
  ASSERT_TRUE(text.ok());
  auto ex = ParseAggregatorConfig("aggregator.example.yml", *text);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  EXPECT_EQ(ex->limits.max_body_bytes, 16 << 20);
  EXPECT_EQ(ex->http_io_threads, 4);
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "web:\n  io_threads: 8\n")->http_io_threads, 8);
  // The capacity history is recorded unless turned off.
  EXPECT_TRUE(c->record_capacity);
  EXPECT_TRUE(ex->record_capacity);
  EXPECT_FALSE(ParseAggregatorConfig("g.yml", "capacity:\n  record: false\n")->record_capacity);
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "capacity:\n  record: sometimes\n").status().message(),
            "g.yml:2: capacity.record: expected true or false, got \"sometimes\"");
}

// The example's commented forward: targets, uncommented, are a valid configuration: every key
// it lists exists and has a valid value.
TEST(AggregatorConfigTest, ExampleForwardTargetsAreValid) {
  auto text = ReadFileToString(std::string(SUANLI_SOURCE_DIR) + "/deploy/aggregator.example.yml");
  ASSERT_TRUE(text.ok());
  std::string yaml;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    std::string line = text->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text->size() : nl + 1;
    if (line == "forward: []") line = "forward:";
    if (line.rfind("#  ", 0) == 0) line = line.substr(1);
    yaml += line + "\n";
  }
  auto c = ParseAggregatorConfig("aggregator.example.yml", yaml);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->forward.size(), 2u);
  EXPECT_EQ(c->forward[0].select, exporters::ForwardSelect::kCapacity);
  EXPECT_EQ(c->forward[1].resolution, rollup::Resolution::k5m);
  EXPECT_EQ(c->forward[1].headers.at("X-Scope-OrgID"), "gansu");
  EXPECT_EQ(c->forward[1].queue.max_backoff, std::chrono::seconds(5));
  EXPECT_EQ(c->evaluation_interval, std::chrono::seconds(15));
}

TEST(AggregatorConfigTest, Errors) {
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "limits:\n  max_body_bytes: 10\n").status().message(),
            "g.yml:2: limits.max_body_bytes: must be >= 1024");
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "storage:\n  pth: /x\n").status().message(),
            "g.yml:2: storage.pth: unknown key");
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "web:\n  io_threads: 0\n").status().message(),
            "g.yml:2: web.io_threads: must be between 1 and 1024");
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "capacity:\n  stale_after: soon\n").status().message(),
            "g.yml:2: capacity.stale_after: bad duration \"soon\": expected a number, e.g. 15s, "
            "1m30s, 500ms");
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "capacity:\n  evaluation_interval: 100ms\n")
                .status()
                .message(),
            "g.yml:2: capacity.evaluation_interval: must be between 1s and 1h");
  EXPECT_EQ(
      ParseAggregatorConfig("g.yml", "forward:\n  - name: up\n    url: http://x/\n    select: x\n")
          .status()
          .message(),
      "g.yml:4: forward[0].select: must be capacity, rollups or raw");
}

TEST(AggregatorConfigTest, FutureGrace) {
  auto c = ParseAggregatorConfig("<embedded default>", kEmbeddedAggregatorConfig);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->retention.future_grace, std::chrono::minutes(10));
  auto text = ReadFileToString(std::string(SUANLI_SOURCE_DIR) + "/deploy/aggregator.example.yml");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(ParseAggregatorConfig("e.yml", *text)->retention.future_grace,
            std::chrono::minutes(10));
  EXPECT_EQ(
      ParseAggregatorConfig("g.yml", "storage:\n  future_grace: 1h\n")->retention.future_grace,
      std::chrono::hours(1));
  EXPECT_EQ(ParseAggregatorConfig("g.yml", "storage:\n  future_grace: 0\n")->retention.future_grace,
            std::chrono::milliseconds(0));
}

// The admin API is off unless the file or the flag turns it on; the flag wins either way.
TEST(AggregatorConfigTest, AdminApiFromFileAndFlag) {
  EXPECT_FALSE(ParseAggregatorConfig("a.yml", "")->enable_admin_api);
  EXPECT_TRUE(ParseAggregatorConfig("a.yml", "web:\n  enable_admin_api: true\n")->enable_admin_api);
  EXPECT_FALSE(ParseAggregatorConfig("a.yml", "web:\n  enable_admin_api: yes please\n").ok());
  auto load = [](std::vector<const char*> argv) {
    FlagSet flags("suanli-aggregator");
    AddAggregatorFlags(flags);
    argv.insert(argv.begin(), "suanli-aggregator");
    EXPECT_TRUE(flags.Parse(static_cast<int>(argv.size()), argv.data()).ok());
    return LoadAggregatorConfig(flags);
  };
  EXPECT_FALSE(load({})->enable_admin_api);
  EXPECT_TRUE(load({"--web.enable-admin-api"})->enable_admin_api);
  FlagSet help("suanli-aggregator");
  AddAggregatorFlags(help);
  EXPECT_NE(help.Help().find("web.enable-admin-api"), std::string::npos);
}

}  // namespace
}  // namespace suanli::aggregator
