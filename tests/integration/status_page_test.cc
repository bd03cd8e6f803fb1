// The status page at the aggregator's `/`, loaded in a real browser: Debian's chromium in
// headless mode renders the page of a running suanli-aggregator fed by real suanli-agents (over
// node_exporter's fixture tree, in two dcs of one region) and by a remote_write naming a dc with
// markup in it. The test reads the rendered DOM (--dump-dom) and compares every figure the page
// carries (data-json: its JSON pointer; data-value: its number) with /api/v1/capacity read just
// before and just after, once the figures stopped changing; the page must show every figure of
// the document (the per-source compute split aside). It checks that outside names are shown as
// text, never as markup, that the page's script ran, the aggregator's own state (store, a
// forward target blocked by its upstream's credentials, the HA election), that the page's
// script replaces its content every 30 s (in chromium's virtual time), and keeps
// screenshots (desktop and phone width) under <build>/test-artifacts/.
// A second aggregator, with a web config requiring credentials, answers `/` 401 without them,
// 200 with a read-scope token and 403 with a token lacking the read scope.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/http_client.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kDeadline = seconds(60);
// Chromium's start in a busy container can take long; it is killed past this.
constexpr auto kChromiumTimeout = seconds(180);

constexpr const char* kReaderToken = "status-reader-token-0123456789";
constexpr const char* kWriterToken = "status-writer-token-0123456789";

// A region and a dc whose names are markup: the page must show them as text.
constexpr const char* kHostileRegion = "west<b>bold</b>";
constexpr const char* kHostileDc =
    "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">&amp;";

// node-a terminates the link to zhongwei-1 (the fixture's eth0).
constexpr const char* kLink =
    "links:\n  - {device: eth0, name: lz-zw, peer_dc: zhongwei-1, capacity: 10G}\n";

std::string ChromiumBinary() {
  const char* env = std::getenv("SUANLI_CHROMIUM");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/chromium";
}

std::string ArtifactsDir() { return SUANLI_TEST_ARTIFACTS_DIR; }

// Chromium as a container runs it: no sandbox (no user namespaces), no GPU, /tmp instead of a
// small /dev/shm, a profile of its own, nothing fetched besides the page.
std::vector<std::string> ChromiumArgs(const std::string& profile) {
  return {"--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--user-data-dir=" + profile,
          "--no-first-run",
          "--no-default-browser-check",
          "--disable-extensions",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--metrics-recording-only",
          "--hide-scrollbars",
          "--mute-audio"};
}

std::string DecodeEntities(std::string s) {
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", "\xc2\xa0"}};
  for (const auto& [from, to] : kEntities) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1)) {
      s.replace(at, std::strlen(from), to);
    }
  }
  for (size_t at = s.find("&amp;"); at != std::string::npos; at = s.find("&amp;", at + 1)) {
    s.replace(at, 5, "&");
  }
  return s;
}

// A figure or name as the rendered DOM holds it.
struct DomFigure {
  std::string pointer;
  std::optional<std::string> value;  // data-value (numbers)
  std::string text;
};

std::vector<DomFigure> DomFigures(const std::string& dom) {
  static const std::regex kFigure(
      R"re(<\w+[^>]*?\sdata-json="([^"]*)"(?:\s+data-value="([^"]*)")?[^>]*>([^<]*)<)re");
  std::vector<DomFigure> out;
  for (std::sregex_iterator it(dom.begin(), dom.end(), kFigure), end; it != end; ++it) {
    DomFigure f;
    f.pointer = DecodeEntities((*it)[1]);
    if ((*it)[2].matched) f.value = DecodeEntities((*it)[2]);
    f.text = DecodeEntities((*it)[3]);
    out.push_back(std::move(f));
  }
  return out;
}

// data-value of the element whose data-status is `name`.
std::optional<std::string> DomStatus(const std::string& dom, const std::string& name) {
  std::regex re("data-status=\"" +
                std::regex_replace(name, std::regex(R"([.^$|()\[\]*+?{}\\])"), R"(\$&)") +
                "\"\\s+data-value=\"([^\"]*)\"");
  std::smatch m;
  if (!std::regex_search(dom, m, re)) return std::nullopt;
  return m[1].str();
}

// The document without what moves with the clock alone (its time, every freshness).
json WithoutClock(json j) {
  if (j.is_object()) {
    j.erase("timestamp");
    j.erase("freshness_seconds");
    for (auto& [k, v] : j.items()) v = WithoutClock(v);
  } else if (j.is_array()) {
    for (auto& v : j) v = WithoutClock(v);
  }
  return j;
}

// Every number of `j` by its JSON pointer.
void NumberLeaves(const json& j, const std::string& pointer, std::map<std::string, double>* out) {
  if (j.is_number()) {
    (*out)[pointer] = j.get<double>();
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) NumberLeaves(v, pointer + "/" + k, out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      NumberLeaves(j[i], pointer + "/" + std::to_string(i), out);
  }
}

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Upstream: requires credentials, so the forward target below is refused (401): blocked.
    const std::string web =
        "credentials:\n"
        "  - name: reader\n    bearer_tokens: [" +
        std::string(kReaderToken) +
        "]\n    scopes: [read]\n"
        "  - name: writer\n    region: gansu\n    dc: lanzhou-1\n    bearer_tokens: [" +
        std::string(kWriterToken) + "]\n";
    ASSERT_TRUE(WriteFile(tmp_.Sub("upstream-web.yml"), web).ok());
    ASSERT_EQ(chmod(tmp_.Sub("upstream-web.yml").c_str(), 0600), 0);
    auto up = StartAggregator(tmp_.path(),
                              {"--web.config.file=" + tmp_.Sub("upstream-web.yml"),
                               "--storage.path=" + tmp_.Sub("upstream-data")},
                              "upstream.log");
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    upstream_ = std::move(up).value();
  }

  // `forward`: with a capacity target to the upstream (blocked by its credentials); without,
  // a standalone dc aggregator.
  void StartFedAggregator(bool forward = true) {
    // The aggregator under test: evaluations recorded every second (the charts' history, with
    // or without a capacity target); nodes stay up long after the agents stop, so the figures
    // hold still.
    std::string config =
        "capacity:\n  stale_after: 1h\n  forget_after: 2h\n  evaluation_interval: 1s\n"
        "ha:\n  replica_label: __replica__\n";
    if (forward) {
      config += "forward:\n  - name: upstream\n    url: " + upstream_.Url("/api/v1/write") +
                "\n    select: capacity\n"
                "    queue_config: {min_backoff: 100ms, max_backoff: 1s}\n";
    }
    ASSERT_TRUE(WriteFile(tmp_.Sub("aggregator.yml"), config).ok());
    auto agg = StartAggregator(tmp_.path(), {"--config.file=" + tmp_.Sub("aggregator.yml")});
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();

    // Three agents over the fixture tree: two in lanzhou-1, one in zhongwei-1.
    const std::string fx = FixturesDir() + "/node_exporter";
    const std::pair<const char*, const char*> agents[] = {
        {"lanzhou-1", "node-a"}, {"lanzhou-1", "node-b"}, {"zhongwei-1", "node-c"}};
    for (const auto& [dc, instance] : agents) {
      std::string cfg = tmp_.Sub(std::string(instance) + ".yml");
      ASSERT_TRUE(WriteFile(cfg, std::string("labels: {region: gansu, dc: ") + dc + ", instance: " +
                                     instance + "}\nsample_interval: 1s\nremote_write:\n  - url: " +
                                     aggregator_.Url("/api/v1/write") + "\nspool:\n  directory: " +
                                     tmp_.Sub(std::string(instance) + "-spool") + "\n" +
                                     (std::string(instance) == "node-a" ? kLink : ""))
                      .ok());
      auto agent = StartAgent(
          tmp_.path(),
          {"--config.file=" + cfg, "--path.procfs=" + fx + "/proc", "--path.sysfs=" + fx + "/sys"},
          std::string(instance) + ".log");
      ASSERT_TRUE(agent.ok()) << agent.status().ToString();
      agents_.push_back(std::move(agent).value());
    }
  }

  void TearDown() override {
    for (Daemon& a : agents_) {
      if (a.process) a.process->Signal(SIGTERM);
    }
  }

  Result<json> Capacity() {
    ASSIGN_OR_RETURN(HttpClientResponse r, HttpGet(aggregator_.Url("/api/v1/capacity")));
    if (r.status != 200) return Internal("capacity: HTTP " + std::to_string(r.status));
    json doc = json::parse(r.body, nullptr, false);
    if (doc.is_discarded() || !doc.contains("data")) return Internal("capacity: " + r.body);
    return doc["data"];
  }

  // Runs chromium on the page with `extra` arguments; its stdout.
  Result<std::string> Chromium(const std::vector<std::string>& extra, const std::string& profile) {
    std::vector<std::string> args = ChromiumArgs(tmp_.Sub(profile));
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(aggregator_.Url("/"));
    ASSIGN_OR_RETURN(RunResult run,
                     RunCommand(ChromiumBinary(), args, tmp_.path(), kChromiumTimeout));
    if (!run.status.ok()) {
      return Internal("chromium " + run.status.ToString() + ": " +
                      run.err.substr(run.err.size() > 3000 ? run.err.size() - 3000 : 0));
    }
    return run.out;
  }

  std::string Logs() {
    std::string out;
    if (aggregator_.process) out += "--- aggregator\n" + aggregator_.process->LogTail(3000);
    out += "--- upstream\n" + upstream_.process->LogTail(1500);
    return out;
  }

  TempDir tmp_{"status-page"};
  Daemon upstream_;
  Daemon aggregator_;
  std::vector<Daemon> agents_;
};

TEST_F(StatusPageTest, ChromiumShowsExactlyTheCapacityFigures) {
  ASSERT_EQ(access(ChromiumBinary().c_str(), X_OK), 0)
      << ChromiumBinary()
      << " is not installed: the status page is tested in a real browser. Install Debian's "
         "chromium package (scripts/setup.sh does), or point SUANLI_CHROMIUM at a chromium.";
  ASSERT_NO_FATAL_FAILURE(StartFedAggregator());

  // A dc named with markup, written with an HA replica label (the pair's first replica heard
  // is elected): memory and cores, so the model counts it.
  const int64_t now = UnixNowMs();
  auto series = [&](const std::string& name, double v) {
    return TimeSeries{Labels({{"__name__", name},
                              {"region", kHostileRegion},
                              {"dc", kHostileDc},
                              {"instance", "hostile-node"},
                              {"__replica__", "replica-a"}}),
                      {{now, v}}};
  };
  ASSERT_TRUE(PostRemoteWrite(aggregator_.Url("/api/v1/write"),
                              {series("node_memory_MemTotal_bytes", 64e9),
                               series("node_memory_MemAvailable_bytes", 32e9)})
                  .ok())
      << Logs();

  // Every agent's node is up with its compute, and the forward target is blocked by the
  // upstream's credentials.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto data = Capacity();
        if (!data.ok()) return false;
        const json& dcs = (*data)["dcs"];
        int nodes = 0;
        for (const json& dc : dcs) {
          if (dc["region"] == "gansu" && !dc["compute"].empty())
            nodes += dc["nodes"]["up"].get<int>();
        }
        bool link = false;
        for (const json& dc : dcs) link |= dc.contains("links") && !dc["links"].empty();
        return nodes == 3 && dcs.size() == 3 && link;
      },
      kDeadline, milliseconds(250)))
      << Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto m = ScrapeMetrics(aggregator_.Url("/metrics"));
        return m.ok() &&
               FindSample(*m, "suanli_aggregator_forward_blocked", {{"target", "upstream"}}) == 1.0;
      },
      kDeadline, milliseconds(250)))
      << Logs();

  // The agents stop: from then on only the clock moves the figures (freshness).
  for (Daemon& a : agents_) {
    a.process->Signal(SIGTERM);
    ASSERT_TRUE(a.process->Wait(seconds(30)).has_value());
  }
  json last;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto data = Capacity();
        if (!data.ok()) return false;
        json now = WithoutClock(*data);
        bool same = now == last;
        last = now;
        return same;
      },
      kDeadline, milliseconds(500)))
      << Logs();

  // The page in chromium, between two reads of the API that agree.
  std::string dom;
  json before, after;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto b = Capacity();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    auto page = Chromium({"--dump-dom"}, "profile-dom");
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    auto a = Capacity();
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    before = *b;
    after = *a;
    dom = *page;
    if (WithoutClock(before) == WithoutClock(after)) break;
  }
  ASSERT_EQ(WithoutClock(before), WithoutClock(after)) << "the figures kept changing";
  ASSERT_THAT(dom, HasSubstr("<main>")) << dom.substr(0, 2000);

  // Every figure of the page is the document's.
  std::vector<DomFigure> figures = DomFigures(dom);
  ASSERT_GT(figures.size(), 50u) << dom.substr(0, 3000);
  std::set<std::string> shown;
  double page_timestamp = 0;
  for (const DomFigure& f : figures) {
    SCOPED_TRACE(f.pointer);
    json::json_pointer ptr(f.pointer);
    ASSERT_TRUE(before.contains(ptr)) << "the page shows a figure the API does not have";
    const json& want = before[ptr];
    shown.insert(f.pointer);
    EXPECT_FALSE(f.text.empty());
    if (!f.value.has_value()) {
      ASSERT_TRUE(want.is_string());
      EXPECT_EQ(f.text, want.get<std::string>());
      continue;
    }
    json got = json::parse(*f.value, nullptr, false);
    ASSERT_TRUE(got.is_number()) << *f.value;
    const double v = got.get<double>();
    if (f.pointer == "/timestamp") page_timestamp = v;
    const std::string leaf = f.pointer.substr(f.pointer.rfind('/') + 1);
    if (leaf == "timestamp" || leaf == "freshness_seconds") {
      // The page's own snapshot, taken between the two reads.
      EXPECT_GE(v, before[ptr].get<double>());
      EXPECT_LE(v, after[ptr].get<double>());
    } else {
      EXPECT_EQ(v, want.get<double>()) << "page " << *f.value << ", API " << want.dump();
    }
  }
  // Freshness is the page's time minus the newest sample's.
  for (const DomFigure& f : figures) {
    if (!f.pointer.ends_with("/freshness_seconds") || !f.value) continue;
    const std::string group = f.pointer.substr(0, f.pointer.rfind('/'));
    const double newest = before[json::json_pointer(group + "/newest_sample_timestamp")];
    EXPECT_NEAR(std::strtod(f.value->c_str(), nullptr), page_timestamp - newest, 1e-3) << f.pointer;
  }
  // ... and the page shows every figure of the document but the per-source compute split.
  std::map<std::string, double> numbers;
  NumberLeaves(before, "", &numbers);
  for (const auto& [pointer, v] : numbers) {
    if (pointer.find("/by_source/") != std::string::npos) continue;
    EXPECT_TRUE(shown.count(pointer) > 0) << "the page lacks " << pointer;
  }

  // Names with markup are text: no element came of them, the title is the page's.
  EXPECT_THAT(dom, HasSubstr("<title>Suanli aggregator</title>"));
  size_t scripts = 0;
  for (size_t at = dom.find("<script"); at != std::string::npos; at = dom.find("<script", at + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 1u) << "only the page's own script";
  EXPECT_EQ(dom.find("<img"), std::string::npos);
  EXPECT_EQ(dom.find("<b>"), std::string::npos);
  bool hostile_dc_shown = false, hostile_region_shown = false;
  for (const DomFigure& f : figures) {
    hostile_dc_shown |= f.text == kHostileDc;
    hostile_region_shown |= f.text == kHostileRegion;
  }
  EXPECT_TRUE(hostile_dc_shown);
  EXPECT_TRUE(hostile_region_shown);

  // The page's script ran (it marks the document), and the charts have the recorded history.
  EXPECT_THAT(dom, HasSubstr("data-refresh=\"on\""));
  static const std::regex kChart(R"re(<svg class="spark"[^>]*data-points="(\d+)")re");
  size_t charts = 0;
  for (std::sregex_iterator it(dom.begin(), dom.end(), kChart), end; it != end; ++it) {
    EXPECT_GE(std::stoi((*it)[1]), 1);
    ++charts;
  }
  EXPECT_GE(charts, 3u) << "CPU, power and free compute of the alliance at least";

  // The aggregator's own state.
  EXPECT_EQ(DomStatus(dom, "store.healthy"), "1");
  auto series_count = DomStatus(dom, "store.series");
  ASSERT_TRUE(series_count.has_value());
  EXPECT_GT(std::stod(*series_count), 100);
  EXPECT_EQ(DomStatus(dom, "forward.upstream.blocked"), "1");
  auto backlog = DomStatus(dom, "forward.upstream.backlog_seconds");
  ASSERT_TRUE(backlog.has_value());
  EXPECT_GT(std::stod(*backlog), 0);
  EXPECT_THAT(dom, HasSubstr("<td class=\"replica\">replica-a</td>"));

  // The script refreshes the page's content: 35 s of chromium's virtual time (which waits for
  // the requests in flight) see one refresh every 30 s, and the fresh content has its figures.
  auto refreshed = Chromium({"--virtual-time-budget=35000", "--dump-dom"}, "profile-refresh");
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_THAT(*refreshed, HasSubstr("data-refreshed=\"1\""));
  EXPECT_THAT(*refreshed, HasSubstr("<span id=\"refresh\">Updated "));
  EXPECT_EQ(DomFigures(*refreshed).size(), figures.size());

  // Screenshots, kept as test artifacts: a desktop window and a phone's.
  std::filesystem::create_directories(ArtifactsDir());
  for (const auto& [name, size] : std::vector<std::pair<std::string, std::string>>{
           {"status_page.png", "1400,1800"}, {"status_page_phone.png", "390,1600"}}) {
    const std::string path = ArtifactsDir() + "/" + name;
    std::filesystem::remove(path);
    auto shot = Chromium({"--screenshot=" + path, "--window-size=" + size}, "profile-" + name);
    ASSERT_TRUE(shot.ok()) << shot.status().ToString();
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_GT(std::filesystem::file_size(path), 10000u) << path;
    std::cout << "status page screenshot: " << path << "\n";
  }
}

// A standalone dc aggregator (the default configuration: no forward target) records its
// capacity figures all the same: once a couple of evaluations are in the store, every chart of
// every row (alliance, region, each dc) has points.
TEST_F(StatusPageTest, StandaloneAggregatorChartsItsRecordedHistory) {
  ASSERT_EQ(access(ChromiumBinary().c_str(), X_OK), 0) << ChromiumBinary() << " is not installed";
  ASSERT_NO_FATAL_FAILURE(StartFedAggregator(/*forward=*/false));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto data = Capacity();
        if (!data.ok()) return false;
        int nodes = 0;
        for (const json& dc : (*data)["dcs"]) {
          if (!dc["compute"].empty()) nodes += dc["nodes"]["up"].get<int>();
        }
        return nodes == 3;
      },
      kDeadline, milliseconds(250)))
      << Logs();
  // Two evaluations of each dc in the store (remote_read), at least.
  for (const char* dc : {"lanzhou-1", "zhongwei-1"}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return RemoteReadSamples(aggregator_.Url("/api/v1/read"), "suanli_dc_cpu_cores", dc, 0,
                                   UnixNowMs())
                     .size() >= 2;
        },
        kDeadline, milliseconds(250)))
        << dc << "\n"
        << Logs();
  }

  auto page = Chromium({"--dump-dom"}, "profile-standalone");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  const std::string& dom = *page;
  ASSERT_THAT(dom, HasSubstr("<main>")) << dom.substr(0, 2000);
  EXPECT_THAT(dom, Not(HasSubstr("No recorded history")));
  EXPECT_THAT(dom, HasSubstr("Charts: the last"));
  EXPECT_EQ(DomStatus(dom, "forward.upstream.blocked"), std::nullopt) << "no forward target";
  // Every row's charts: CPU utilization, free compute per precision, measured power.
  static const std::regex kRow(R"re(<tr class="([a-z]+)[^"]*" data-row="([^"]*)")re");
  static const std::regex kSpark(R"re(class="spark[^"]*"[^>]*data-points="(\d+)")re");
  std::vector<std::pair<std::string, size_t>> rows;  // data-row, position in the DOM
  for (std::sregex_iterator it(dom.begin(), dom.end(), kRow), end; it != end; ++it) {
    rows.push_back({(*it)[2], static_cast<size_t>(it->position())});
  }
  std::set<std::string> charted;
  for (size_t r = 0; r < rows.size(); ++r) {
    SCOPED_TRACE(rows[r].first);
    const size_t end = dom.find("</tr>", rows[r].second);
    ASSERT_NE(end, std::string::npos);
    const std::string row = dom.substr(rows[r].second, end - rows[r].second);
    size_t charts = 0;
    for (std::sregex_iterator it(row.begin(), row.end(), kSpark), e; it != e; ++it) {
      EXPECT_GE(std::stoi((*it)[1]), 1) << "a chart without points";
      ++charts;
    }
    EXPECT_GE(charts, 3u) << "CPU, free compute of a precision at least, power";
    charted.insert(rows[r].first);
  }
  EXPECT_TRUE(charted.count("/alliance") > 0);
  EXPECT_TRUE(charted.count("/regions/0") > 0);
  EXPECT_TRUE(charted.count("/dcs/0") > 0 && charted.count("/dcs/1") > 0);
}

TEST_F(StatusPageTest, PageNeedsTheReadScope) {
  auto get = [&](const std::string& token) -> int {
    HttpClient::Options o;
    o.bearer_token = token;
    HttpClient client(o);
    auto r = client.Get(upstream_.Url("/"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    if (r->status == 200) {
      EXPECT_THAT(r->headers["content-type"], HasSubstr("text/html"));
      EXPECT_THAT(r->headers["content-security-policy"], HasSubstr("default-src 'none'"));
      EXPECT_THAT(r->body, HasSubstr("<main>"));
    }
    return r->status;
  };
  EXPECT_EQ(get(""), 401);
  EXPECT_EQ(get("not-a-token-0123456789"), 401);
  EXPECT_EQ(get(kWriterToken), 403);
  EXPECT_EQ(get(kReaderToken), 200);
}

}  // namespace
}  // namespace suanli::it
