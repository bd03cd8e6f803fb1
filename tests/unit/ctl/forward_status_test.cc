#include "ctl/forward_status.h"

#include <gtest/gtest.h>

namespace suanli::ctl {
namespace {

constexpr const char* kMetrics = R"(# HELP suanli_aggregator_forward_samples_sent_total x
# TYPE suanli_aggregator_forward_samples_sent_total counter
suanli_aggregator_forward_samples_sent_total{target="region"} 123456
suanli_aggregator_forward_samples_sent_total{target="mimir"} 0
suanli_aggregator_forward_samples_retried_total{target="region"} 12
suanli_aggregator_forward_samples_dropped_total{reason="bad_request",target="region"} 3
suanli_aggregator_forward_samples_dropped_total{reason="too_old",target="region"} 0
suanli_aggregator_forward_requests_total{status_class="2xx",target="region"} 40
suanli_aggregator_forward_requests_total{status_class="network",target="mimir"} 7
suanli_aggregator_forward_backlog_seconds{target="region"} 0
suanli_aggregator_forward_backlog_seconds{target="mimir"} 600
suanli_aggregator_forward_blocked{target="region"} 0
suanli_aggregator_forward_blocked{target="mimir"} 1
suanli_aggregator_forward_last_success_timestamp_seconds{target="region"} 1000
suanli_aggregator_forward_last_success_timestamp_seconds{target="mimir"} 0
suanli_aggregator_series 5
odd_escapes{a="x\"y\\z"} NaN 1700000000000
)";

TEST(ForwardStatusTest, ParsesTheTextFormat) {
  auto samples = ParseTextExposition(kMetrics);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  ASSERT_EQ(samples->size(), 15u);
  EXPECT_EQ((*samples)[0].name, "suanli_aggregator_forward_samples_sent_total");
  EXPECT_EQ((*samples)[0].labels.at("target"), "region");
  EXPECT_EQ((*samples)[0].value, 123456);
  EXPECT_EQ(samples->back().labels.at("a"), "x\"y\\z");
  EXPECT_FALSE(ParseTextExposition("good 1\nbad{a=\"x} 1\n").ok());
  EXPECT_FALSE(ParseTextExposition("nothing_after\n").ok());
}

TEST(ForwardStatusTest, OneRowPerTarget) {
  auto samples = ParseTextExposition(kMetrics);
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(RenderForwardStatus(*samples, 1075),
            "TARGET  STATE         SENT  RETRIED  DROPPED  BACKLOG  LAST SUCCESS  REQUESTS   "
            "DROPPED BY REASON\n"
            "mimir   blocked          0        0        0    10m0s         never  network=7  -\n"
            "region  caught up  123,456       12        3      0ms     1m15s ago  2xx=40     "
            "bad_request=3\n");
  EXPECT_EQ(RenderForwardStatus({}, 0),
            "no forward targets (forward: in the aggregator's configuration)\n");
}

}  // namespace
}  // namespace suanli::ctl
