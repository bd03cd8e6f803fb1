// The agent's spool with real processes: suanli-agent samples node_exporter's fixture tree every
// second and writes to a real suanli-aggregator; the aggregator is stopped for a stretch of
// sampling and started again on the same address and store. Afterwards every sample the agent
// took meanwhile must be in the aggregator's store exactly once: the store is opened directly
// once both are stopped, and for every series of the agent's instance the stored timestamps are
// compared with the sweeps the agent logged as spooled (--log.level=debug prints one
// "spool append ... min_ts=T" line per sweep). The agent is also SIGKILLed and restarted in the
// middle of the outage (it must resume from its spool and cursors), and with
// replay_order: newest_first the first sweep taken after the link comes back must reach the
// aggregator within one sample interval while the backlog is replayed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <chrono>
#include <climits>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "aggregator/storage/store.h"
#include "core/http_client.h"
#include "core/remote_codec.h"
#include "tests/integration/harness.h"

namespace suanli::it {
namespace {

constexpr auto kDeadline = seconds(60);
constexpr const char* kInstance = "spool-node";

std::string NodeExporterDir() { return FixturesDir() + "/node_exporter"; }

int64_t UnixMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sweep timestamps an agent log says were spooled.
std::vector<int64_t> SpooledTimestamps(const std::string& log) {
  static const std::regex re(R"(spool append seq=\d+ samples=\d+ min_ts=(-?\d+))");
  std::vector<int64_t> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back(std::stoll((*it)[1].str()));
  }
  return out;
}

double MetricOr(const std::string& url, const std::string& name,
                const std::map<std::string, std::string>& labels, double fallback) {
  auto m = ScrapeMetrics(url);
  if (!m.ok()) return fallback;
  return FindSample(*m, name, labels).value_or(fallback);
}

// node_load1 samples of kInstance the aggregator serves by remote_read (raw, no hints).
Result<std::vector<Sample>> ReadLoad(const std::string& address, int64_t from_ms) {
  remote::ReadRequest req;
  remote::ReadQuery q;
  q.start_ms = from_ms;
  q.end_ms = UnixMs() + 60000;
  q.matchers = {{remote::LabelMatcher::Type::kEqual, "__name__", "node_load1"},
                {remote::LabelMatcher::Type::kEqual, "instance", kInstance}};
  req.queries.push_back(q);
  HttpClient client;
  ASSIGN_OR_RETURN(HttpClientResponse r,
                   client.Post("http://" + address + "/api/v1/read", remote::EncodeReadRequest(req),
                               {{"Content-Type", "application/x-protobuf"},
                                {"Content-Encoding", "snappy"},
                                {remote::kReadVersionHeader, remote::kReadVersion}}));
  if (r.status != 200)
    return Unavailable("remote_read: " + std::to_string(r.status) + " " + r.body);
  ASSIGN_OR_RETURN(auto results, remote::DecodeReadResponse(r.body, 64 << 20));
  std::vector<Sample> out;
  for (const auto& series : results.at(0)) {
    out.insert(out.end(), series.samples.begin(), series.samples.end());
  }
  return out;
}

class SpoolOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = "127.0.0.1:" + std::to_string(PickFreePort());
    write_url_ = "http://" + address_ + "/api/v1/write";
    endpoint_ = {{"endpoint", write_url_}};
  }

  void WriteConfig(const std::string& replay_order, const std::string& spool_dir = "",
                   const std::string& spool_extra = "") {
    config_ = tmp_.Sub("agent.yml");
    ASSERT_TRUE(WriteFile(config_, "labels: {region: gansu, dc: spool-dc, instance: " +
                                       std::string(kInstance) +
                                       "}\n"
                                       "sample_interval: 1s\n"
                                       "remote_write:\n"
                                       "  - url: " +
                                       write_url_ +
                                       "\n"
                                       "    replay_order: " +
                                       replay_order +
                                       "\n"
                                       "spool:\n"
                                       "  directory: " +
                                       (spool_dir.empty() ? tmp_.Sub("spool") : spool_dir) +
                                       "\n"
                                       "  fsync: always\n" +
                                       spool_extra)
                    .ok());
  }

  void StartAggregatorHere(const std::string& log) {
    auto agg = StartAggregator(
        tmp_.path(), {"--web.listen-address=" + address_, "--storage.path=" + tmp_.Sub("store")},
        log);
    ASSERT_TRUE(agg.ok()) << agg.status().ToString();
    aggregator_ = std::move(agg).value();
  }

  void StopAggregator() {
    aggregator_.process->Signal(SIGTERM);
    auto st = aggregator_.process->Wait(seconds(30));
    ASSERT_TRUE(st.has_value() && st->ok()) << aggregator_.process->LogTail();
  }

  Daemon StartAgentHere(const std::string& log) {
    auto agent =
        StartAgent(tmp_.path(),
                   {"--config.file=" + config_, "--path.procfs=" + NodeExporterDir() + "/proc",
                    "--path.sysfs=" + NodeExporterDir() + "/sys", "--log.level=debug"},
                   log);
    EXPECT_TRUE(agent.ok()) << agent.status().ToString();
    return agent.ok() ? std::move(agent).value() : Daemon{};
  }

  double Appended(const Daemon& agent) {
    return MetricOr(agent.Url("/metrics"), "suanli_agent_spool_appended_records_total", {}, -1);
  }
  double Pending(const Daemon& agent) {
    return MetricOr(agent.Url("/metrics"), "suanli_agent_remote_write_pending_samples", endpoint_,
                    -1);
  }
  double Sent(const Daemon& agent) {
    return MetricOr(agent.Url("/metrics"), "suanli_agent_remote_write_samples_sent_total",
                    endpoint_, -1);
  }

  // Waits until `agent` has spooled `n` more sweeps than it had.
  bool WaitSweeps(const Daemon& agent, int n) {
    double start = Appended(agent);
    return WaitFor([&] { return Appended(agent) >= start + n; }, kDeadline, milliseconds(100));
  }

  // Stops the processes and opens the store: series key -> stored timestamps of kInstance.
  std::map<std::string, std::vector<int64_t>> StoredByInstance() {
    storage::RocksDbStoreOptions opts;
    opts.path = tmp_.Sub("store");
    auto store = storage::OpenRocksDbStore(opts);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    std::map<std::string, std::vector<int64_t>> out;
    if (!store.ok()) return out;
    auto selected = (*store)->Select({{storage::MatcherSpec::kEqual, "instance", kInstance}},
                                     INT64_MIN, INT64_MAX);
    EXPECT_TRUE(selected.ok()) << selected.status().ToString();
    if (!selected.ok()) return out;
    for (const auto& s : *selected) {
      auto& ts = out[s.labels.ToString()];
      for (const auto& p : s.samples) ts.push_back(p.timestamp_ms);
    }
    return out;
  }

  TempDir tmp_{"suanli-it-spool"};
  std::string address_, write_url_, config_;
  std::map<std::string, std::string> endpoint_;
  Daemon aggregator_;
};

TEST_F(SpoolOutageTest, EverySampleOfAnOutageArrivesExactlyOnceThroughASigkill) {
  WriteConfig("oldest_first");
  StartAggregatorHere("aggregator-1.log");
  Daemon agent1 = StartAgentHere("agent-1.log");
  ASSERT_TRUE(agent1.process);
  ASSERT_TRUE(WaitFor([&] { return Sent(agent1) > 0; }, kDeadline, milliseconds(100)))
      << agent1.process->LogTail();

  // Outage: the aggregator goes away; the agent keeps sampling into its spool.
  StopAggregator();
  auto down = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitSweeps(agent1, 4)) << agent1.process->LogTail();
  EXPECT_GT(Pending(agent1), 0);

  // SIGKILL in the middle of the outage, and a restart on the same spool.
  agent1.process->Signal(SIGKILL);
  auto killed = agent1.process->Wait(seconds(10));
  ASSERT_TRUE(killed.has_value());
  EXPECT_EQ(killed->signal, SIGKILL);
  auto kill_ms = UnixMs();
  Daemon agent2 = StartAgentHere("agent-2.log");
  ASSERT_TRUE(agent2.process);
  auto restart_gap_ms = UnixMs() - kill_ms;
  ASSERT_TRUE(WaitSweeps(agent2, 4)) << agent2.process->LogTail();
  double backlog = Pending(agent2);
  auto outage = std::chrono::steady_clock::now() - down;

  // The link comes back: the backlog, from both agent runs, is replayed.
  StartAggregatorHere("aggregator-2.log");
  auto up = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return Pending(agent2) == 0; }, kDeadline, milliseconds(20)))
      << agent2.process->LogTail();
  auto replay = std::chrono::steady_clock::now() - up;
  std::cout << "outage " << std::chrono::duration<double>(outage).count() << " s, backlog "
            << backlog << " samples, caught up " << std::chrono::duration<double>(replay).count()
            << " s after the aggregator came back\n";
  double sent = Sent(agent2);
  ASSERT_TRUE(WaitFor([&] { return Sent(agent2) > sent; }, kDeadline, milliseconds(100)));

  // The agent's own page stays promtool-clean for the spool's metrics.
  auto page = HttpGet(agent2.Url("/metrics"));
  ASSERT_TRUE(page.ok());
  PromtoolResult lint = PromtoolCheckMetrics(page->body, tmp_.path());
  EXPECT_THAT(lint.output, ::testing::Not(::testing::HasSubstr("suanli_agent_spool")));
  EXPECT_THAT(lint.output, ::testing::Not(::testing::HasSubstr("suanli_agent_remote_write")));
  EXPECT_EQ(MetricOr(agent2.Url("/metrics"), "suanli_agent_remote_write_samples_dropped_total",
                     {{"endpoint", write_url_}, {"reason", "cap"}}, -1),
            0);

  agent2.process->Signal(SIGTERM);
  auto stopped = agent2.process->Wait(seconds(30));
  ASSERT_TRUE(stopped.has_value() && stopped->ok()) << agent2.process->LogTail();
  StopAggregator();

  // Every sweep either agent spooled, by its log.
  std::vector<int64_t> taken = SpooledTimestamps(agent1.process->Log());
  std::vector<int64_t> taken2 = SpooledTimestamps(agent2.process->Log());
  ASSERT_GE(taken.size(), 5u);
  ASSERT_GE(taken2.size(), 4u);
  taken.insert(taken.end(), taken2.begin(), taken2.end());
  std::set<int64_t> want(taken.begin(), taken.end());
  ASSERT_EQ(want.size(), taken.size()) << "two sweeps with one timestamp";

  auto stored = StoredByInstance();
  const std::string load_key = R"(node_load1{dc="spool-dc",instance="spool-node",region="gansu"})";
  ASSERT_EQ(stored.count(load_key), 1u) << "node_load1 of the instance is not in the store";
  const std::vector<int64_t>& load = stored[load_key];
  // Exactly the sweeps taken: none missing, none twice (a timestamp holds one sample), and
  // nothing else -- except that SIGKILL may land between a sweep's append and its log line.
  std::vector<int64_t> missing, extra;
  std::set<int64_t> have(load.begin(), load.end());
  EXPECT_EQ(have.size(), load.size());
  for (int64_t t : want) {
    if (have.count(t) == 0) missing.push_back(t);
  }
  for (int64_t t : have) {
    if (want.count(t) == 0) extra.push_back(t);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << want.size()
                               << " sweeps missing from the store, first at " << missing.front();
  EXPECT_LE(extra.size(), 1u) << "samples stored that no sweep logged";
  // A contiguous run 1 s apart within each agent run; across the restart, no longer than the
  // restart took plus one interval.
  const int64_t first_of_run2 = taken2.front();
  for (size_t i = 1; i < load.size(); ++i) {
    int64_t gap = load[i] - load[i - 1];
    if (load[i] == first_of_run2) {
      EXPECT_LE(gap, restart_gap_ms + 1500) << "hole across the restart at " << load[i - 1];
    } else {
      EXPECT_GE(gap, 800) << "at " << load[i];
      EXPECT_LE(gap, 1500) << "hole at " << load[i - 1];
    }
  }
  // Every series of the instance got every sweep, not only node_load1.
  size_t complete = 0;
  for (const auto& [key, ts] : stored) {
    if (key.rfind("suanli_", 0) == 0) continue;  // inventory-like series may come and go
    EXPECT_EQ(ts, load) << key;
    ++complete;
  }
  EXPECT_GE(complete, 50u);
  std::cout << want.size() << " sweeps taken, " << load.size() << " in the store, " << complete
            << " series checked\n";
}

TEST_F(SpoolOutageTest, NewestFirstDeliversFreshSamplesWithinOneIntervalOfTheLinkComingBack) {
  WriteConfig("newest_first");
  StartAggregatorHere("aggregator-1.log");
  Daemon agent = StartAgentHere("agent.log");
  ASSERT_TRUE(agent.process);
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) > 0; }, kDeadline, milliseconds(100)));
  StopAggregator();
  const int64_t down_ms = UnixMs();
  ASSERT_TRUE(WaitSweeps(agent, 6)) << agent.process->LogTail();

  StartAggregatorHere("aggregator-2.log");
  const int64_t up_ms = UnixMs();
  // The first sweep taken after the link came back, and when the aggregator had it.
  std::optional<int64_t> fresh_ts, fresh_seen_ms;
  std::string last_error;
  bool ok = WaitFor(
      [&] {
        auto samples = ReadLoad(address_, up_ms);
        if (!samples.ok()) {
          last_error = samples.status().ToString();
          return false;
        }
        for (const auto& s : *samples) {
          if (s.timestamp_ms >= up_ms) {
            fresh_ts = s.timestamp_ms;
            fresh_seen_ms = UnixMs();
            return true;
          }
        }
        return false;
      },
      seconds(20), milliseconds(20));
  ASSERT_TRUE(ok) << last_error << "\n" << agent.process->LogTail();
  const int64_t latency = *fresh_seen_ms - *fresh_ts;
  std::cout << "fresh sweep at +" << (*fresh_ts - up_ms) << " ms reached the aggregator " << latency
            << " ms after it was taken\n";
  EXPECT_LE(latency, 1000 + 300);  // one interval, plus polling and request time

  // And the backlog is complete.
  ASSERT_TRUE(WaitFor([&] { return Pending(agent) == 0; }, kDeadline, milliseconds(20)));
  auto all = ReadLoad(address_, down_ms - 5000);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::set<int64_t> have;
  for (const auto& s : *all) have.insert(s.timestamp_ms);
  int64_t newest = *have.rbegin();
  for (int64_t t : SpooledTimestamps(agent.process->Log())) {
    if (t >= down_ms - 5000 && t <= newest) {
      EXPECT_EQ(have.count(t), 1u) << t;
    }
  }
}

// A real full disk (a 64 KiB tmpfs; needs root to mount, skipped otherwise): the agent keeps
// sampling and sending from memory, says so in its metrics, and goes back to the disk once
// there is room again.
TEST_F(SpoolOutageTest, FullDiskIsADegradedModeNotACrash) {
  const std::string mnt = tmp_.Sub("small");
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  // Leave room for a few sweeps only.
  { std::ofstream(mnt + "/filler", std::ios::binary) << std::string(52 << 10, 'x'); }
  WriteConfig("oldest_first", mnt + "/spool", "  disk_retry_interval: 2s\n");
  StartAggregatorHere("aggregator-1.log");
  Daemon agent = StartAgentHere("agent.log");
  ASSERT_TRUE(agent.process);
  auto degraded = [&] {
    return MetricOr(agent.Url("/metrics"), "suanli_agent_spool_degraded", {}, -1);
  };
  ASSERT_TRUE(WaitFor([&] { return degraded() == 1; }, kDeadline, milliseconds(100)))
      << agent.process->LogTail();
  EXPECT_GE(MetricOr(agent.Url("/metrics"), "suanli_agent_spool_disk_errors_total",
                     {{"op", "write"}}, -1),
            1);

  // An outage while the disk is full: the memory queue holds the sweeps.
  StopAggregator();
  ASSERT_TRUE(WaitSweeps(agent, 3));
  EXPECT_GT(MetricOr(agent.Url("/metrics"), "suanli_agent_spool_bytes", {{"medium", "memory"}}, -1),
            0);
  StartAggregatorHere("aggregator-2.log");
  ASSERT_TRUE(WaitFor([&] { return Pending(agent) == 0; }, kDeadline, milliseconds(50)));

  // Room again: back to the disk at the next retry.
  std::filesystem::remove(mnt + "/filler");
  ASSERT_TRUE(WaitFor([&] { return degraded() == 0; }, kDeadline, milliseconds(100)))
      << agent.process->LogTail();
  ASSERT_TRUE(WaitSweeps(agent, 1));
  EXPECT_TRUE(agent.process->Running());
  agent.process->Signal(SIGTERM);
  auto stopped = agent.process->Wait(seconds(30));
  ASSERT_TRUE(stopped.has_value() && stopped->ok()) << agent.process->LogTail();
  StopAggregator();

  std::vector<int64_t> taken = SpooledTimestamps(agent.process->Log());
  auto stored = StoredByInstance();
  const auto& load = stored[R"(node_load1{dc="spool-dc",instance="spool-node",region="gansu"})"];
  std::set<int64_t> have(load.begin(), load.end());
  size_t missing = 0;
  for (int64_t t : taken) missing += have.count(t) == 0;
  EXPECT_EQ(missing, 0u) << "of " << taken.size() << " sweeps";
  EXPECT_GE(taken.size(), 5u);
}

}  // namespace
}  // namespace suanli::it
