#include "agent/agent_config.h"

#include <gtest/gtest.h>

#include "core/file_util.h"

namespace suanli::agent {
namespace {

TEST(AgentConfigTest, EmbeddedDefaultIsValid) {
  auto c = ParseAgentConfig("<embedded default>", kEmbeddedAgentConfig);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->sample_interval, std::chrono::seconds(15));
  ASSERT_EQ(c->remote_write.size(), 1u);
  EXPECT_EQ(c->remote_write[0].url, "http://127.0.0.1:9466/api/v1/write");
  EXPECT_EQ(c->labels.at("region"), "local");
}

TEST(AgentConfigTest, ExampleFileIsValid) {
  auto text = ReadFileToString(std::string(SUANLI_SOURCE_DIR) + "/deploy/agent.example.yml");
  ASSERT_TRUE(text.ok());
  auto c = ParseAgentConfig("agent.example.yml", *text);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->labels.at("dc"), "lanzhou-1");
  EXPECT_TRUE(c->collectors.at("cpu"));
}

TEST(AgentConfigTest, FlagsOverrideFileAndInstanceDefaultsToHostName) {
  FlagSet flags("suanli-agent");
  AddAgentFlags(flags, {"cpu", "meminfo"});
  const char* argv[] = {"suanli-agent",
                        "--sample.interval=1s",
                        "--remote-write.url=http://x/w",
                        "--remote-write.url=https://y/w",
                        "--no-collector.cpu",
                        "--path.procfs=/tmp/p"};
  ASSERT_TRUE(flags.Parse(6, argv).ok());
  auto c = LoadAgentConfig(flags);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->sample_interval, std::chrono::seconds(1));
  ASSERT_EQ(c->remote_write.size(), 2u);
  EXPECT_EQ(c->remote_write[1].url, "https://y/w");
  EXPECT_FALSE(c->collectors.at("cpu"));
  EXPECT_EQ(c->paths.procfs, "/tmp/p");
  EXPECT_EQ(c->labels.at("instance"), HostName());
}

TEST(AgentConfigTest, ErrorsNameLineAndKey) {
  auto bad_url = ParseAgentConfig("a.yml",
                                  "labels: {region: r}\n"
                                  "remote_write:\n"
                                  "  - url: ftp://x\n");
  EXPECT_EQ(bad_url.status().message(),
            "a.yml:3: remote_write[0].url: must start with http:// or https://, got \"ftp://x\"");
  auto unknown_collector = ParseAgentConfig("a.yml", "collectors:\n  cpux: true\n");
  EXPECT_EQ(unknown_collector.status().message(), "a.yml:2: collectors.cpux: unknown key");
  auto bad_label = ParseAgentConfig("a.yml", "labels: {\"bad-name\": x}\n");
  EXPECT_EQ(bad_label.status().message(), "a.yml:1: labels: invalid label name \"bad-name\"");
  auto fast = ParseAgentConfig("a.yml", "sample_interval: 10ms\n");
  EXPECT_EQ(fast.status().message(), "a.yml:1: sample_interval: must be at least 100ms");
}

TEST(AgentConfigTest, MinSendInterval) {
  auto c = ParseAgentConfig("a.yml",
                            "remote_write:\n"
                            "  - url: http://a/w\n"
                            "  - url: http://b/w\n"
                            "    min_send_interval: 0\n"
                            "  - url: http://c/w\n"
                            "    min_send_interval: 2s500ms\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->remote_write.size(), 3u);
  EXPECT_EQ(c->remote_write[0].min_send_interval, std::chrono::seconds(1));  // the default
  EXPECT_EQ(c->remote_write[1].min_send_interval, std::chrono::milliseconds(0));
  EXPECT_EQ(c->remote_write[2].min_send_interval, std::chrono::milliseconds(2500));
  auto bad = ParseAgentConfig("a.yml",
                              "remote_write:\n"
                              "  - url: http://a/w\n"
                              "    min_send_interval: -1s\n");
  EXPECT_EQ(bad.status().message(),
            "a.yml:3: remote_write[0].min_send_interval: bad duration \"-1s\": expected a number, "
            "e.g. 15s, 1m30s, 500ms");
}

}  // namespace
}  // namespace suanli::agent
