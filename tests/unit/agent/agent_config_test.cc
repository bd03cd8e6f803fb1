#include "agent/agent_config.h"

#include <gtest/gtest.h>

#include <fstream>

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

// The device filter flags of node_exporter 1.5 set collector_config.{netdev,netclass}.
TEST(AgentConfigTest, DeviceFilterFlags) {
  FlagSet flags("suanli-agent");
  AddAgentFlags(flags, {"netdev", "netclass"});
  const char* argv[] = {"suanli-agent", "--collector.netdev.device-include=^eth0$",
                        "--collector.netclass.ignored-devices", "^veth", "--no-collector.netdev"};
  ASSERT_TRUE(flags.Parse(5, argv).ok());
  auto c = LoadAgentConfig(flags);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->collectors.at("netdev"));
  std::string include, exclude;
  ConfigMap netdev = c->collector_config.at("netdev");
  ASSERT_TRUE(netdev.Get("device_include", &include).ok());
  EXPECT_EQ(include, "^eth0$");
  ConfigMap netclass = c->collector_config.at("netclass");
  ASSERT_TRUE(netclass.Get("device_exclude", &exclude).ok());
  EXPECT_EQ(exclude, "^veth");

  FlagSet both("suanli-agent");
  AddAgentFlags(both, {"netdev"});
  const char* argv2[] = {"suanli-agent", "--collector.netdev.device-include=eth0",
                         "--collector.netdev.device-exclude=veth"};
  ASSERT_TRUE(both.Parse(3, argv2).ok());
  EXPECT_EQ(LoadAgentConfig(both).status().message(),
            "--collector.netdev.device-exclude: mutually exclusive with "
            "--collector.netdev.device-include");

  FlagSet bad("suanli-agent");
  AddAgentFlags(bad, {"netdev"});
  const char* argv3[] = {"suanli-agent", "--collector.netdev.device-exclude=(veth"};
  ASSERT_TRUE(bad.Parse(2, argv3).ok());
  EXPECT_EQ(LoadAgentConfig(bad).status().message().rfind(
                "--collector.netdev.device-exclude: invalid regular expression \"(veth\": ", 0),
            0u);
}

// --config.check's path: the collectors are built from the file, so a filter with both keys is
// reported with the file, line and key.
TEST(AgentConfigTest, DeviceFilterBothKeysInFileIsAnError) {
  std::string path = ::testing::TempDir() + "agent_device_filter.yml";
  std::ofstream(path) << "collector_config:\n"
                         "  netclass:\n"
                         "    device_include: ^eth\n"
                         "    device_exclude: ^veth\n";
  FlagSet flags("suanli-agent");
  AddAgentFlags(flags, {"netclass"});
  std::string arg = "--config.file=" + path;
  const char* argv[] = {"suanli-agent", arg.c_str()};
  ASSERT_TRUE(flags.Parse(2, argv).ok());
  EXPECT_EQ(LoadAgentConfig(flags).status().message(),
            path +
                ":4: collector_config.netclass.device_exclude: mutually exclusive with "
                "device_include (set one of them)");
}

TEST(AgentConfigTest, DeviceFilterMustKeepTheLinksDevices) {
  std::string path = ::testing::TempDir() + "agent_link_filter.yml";
  std::ofstream(path) << "collector_config:\n"
                         "  netdev:\n"
                         "    device_exclude: ^bond\n"
                         "links:\n"
                         "  - {device: bond0.100, name: gansu-beijing-1, peer_dc: beijing-1, "
                         "capacity: 100G}\n";
  FlagSet flags("suanli-agent");
  AddAgentFlags(flags, {"netdev"});
  std::string arg = "--config.file=" + path;
  const char* argv[] = {"suanli-agent", arg.c_str()};
  ASSERT_TRUE(flags.Parse(2, argv).ok());
  EXPECT_EQ(LoadAgentConfig(flags).status().message(),
            path +
                ":3: collector_config.netdev.device_exclude: leaves out device \"bond0.100\" "
                "of link \"gansu-beijing-1\"");
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
