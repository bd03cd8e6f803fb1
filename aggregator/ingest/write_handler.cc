#include "aggregator/ingest/write_handler.h"

#include <spdlog/spdlog.h>

#include "core/remote_codec.h"

namespace suanli::aggregator {
namespace {
// Every reason a write can be refused; registered up front so each shows 0 until it happens.
constexpr const char* kReasons[] = {"content_type", "content_encoding", "too_large", "malformed",
                                    "invalid_labels", "storage"};
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
  if (samples > 0) {
    auto appended = store_.Append(series);
    if (!appended.ok()) {
      spdlog::error("store append failed: {}", appended.status().message());
      int code = appended.status().code() == StatusCode::kInvalidArgument ? 400 : 500;
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
