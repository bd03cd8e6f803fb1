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
}

}  // namespace
}  // namespace suanli::aggregator
