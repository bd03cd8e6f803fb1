// Tiers: a region or alliance aggregator fed only the dcs' forwarded figures (suanli_dc_*,
// suanli_link_*; DcCapacitySeries is exactly what `select: capacity` sends) computes the region
// and alliance figures a single aggregator computes from every node; shards of a dc sum; a dc
// both tiers report is never counted twice; a dc whose figures stop arriving is stale, not zero.
#include <gtest/gtest.h>

#include <cmath>

#include "aggregator/capacity/capacity_model.h"
#include "exporters/prometheus/capacity_metrics.h"
#include "tests/integration/harness.h"
#include "tests/unit/exporters/capacity_fixture.h"

namespace suanli::exporters {
namespace {

using testing::AddServer;
using testing::At;
using testing::kT0;

it::MetricsMap Render(const capacity::CapacitySnapshot& s) {
  std::string text;
  AppendCapacityText(s, &text);
  auto m = it::ParseMetricsText(text);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : it::MetricsMap{};
}

// Two sweeps of the small alliance's servers, each sent to the model that `route` names.
void Feed(const std::function<capacity::CapacityModel*(const std::string& instance)>& route) {
  for (int64_t ts : {kT0, kT0 + 10'000}) {
    std::map<capacity::CapacityModel*, std::vector<TimeSeries>> batches;
    auto add = [&](const std::string& region, const std::string& dc, const std::string& instance,
                   double busy, bool gpu) {
      AddServer(batches[route(instance)], region, dc, instance, ts, busy, gpu);
    };
    add("gansu", "lz-1", "lz-1-a", 0.25, true);
    add("gansu", "lz-1", "lz-1-b", 0.5, false);
    add("gansu", "lz-1", "lz-1-c", 0.75, true);
    add("gansu", "qy-1", "qy-1-a", 0.9, true);
    add("ningxia", "zw-1", "zw-1-a", 0.1, false);
    double k = double(ts - kT0) / 1000.0;
    for (const char* inst : {"lz-1-a", "lz-1-c"}) {
      batches[route(inst)].push_back(At("gansu", "lz-1", inst, "suanli_link_receive_bytes_total",
                                        {{"link", "east"}, {"peer_dc", "sh-1"}, {"device", "eth1"}},
                                        ts, k * 1e9));
      batches[route(inst)].push_back(At("gansu", "lz-1", inst,
                                        "suanli_link_capacity_bits_per_second",
                                        {{"link", "east"}, {"peer_dc", "sh-1"}}, ts, 80e9));
    }
    for (auto& [model, batch] : batches) model->Observe(batch);
  }
}

// What a dc aggregator forwards at `at`, with the external labels of its forward target.
std::vector<TimeSeries> Forwarded(capacity::CapacityModel& dc_model, int64_t at,
                                  const std::string& shard = "") {
  std::vector<TimeSeries> out = DcCapacitySeries(dc_model.Snapshot(at), at);
  if (!shard.empty()) {
    for (TimeSeries& ts : out) ts.labels.Set("shard", shard);
  }
  return out;
}

void ExpectSameView(const it::MetricsMap& single, const it::MetricsMap& tiered) {
  size_t compared = 0;
  for (const auto& [key, value] : single) {
    if (!key.starts_with("suanli_region_") && !key.starts_with("suanli_alliance_") &&
        !key.starts_with("suanli_dc_") && !key.starts_with("suanli_link_")) {
      continue;
    }
    auto it = tiered.find(key);
    ASSERT_NE(it, tiered.end()) << key;
    EXPECT_TRUE(it::NearlyEqual(value, it->second, 1e-9) || (value == 0 && it->second == 0))
        << key << ": single " << value << ", tiered " << it->second;
    ++compared;
  }
  EXPECT_GT(compared, 100u);
  for (const auto& [key, value] : tiered) {
    if (key.starts_with("suanli_region_") || key.starts_with("suanli_alliance_")) {
      EXPECT_EQ(single.count(key), 1u) << "only in the tiered view: " << key;
    }
  }
}

TEST(TierViewTest, DcAggregatorsForwardingCapacityGiveTheSingleAggregatorsView) {
  capacity::CapacityModel single(capacity::CapacityOptions{});
  capacity::CapacityModel lz(capacity::CapacityOptions{}), qy(capacity::CapacityOptions{}),
      zw(capacity::CapacityOptions{});
  Feed([&](const std::string&) { return &single; });
  Feed([&](const std::string& instance) {
    return instance.starts_with("lz") ? &lz : instance.starts_with("qy") ? &qy : &zw;
  });
  const int64_t at = kT0 + 15'000;
  capacity::CapacityModel top(capacity::CapacityOptions{});
  for (capacity::CapacityModel* dc : {&lz, &qy, &zw}) top.Observe(Forwarded(*dc, at));
  ExpectSameView(Render(single.Snapshot(at)), Render(top.Snapshot(at)));
}

// Four nodes of one 2U four-node chassis and a server of its own: the dc aggregator counts the
// chassis once, and what it forwards gives the top tier the same power and shared part.
TEST(TierViewTest, ASharedChassisIsForwardedCountedOnce) {
  capacity::CapacityModel single(capacity::CapacityOptions{}), dc(capacity::CapacityOptions{});
  for (int64_t ts : {kT0, kT0 + 10'000}) {
    std::vector<TimeSeries> b;
    for (const char* node : {"n1", "n2", "n3", "n4"}) {
      b.push_back(At(
          "gansu", "lz-1", node, "suanli_node_power_watts",
          {{"source", "redfish_shared"}, {"chassis_identity", "2U4N-S7J00482"}, {"systems", "4"}},
          ts, 1648));
    }
    AddServer(b, "gansu", "lz-1", "own", ts, 0.5, false);  // 200 W of its own
    single.Observe(b);
    dc.Observe(b);
  }
  const int64_t at = kT0 + 15'000;
  capacity::CapacityModel top(capacity::CapacityOptions{});
  top.Observe(Forwarded(dc, at));
  const capacity::CapacitySnapshot direct = single.Snapshot(at), tiered = top.Snapshot(at);
  for (const capacity::CapacitySnapshot* s : {&direct, &tiered}) {
    const capacity::GroupFigures& lz = s->dcs.at({"gansu", "lz-1"});
    EXPECT_DOUBLE_EQ(lz.power_watts, 1648 + 200);
    EXPECT_DOUBLE_EQ(lz.shared_power_watts, 1648);
    EXPECT_EQ(lz.shared_power_chassis, 1);
    EXPECT_EQ(lz.power_sources.at("redfish_shared"), 4);
    EXPECT_DOUBLE_EQ(s->alliance.power_watts, 1648 + 200);
    EXPECT_DOUBLE_EQ(s->alliance.shared_power_watts, 1648);
  }
  it::MetricsMap text = Render(direct);
  EXPECT_EQ(text.at("suanli_dc_power_shared_watts{dc=\"lz-1\",region=\"gansu\"}"), 1648);
  EXPECT_EQ(text.at("suanli_region_power_shared_chassis{region=\"gansu\"}"), 1);
}

TEST(TierViewTest, ShardsOfOneDcAreSummed) {
  capacity::CapacityModel single(capacity::CapacityOptions{});
  capacity::CapacityModel shard_a(capacity::CapacityOptions{}),
      shard_b(capacity::CapacityOptions{});
  Feed([&](const std::string&) { return &single; });
  // lz-1 split over two shards (a, c on one; b on the other); the other dcs on shard a's.
  Feed([&](const std::string& instance) { return instance == "lz-1-b" ? &shard_b : &shard_a; });
  const int64_t at = kT0 + 15'000;
  capacity::CapacityModel top(capacity::CapacityOptions{});
  top.Observe(Forwarded(shard_a, at, "a"));
  top.Observe(Forwarded(shard_b, at, "b"));
  const capacity::CapacitySnapshot snap = top.Snapshot(at);
  EXPECT_EQ(snap.dcs.at({"gansu", "lz-1"}).nodes_up, 3);
  ExpectSameView(Render(single.Snapshot(at)), Render(snap));
}

TEST(TierViewTest, NodeAndTierInputForOneDcAreNeverAdded) {
  capacity::CapacityModel dc(capacity::CapacityOptions{}), top(capacity::CapacityOptions{});
  Feed([&](const std::string& instance) { return instance.starts_with("lz") ? &dc : &top; });
  const int64_t at = kT0 + 15'000;
  top.Observe(Forwarded(dc, at));
  // Agents of lz-1 also write to the top directly (a misconfiguration): ignored and counted.
  std::vector<TimeSeries> direct;
  AddServer(direct, "gansu", "lz-1", "lz-1-z", kT0 + 10'000, 0.5, true);
  top.Observe(direct);
  const capacity::CapacitySnapshot snap = top.Snapshot(at);
  EXPECT_EQ(snap.dcs.at({"gansu", "lz-1"}).nodes_up, 3);
  EXPECT_EQ(snap.conflicts.count({"gansu", "lz-1"}), 1u);
  EXPECT_GT(top.conflicting_samples(), 0u);
  EXPECT_EQ(snap.from_tier.count({"gansu", "lz-1"}), 1u);
  EXPECT_EQ(snap.from_tier.count({"gansu", "qy-1"}), 0u);  // its nodes write to the top
  // The top's own recording leaves out what the dc aggregator forwards.
  for (const TimeSeries& ts : DcCapacitySeries(snap, at)) {
    EXPECT_NE(ts.labels.Get("dc"), "lz-1") << ts.labels.ToString();
  }
}

TEST(TierViewTest, ADcWhoseFiguresStopArrivingIsStaleNotZero) {
  capacity::CapacityOptions o;
  o.stale_after = std::chrono::minutes(1);
  capacity::CapacityModel dc(o), top(o);
  Feed([&](const std::string&) { return &dc; });
  const int64_t at = kT0 + 15'000;
  top.Observe(Forwarded(dc, at));
  auto before = Render(top.Snapshot(at));
  // The passage is cut: nothing more arrives for ten minutes.
  auto after = Render(top.Snapshot(at + 600'000));
  const std::map<std::string, std::string> lz = {{"region", "gansu"}, {"dc", "lz-1"}};
  auto v = [](const it::MetricsMap& m, const std::string& name,
              std::map<std::string, std::string> labels) {
    return it::FindSample(m, name, labels).value_or(NAN);
  };
  EXPECT_EQ(v(before, "suanli_dc_dcs", {{"dc", "lz-1"}, {"state", "reporting"}}), 1);
  EXPECT_EQ(v(after, "suanli_dc_dcs", {{"dc", "lz-1"}, {"state", "stale"}}), 1);
  EXPECT_EQ(v(after, "suanli_region_dcs", {{"region", "gansu"}, {"state", "stale"}}), 2);
  // Its last figures stay, and its age says how old they are.
  EXPECT_EQ(v(after, "suanli_dc_cpu_cores", lz), v(before, "suanli_dc_cpu_cores", lz));
  EXPECT_GT(v(after, "suanli_dc_cpu_cores", lz), 0);
  EXPECT_NEAR(v(after, "suanli_dc_newest_sample_age_seconds", lz),
              v(before, "suanli_dc_newest_sample_age_seconds", lz) + 600, 1e-6);
  // Forgotten after capacity.forget_after, as nodes are.
  auto gone = top.Snapshot(at + o.forget_after.count() + 1);
  EXPECT_EQ(gone.dcs.count({"gansu", "lz-1"}), 0u);
}

}  // namespace
}  // namespace suanli::exporters
