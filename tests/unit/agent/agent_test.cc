#include "agent/agent.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "agent/write_request_encoder.h"

namespace suanli::agent {
namespace {

TEST(SweepToWriteRequestTest, AddsNameAndStaticLabelsAndMetadata) {
  Sweep sweep;
  sweep.Add("node_load1", "1m load average.", MetricType::kGauge, {}, 0.5);
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"cpu", "0"}, {"mode", "idle"}}, 100);
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"cpu", "0"}, {"mode", "user"}, {"instance", "from-collector"}}, 7);
  std::map<std::string, std::string> static_labels = {
      {"region", "gansu"}, {"dc", "lanzhou-1"}, {"instance", "n1"}};
  remote::WriteRequest req = SweepToWriteRequest(sweep, static_labels, 1234);
  ASSERT_EQ(req.series.size(), 3u);
  EXPECT_EQ(req.series[0].labels.ToString(),
            R"(node_load1{dc="lanzhou-1",instance="n1",region="gansu"})");
  EXPECT_EQ(
      req.series[1].labels.ToString(),
      R"(node_cpu_seconds_total{cpu="0",dc="lanzhou-1",instance="n1",mode="idle",region="gansu"})");
  // The static instance wins over a collector's label of the same name.
  EXPECT_EQ(req.series[2].labels.Get("instance"), "n1");
  EXPECT_EQ(req.series[1].samples[0].timestamp_ms, 1234);
  EXPECT_EQ(req.series[1].samples[0].value, 100);
  ASSERT_EQ(req.metadata.size(), 2u);
  EXPECT_EQ(req.metadata[1].metric_family_name, "node_cpu_seconds_total");
  EXPECT_EQ(req.metadata[1].type, MetricType::kCounter);
  for (const auto& ts : req.series) EXPECT_TRUE(ts.labels.Validate().ok());
}

}  // namespace
}  // namespace suanli::agent

namespace suanli::agent {
namespace {

// The protobuf bytes of a snappy block; "invalid" when snappy refuses it.
std::string Uncompressed(const std::string& body) {
  std::string out;
  if (!snappy::Uncompress(body.data(), body.size(), &out)) return "invalid";
  return out;
}

// The direct encoder must write the very bytes libprotobuf writes for the same request.
TEST(WriteRequestEncoderTest, SameBytesAsLibprotobuf) {
  Sweep sweep;
  sweep.Add("node_load1", "1m load average.", MetricType::kGauge, {}, 0.5);
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"mode", "idle"}, {"cpu", "0"}}, 100);  // unsorted: the encoder sorts
  sweep.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
            {{"cpu", "0"}, {"mode", "user"}, {"instance", "from-collector"}}, 0);  // 0: left out
  sweep.Add("suanli_x", "", MetricType::kInfo, {{"A", "upper"}, {"empty", ""}}, -0.0);
  sweep.Add("suanli_nan", "NaN and the stale marker.", MetricType::kGauge, {}, StaleNaN());
  std::map<std::string, std::string> static_labels = {
      {"region", "gansu"}, {"dc", "lanzhou-1"}, {"instance", "n1"}};
  for (int64_t ts : {int64_t{1234}, int64_t{0}, int64_t{-5}, int64_t{1700000000123}}) {
    WriteRequestEncoder encoder(static_labels);
    uint32_t series = 0;
    std::string body = encoder.Encode(sweep, ts, &series);
    EXPECT_EQ(series, 5u);
    EXPECT_EQ(body, remote::EncodeWriteRequest(SweepToWriteRequest(sweep, static_labels, ts)))
        << "timestamp " << ts;
    auto decoded = remote::DecodeWriteRequest(body, 1 << 20);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ASSERT_EQ(decoded->series.size(), 5u);
    EXPECT_EQ(
        decoded->series[1].labels.ToString(),
        R"(node_cpu_seconds_total{cpu="0",dc="lanzhou-1",instance="n1",mode="idle",region="gansu"})");
    EXPECT_EQ(decoded->series[1].samples[0].timestamp_ms, ts);
    EXPECT_EQ(decoded->series[1].samples[0].value, 100);
    EXPECT_EQ(decoded->series[3].labels.Get("A"), "upper");
    EXPECT_TRUE(IsStaleNaN(decoded->series[4].samples[0].value));
    ASSERT_EQ(decoded->metadata.size(), 4u);
    EXPECT_EQ(decoded->metadata[3].help, "NaN and the stale marker.");
  }
}

// One encoder across sweeps whose series change places, labels and families: the remembered
// label bytes must never leak into another series.
TEST(WriteRequestEncoderTest, ReusedAcrossSweepsOfDifferentShapes) {
  std::map<std::string, std::string> static_labels = {{"dc", "d1"}, {"instance", "n1"}};
  WriteRequestEncoder encoder(static_labels);
  // `metadata`: whether this request should carry the families' metadata.
  auto check = [&](const Sweep& sweep, int64_t ts, bool metadata = true) {
    uint32_t series = 0;
    std::string body = encoder.Encode(sweep, ts, &series);
    EXPECT_EQ(series, sweep.PointCount());
    remote::WriteRequest want = SweepToWriteRequest(sweep, static_labels, ts);
    if (!metadata) want.metadata.clear();
    EXPECT_EQ(Uncompressed(body), Uncompressed(remote::EncodeWriteRequest(want))) << "at " << ts;
  };
  Sweep a;
  a.Add("node_network_receive_bytes_total", "Bytes.", MetricType::kCounter, {{"device", "eth0"}},
        10);
  a.Add("node_network_receive_bytes_total", "Bytes.", MetricType::kCounter, {{"device", "eth1"}},
        20);
  a.Add("node_load1", "Load.", MetricType::kGauge, {}, 0.25);
  check(a, 1000);
  check(a, 2000, /*metadata=*/false);  // same shape: from the memo, metadata already sent
  Sweep b;                             // eth0 gone: every later series moves up one place
  b.Add("node_network_receive_bytes_total", "Bytes.", MetricType::kCounter, {{"device", "eth1"}},
        21);
  b.Add("node_load1", "Load.", MetricType::kGauge, {}, 0.5);
  b.Add("node_load5", "Load.", MetricType::kGauge, {}, 0.5);
  check(b, 3000);
  Sweep c;  // same labels, another family
  c.Add("node_network_transmit_bytes_total", "Bytes.", MetricType::kCounter, {{"device", "eth1"}},
        5);
  check(c, 4000);
  check(a, 5000);
  check(a, 6000, /*metadata=*/false);
  check(a, 5000 + WriteRequestEncoder::kMetadataIntervalMs - 1, /*metadata=*/false);
  check(a, 5000 + WriteRequestEncoder::kMetadataIntervalMs);  // once a minute
  Sweep help_changed;  // same names, new help text: sent at once
  help_changed.Add("node_network_receive_bytes_total", "Bytes received.", MetricType::kCounter,
                   {{"device", "eth0"}}, 10);
  help_changed.Add("node_network_receive_bytes_total", "Bytes received.", MetricType::kCounter,
                   {{"device", "eth1"}}, 20);
  help_changed.Add("node_load1", "Load.", MetricType::kGauge, {}, 0.25);
  check(help_changed, 70000);
  check(help_changed, 1000);  // the clock stepped back: sent again
}

// As the agent encodes: two recycled sweeps taking turns, so that the encoder sees each shape
// id again every other sweep, while either of them changes shape now and then.
TEST(WriteRequestEncoderTest, AlternatingRecycledSweeps) {
  std::map<std::string, std::string> static_labels = {{"dc", "d1"}};
  WriteRequestEncoder encoder(static_labels);
  using Fill = std::vector<std::pair<std::string, std::string>>;  // (family, device)
  const Fill two = {{"rx", "eth0"}, {"rx", "eth1"}, {"load", ""}};
  const Fill moved = {{"rx", "eth1"}, {"load", ""}};
  const Fill other = {{"tx", "eth0"}, {"rx", "eth1"}, {"load", ""}};
  Sweep sweeps[2];
  std::string sent_families;
  int64_t ts = 1000;
  for (const Fill* fill : {&two, &two, &two, &two, &moved, &two, &two, &other, &other, &two, &moved,
                           &moved, &moved, &two, &two, &two}) {
    Sweep& s = sweeps[ts / 1000 % 2];
    s.Recycle();
    for (const auto& [family, device] : *fill) {
      std::vector<Label> labels;
      if (!device.empty()) labels.push_back({"device", device});
      s.Add(family, family + " help.", MetricType::kCounter, labels, static_cast<double>(ts));
    }
    s.Finish();
    uint32_t series = 0;
    std::string body = encoder.Encode(s, ts, &series);
    EXPECT_EQ(series, s.PointCount());
    auto decoded = remote::DecodeWriteRequest(body, 1 << 20);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    // Metadata: in the first request and whenever the families change (all within a minute).
    std::string families;
    for (const auto& f : s.families()) families += f.name + ",";
    remote::WriteRequest want = SweepToWriteRequest(s, static_labels, ts);
    if (families == sent_families) want.metadata.clear();
    sent_families = families;
    EXPECT_EQ(Uncompressed(body), Uncompressed(remote::EncodeWriteRequest(want))) << "at " << ts;
    ts += 1000;
  }
}

TEST(WriteRequestEncoderTest, EmptySweepIsAnEmptyRequest) {
  WriteRequestEncoder encoder({});
  uint32_t series = 7;
  std::string body = encoder.Encode(Sweep(), 1, &series);
  EXPECT_EQ(series, 0u);
  EXPECT_EQ(Uncompressed(body), "");
  EXPECT_EQ(body, remote::EncodeWriteRequest({}));
  // And again without metadata due.
  body = encoder.Encode(Sweep(), 2, &series);
  EXPECT_EQ(Uncompressed(body), "");
}

// Sweeps without metadata are written from the shape's cached snappy elements: copies into the
// previous series move with its sample's size (a value of 0 leaves the value field out), long
// matches are split into copies of at most 64 bytes, and the block must always decompress to
// libprotobuf's bytes, through snappy and through the request decoder.
TEST(WriteRequestEncoderTest, CachedShapeWritesValidSnappyOfTheSameBytes) {
  std::map<std::string, std::string> static_labels = {
      {"region", "gansu"}, {"dc", "lanzhou-1"}, {"instance", "node-0001.lanzhou-1.example.org"}};
  WriteRequestEncoder encoder(static_labels);
  const std::string long_value(150, 'x');  // a match longer than one copy
  std::string unique_value;                // no match at all: a literal over 256 bytes
  for (int i = 0; unique_value.size() < 300; ++i) unique_value += std::to_string(i * 7919 % 1009);
  auto fill = [&](Sweep& s, int round) {
    s.Recycle();
    for (int cpu = 0; cpu < 8; ++cpu) {
      for (const char* mode : {"idle", "iowait", "irq", "nice", "softirq", "steal", "system"}) {
        // Every series' value goes 0 and back at its own pace.
        double v = (round + cpu) % 3 == 0 ? 0.0 : 1000.25 * cpu + round;
        s.Add("node_cpu_seconds_total", "CPU seconds.", MetricType::kCounter,
              {{"cpu", std::to_string(cpu)}, {"mode", mode}}, v);
      }
    }
    s.Add("node_load1", "Load.", MetricType::kGauge, {}, round % 2 ? -0.0 : 0.0);
    s.Add("suanli_info", "Info.", MetricType::kGauge, {{"long", long_value}}, 1);
    s.Add("suanli_info", "Info.", MetricType::kGauge, {{"long", long_value + "y"}}, round);
    s.Add("suanli_nan", "NaN.", MetricType::kGauge, {}, round % 2 ? NAN : StaleNaN());
    s.Add("suanli_unique", "Unique.", MetricType::kGauge, {{"v", unique_value}}, round);
    s.Finish();
  };
  Sweep sweeps[2];
  for (int round = 0; round < 12; ++round) {
    const int64_t ts = round == 5 ? 0 : 1'764'892'800'000 + round * 100;  // 0: field left out
    Sweep& s = sweeps[round % 2];
    fill(s, round);
    uint32_t series = 0;
    std::string body = encoder.Encode(s, ts, &series);
    ASSERT_EQ(series, 8u * 7 + 5);
    remote::WriteRequest want = SweepToWriteRequest(s, static_labels, ts);
    // Metadata: the first request, and where the clock stepped back to 0 and forward again.
    const bool metadata = round == 0 || round == 5 || round == 6;
    if (!metadata) want.metadata.clear();
    const std::string raw = Uncompressed(remote::EncodeWriteRequest(want));
    EXPECT_EQ(Uncompressed(body), raw) << "round " << round;
    auto decoded = remote::DecodeWriteRequest(body, 1 << 20);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ASSERT_EQ(decoded->series.size(), series);
    EXPECT_EQ(decoded->series[58].labels.Get("long"), long_value + "y");
    EXPECT_EQ(decoded->series[58].samples[0].value, round);
    EXPECT_EQ(decoded->series[58].samples[0].timestamp_ms, ts);
    // Repeated label bytes are copies: well under half the protobuf bytes.
    if (!metadata) EXPECT_LT(body.size(), raw.size() / 2) << "round " << round;
  }
  // Without the cached shape: snappy's own bytes, as libprotobuf's request compressed.
  WriteRequestEncoder plain(static_labels, /*cached_shape=*/false);
  Sweep& s = sweeps[0];
  fill(s, 20);
  plain.Encode(s, 1000, nullptr);  // with metadata
  remote::WriteRequest want = SweepToWriteRequest(s, static_labels, 2000);
  want.metadata.clear();
  EXPECT_EQ(plain.Encode(s, 2000, nullptr), remote::EncodeWriteRequest(want));
}

}  // namespace
}  // namespace suanli::agent
