#include "aggregator/ingest/write_handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <limits>

#include "core/config.h"
#include "core/remote_codec.h"
#include "core/remote_write_fast_decoder.h"
#include "core/scratch.h"

namespace suanli::aggregator {
namespace {
// Every reason a write can be refused; registered up front so each shows 0 until it happens.
constexpr const char* kReasons[] = {"content_type", "content_encoding", "too_large",
                                    "malformed",    "invalid_labels",   "storage",
                                    "forbidden_dc", "series_limit",     "label_limit",
                                    "rate_limited", "too_far_in_future"};

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

// RFC 3339 in UTC, to the second ("2027-12-05T09:40:00Z").
std::string FormatUnixMs(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  char buf[64];
  if (gmtime_r(&secs, &tm) == nullptr || std::strftime(buf, sizeof buf, "%FT%TZ", &tm) == 0) {
    return "?";
  }
  return buf;
}

prometheus::Family<prometheus::Counter>& UnsupportedFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("suanli_aggregator_samples_unsupported_total")
      .Help(
          "Native histogram samples and exemplars in accepted remote_write requests: not "
          "stored, by type.")
      .Register(registry);
}

// Counts what the store does not keep and warns once per process per type: a sender that
// starts sending native histograms should be noticed, not flood the log.
void CountUnsupported(size_t n, prometheus::Counter& counter, std::atomic<bool>& warned,
                      const char* what) {
  if (n == 0) return;
  counter.Increment(static_cast<double>(n));
  if (!warned.exchange(true)) {
    spdlog::warn(
        "remote_write: {} are not supported and are dropped; the float samples of the same "
        "requests are stored; counted in suanli_aggregator_samples_unsupported_total; this "
        "warning is logged once",
        what);
  }
}

// Value of `name` among labels in wire order ("" when absent).
std::string_view LabelValue(std::span<const remote::LabelRef> labels, std::string_view name) {
  for (const remote::LabelRef& l : labels) {
    if (l.name == name) return l.value;
  }
  return {};
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
                    .Register(registry)),
      unsupported_(UnsupportedFamily(registry)),
      unsupported_histograms_(unsupported_.Add({{"type", "native_histogram"}})),
      unsupported_exemplars_(unsupported_.Add({{"type", "exemplar"}})) {
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
                                                      const remote::WriteRequestView& write) {
  WriteLimits limits;
  {
    std::lock_guard<std::mutex> lock(limits_mu_);
    limits = limits_;
  }
  const std::vector<remote::SeriesRef>& series = write.series;
  if (limits.max_series_per_request > 0 &&
      static_cast<int64_t>(series.size()) > limits.max_series_per_request) {
    return Reject(400, "series_limit",
                  "limit max_series_per_request (" + std::to_string(limits.max_series_per_request) +
                      ") exceeded: " + std::to_string(series.size()) + " series");
  }
  const Identity& id = request.identity;
  const bool bound = !id.region.empty() || !id.dc.empty();
  const bool rate_limited = limits.max_samples_per_second_per_dc > 0;
  const bool length_limits = limits.max_label_name_length > 0 || limits.max_label_value_length > 0;
  if (!bound && !rate_limited && !length_limits) return std::nullopt;
  if (!bound && !rate_limited) {
    // Only the lengths to check (the default): one tight pass over all labels, which are in
    // series order; the loop below runs only to name the first offender.
    const size_t max_name = limits.max_label_name_length > 0
                                ? static_cast<size_t>(limits.max_label_name_length)
                                : std::numeric_limits<size_t>::max();
    const size_t max_value = limits.max_label_value_length > 0
                                 ? static_cast<size_t>(limits.max_label_value_length)
                                 : std::numeric_limits<size_t>::max();
    bool too_long = false;
    for (const remote::LabelRef& l : write.labels) {
      too_long |= l.name.size() > max_name || l.value.size() > max_value;
    }
    if (!too_long) return std::nullopt;
  }
  std::map<std::string, size_t> samples_by_dc;
  for (size_t i = 0; i < series.size(); ++i) {
    std::span<const remote::LabelRef> labels = write.LabelsOf(series[i]);
    for (const remote::LabelRef& l : labels) {
      if (limits.max_label_name_length > 0 &&
          static_cast<int64_t>(l.name.size()) > limits.max_label_name_length) {
        return Reject(400, "label_limit",
                      "timeseries[" + std::to_string(i) + "]: limit max_label_name_length (" +
                          std::to_string(limits.max_label_name_length) + ") exceeded");
      }
      if (limits.max_label_value_length > 0 &&
          static_cast<int64_t>(l.value.size()) > limits.max_label_value_length) {
        return Reject(400, "label_limit",
                      "timeseries[" + std::to_string(i) + "]: label " + std::string(l.name) +
                          ": limit max_label_value_length (" +
                          std::to_string(limits.max_label_value_length) + ") exceeded");
      }
    }
    if (!bound && !rate_limited) continue;
    const std::string_view region = LabelValue(labels, "region");
    const std::string_view dc = LabelValue(labels, "dc");
    if ((!id.region.empty() && region != id.region) || (!id.dc.empty() && dc != id.dc)) {
      if (AllowForbiddenLog()) {
        spdlog::warn(
            "remote_write refused: credential bound to region={} dc={} sent region={} dc={} "
            "credential={} kind={} remote={}",
            id.region, id.dc, region, dc, id.user, IdentityKindName(id.kind),
            request.remote_address);
      }
      return Reject(403, "forbidden_dc",
                    "timeseries[" + std::to_string(i) + "]: region=\"" + std::string(region) +
                        "\" dc=\"" + std::string(dc) + "\" is not what credential " + id.user +
                        " may write (region=\"" + id.region + "\" dc=\"" + id.dc + "\")");
    }
    if (rate_limited) samples_by_dc[std::string(dc)] += series[i].sample_count;
  }
  std::string dc;
  bool never = false;
  if (rate_limited && !TakeTokens(samples_by_dc, &dc, &never)) {
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

namespace {

uint64_t Word(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool IsNameLabel(std::string_view n) { return n.size() == 8 && Word(n.data()) == Word("__name__"); }

Labels ToLabels(std::span<const remote::LabelRef> refs) {
  std::vector<Label> items;
  items.reserve(refs.size());
  for (const remote::LabelRef& l : refs)
    items.push_back({std::string(l.name), std::string(l.value)});
  return Labels(std::move(items));
}

std::string IndexedMessage(size_t i, const Status& st) {
  return "timeseries[" + std::to_string(i) + "]: " + st.message();
}

}  // namespace

std::optional<HttpResponse> WriteHandler::CheckFuture(const remote::WriteRequestView& write) {
  const int64_t grace = future_grace_ms_.load(std::memory_order_relaxed);
  if (grace <= 0 || write.samples.empty()) return std::nullopt;
  const int64_t now = clock_.load(std::memory_order_relaxed)->NowUnixMs();
  const int64_t limit = now > INT64_MAX - grace ? INT64_MAX : now + grace;
  int64_t newest = INT64_MIN;
  for (const Sample& s : write.samples) newest = std::max(newest, s.timestamp_ms);
  if (newest <= limit) return std::nullopt;
  for (size_t i = 0; i < write.series.size(); ++i) {
    for (const Sample& s : write.SamplesOf(write.series[i])) {
      if (s.timestamp_ms <= limit) continue;
      // Whole seconds: the sender's clock is off by far more than that.
      const auto ahead = std::chrono::seconds((s.timestamp_ms - now) / 1000);
      return Reject(400, "too_far_in_future",
                    "timeseries[" + std::to_string(i) + "]: sample for series " +
                        ToLabels(write.LabelsOf(write.series[i])).ToString() + " at " +
                        std::to_string(s.timestamp_ms) + " (" + FormatUnixMs(s.timestamp_ms) +
                        ") is " + FormatDuration(ahead) + " after now; storage.future_grace is " +
                        FormatDuration(std::chrono::milliseconds(grace)));
    }
  }
  return std::nullopt;
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
  // Per thread and reused (core/scratch.h): a fresh decompression buffer and view vectors
  // per request cost page faults and malloc work comparable to parsing.
  thread_local remote::DecodedWriteRequest decoded;
  struct Release {
    ~Release() { decoded.ReleaseIfAbove(kMaxKeptScratchBytes); }
  } release;
  if (Status st = remote::DecodeWriteRequestView(request.body, max_decoded_bytes_.load(), &decoded);
      !st.ok()) {
    if (st.code() == StatusCode::kResourceExhausted) return Reject(413, "too_large", st.message());
    return Reject(400, "malformed", st.message());
  }
  const remote::WriteRequestView& write = decoded.view;
  // Series without samples are not stored, so the store never vets them: validate them here.
  for (size_t i = 0; i < write.series.size(); ++i) {
    if (write.series[i].sample_count > 0) continue;
    if (Status st = ToLabels(write.LabelsOf(write.series[i])).Validate(); !st.ok()) {
      return Reject(400, "invalid_labels", IndexedMessage(i, st));
    }
  }
  if (auto refused = CheckLimits(request, write)) return std::move(*refused);
  if (auto refused = CheckFuture(write)) return std::move(*refused);
  const size_t samples = write.samples.size();
  // HA pairs: the elected replica's writes are stored without the replica label; the other
  // replica's are answered 202 and dropped (ha_tracker.h).
  std::string replica_label;
  if (ha_ != nullptr && ha_->enabled() && samples > 0) {
    replica_label = ha_->replica_label();
    for (const remote::SeriesRef& s : write.series) {
      std::span<const remote::LabelRef> l = write.LabelsOf(s);
      std::string_view replica = LabelValue(l, replica_label);
      if (replica.empty()) continue;
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      if (!ha_->Accept(LabelValue(l, "region"), LabelValue(l, "dc"), LabelValue(l, "shard"),
                       replica, samples, now)) {
        HttpResponse r;
        r.status = 202;
        r.content_type.clear();
        return r;
      }
      break;
    }
  }
  if (samples > 0) {
    thread_local std::vector<storage::SeriesView> series;  // reused, as `decoded`
    ScratchReleaser release_series(series, kMaxKeptScratchBytes);
    series.clear();
    thread_local std::vector<remote::LabelRef> stripped;  // labels without the replica label
    ScratchReleaser release_stripped(stripped, kMaxKeptScratchBytes);
    stripped.clear();
    if (!replica_label.empty()) stripped.reserve(write.labels.size());
    // The capacity model wants few metrics. Their names are checked now, while the request's
    // bytes are still in cache (the store's lookups evict them).
    std::vector<size_t> modelled;
    for (size_t i = 0; i < write.series.size(); ++i) {
      const remote::SeriesRef& s = write.series[i];
      std::span<const remote::LabelRef> l = write.LabelsOf(s);
      if (!replica_label.empty()) {
        const size_t first = stripped.size();
        for (const remote::LabelRef& x : l) {
          if (x.name != replica_label) stripped.push_back(x);
        }
        l = std::span<const remote::LabelRef>(stripped.data() + first, stripped.size() - first);
      }
      series.push_back({l, write.SamplesOf(s)});
      if (s.sample_count == 0) continue;
      // Canonical labels start with __name__.
      const std::string_view name =
          !l.empty() && IsNameLabel(l[0].name) ? l[0].value : LabelValue(l, "__name__");
      if (capacity::CapacityModel::Uses(name)) modelled.push_back(i);
    }
    // Runs for label sets the store does not hold yet (and any sent in non-canonical form).
    bool invalid_labels = false;
    const storage::NewSeriesCheck validate = [&](size_t i,
                                                 std::span<const storage::LabelView> l) -> Status {
      Status st = ValidateLabels(l);
      if (st.ok()) return st;
      invalid_labels = true;
      return InvalidArgument(IndexedMessage(i, st));
    };
    auto appended = store_.AppendViews(series, &validate);
    if (!appended.ok()) {
      if (invalid_labels) return Reject(400, "invalid_labels", appended.status().message());
      StatusCode sc = appended.status().code();
      if (sc == StatusCode::kUnavailable) {
        // A full disk: nothing stored, retry later (the store logs it once, not per request).
        HttpResponse r = Reject(503, "storage", "storage: " + appended.status().message());
        r.headers["Retry-After"] = "5";
        return r;
      }
      spdlog::error("store append failed: {}", appended.status().message());
      // A limit (kResourceExhausted) is 400, not 429: senders retry 429 forever, and a
      // series limit does not lift by itself.
      int code =
          sc == StatusCode::kInvalidArgument || sc == StatusCode::kResourceExhausted ? 400 : 500;
      return Reject(code, "storage", "storage: " + appended.status().message());
    }
    if (!modelled.empty()) {
      std::vector<TimeSeries> observed;
      observed.reserve(modelled.size());
      for (size_t i : modelled) {
        std::span<const Sample> ss = series[i].samples;
        observed.push_back({ToLabels(series[i].labels), std::vector<Sample>(ss.begin(), ss.end())});
      }
      model_.Observe(observed);
    }
    samples_ingested_.Increment(static_cast<double>(samples));
  }
  static std::atomic<bool> warned_histograms{false}, warned_exemplars{false};
  CountUnsupported(write.histogram_count, unsupported_histograms_, warned_histograms,
                   "native histograms");
  CountUnsupported(write.exemplar_count, unsupported_exemplars_, warned_exemplars, "exemplars");
  requests_accepted_.Increment();
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace suanli::aggregator
