#include "agent/links.h"

#include <gtest/gtest.h>

namespace suanli::agent {
namespace {

TEST(LinksTest, ParsesCapacities) {
  EXPECT_EQ(*ParseBitsPerSecond("100G"), 100e9);
  EXPECT_EQ(*ParseBitsPerSecond("400Mbps"), 400e6);
  EXPECT_EQ(*ParseBitsPerSecond("1.6T"), 1.6e12);
  EXPECT_EQ(*ParseBitsPerSecond("25000000000"), 25e9);
  EXPECT_FALSE(ParseBitsPerSecond("fast").ok());
  EXPECT_FALSE(ParseBitsPerSecond("-1G").ok());
}

TEST(LinksTest, ConfigErrorsNameLineAndKey) {
  auto root = ConfigMap::Parse("a.yml",
                               "links:\n"
                               "  - device: eth1\n"
                               "    name: gansu-beijing-1\n"
                               "    peer_dc: beijing-1\n"
                               "    capacity: 10Q\n");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(ParseLinks(*root).status().message(),
            "a.yml:5: links[0].capacity: bad capacity \"10Q\": expected bits per second such as "
            "100G, 400M or 1e11");
  auto missing = ConfigMap::Parse("a.yml", "links:\n  - device: eth1\n");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(ParseLinks(*missing).status().message(), "a.yml:2: links[0].name: is required");
}

TEST(LinksTest, DerivesLinkSeriesFromTheSweep) {
  Sweep sweep;
  sweep.Add("node_network_receive_bytes_total", "", MetricType::kCounter, {{"device", "eth0"}}, 5);
  sweep.Add("node_network_receive_bytes_total", "", MetricType::kCounter, {{"device", "eth1"}},
            874354587);
  sweep.Add("node_network_transmit_bytes_total", "", MetricType::kCounter, {{"device", "eth1"}},
            563352563);
  sweep.Add("node_network_up", "", MetricType::kGauge, {{"device", "eth1"}}, 1);
  Links links({{"eth1", "gansu-beijing-1", "beijing-1", 100e9},
               {"eth9", "gansu-shanghai-1", "shanghai-1", 10e9}});
  std::vector<std::string> missing = links.Derive(sweep);
  EXPECT_EQ(missing, std::vector<std::string>{"eth9"});
  const Family* rx = sweep.Find("suanli_link_receive_bytes_total");
  ASSERT_NE(rx, nullptr);
  ASSERT_EQ(rx->points.size(), 1u);
  EXPECT_EQ(rx->points[0].value, 874354587);
  EXPECT_EQ(rx->type, MetricType::kCounter);
  EXPECT_EQ(rx->points[0].labels,
            (std::vector<Label>{
                {"device", "eth1"}, {"link", "gansu-beijing-1"}, {"peer_dc", "beijing-1"}}));
  EXPECT_EQ(sweep.Find("suanli_link_transmit_bytes_total")->points[0].value, 563352563);
  const Family* cap = sweep.Find("suanli_link_capacity_bits_per_second");
  ASSERT_EQ(cap->points.size(), 2u);  // declared capacity is reported even for a missing NIC
  EXPECT_EQ(cap->points[1].value, 10e9);
  EXPECT_EQ(sweep.Find("suanli_link_up")->points[0].value, 1);
}

}  // namespace
}  // namespace suanli::agent
