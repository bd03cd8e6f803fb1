// suanlictl against real aggregators: its command line (--help everywhere, exit codes, clear
// errors), snapshots refused without --web.enable-admin-api and without scope admin, the
// capacity table against /api/v1/capacity, and forward status against the forwarder's own
// metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "core/remote_codec.h"
#include "ctl/table.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

using ::testing::HasSubstr;

std::string Suanlictl() { return BinDir() + "/suanlictl"; }

RunResult Ctl(const std::vector<std::string>& args, const std::string& dir = "/tmp") {
  auto r = RunCommand(Suanlictl(), args, dir, seconds(60));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RunResult{};
}

TEST(CtlTest, HelpForEveryCommandAndExitCodes) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> helps = {
      {{"--help"}, {"capacity", "snapshot", "forward", "store", "Exit codes"}},
      {{"capacity", "--help"},
       {"--aggregator.url", "http://127.0.0.1:9466", "--bearer-token-file", "--region", "--dc",
        "--watch", "--precision", "--tls.ca-file"}},
      {{"snapshot", "--help"},
       {"--aggregator.url", "--bearer-token-file", "--web.enable-admin-api"}},
      {{"forward", "status", "--help"}, {"--aggregator.url", "--bearer-token-file"}},
      {{"store", "analyze", "--help"}, {"--storage.path", "--limit", "--no-progress"}},
      {{"store", "verify", "--help"}, {"--storage.path"}},
  };
  for (const Case& c : helps) {
    RunResult r = Ctl(c.args);
    SCOPED_TRACE(c.args.front() + " " + c.args.back());
    EXPECT_EQ(r.status.code, 0) << r.err;
    for (const std::string& m : c.mentions) EXPECT_THAT(r.out, HasSubstr(m));
  }
  RunResult v = Ctl({"--version"});
  EXPECT_EQ(v.status.code, 0);
  EXPECT_THAT(v.out, HasSubstr("suanlictl " SUANLI_VERSION));

  // Bad usage: 2, with the reason.
  RunResult none = Ctl({});
  EXPECT_EQ(none.status.code, 2);
  EXPECT_THAT(none.err, HasSubstr("subcommand is required"));
  RunResult unknown = Ctl({"capacity", "--no-such-flag"});
  EXPECT_EQ(unknown.status.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--no-such-flag"));
  RunResult missing = Ctl({"store", "analyze"});
  EXPECT_EQ(missing.status.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--storage.path is required"));
  RunResult bad_url = Ctl({"capacity", "--aggregator.url=127.0.0.1:9466"});
  EXPECT_EQ(bad_url.status.code, 2);
  EXPECT_THAT(bad_url.err, HasSubstr("is not an http:// or https:// URL"));
  RunResult no_token = Ctl({"snapshot", "--bearer-token-file=/nonexistent/token"});
  EXPECT_EQ(no_token.status.code, 2);
  EXPECT_THAT(no_token.err, HasSubstr("--bearer-token-file"));

  // Failures: 1, with what went wrong.
  RunResult unreachable =
      Ctl({"capacity", "--aggregator.url=http://127.0.0.1:" + std::to_string(PickFreePort())});
  EXPECT_EQ(unreachable.status.code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot reach the aggregator at http://127.0.0.1:"));
  RunResult no_dir = Ctl({"store", "verify", "--storage.path=/nonexistent/store"});
  EXPECT_EQ(no_dir.status.code, 1);
  EXPECT_EQ(no_dir.err, "suanlictl store verify: /nonexistent/store: no such directory\n");
}

TEST(CtlTest, SnapshotNeedsTheAdminApiAndScopeAdmin) {
  TempDir tmp("suanli-it-ctl");
  {
    auto agg = StartAggregator(tmp.path(), {}, "aggregator-plain.log");
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    RunResult r = Ctl({"snapshot", "--aggregator.url=" + agg->Url("")});
    EXPECT_EQ(r.status.code, 1);
    EXPECT_EQ(r.err, "suanlictl snapshot: POST " + agg->Url("/api/v1/admin/snapshot") +
                         ": 503 Service Unavailable: admin APIs disabled (start the aggregator "
                         "with --web.enable-admin-api)\n");
    EXPECT_FALSE(std::filesystem::exists(tmp.Sub("data/snapshots")));
  }

  // Credentials: a reader may not snapshot, an admin may.
  ASSERT_TRUE(WriteFile(tmp.Sub("web.yml"),
                        "credentials:\n"
                        "  - name: reader\n    bearer_tokens: [reader-token-0123456789]\n"
                        "    scopes: [read, metrics]\n"
                        "  - name: operator\n    bearer_token_files: [" +
                            tmp.Sub("admin.token") + "]\n    scopes: [admin]\n")
                  .ok());
  ASSERT_TRUE(WriteFile(tmp.Sub("admin.token"), "admin-token-0123456789\n").ok());
  ASSERT_TRUE(WriteFile(tmp.Sub("reader.token"), "reader-token-0123456789\n").ok());
  auto agg = StartAggregator(tmp.path(),
                             {"--web.enable-admin-api", "--web.config.file=" + tmp.Sub("web.yml")},
                             "aggregator-auth.log");
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  const std::string url = "--aggregator.url=" + agg->Url("");
  RunResult anonymous = Ctl({"snapshot", url});
  EXPECT_EQ(anonymous.status.code, 1);
  EXPECT_THAT(anonymous.err, HasSubstr(": 401 Unauthorized"));
  RunResult reader = Ctl({"snapshot", url, "--bearer-token-file=" + tmp.Sub("reader.token")});
  EXPECT_EQ(reader.status.code, 1);
  EXPECT_THAT(reader.err, HasSubstr(": 403 Forbidden"));
  EXPECT_THAT(reader.err, HasSubstr("snapshots need scope admin"));
  RunResult admin = Ctl({"snapshot", url, "--bearer-token-file=" + tmp.Sub("admin.token")});
  EXPECT_EQ(admin.status.code, 0) << admin.err;
  std::string name = admin.out.substr(0, admin.out.find('\n'));
  EXPECT_TRUE(std::filesystem::is_directory(tmp.Sub("data/snapshots/" + name))) << name;
  // The admin token grants nothing else.
  RunResult capacity = Ctl({"capacity", url, "--bearer-token-file=" + tmp.Sub("admin.token")});
  EXPECT_EQ(capacity.status.code, 1);
  EXPECT_THAT(capacity.err, HasSubstr(": 403 Forbidden"));
}

// The cells of the row whose first cells are `prefix` (split on runs of two or more blanks).
std::vector<std::string> RowOf(const std::string& table, const std::vector<std::string>& prefix) {
  size_t start = 0;
  while (start < table.size()) {
    size_t end = table.find('\n', start);
    if (end == std::string::npos) end = table.size();
    std::string line = table.substr(start, end - start);
    start = end + 1;
    std::vector<std::string> cells;
    static const std::regex kCell(R"(\S+(?: \S+)*)");
    for (auto it = std::sregex_iterator(line.begin(), line.end(), kCell);
         it != std::sregex_iterator(); ++it) {
      cells.push_back(it->str());
    }
    if (cells.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), cells.begin())) {
      return cells;
    }
  }
  return {};
}

TEST(CtlTest, CapacityTableShowsTheCapacityAnswer) {
  TempDir tmp("suanli-it-ctl-capacity");
  auto agg = StartAggregator(tmp.path(), {});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  // Two servers of one dc with 8 cores each, as an agent sends them (two sweeps: utilization
  // needs a rate).
  const int64_t now = UnixNowMs();
  for (int sweep = 0; sweep < 2; ++sweep) {
    std::vector<TimeSeries> batch;
    for (const char* node : {"n1", "n2"}) {
      Labels base{{"region", "gansu"}, {"dc", "ctl-1"}, {"instance", node}};
      for (int cpu = 0; cpu < 8; ++cpu) {
        for (const char* mode : {"idle", "user"}) {
          Labels l = base;
          l.Set("__name__", "node_cpu_seconds_total");
          l.Set("cpu", std::to_string(cpu));
          l.Set("mode", mode);
          batch.push_back({l,
                           {{now - 15'000 + sweep * 15'000,
                             (std::string(mode) == "idle" ? 100.0 : 50.0) + sweep * 7.5}}});
        }
      }
      Labels mem = base;
      mem.Set("__name__", "node_memory_MemTotal_bytes");
      batch.push_back({mem, {{now - 15'000 + sweep * 15'000, 64.0 * (1 << 30)}}});
      mem.Set("__name__", "node_memory_MemAvailable_bytes");
      batch.push_back({mem, {{now - 15'000 + sweep * 15'000, 16.0 * (1 << 30)}}});
    }
    ASSERT_TRUE(PostRemoteWrite(agg->Url("/api/v1/write"), batch).ok());
  }
  Result<JsonValue> answer = Internal("not read");
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = HttpGet(agg->Url("/api/v1/capacity?dc=ctl-1"));
        if (!r.ok() || r->status != 200) return false;
        answer = ParseJson(r->body);
        return answer.ok() && (*answer)["data"]["dcs"].array.size() == 1 &&
               (*answer)["data"]["dcs"].array[0]["cpu"]["cores"].number == 16;
      },
      seconds(30)));
  RunResult r = Ctl({"capacity", "--aggregator.url=" + agg->Url(""), "--dc=ctl-1"});
  ASSERT_EQ(r.status.code, 0) << r.err;
  const JsonValue& dc = (*answer)["data"]["dcs"].array[0];
  std::vector<std::string> row = RowOf(r.out, {"dc", "gansu", "ctl-1"});
  ASSERT_EQ(row.size(), 16u) << r.out;
  EXPECT_EQ(row[3], ctl::FormatCount(static_cast<uint64_t>(dc["nodes"]["up"].number)));
  EXPECT_EQ(row[3], "2");
  EXPECT_EQ(row[5], "16");
  EXPECT_EQ(row[6], ctl::FormatPercent(dc["cpu"]["utilization_ratio"].number));
  EXPECT_EQ(row[7], ctl::FormatBytes(dc["memory"]["available_bytes"].number));
  EXPECT_EQ(row[7], "32.0 GiB");
  EXPECT_EQ(row[8], "128 GiB");
  EXPECT_THAT(r.out, HasSubstr("FP16 FREE"));
  // --region filters as the endpoint does: the region's row and its dc.
  RunResult region = Ctl({"capacity", "--aggregator.url=" + agg->Url(""), "--region=gansu"});
  ASSERT_EQ(region.status.code, 0) << region.err;
  EXPECT_EQ(RowOf(region.out, {"region", "gansu", "-"}).size(), 16u) << region.out;
  EXPECT_EQ(RowOf(region.out, {"dc", "gansu", "ctl-1"}).size(), 16u) << region.out;
  EXPECT_TRUE(RowOf(region.out, {"alliance"}).empty()) << region.out;
}

TEST(CtlTest, ForwardStatusShowsTheForwardersState) {
  TempDir tmp("suanli-it-ctl-forward");
  auto upstream = StartAggregator(tmp.path(), {"--storage.path=" + tmp.Sub("up")}, "up.log");
  ASSERT_TRUE(upstream.ok()) << upstream.status().ToString();
  ASSERT_TRUE(WriteFile(tmp.Sub("aggregator.yml"),
                        "forward:\n  - name: region\n    url: " + upstream->Url("/api/v1/write") +
                            "\n    select: raw\n")
                  .ok());
  auto agg = StartAggregator(tmp.path(), {"--config.file=" + tmp.Sub("aggregator.yml")});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  ASSERT_TRUE(agg->process->WaitForLog("forward target=region select=raw starts", seconds(30)));
  const int64_t now = UnixNowMs();
  std::vector<TimeSeries> batch;
  for (int s = 0; s < 50; ++s) {
    batch.push_back({Labels{{"__name__", "ctl_forwarded"}, {"s", std::to_string(s)}},
                     {{now - 2000, 1.0 * s}, {now - 1000, 2.0 * s}}});
  }
  ASSERT_TRUE(PostRemoteWrite(agg->Url("/api/v1/write"), batch).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto m = ScrapeMetrics(agg->Url("/metrics"));
        return m.ok() && FindSample(*m, "suanli_aggregator_forward_samples_sent_total",
                                    {{"target", "region"}}) == 100;
      },
      seconds(60)));
  RunResult r = Ctl({"forward", "status", "--aggregator.url=" + agg->Url("")});
  ASSERT_EQ(r.status.code, 0) << r.err;
  std::vector<std::string> row = RowOf(r.out, {"region"});
  ASSERT_GE(row.size(), 8u) << r.out;
  EXPECT_EQ(row[1], "caught up");
  EXPECT_EQ(row[2], "100");  // SENT
  EXPECT_EQ(row[3], "0");    // RETRIED
  EXPECT_EQ(row[4], "0");    // DROPPED
  EXPECT_THAT(row[6], ::testing::EndsWith(" ago"));
  EXPECT_THAT(row[7], ::testing::StartsWith("2xx="));

  // Without forwarding, it says so.
  RunResult none = Ctl({"forward", "status", "--aggregator.url=" + upstream->Url("")});
  EXPECT_EQ(none.status.code, 0) << none.err;
  EXPECT_EQ(none.out, "no forward targets (forward: in the aggregator's configuration)\n");
}

}  // namespace
}  // namespace suanli::it
