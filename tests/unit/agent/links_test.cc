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

TEST(LinksTest, ParsesRouterLinks) {
  auto root = ConfigMap::Parse("a.yml",
                               "links:\n"
                               "  - name: gansu-beijing-1\n"
                               "    peer_dc: beijing-1\n"
                               "    snmp:\n"
                               "      target: 10.0.0.1\n"
                               "      community: public\n"
                               "      if_name: Ethernet1/1\n"
                               "  - name: gansu-beijing-2\n"
                               "    peer_dc: beijing-1\n"
                               "    capacity: 400G\n"
                               "    snmp:\n"
                               "      target: 10.0.0.2:1161\n"
                               "      user: suanli\n"
                               "      auth_protocol: SHA-256\n"
                               "      auth_passphrase_file: /etc/suanli/snmp-auth\n"
                               "      priv_protocol: AES\n"
                               "      priv_passphrase: private-pass\n"
                               "      if_index: 7\n"
                               "      timeout: 2s\n"
                               "      retries: 0\n");
  ASSERT_TRUE(root.ok());
  auto links = ParseLinks(*root);
  ASSERT_TRUE(links.ok()) << links.status().message();
  ASSERT_EQ(links->size(), 2u);
  const LinkSpec& v2 = (*links)[0];
  ASSERT_TRUE(v2.snmp.has_value());
  EXPECT_EQ(v2.device, "");
  EXPECT_EQ(v2.capacity_bits_per_second, 0);  // from ifHighSpeed
  EXPECT_EQ(v2.snmp->session.version, 2);
  EXPECT_EQ(v2.snmp->session.community, "public");
  EXPECT_EQ(v2.snmp->if_name, "Ethernet1/1");
  const LinkSpec& v3 = (*links)[1];
  EXPECT_EQ(v3.capacity_bits_per_second, 400e9);
  EXPECT_EQ(v3.snmp->session.version, 3);
  EXPECT_EQ(v3.snmp->session.auth_protocol, "SHA-256");
  EXPECT_EQ(v3.snmp->auth_passphrase_file, "/etc/suanli/snmp-auth");
  EXPECT_EQ(v3.snmp->if_index, 7);
  EXPECT_EQ(v3.snmp->session.timeout, std::chrono::seconds(2));
  EXPECT_EQ(v3.snmp->session.retries, 0);
}

TEST(LinksTest, RouterLinkErrorsNameLineAndKey) {
  struct Case {
    std::string snmp;  // the snmp section's lines, indented by 6
    std::string error;
  };
  const Case cases[] = {
      {"      community: public\n      if_name: et1\n",
       "a.yml:5: links[0].snmp.target: is required (the router's host:port, e.g. 10.0.0.1:161)"},
      {"      target: udp:10.0.0.1\n      community: public\n      if_name: et1\n",
       "a.yml:5: links[0].snmp.target: want host:port without a transport prefix, got "
       "\"udp:10.0.0.1\""},
      {"      target: 10.0.0.1:99999\n      community: public\n      if_name: et1\n",
       "a.yml:5: links[0].snmp.target: bad port \"99999\" in \"10.0.0.1:99999\""},
      {"      target: 10.0.0.1\n      if_name: et1\n",
       "a.yml:5: links[0].snmp.community: SNMP v2c needs a community (or community_file)"},
      {"      target: 10.0.0.1\n      community: public\n      auth_protocol: SHA\n"
       "      if_name: et1\n",
       "a.yml:7: links[0].snmp.auth_protocol: is an SNMPv3 key: set version: 3 (and no "
       "community)"},
      {"      target: 10.0.0.1\n      user: u\n      auth_protocol: SHA\n"
       "      auth_passphrase: short\n      if_name: et1\n",
       "a.yml:8: links[0].snmp.auth_passphrase: must be at least 8 characters (RFC 3414)"},
      {"      target: 10.0.0.1\n      user: u\n      auth_protocol: SHA1024\n"
       "      auth_passphrase: long-enough\n      if_name: et1\n",
       "a.yml:7: links[0].snmp.auth_protocol: must be MD5, SHA, SHA-224, SHA-256, SHA-384 or "
       "SHA-512, got \"SHA1024\""},
      {"      target: 10.0.0.1\n      user: u\n      priv_protocol: AES\n"
       "      priv_passphrase: long-enough\n      if_name: et1\n",
       "a.yml:7: links[0].snmp.priv_protocol: needs auth_protocol (SNMPv3 has no privacy "
       "without authentication)"},
      {"      target: 10.0.0.1\n      community: public\n      if_name: et1\n      if_index: 3\n",
       "a.yml:8: links[0].snmp.if_index: set if_name or if_index, not both"},
      {"      target: 10.0.0.1\n      community: public\n",
       "a.yml:5: links[0].snmp.if_name: set if_name (ifName or ifDescr) or if_index"},
      {"      target: 10.0.0.1\n      community: public\n      if_name: et1\n      port: 161\n",
       "a.yml:8: links[0].snmp.port: unknown key"},
  };
  for (const Case& c : cases) {
    auto root = ConfigMap::Parse(
        "a.yml", "links:\n  - name: l1\n    peer_dc: beijing-1\n    snmp:\n" + c.snmp);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(ParseLinks(*root).status().message(), c.error) << c.snmp;
  }
  auto both = ConfigMap::Parse("a.yml",
                               "links:\n  - name: l1\n    peer_dc: b\n    device: eth1\n"
                               "    snmp: {target: r1, community: c, if_name: et1}\n");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(ParseLinks(*both).status().message(),
            "a.yml:4: links[0].device: set device (a NIC of this server) or snmp (a router's "
            "interface), not both");
  auto differ = ConfigMap::Parse("a.yml",
                                 "links:\n"
                                 "  - {name: l1, peer_dc: b, snmp: {target: r1, community: c, "
                                 "if_name: et1}}\n"
                                 "  - {name: l2, peer_dc: b, snmp: {target: r1, community: d, "
                                 "if_name: et2}}\n");
  ASSERT_TRUE(differ.ok());
  EXPECT_EQ(ParseLinks(*differ).status().message(),
            "a.yml:3: links[1].snmp: router r1 is polled by link \"l1\" with other settings: "
            "links on one router share its version, credentials, timeout and retries");
}

}  // namespace
}  // namespace suanli::agent
