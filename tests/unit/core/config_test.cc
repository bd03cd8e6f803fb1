#include "core/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/flags.h"

namespace suanli {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, Parse) {
  EXPECT_EQ(*ParseDuration("15s"), milliseconds(15000));
  EXPECT_EQ(*ParseDuration("1m30s"), milliseconds(90000));
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2h"), milliseconds(7200000));
  EXPECT_EQ(*ParseDuration("1w"), milliseconds(7LL * 86400000));
  EXPECT_EQ(*ParseDuration("0"), milliseconds(0));
  EXPECT_NE(ParseDuration("15x").status().message().find("unknown unit \"x\""), std::string::npos);
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("s").ok());
  EXPECT_FALSE(ParseDuration("30s1m").ok());  // units out of order
  EXPECT_FALSE(ParseDuration("99999999999999999y").ok());
  EXPECT_EQ(FormatDuration(milliseconds(90500)), "1m30s500ms");
}

TEST(ConfigMapTest, ReadsValuesAndKeepsDefaults) {
  auto root = ConfigMap::Parse("a.yml",
                               "name: x\n"
                               "n: 42\n"
                               "ratio: 0.5\n"
                               "on: true\n"
                               "every: 1m\n"
                               "list: [a, b]\n"
                               "labels: {region: gansu}\n"
                               "sub:\n"
                               "  k: v\n");
  ASSERT_TRUE(root.ok()) << root.status().message();
  std::string name, absent = "default", k;
  int64_t n = 0;
  double ratio = 0;
  bool on = false;
  milliseconds every{0};
  std::vector<std::string> list;
  std::map<std::string, std::string> labels;
  ASSERT_TRUE(root->Get("name", &name).ok());
  ASSERT_TRUE(root->Get("absent", &absent).ok());
  ASSERT_TRUE(root->Get("n", &n).ok());
  ASSERT_TRUE(root->Get("ratio", &ratio).ok());
  ASSERT_TRUE(root->Get("on", &on).ok());
  ASSERT_TRUE(root->Get("every", &every).ok());
  ASSERT_TRUE(root->Get("list", &list).ok());
  ASSERT_TRUE(root->Get("labels", &labels).ok());
  auto sub = root->Map("sub");
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(sub->Get("k", &k).ok());
  EXPECT_TRUE(sub->Finish().ok());
  EXPECT_TRUE(root->Finish().ok());
  EXPECT_EQ(name, "x");
  EXPECT_EQ(absent, "default");
  EXPECT_EQ(n, 42);
  EXPECT_EQ(ratio, 0.5);
  EXPECT_TRUE(on);
  EXPECT_EQ(every, milliseconds(60000));
  EXPECT_EQ(list, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(labels.at("region"), "gansu");
  EXPECT_EQ(k, "v");
}

TEST(ConfigMapTest, ErrorsNameFileLineAndKey) {
  auto root = ConfigMap::Parse("agent.yml",
                               "labels: {region: gansu}\n"
                               "sample_interval: 15x\n"
                               "remote_write:\n"
                               "  - url: [not, a, string]\n"
                               "typo_key: 1\n");
  ASSERT_TRUE(root.ok());
  milliseconds d{0};
  EXPECT_EQ(root->Get("sample_interval", &d).message(),
            "agent.yml:2: sample_interval: bad duration \"15x\": unknown unit \"x\" (use ms, s, "
            "m, h, d, w, y)");
  auto rw = root->List("remote_write");
  ASSERT_TRUE(rw.ok());
  std::string url;
  EXPECT_EQ((*rw)[0].Get("url", &url).message(),
            "agent.yml:4: remote_write[0].url: expected a string");
  std::map<std::string, std::string> labels;
  ASSERT_TRUE(root->Get("labels", &labels).ok());
  EXPECT_EQ(root->Finish().message(), "agent.yml:5: typo_key: unknown key");
  int64_t n;
  EXPECT_EQ(root->Get("labels", &n).message(), "agent.yml:1: labels: expected an integer");
}

TEST(ConfigMapTest, SyntaxErrorAndMissingFile) {
  auto bad = ConfigMap::Parse("x.yml", "a: [1, 2\nb: 3\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("x.yml:", 0), 0u) << bad.status().message();
  EXPECT_NE(bad.status().message().find("YAML syntax error"), std::string::npos);
  auto notmap = ConfigMap::Parse("x.yml", "- a\n- b\n");
  EXPECT_FALSE(notmap.ok());
  auto missing = ConfigMap::Load("/nonexistent/suanli.yml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/suanli.yml"), std::string::npos);
  EXPECT_TRUE(ConfigMap::Parse("empty.yml", "").ok());
}

TEST(FlagSetTest, ParsesPrometheusStyle) {
  FlagSet f("prog");
  f.AddString("web.listen-address", "addr", ":9100");
  f.AddBool("config.check", "check");
  f.AddRepeated("remote-write.url", "url");
  f.AddBoolFamily("collector.", {"cpu", "meminfo"}, "collector");
  const char* argv[] = {"prog",
                        "--web.listen-address",
                        "127.0.0.1:0",
                        "--config.check",
                        "--remote-write.url=http://a",
                        "--remote-write.url=http://b",
                        "--no-collector.cpu",
                        "--collector.meminfo"};
  ASSERT_TRUE(f.Parse(8, argv).ok());
  EXPECT_EQ(f.Get("web.listen-address"), "127.0.0.1:0");
  EXPECT_TRUE(f.GetBool("config.check"));
  EXPECT_EQ(f.GetAll("remote-write.url"), (std::vector<std::string>{"http://a", "http://b"}));
  auto fam = f.GetFamily("collector.");
  EXPECT_FALSE(fam.at("cpu"));
  EXPECT_TRUE(fam.at("meminfo"));

  FlagSet g("prog");
  g.AddString("a", "a", "dflt");
  g.AddBoolFamily("collector.", {"cpu"}, "c");
  EXPECT_EQ(g.Get("a"), "dflt");
  const char* bad1[] = {"prog", "--nope"};
  EXPECT_EQ(g.Parse(2, bad1).message(), "unknown flag --nope (see --help)");
  const char* bad2[] = {"prog", "--collector.gpu"};
  EXPECT_NE(g.Parse(2, bad2).message().find("known collector.NAME: cpu"), std::string::npos);
  const char* bad3[] = {"prog", "--a"};
  EXPECT_EQ(g.Parse(2, bad3).message(), "flag --a needs a value");
}

}  // namespace
}  // namespace suanli
