#include "agent/sampler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace suanli::agent {
namespace {

// One Add() call, so that the same sequence can be replayed into a fresh and a recycled sweep.
struct AddCall {
  std::string name, help;
  MetricType type;
  std::vector<Label> labels;
  double value;
};

void Replay(Sweep& sweep, const std::vector<AddCall>& calls) {
  for (const AddCall& c : calls) sweep.Add(c.name, c.help, c.type, c.labels, c.value);
}

// "name|help|type: {labels}=value ..." per family, for comparing whole sweeps.
std::string Dump(const Sweep& sweep) {
  std::string out;
  for (const Family& f : sweep.families()) {
    out += f.name + "|" + f.help + "|" + std::to_string(static_cast<int>(f.type)) + ":";
    for (const Point& p : f.points) {
      out += " {";
      for (const Label& l : p.labels) out += l.name + "=" + l.value + ",";
      out += "}=" + std::to_string(p.value);
    }
    out += "\n";
  }
  return out;
}

TEST(SweepTest, RecycledSweepHoldsExactlyWhatAFreshOneWould) {
  const MetricType kC = MetricType::kCounter, kG = MetricType::kGauge;
  const std::vector<AddCall> first = {
      {"cpu", "CPU.", kC, {{"cpu", "0"}}, 1},
      {"cpu", "CPU.", kC, {{"cpu", "1"}}, 2},
      {"mem", "Memory.", kG, {}, 3},
      {"net", "Net.", kC, {{"device", "a"}}, 4},
      {"net", "Net.", kC, {{"device", "b"}}, 5},
      {"load", "Load.", kG, {}, 6},
  };
  // Same shape, new values; then every kind of change at once: a family gone (mem), one new in
  // the middle (psi), two swapped (load before net), fewer points (cpu), more points and other
  // labels (net), a changed help and type, and a family added again after others (cpu).
  const std::vector<AddCall> same = {
      {"cpu", "CPU.", kC, {{"cpu", "0"}}, 10},
      {"cpu", "CPU.", kC, {{"cpu", "1"}}, 20},
      {"mem", "Memory.", kG, {}, 30},
      {"net", "Net.", kC, {{"device", "a"}}, 40},
      {"net", "Net.", kC, {{"device", "b"}}, 50},
      {"load", "Load.", kG, {}, 60},
  };
  const std::vector<AddCall> changed = {
      {"cpu", "CPU.", kC, {{"cpu", "0"}}, 7},     {"psi", "PSI.", kC, {}, 8},
      {"load", "Load now.", kC, {}, 9},           {"net", "Net.", kC, {{"device", "c"}}, 11},
      {"net", "Net.", kC, {{"device", "a"}}, 12}, {"net", "Net.", kC, {{"device", "b"}}, 13},
      {"cpu", "CPU.", kC, {{"cpu", "2"}}, 14},
  };
  Sweep recycled;
  for (const auto* calls : {&first, &same, &changed, &first, &changed, &same}) {
    recycled.Recycle();
    Replay(recycled, *calls);
    recycled.Finish();
    Sweep fresh;
    Replay(fresh, *calls);
    EXPECT_EQ(Dump(recycled), Dump(fresh));
    EXPECT_EQ(recycled.PointCount(), fresh.PointCount());
  }
  ASSERT_NE(recycled.Find("net"), nullptr);
  EXPECT_EQ(recycled.Find("net")->points.size(), 2u);
  EXPECT_EQ(recycled.Find("psi"), nullptr);

  // Merging a collector's own sweep into a recycled one.
  recycled.Recycle();
  recycled.Add("cpu", "CPU.", kC, {{"cpu", "0"}}, 1);
  Sweep part;
  part.Add("net", "Net.", kC, {{"device", "z"}}, 2);
  part.Add("cpu", "CPU.", kC, {{"cpu", "9"}}, 3);
  recycled.Merge(std::move(part));
  recycled.Finish();
  EXPECT_EQ(Dump(recycled),
            "cpu|CPU.|1: {cpu=0,}=1.000000 {cpu=9,}=3.000000\n"
            "net|Net.|1: {device=z,}=2.000000\n");
  EXPECT_TRUE(part.families().empty());
}

// Equal shape ids mean equal shapes: a refill with the same names, help, types and label sets
// keeps the id whatever the values; any other change gives a new one, never one seen before.
TEST(SweepTest, ShapeIdChangesWithTheShape) {
  const MetricType kC = MetricType::kCounter, kG = MetricType::kGauge;
  const std::vector<AddCall> base = {
      {"cpu", "CPU.", kC, {{"cpu", "0"}}, 1},
      {"cpu", "CPU.", kC, {{"cpu", "1"}}, 2},
      {"mem", "Memory.", kG, {}, 3},
  };
  const std::vector<AddCall> values = {
      {"cpu", "CPU.", kC, {{"cpu", "0"}}, 10},
      {"cpu", "CPU.", kC, {{"cpu", "1"}}, 20},
      {"mem", "Memory.", kG, {}, 30},
  };
  const std::vector<std::vector<AddCall>> changes = {
      {{"cpu", "CPU.", kC, {{"cpu", "0"}}, 1},
       {"cpu", "CPU.", kC, {{"cpu", "2"}}, 2},
       {"mem", "Memory.", kG, {}, 3}},                                          // a label value
      {{"cpu", "CPU.", kC, {{"cpu", "0"}}, 1}, {"mem", "Memory.", kG, {}, 3}},  // a point fewer
      {{"cpu", "CPU.", kC, {{"cpu", "0"}}, 1}, {"cpu", "CPU.", kC, {{"cpu", "1"}}, 2}},  // a family
      {{"cpu", "CPU!", kC, {{"cpu", "0"}}, 1},
       {"cpu", "CPU!", kC, {{"cpu", "1"}}, 2},
       {"mem", "Memory.", kG, {}, 3}},  // help
      {{"cpu", "CPU.", kC, {{"cpu", "0"}}, 1},
       {"cpu", "CPU.", kC, {{"cpu", "1"}}, 2},
       {"mem", "Memory.", kC, {}, 3}},  // type
      {{"mem", "Memory.", kG, {}, 3},
       {"cpu", "CPU.", kC, {{"cpu", "0"}}, 1},
       {"cpu", "CPU.", kC, {{"cpu", "1"}}, 2}},  // order
  };
  auto fill = [](Sweep& s, const std::vector<AddCall>& calls) {
    s.Recycle();
    Replay(s, calls);
    s.Finish();
    return s.shape_id();
  };
  Sweep s;
  std::set<uint64_t> seen;
  uint64_t id = fill(s, base);
  seen.insert(id);
  EXPECT_EQ(fill(s, values), id);
  EXPECT_EQ(fill(s, base), id);
  for (const auto& calls : changes) {
    uint64_t changed = fill(s, calls);
    EXPECT_TRUE(seen.insert(changed).second) << "an id seen before";
    uint64_t back = fill(s, base);
    EXPECT_TRUE(seen.insert(back).second) << "an id seen before";
    id = back;
  }
  Sweep other;  // another sweep of the same shape: its own id
  EXPECT_TRUE(seen.insert(fill(other, base)).second);
  Sweep copy = s;  // a copy is the same shape
  EXPECT_EQ(copy.shape_id(), id);
  Sweep moved = std::move(s);
  EXPECT_EQ(moved.shape_id(), id);
  EXPECT_TRUE(s.families().empty());  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_NE(s.shape_id(), id);
}

// As the agent builds a sweep: the collectors' families, FinishPoints(), families derived from
// them (whole-server power) found and added after, then Finish(). A refill of the same shape
// keeps its id, and Find() between the two sees only what this sweep refilled.
TEST(SweepTest, DerivedFamiliesAfterFinishPointsKeepTheShape) {
  const MetricType kC = MetricType::kCounter, kG = MetricType::kGauge;
  auto fill = [&](Sweep& s, std::vector<std::string> cpus, bool meter) {
    s.Recycle();
    for (const std::string& cpu : cpus) s.Add("cpu", "CPU.", kC, {{"cpu", cpu}}, 1);
    if (meter) s.Add("meter", "Meter.", kG, {}, 400);
    s.FinishPoints();
    const Family* cpu = s.Find("cpu");
    EXPECT_EQ(cpu != nullptr ? cpu->points.size() : 0, cpus.size());
    const Family* m = s.Find("meter");
    EXPECT_EQ(m != nullptr, meter);
    EXPECT_EQ(s.Find("power"), nullptr);  // last sweep's derived family: not this sweep's yet
    s.Add("power", "Power.", kG, {{"source", m != nullptr ? "meter" : "estimated"}}, 1);
    s.Finish();
    return s.shape_id();
  };
  Sweep s;
  const uint64_t id = fill(s, {"0", "1"}, true);
  EXPECT_EQ(fill(s, {"0", "1"}, true), id);
  EXPECT_EQ(fill(s, {"0", "1"}, true), id);
  const uint64_t fewer = fill(s, {"0"}, true);  // a CPU gone: never seen by Find()
  EXPECT_NE(fewer, id);
  EXPECT_EQ(fill(s, {"0"}, true), fewer);
  const uint64_t no_meter = fill(s, {"0"}, false);  // a family gone: never found
  EXPECT_NE(no_meter, fewer);
  EXPECT_EQ(fill(s, {"0"}, false), no_meter);
  Sweep fresh;
  fresh.Add("cpu", "CPU.", kC, {{"cpu", "0"}}, 1);
  fresh.Add("power", "Power.", kG, {{"source", "estimated"}}, 1);
  EXPECT_EQ(Dump(s), Dump(fresh));
}

// A collector that returns a fixed point, or blocks until released.
class ScriptedCollector : public Collector {
 public:
  ScriptedCollector(std::string family, std::shared_future<void> release = {})
      : family_(std::move(family)), release_(std::move(release)) {}
  CollectResult Collect(Sweep& out) override {
    calls++;
    if (release_.valid()) release_.wait();
    out.Add(family_, "test", MetricType::kGauge, {}, 1);
    return CollectResult::Ok();
  }
  std::atomic<int> calls{0};

 private:
  std::string family_;
  std::shared_future<void> release_;
};

class FailingCollector : public Collector {
 public:
  CollectResult Collect(Sweep& out) override {
    out.Add("partial", "read before failing", MetricType::kGauge, {}, 2);
    return CollectResult::Failed("boom");
  }
};

double Value(prometheus::Registry& r, const std::string& name, const std::string& collector) {
  for (const auto& f : r.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) {
        if (l.name == "collector" && l.value == collector) {
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
        }
      }
    }
  }
  return -1;
}

TEST(SamplerTest, HungBlockingCollectorCostsOnlyItsOwnFigures) {
  static const CollectorSpec kInline{"fast", true, "", nullptr, false};
  static const CollectorSpec kBlocking{"bmc", true, "", nullptr, true};
  static const CollectorSpec kFailing{"bad", true, "", nullptr, false};
  std::promise<void> release;
  auto hung = std::make_unique<ScriptedCollector>("bmc_watts", release.get_future().share());
  ScriptedCollector* hung_ptr = hung.get();
  std::vector<BuiltCollector> built;
  built.push_back({&kBlocking, std::move(hung)});
  built.push_back({&kInline, std::make_unique<ScriptedCollector>("fast_value")});
  built.push_back({&kFailing, std::make_unique<FailingCollector>()});
  prometheus::Registry registry;
  Sampler sampler(std::move(built), std::chrono::milliseconds(50), registry);

  for (int sweep_no = 0; sweep_no < 3; ++sweep_no) {
    Sweep sweep;
    sampler.RunOnce(sweep);
    std::vector<std::string> names;
    for (const auto& f : sweep.families()) names.push_back(f.name);
    // The hung collector contributes nothing; the others are all there, every sweep.
    EXPECT_EQ(names, (std::vector<std::string>{"fast_value", "partial"}));
  }
  // Started once: later sweeps see it still busy instead of piling up threads.
  EXPECT_EQ(hung_ptr->calls.load(), 1);
  EXPECT_EQ(Value(registry, "suanli_agent_collector_failures_total", "bmc"), 3);
  EXPECT_EQ(Value(registry, "suanli_agent_collector_success", "bmc"), 0);
  EXPECT_EQ(Value(registry, "suanli_agent_collector_success", "fast"), 1);
  EXPECT_EQ(Value(registry, "suanli_agent_collector_failures_total", "bad"), 3);

  release.set_value();
  // Once it answers again, its figures come back (the late result was discarded).
  Sweep sweep;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sweep.families().size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let the worker finish
    sweep.Clear();
    sampler.RunOnce(sweep);
  }
  ASSERT_EQ(sweep.families().size(), 3u);
  EXPECT_EQ(sweep.families()[0].name, "bmc_watts");
  EXPECT_EQ(Value(registry, "suanli_agent_collector_success", "bmc"), 1);
}

TEST(BuildCollectorsTest, UnknownOptionKeyIsAConfigError) {
  auto config = ParseAgentConfig("a.yml",
                                 "collector_config:\n"
                                 "  cpu:\n"
                                 "    nonsense: 1\n");
  ASSERT_TRUE(config.ok()) << config.status().message();
  auto built = BuildCollectors(*config);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().message(), "a.yml:3: collector_config.cpu.nonsense: unknown key");
  auto bad_name = ParseAgentConfig("a.yml", "collector_config:\n  gpus: {}\n");
  EXPECT_EQ(bad_name.status().message(),
            "a.yml:2: collector_config.gpus: no collector of this name");
}

}  // namespace
}  // namespace suanli::agent
