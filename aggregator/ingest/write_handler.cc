#include "aggregator/ingest/write_handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/remote_codec.h"

namespace suanli::aggregator {
namespace {
// Every reason a write can be refused; registered up front so each shows 0 until it happens.
constexpr const char* kReasons[] = {
    "content_type", "content_encoding", "too_large",    "malformed",   "invalid_labels",
    "storage",      "forbidden_dc",     "series_limit", "label_limit", "rate_limited"};

// A cross-dc write is a security event, but a misconfigured agent repeats it every sweep: one
// warning per 10 s at most.
bool AllowForbiddenLog() {
  static std::atomic<int64_t> last_ms{-10000};
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t prev = last_ms.load();
  return now - prev >= 10000 && last_ms.compare_exchange_strong(prev, now);
}
}  // namespace

WriteHandler::WriteHandler(storage::Store& store, capacity::CapacityModel& model,
                           prometheus::Registry& registry)
    : store_(store),
      model_(model),
      max_decoded_bytes_(WriteLimits{}.max_decoded_bytes),
      samples_ingested_(prometheus::BuildCounter()
                            .Name("suanli_aggregator_samples_ingested_total")
                            .Help("Samples accepted by remote_write and durable in the store.")
                            .Register(registry)
                            .Add({})),
      requests_accepted_(prometheus::BuildCounter()
                             .Name("suanli_aggregator_write_requests_total")
                             .Help("remote_write requests accepted (answered 204).")
                             .Register(registry)
                             .Add({})),
      rejected_(prometheus::BuildCounter()
                    .Name("suanli_aggregator_requests_rejected_total")
                    .Help("remote_write requests refused, by reason.")
                    .Register(registry)) {
  for (const char* r : kReasons) rejected_by_reason_[r] = &rejected_.Add({{"reason", r}});
}

void WriteHandler::set_limits(const WriteLimits& limits) {
  max_decoded_bytes_ = limits.max_decoded_bytes;
  std::lock_guard<std::mutex> lock(limits_mu_);
  limits_ = limits;
  if (limits.max_samples_per_second_per_dc <= 0) buckets_.clear();
}

bool WriteHandler::TakeTokens(const std::map<std::string, size_t>& samples_by_dc, std::string* dc,
                              bool* never) {
  std::lock_guard<std::mutex> lock(limits_mu_);
  const double rate = limits_.max_samples_per_second_per_dc;
  if (rate <= 0) return true;
  const double burst = limits_.samples_burst_per_dc > 0
                           ? static_cast<double>(limits_.samples_burst_per_dc)
                           : std::max(rate * 10, 1.0);
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [name, n] : samples_by_dc) {
    // Bounded memory whatever dc values arrive; a reset only grants one more burst.
    if (buckets_.size() >= 10000 && buckets_.count(name) == 0) buckets_.clear();
    auto [it, fresh] = buckets_.try_emplace(name, Bucket{burst, now});
    Bucket& b = it->second;
    b.tokens =
        std::min(burst, b.tokens + rate * std::chrono::duration<double>(now - b.refilled).count());
    b.refilled = now;
    if (static_cast<double>(n) > b.tokens) {
      *dc = name;
      *never = static_cast<double>(n) > burst;
      return false;
    }
  }
  for (const auto& [name, n] : samples_by_dc) buckets_[name].tokens -= static_cast<double>(n);
  return true;
}

std::optional<HttpResponse> WriteHandler::CheckLimits(const HttpRequest& request,
                                                      const std::vector<TimeSeries>& series) {
  WriteLimits limits;
  {
    std::lock_guard<std::mutex> lock(limits_mu_);
    limits = limits_;
  }
  if (limits.max_series_per_request > 0 &&
      static_cast<int64_t>(series.size()) > limits.max_series_per_request) {
    return Reject(400, "series_limit",
                  "limit max_series_per_request (" + std::to_string(limits.max_series_per_request) +
                      ") exceeded: " + std::to_string(series.size()) + " series");
  }
  const Identity& id = request.identity;
  std::map<std::string, size_t> samples_by_dc;
  for (size_t i = 0; i < series.size(); ++i) {
    for (const Label& l : series[i].labels.items()) {
      if (limits.max_label_name_length > 0 &&
          static_cast<int64_t>(l.name.size()) > limits.max_label_name_length) {
        return Reject(400, "label_limit",
                      "timeseries[" + std::to_string(i) + "]: limit max_label_name_length (" +
                          std::to_string(limits.max_label_name_length) + ") exceeded");
      }
      if (limits.max_label_value_length > 0 &&
          static_cast<int64_t>(l.value.size()) > limits.max_label_value_length) {
        return Reject(400, "label_limit",
                      "timeseries[" + std::to_string(i) + "]: label " + l.name +
                          ": limit max_label_value_length (" +
                          std::to_string(limits.max_label_value_length) + ") exceeded");
      }
    }
    const std::string region(series[i].labels.Get("region"));
    const std::string dc(series[i].labels.Get("dc"));
    if ((!id.region.empty() && region != id.region) || (!id.dc.empty() && dc != id.dc)) {
      if (AllowForbiddenLog()) {
        spdlog::warn(
            "remote_write refused: credential bound to region={} dc={} sent region={} dc={} "
            "credential={} kind={} remote={}",
            id.region, id.dc, region, dc, id.user, IdentityKindName(id.kind),
            request.remote_address);
      }
      return Reject(403, "forbidden_dc",
                    "timeseries[" + std::to_string(i) + "]: region=\"" + region + "\" dc=\"" + dc +
                        "\" is not what credential " + id.user + " may write (region=\"" +
                        id.region + "\" dc=\"" + id.dc + "\")");
    }
    samples_by_dc[dc] += series[i].samples.size();
  }
  std::string dc;
  bool never = false;
  if (!TakeTokens(samples_by_dc, &dc, &never)) {
    if (never) {
      return Reject(400, "rate_limited",
                    "dc=\"" + dc + "\": more samples in one request than samples_burst_per_dc");
    }
    HttpResponse r = Reject(429, "rate_limited",
                            "dc=\"" + dc + "\": limit max_samples_per_second_per_dc (" +
                                std::to_string(limits.max_samples_per_second_per_dc) +
                                ") exceeded; retry later");
    r.headers["Retry-After"] = "1";
    return r;
  }
  return std::nullopt;
}

HttpResponse WriteHandler::Reject(int status, const char* reason, const std::string& message) {
  rejected_by_reason_.at(reason)->Increment();
  spdlog::debug("remote_write rejected status={} reason={} detail=\"{}\"", status, reason, message);
  return HttpResponse::Text(status, message + "\n");
}

HttpResponse WriteHandler::Handle(const HttpRequest& request) {
  const std::string& ctype = request.Header("content-type");
  if (ctype.rfind(remote::kWriteContentType, 0) != 0) {
    return Reject(400, "content_type",
                  "Content-Type must be application/x-protobuf, got \"" + ctype + "\"");
  }
  const std::string& encoding = request.Header("content-encoding");
  if (encoding != remote::kContentEncoding) {
    return Reject(400, "content_encoding",
                  "Content-Encoding must be snappy, got \"" + encoding + "\"");
  }
  auto decoded = remote::DecodeWriteRequest(request.body, max_decoded_bytes_.load());
  if (!decoded.ok()) {
    if (decoded.status().code() == StatusCode::kResourceExhausted) {
      return Reject(413, "too_large", decoded.status().message());
    }
    return Reject(400, "malformed", decoded.status().message());
  }
  std::vector<TimeSeries>& series = decoded->series;
  size_t samples = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    Status st = series[i].labels.Validate();
    if (!st.ok()) {
      return Reject(400, "invalid_labels",
                    "timeseries[" + std::to_string(i) + "]: " + st.message());
    }
    samples += series[i].samples.size();
  }
  if (auto refused = CheckLimits(request, series)) return std::move(*refused);
  if (samples > 0) {
    auto appended = store_.Append(series);
    if (!appended.ok()) {
      spdlog::error("store append failed: {}", appended.status().message());
      // A limit (kResourceExhausted) is 400, not 429: senders retry 429 forever, and a
      // series limit does not lift by itself.
      StatusCode sc = appended.status().code();
      int code =
          sc == StatusCode::kInvalidArgument || sc == StatusCode::kResourceExhausted ? 400 : 500;
      return Reject(code, "storage", "storage: " + appended.status().message());
    }
    model_.Observe(series);
    samples_ingested_.Increment(static_cast<double>(samples));
  }
  requests_accepted_.Increment();
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace suanli::aggregator
