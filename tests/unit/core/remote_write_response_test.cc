#include "core/remote_write_response.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace suanli::remote {
namespace {

using std::chrono::milliseconds;

TEST(RemoteWriteResponseTest, OneTableForEverySender) {
  struct Case {
    int status;
    WriteOutcome outcome;
    std::string reason;
  };
  const Case cases[] = {
      {200, WriteOutcome::kAccepted, ""},
      {202, WriteOutcome::kAccepted, ""},  // Mimir: a non-elected HA replica
      {204, WriteOutcome::kAccepted, ""},
      {429, WriteOutcome::kRetry, ""},
      {408, WriteOutcome::kRetry, ""},
      {500, WriteOutcome::kRetry, ""},
      {503, WriteOutcome::kRetry, ""},  // Thanos without quorum, VictoriaMetrics overloaded
      {599, WriteOutcome::kRetry, ""},
      {413, WriteOutcome::kSplit, "too_large"},
      {400, WriteOutcome::kDrop, "bad_request"},
      {409, WriteOutcome::kDrop, "conflict"},
      {415, WriteOutcome::kDrop, "unsupported_media_type"},
      {422, WriteOutcome::kDrop, "unprocessable"},
      {405, WriteOutcome::kDrop, "other_4xx"},
      {401, WriteOutcome::kHold, ""},
      {403, WriteOutcome::kHold, ""},
      {404, WriteOutcome::kHold, ""},
      {301, WriteOutcome::kHold, ""},
      {308, WriteOutcome::kHold, ""},
      {100, WriteOutcome::kHold, ""},
      {600, WriteOutcome::kHold, ""},
      {0, WriteOutcome::kHold, ""},
  };
  for (const Case& c : cases) {
    WriteVerdict v = ClassifyWriteStatus(c.status);
    EXPECT_EQ(v.outcome, c.outcome) << c.status;
    EXPECT_EQ(std::string(v.reason), c.reason) << c.status;
  }
}

TEST(RemoteWriteResponseTest, StatusClass) {
  EXPECT_STREQ(StatusClass(0), "network");
  EXPECT_STREQ(StatusClass(204), "2xx");
  EXPECT_STREQ(StatusClass(302), "3xx");
  EXPECT_STREQ(StatusClass(429), "4xx");
  EXPECT_STREQ(StatusClass(503), "5xx");
}

TEST(RemoteWriteResponseTest, RetryAfterSecondsAndHttpDate) {
  // 2015-10-21 07:28:00 UTC
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(ParseRetryAfter("3", now), milliseconds(3000));
  EXPECT_EQ(ParseRetryAfter(" 7 ", now), milliseconds(7000));
  EXPECT_EQ(ParseRetryAfter("", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("soon", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("-4", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("100000", now), milliseconds(300000));  // capped at 5 minutes
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), milliseconds(300000));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:42 GMT", now), milliseconds(42000));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), milliseconds(0));  // past
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 09:28:00 GMT", now), milliseconds(300000));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Foo 2015 07:28:42 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:42 UTC", now), milliseconds(0));
}

TEST(RemoteWriteResponseTest, ReceiverMessageIsOneShortLine) {
  EXPECT_EQ(ReceiverMessage("out of order sample\nmore\n"), "out of order sample");
  EXPECT_EQ(ReceiverMessage("a\tb\r\n"), "a b");
  std::string longer(300, 'x');
  EXPECT_EQ(ReceiverMessage(longer), std::string(200, 'x') + "...");
}

TEST(RemoteWriteResponseTest, BackoffDoublesWithJitterUpToMax) {
  Backoff b(milliseconds(30), milliseconds(5000));
  EXPECT_EQ(b.Next(milliseconds(0), 0.99999), milliseconds(29));  // upper end of [15, 30)
  EXPECT_EQ(b.Next(milliseconds(0), 0.0), milliseconds(30));      // lower half of 60
  EXPECT_EQ(b.Next(milliseconds(0), 0.0), milliseconds(60));      // of 120
  for (int i = 0; i < 20; ++i) b.Next(milliseconds(0), 0.5);
  EXPECT_EQ(b.Next(milliseconds(0), 0.0), milliseconds(2500));     // capped at 5000
  EXPECT_EQ(b.Next(milliseconds(9000), 0.0), milliseconds(9000));  // Retry-After wins
  b.Reset();
  EXPECT_EQ(b.Next(milliseconds(0), 0.0), milliseconds(15));
}

}  // namespace
}  // namespace suanli::remote
