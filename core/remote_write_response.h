// What a remote_write sender does with the receiver's answer: one table for every sender (the
// agent's sender and the aggregator's forwarder), so that Prometheus, Mimir, Thanos Receive,
// VictoriaMetrics and another Suanli tier are treated alike.
//
//   2xx                     accepted
//   network error, 5xx, 429 retried with exponential backoff, honouring Retry-After
//   408                     retried (the receiver timed the request out)
//   413                     split in halves (down to one series), then dropped
//   400, 409, 415, 422      dropped, counted by reason, the receiver's message logged
//   other 4xx               dropped, reason "other_4xx"
//   401, 403, 404, 3xx      held: retried at max_backoff, never dropped (a rotated token or a
//                           moved endpoint must not empty a backlog); a `blocked` gauge and a
//                           warning say so
//   anything else (1xx, a status outside 100-599)  held, as above
//
// Units: durations in milliseconds. Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace suanli::remote {

enum class WriteOutcome { kAccepted, kRetry, kSplit, kDrop, kHold };

struct WriteVerdict {
  WriteOutcome outcome = WriteOutcome::kAccepted;
  // For kDrop and kSplit: the `reason` label of the dropped-samples counters
  // (bad_request, conflict, unsupported_media_type, unprocessable, too_large, other_4xx).
  const char* reason = "";
  bool operator==(const WriteVerdict&) const = default;
};

WriteVerdict ClassifyWriteStatus(int http_status);

// The status class of an answer for the requests-by-status counters: "2xx" ... "5xx", or
// "network" when there was no HTTP answer (status 0).
const char* StatusClass(int http_status);

// The wait a Retry-After header asks for: delay-seconds or an HTTP-date (RFC 9110), relative to
// `now`; 0 for an absent, malformed or past value; at most `cap`.
std::chrono::milliseconds ParseRetryAfter(std::string_view value,
                                          std::chrono::system_clock::time_point now,
                                          std::chrono::milliseconds cap = std::chrono::minutes(5));

// The receiver's message for the log: the first line of the body, at most 200 characters.
std::string ReceiverMessage(std::string_view body);

// Exponential backoff between min and max: each retry doubles the wait (the first is min),
// drawn with jitter from the upper half; Reset() after a success.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) : min_(min), max_(max) {}
  // The next wait: at least `retry_after`, at most max (or retry_after when that is larger).
  // `random01` in [0, 1) picks the jitter (a test passes a fixed value).
  std::chrono::milliseconds Next(std::chrono::milliseconds retry_after, double random01);
  void Reset() { current_ = std::chrono::milliseconds(0); }
  std::chrono::milliseconds max() const { return max_; }

 private:
  std::chrono::milliseconds min_, max_;
  std::chrono::milliseconds current_{0};
};

}  // namespace suanli::remote
