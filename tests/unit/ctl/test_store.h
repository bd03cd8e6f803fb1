// A small store written through the real RocksDbStore for suanlictl's store tests: two dcs,
// two metrics, samples over three closed hours plus an open one, closed into raw chunks and
// 1m/5m/1h rollups by a checkpoint at a fixed clock, then closed cleanly.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aggregator/storage/rocksdb_store.h"
#include "aggregator/storage/store.h"

namespace suanli::ctl::testing {

// 2026-12-04T16:00:00Z, an hour boundary.
inline constexpr int64_t kBaseMs = int64_t{499'000} * 3'600'000;
inline constexpr int kClosedHours = 3;
inline constexpr int64_t kStepMs = 15'000;
inline constexpr int kSamplesPerHour = 240;

struct TestSeries {
  std::string metric, dc, instance;
};

inline std::vector<TestSeries> TestSeriesSet() {
  return {{"node_load1", "lanzhou-1", "a"},
          {"node_load1", "lanzhou-1", "b"},
          {"node_load1", "zhongwei-1", "c"},
          {"suanli_node_power_watts", "lanzhou-1", "a"},
          {"suanli_node_power_watts", "zhongwei-1", "c"}};
}

// Samples per series: kClosedHours full hours plus 10 in the open hour.
inline constexpr int kSamplesPerSeries = kClosedHours * kSamplesPerHour + 10;

inline double TestValue(size_t series, int i) { return double(series * 1000 + i) + 0.5; }

// Writes the store at `path`; the clock stands in the open hour, so the first kClosedHours
// hours are closed by the checkpoint and the last stays in the head.
inline void WriteTestStore(const std::string& path) {
  storage::RocksDbStoreOptions o;
  o.path = path;
  o.checkpoint_interval_ms = 0;
  o.retention_interval_ms = 0;
  o.now_ms = [] { return kBaseMs + (kClosedHours + 1) * int64_t{3'600'000} + 60'000; };
  auto store = storage::RocksDbStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const auto set = TestSeriesSet();
  for (int i = 0; i < kSamplesPerSeries; i += 60) {
    std::vector<TimeSeries> batch;
    for (size_t s = 0; s < set.size(); ++s) {
      TimeSeries ts;
      ts.labels = Labels{{"__name__", set[s].metric},
                         {"dc", set[s].dc},
                         {"instance", set[s].instance},
                         {"region", "gansu"}};
      for (int k = i; k < std::min(i + 60, kSamplesPerSeries); ++k) {
        const int64_t t = k < kClosedHours * kSamplesPerHour
                              ? kBaseMs + k * kStepMs
                              : kBaseMs + kClosedHours * int64_t{3'600'000} +
                                    (k - kClosedHours * kSamplesPerHour) * kStepMs;
        ts.samples.push_back({t, TestValue(s, k)});
      }
      batch.push_back(std::move(ts));
    }
    auto r = (*store)->Append(batch);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  ASSERT_TRUE((*store)->Checkpoint().ok());
}

}  // namespace suanli::ctl::testing
