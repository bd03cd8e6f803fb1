// The alliance capacity view with real servers: suanli-aggregator fed by suanli-loadgen (three
// simulated regions of two dcs) and by a real suanli-agent over node_exporter's fixture tree;
// a real Prometheus (1 s scrape and evaluation) loaded with dashboards/rules/ scrapes the
// aggregator, the load generator (node-level series for the per-server dashboard) and the agent,
// and sends alerts to a real Alertmanager. Checked through their HTTP APIs:
//   - every PromQL expression of every dashboard panel (and every variable's selector) returns
//     data from Prometheus;
//   - a simulated shortage (one region driven to ~100 % utilization) fires
//     SuanliRegionFreeComputeLow for that region only, and it reaches Alertmanager
//     (/api/v2/alerts); so do a saturated link and a dc whose only agent stopped;
//   - /api/v1/capacity, /watcher and /watcher/health answer; the energy counter of a dc does
//     not drop when one of its servers restarts.
// The rules' `for:` durations are shortened to 2 s in the copy Prometheus loads (see the
// header of dashboards/rules/suanli_alerts.yml), so the test runs in well under a minute.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/http_client.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr auto kDeadline = seconds(60);

std::string SourceDir() { return SUANLI_SOURCE_DIR; }
std::string LoadgenBinary() { return BinDir() + "/suanli-loadgen"; }
constexpr const char* kAlertmanagerBinary = "/usr/bin/prometheus-alertmanager";

// The rules as Prometheus loads them in this test: `for:` shortened.
std::string ShortenedRules(const std::string& path) {
  static const std::regex kFor(R"(^(\s+)for: \S+$)", std::regex::multiline);
  return std::regex_replace(ReadFileOrEmpty(path), kFor, "$1for: 2s");
}

// A panel's or a variable's expression with Grafana's variables filled in for this test.
std::string Substitute(std::string expr) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"$__rate_interval", "10s"}, {"${__rate_interval}", "10s"},
      {"$precision", "fp32"},      {"${precision}", "fp32"},
      {"$region", ".*"},           {"$dc", ".*"},
      {"$instance", ".*"}};
  for (const auto& [k, v] : vars) {
    for (size_t at = expr.find(k); at != std::string::npos; at = expr.find(k, at + v.size())) {
      expr.replace(at, k.size(), v);
    }
  }
  return expr;
}

struct DashboardExpr {
  std::string where;
  std::string expr;
};

std::vector<DashboardExpr> DashboardExprs() {
  std::vector<DashboardExpr> out;
  std::string dir = SourceDir() + "/dashboards/grafana";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  EXPECT_GE(files.size(), 4u);
  static const std::regex kLabelValues(R"(^\s*label_values\((.*),\s*\w+\s*\)\s*$)");
  for (const auto& f : files) {
    auto doc = ParseJson(ReadFileOrEmpty(f));
    EXPECT_TRUE(doc.ok()) << f << ": " << doc.status().ToString();
    if (!doc.ok()) continue;
    std::string name = std::filesystem::path(f).filename().string();
    for (const JsonValue& v : (*doc)["templating"]["list"].array) {
      if (v["type"].string != "query") continue;
      std::smatch m;
      const std::string& q = v["query"]["query"].string;
      if (std::regex_match(q, m, kLabelValues)) {
        out.push_back({name + " variable " + v["name"].string, Substitute(m[1])});
      }
    }
    std::vector<const JsonValue*> panels;
    for (const JsonValue& p : (*doc)["panels"].array) {
      panels.push_back(&p);
      for (const JsonValue& inner : p["panels"].array) panels.push_back(&inner);
    }
    for (const JsonValue* p : panels) {
      for (const JsonValue& t : (*p)["targets"].array) {
        out.push_back({name + " panel '" + (*p)["title"].string + "' " + t["refId"].string,
                       Substitute(t["expr"].string)});
      }
    }
  }
  return out;
}

class CapacityViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* bin : {kPrometheusBinary, kAlertmanagerBinary}) {
      if (access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is not installed";
    }
    // Aggregator: short staleness so a stopped agent shows within seconds.
    std::string agg_config = tmp_.Sub("aggregator.yml");
    ASSERT_TRUE(WriteFile(agg_config,
                          "capacity:\n  stale_after: 4s\n  forget_after: 5m\n"
                          "  watcher_window: 1m\n")
                    .ok());
    auto agg = StartAggregator(tmp_.path(), {"--config.file=" + agg_config});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();

    // Load generator: gansu, ningxia, guizhou x 2 dcs x 2 servers, a sweep a second.
    auto lg =
        Process::Start(LoadgenBinary(),
                       {"--remote-write.url=" + aggregator_.Url("/api/v1/write"),
                        "--regions=gansu,ningxia,guizhou", "--dcs-per-region=2", "--nodes-per-dc=2",
                        "--cpus=4", "--interval=1s", "--web.listen-address=127.0.0.1:0"},
                       tmp_.Sub("loadgen.log"));
    ASSERT_TRUE(lg.ok()) << lg.status().ToString();
    loadgen_ = std::move(lg).value();
    auto addr = loadgen_->WaitForLog(R"(listening on http://(\S+))", seconds(30));
    ASSERT_TRUE(addr.has_value()) << loadgen_->LogTail();
    loadgen_address_ = *addr;

    // One real agent over the fixture tree, alone in its dc.
    std::string agent_config = tmp_.Sub("agent.yml");
    ASSERT_TRUE(WriteFile(agent_config,
                          "labels: {region: gansu, dc: fixture-1, instance: fixture-node}\n"
                          "sample_interval: 1s\nremote_write:\n  - url: " +
                              aggregator_.Url("/api/v1/write") + "\n")
                    .ok());
    std::string fx = FixturesDir() + "/node_exporter";
    auto agent =
        StartAgent(tmp_.path(), {"--config.file=" + agent_config, "--path.procfs=" + fx + "/proc",
                                 "--path.sysfs=" + fx + "/sys"});
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agent_ = std::move(agent).value();

    ASSERT_NO_FATAL_FAILURE(StartAlertmanager());
    ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  }

  void StartAlertmanager() {
    std::string config = tmp_.Sub("alertmanager.yml");
    ASSERT_TRUE(WriteFile(config,
                          "route:\n  receiver: nowhere\n  group_wait: 1s\n"
                          "receivers:\n  - name: nowhere\n")
                    .ok());
    for (int attempt = 0; attempt < 5 && am_address_.empty(); ++attempt) {
      std::string address = "127.0.0.1:" + std::to_string(PickFreePort());
      auto am = Process::Start(
          kAlertmanagerBinary,
          {"--config.file=" + config, "--storage.path=" + tmp_.Sub("am-" + std::to_string(attempt)),
           "--web.listen-address=" + address, "--cluster.listen-address="},
          tmp_.Sub("alertmanager-" + std::to_string(attempt) + ".log"));
      ASSERT_TRUE(am.ok()) << am.status().ToString();
      bool ready = WaitFor(
          [&] {
            if (!(*am)->Running()) return true;
            auto r = HttpGet("http://" + address + "/-/ready");
            return r.ok() && r->status == 200;
          },
          seconds(30), milliseconds(100));
      if (ready && (*am)->Running()) {
        alertmanager_ = std::move(am).value();
        am_address_ = address;
      }
    }
    ASSERT_FALSE(am_address_.empty()) << "Alertmanager did not start";
  }

  void StartPrometheus() {
    std::string rules_dir = SourceDir() + "/dashboards/rules/";
    std::vector<std::string> rule_files;
    for (const char* f :
         {"suanli_recording.yml", "suanli_alerts.yml", "suanli_power_budgets.yml"}) {
      rule_files.push_back(tmp_.Sub(f));
      ASSERT_TRUE(WriteFile(rule_files.back(), ShortenedRules(rules_dir + f)).ok());
    }
    std::string yml =
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n";
    for (const auto& f : rule_files) yml += "  - " + f + "\n";
    yml += "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['" +
           am_address_ + "']\nscrape_configs:\n";
    const std::pair<const char*, std::string> jobs[] = {{"suanli-aggregator", aggregator_.address},
                                                        {"suanli-loadgen", loadgen_address_},
                                                        {"suanli-agent", agent_.address}};
    for (const auto& [job, target] : jobs) {
      yml += std::string("  - job_name: ") + job + "\n    honor_labels: true\n" +
             "    static_configs:\n      - targets: ['" + target + "']\n";
    }
    std::string config = tmp_.Sub("prometheus.yml");
    ASSERT_TRUE(WriteFile(config, yml).ok());
    for (int attempt = 0; attempt < 5 && prom_address_.empty(); ++attempt) {
      std::string address = "127.0.0.1:" + std::to_string(PickFreePort());
      auto p = Process::Start(kPrometheusBinary,
                              {"--config.file=" + config,
                               "--storage.tsdb.path=" + tmp_.Sub("tsdb-" + std::to_string(attempt)),
                               "--web.listen-address=" + address, "--log.level=info"},
                              tmp_.Sub("prometheus-" + std::to_string(attempt) + ".log"));
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      bool ready = WaitFor(
          [&] {
            if (!(*p)->Running()) return true;
            auto r = HttpGet("http://" + address + "/-/ready");
            return r.ok() && r->status == 200;
          },
          seconds(60), milliseconds(100));
      if (ready && (*p)->Running()) {
        prometheus_ = std::move(p).value();
        prom_address_ = address;
      }
    }
    ASSERT_FALSE(prom_address_.empty()) << "Prometheus did not start";
  }

  // Number of series (or 1 for a scalar) an instant query returns; an error names the query.
  Result<size_t> QueryCount(const std::string& promql) {
    ASSIGN_OR_RETURN(HttpClientResponse r, HttpGet("http://" + prom_address_ +
                                                   "/api/v1/query?query=" + UrlEncode(promql)));
    ASSIGN_OR_RETURN(JsonValue doc, ParseJson(r.body));
    if (r.status != 200 || doc["status"].string != "success") {
      return InvalidArgument(promql + ": " + r.body);
    }
    const JsonValue& data = doc["data"];
    if (data["resultType"].string == "scalar") return size_t{1};
    return data["result"].array.size();
  }

  // Active alerts Alertmanager holds, as label maps.
  std::vector<std::map<std::string, std::string>> AlertmanagerAlerts() {
    std::vector<std::map<std::string, std::string>> out;
    auto r = HttpGet("http://" + am_address_ + "/api/v2/alerts?active=true");
    if (!r.ok() || r->status != 200) return out;
    auto doc = ParseJson(r->body);
    if (!doc.ok()) return out;
    for (const JsonValue& a : doc->array) {
      std::map<std::string, std::string> labels;
      for (const auto& [k, v] : a["labels"].object) labels[k] = v.string;
      out.push_back(std::move(labels));
    }
    return out;
  }

  bool AlertReached(const std::map<std::string, std::string>& subset) {
    for (const auto& labels : AlertmanagerAlerts()) {
      bool all = true;
      for (const auto& [k, v] : subset) {
        auto it = labels.find(k);
        all = all && it != labels.end() && it->second == v;
      }
      if (all) return true;
    }
    return false;
  }

  Status Control(const std::string& query) {
    HttpClient client;
    ASSIGN_OR_RETURN(HttpClientResponse r,
                     client.Post("http://" + loadgen_address_ + "/control?" + query, "", {}));
    if (r.status != 200) return Internal("control " + query + ": " + r.body);
    return Status::Ok();
  }

  std::string Logs() {
    std::string out = "--- aggregator\n" + aggregator_.process->LogTail(1500);
    out += "--- loadgen\n" + loadgen_->LogTail(1500);
    if (prometheus_) out += "--- prometheus\n" + prometheus_->LogTail(2500);
    if (alertmanager_) out += "--- alertmanager\n" + alertmanager_->LogTail(1500);
    return out;
  }

  TempDir tmp_{"capacity-view"};
  Daemon aggregator_;
  Daemon agent_;
  std::unique_ptr<Process> loadgen_;
  std::string loadgen_address_;
  std::unique_ptr<Process> alertmanager_;
  std::string am_address_;
  std::unique_ptr<Process> prometheus_;
  std::string prom_address_;
};

TEST_F(CapacityViewTest, DashboardsHaveDataAndAShortageReachesAlertmanager) {
  // The view reaches Prometheus: three regions with compute.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = QueryCount("suanli_region_compute_free_flops{precision=\"fp32\"}");
        return n.ok() && *n == 3;
      },
      kDeadline, milliseconds(250)))
      << Logs();

  // Every dashboard expression returns data (rates need a few scrapes: poll until all do).
  std::vector<DashboardExpr> exprs = DashboardExprs();
  ASSERT_GT(exprs.size(), 40u);
  std::set<size_t> missing;
  for (size_t i = 0; i < exprs.size(); ++i) missing.insert(i);
  std::map<size_t, std::string> errors;
  WaitFor(
      [&] {
        for (auto it = missing.begin(); it != missing.end();) {
          auto n = QueryCount(exprs[*it].expr);
          if (!n.ok()) errors[*it] = n.status().ToString();
          it = n.ok() && *n > 0 ? missing.erase(it) : std::next(it);
        }
        return missing.empty();
      },
      kDeadline, milliseconds(500));
  for (size_t i : missing) {
    ADD_FAILURE() << exprs[i].where << ": no data for " << exprs[i].expr
                  << (errors.count(i) ? " (" + errors[i] + ")" : "");
  }

  // Nothing is short yet.
  EXPECT_FALSE(AlertReached({{"alertname", "SuanliRegionFreeComputeLow"}}));

  // A shortage in ningxia: every server there at ~100 %.
  ASSERT_TRUE(Control("region=ningxia&utilization=1").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        return AlertReached({{"alertname", "SuanliRegionFreeComputeLow"},
                             {"region", "ningxia"},
                             {"precision", "fp32"},
                             {"severity", "warning"}});
      },
      kDeadline, milliseconds(250)))
      << Logs();
  EXPECT_FALSE(AlertReached({{"alertname", "SuanliRegionFreeComputeLow"}, {"region", "gansu"}}));
  EXPECT_FALSE(AlertReached({{"alertname", "SuanliRegionFreeComputeLow"}, {"region", "guizhou"}}));

  // A saturated inter-dc link.
  ASSERT_TRUE(Control("dc=guizhou-1&link_utilization=0.97").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        return AlertReached(
            {{"alertname", "SuanliLinkSaturated"}, {"dc", "guizhou-1"}, {"peer_dc", "guizhou-2"}});
      },
      kDeadline, milliseconds(250)))
      << Logs();

  // The fixture dc's only agent stops: the dc goes stale.
  agent_.process->Signal(SIGTERM);
  ASSERT_TRUE(agent_.process->Wait(seconds(30)).has_value());
  EXPECT_TRUE(WaitFor(
      [&] {
        return AlertReached({{"alertname", "SuanliDcAllAgentsStale"}, {"dc", "fixture-1"}});
      },
      kDeadline, milliseconds(250)))
      << Logs();
}

TEST_F(CapacityViewTest, SchedulerEndpointsAndEnergyAcrossARestart) {
  // /api/v1/capacity, filtered.
  JsonValue data;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = HttpGet(aggregator_.Url("/api/v1/capacity?region=ningxia&precision=fp16"));
        if (!r.ok() || r->status != 200) return false;
        auto doc = ParseJson(r->body);
        if (!doc.ok() || (*doc)["status"].string != "success") return false;
        data = (*doc)["data"];
        return data["dcs"].array.size() == 2 &&
               data["dcs"].array[0]["compute"]["fp16"]["free_flops"].number > 0;
      },
      kDeadline, milliseconds(250)))
      << Logs();
  for (const JsonValue& dc : data["dcs"].array) {
    EXPECT_EQ(dc["region"].string, "ningxia");
    EXPECT_LT(dc["freshness_seconds"].number, 4) << dc["dc"].string;
    EXPECT_EQ(dc["compute"].object.size(), 1u);
    EXPECT_EQ(dc["nodes"]["up"].number, 2);
    EXPECT_EQ(dc["links"].array.size(), 1u);
  }
  auto bad = HttpGet(aggregator_.Url("/api/v1/capacity?min_free_flops=plenty"));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, ::testing::HasSubstr("\"errorType\":\"bad_data\""));

  // /watcher as load-watcher serves it.
  JsonValue watcher;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = HttpGet(aggregator_.Url("/watcher"));
        if (!r.ok() || r->status != 200) return false;
        auto doc = ParseJson(r->body);
        if (!doc.ok()) return false;
        watcher = *doc;
        return watcher["data"]["NodeMetricsMap"].object.count("gansu-1-n0") > 0;
      },
      kDeadline, milliseconds(250)))
      << Logs();
  EXPECT_EQ(watcher["window"]["duration"].string, "1m");
  EXPECT_EQ(watcher["source"].string, "Suanli");
  const JsonValue& node = watcher["data"]["NodeMetricsMap"]["gansu-1-n0"];
  EXPECT_EQ(node["metadata"]["dataCenter"].string, "gansu-1");
  std::set<std::string> kinds;
  for (const JsonValue& m : node["metrics"].array) {
    kinds.insert(m["type"].string + "/" + m["operator"].string);
    EXPECT_GE(m["value"].number, 0);
    EXPECT_LE(m["value"].number, 100);
    if (m["type"].string == "CPU" && m["operator"].string == "AVG") {
      EXPECT_NEAR(m["value"].number, 30, 6);  // the load generator's 30 % (+/- 4 % wobble)
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"CPU/AVG", "CPU/STD", "CPU/Latest", "Memory/AVG",
                                          "Memory/STD", "Memory/Latest"}));
  auto health = HttpGet(aggregator_.Url("/watcher/health"));
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  auto unknown = HttpGet(aggregator_.Url("/watcher?host=no-such-node"));
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 404);

  // A server restarts (its energy counter starts over): the dc's counter never drops.
  auto energy = [&]() -> std::optional<double> {
    auto m = ScrapeMetrics(aggregator_.Url("/metrics"));
    if (!m.ok()) return std::nullopt;
    return FindSample(*m, "suanli_dc_energy_joules_total",
                      {{"region", "gansu"}, {"dc", "gansu-1"}});
  };
  std::optional<double> before;
  ASSERT_TRUE(WaitFor([&] { return (before = energy()).has_value() && *before > 0; }, kDeadline));
  ASSERT_TRUE(Control("restart=gansu-1-n0").ok());
  double last = *before;
  bool grew = WaitFor(
      [&] {
        auto now = energy();
        EXPECT_TRUE(now.has_value());
        if (!now) return true;
        EXPECT_GE(*now, last) << "the dc's energy counter dropped";
        last = std::max(last, *now);
        return *now > *before + 2000;  // a few more sweeps of ~1 kW servers
      },
      kDeadline, milliseconds(200));
  EXPECT_TRUE(grew) << "energy stuck at " << last;

  // The view is promtool-clean.
  auto text = HttpGet(aggregator_.Url("/metrics"));
  ASSERT_TRUE(text.ok());
  PromtoolResult lint = PromtoolCheckMetrics(text->body, tmp_.path());
  std::istringstream lines(lint.output);
  for (std::string line; std::getline(lines, line);) {
    for (const char* prefix :
         {"suanli_dc_", "suanli_region_", "suanli_alliance_", "suanli_link_"}) {
      EXPECT_NE(line.rfind(prefix, 0), 0u) << line;
    }
  }
}

}  // namespace
}  // namespace suanli::it
