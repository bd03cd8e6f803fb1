// WriteHandler: POST /api/v1/write, the remote_write 1.0 receiver. A request is checked whole
// (headers, snappy, protobuf, every label set) before anything is stored; it is answered 204
// only once the Store reports it durable. The body is parsed without copying
// (remote_write_fast_decoder.h) and handed to the Store as views; label sets the store already
// holds were validated when they were created, so only new ones are validated again
// (Store::NewSeriesCheck). Rejections are 4xx with a one-line reason and are
// counted by reason; nothing of a rejected request is stored. Native histograms and exemplars
// are not stored: they are counted by type and warned about once, and the request's float
// samples are stored as usual. Limits checked here: series per
// request, label name/value length, a per-dc samples-per-second token bucket (429), and the
// credential's binding: a request from an identity bound to a region/dc that carries any
// series with other region/dc labels is refused whole with 403 (reason forbidden_dc).
// Thread-safety: Handle() is called concurrently from the HTTP server's I/O threads (its route
// runs there) and worker threads (requests with basic credentials).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/capacity/capacity_model.h"
#include "aggregator/ingest/ha_tracker.h"
#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "core/http_server.h"
#include "core/remote_write_fast_decoder.h"

namespace suanli::aggregator {

// Limits on what a remote_write request may hold (limits.* in the configuration file).
struct WriteLimits {
  int64_t max_body_bytes = 16 << 20;     // compressed request body; more is answered 413
  int64_t max_decoded_bytes = 64 << 20;  // after snappy; guards against decompression bombs
  int64_t max_series_per_dc = 0;         // series per `dc` label value; 0 = no limit
  int64_t max_labels_per_series = 0;     // 0 = no limit
  // Checked by the write handler before anything is stored; 0 = no limit.
  int64_t max_series_per_request = 0;     // more: 400
  int64_t max_label_name_length = 1024;   // bytes; longer: 400
  int64_t max_label_value_length = 2048;  // bytes; longer: 400
  // Token bucket per `dc` label value: refills at this rate up to the burst; a write that
  // finds too few tokens is answered 429 (senders retry later).
  double max_samples_per_second_per_dc = 0;
  int64_t samples_burst_per_dc = 0;  // 0: ten seconds' worth of the rate
};

class WriteHandler {
 public:
  WriteHandler(storage::Store& store, capacity::CapacityModel& model,
               prometheus::Registry& registry);

  HttpResponse Handle(const HttpRequest& request);
  // A request with a sample newer than now + grace is refused whole (400, too_far_in_future):
  // a clock gone wrong on the sender must not fill the store with the future. 0: no check.
  void set_future_grace(std::chrono::milliseconds grace, const Clock& clock = SystemClock::Get()) {
    clock_ = &clock;
    future_grace_ms_ = grace.count();
  }
  // Counts a request the HTTP server refused as too large before it reached Handle().
  void CountOversizedBody() { rejected_by_reason_.at("too_large")->Increment(); }
  void set_limits(const WriteLimits& limits);
  // HA pairs (ha_tracker.h): set once before serving; null or no replica_label: off.
  void set_ha(HaTracker* ha) { ha_ = ha; }

 private:
  HttpResponse Reject(int status, const char* reason, const std::string& message);
  // The too_far_in_future refusal, or nullopt.
  std::optional<HttpResponse> CheckFuture(const remote::WriteRequestView& write);
  // Checks the binding and the limits that need no storage; an error response or nullopt.
  std::optional<HttpResponse> CheckLimits(const HttpRequest& request,
                                          const remote::WriteRequestView& write);
  // Takes the samples of each dc from its bucket, all or nothing; false when some dc lacks
  // tokens (*dc names it, *never when the request exceeds the whole burst).
  bool TakeTokens(const std::map<std::string, size_t>& samples_by_dc, std::string* dc, bool* never);

  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };

  storage::Store& store_;
  capacity::CapacityModel& model_;
  HaTracker* ha_ = nullptr;
  std::atomic<int64_t> max_decoded_bytes_;
  std::mutex limits_mu_;  // guards limits_ and buckets_
  WriteLimits limits_;
  std::map<std::string, Bucket> buckets_;  // by dc label value
  prometheus::Counter& samples_ingested_;
  prometheus::Counter& requests_accepted_;
  prometheus::Family<prometheus::Counter>& rejected_;
  std::map<std::string, prometheus::Counter*> rejected_by_reason_;  // filled at construction
  // Native histograms and exemplars of accepted requests, which the store does not keep.
  prometheus::Family<prometheus::Counter>& unsupported_;
  prometheus::Counter& unsupported_histograms_;
  prometheus::Counter& unsupported_exemplars_;
  std::atomic<const Clock*> clock_{&SystemClock::Get()};
  std::atomic<int64_t> future_grace_ms_{10 * 60 * 1000};  // storage.future_grace
};

}  // namespace suanli::aggregator
