#include "agent/sender.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "core/http_client.h"
#include "core/remote_codec.h"

namespace suanli::agent {
namespace {

prometheus::Family<prometheus::Counter>& SamplesFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("suanli_agent_remote_write_samples_total")
      .Help("Samples handed to a remote_write endpoint, by outcome.")
      .Register(r);
}

prometheus::Family<prometheus::Counter>& RequestsFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("suanli_agent_remote_write_requests_total")
      .Help("remote_write requests by result: ok, retried (5xx, 429, network).")
      .Register(r);
}

std::chrono::milliseconds ParseRetryAfter(const std::string& v) {
  if (v.empty()) return std::chrono::milliseconds(0);
  char* end = nullptr;
  long secs = std::strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || secs < 0) return std::chrono::milliseconds(0);  // HTTP-date: ignore
  return std::chrono::milliseconds(std::min<long>(secs, 300) * 1000);
}

}  // namespace

RemoteWriteSender::RemoteWriteSender(RemoteWriteEndpoint endpoint, prometheus::Registry& registry)
    : endpoint_(std::move(endpoint)),
      samples_sent_(
          SamplesFamily(registry).Add({{"endpoint", endpoint_.url}, {"outcome", "sent"}})),
      requests_ok_(RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "ok"}})),
      requests_retried_(
          RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "retried"}})),
      dropped_rejected_(SamplesFamily(registry).Add(
          {{"endpoint", endpoint_.url}, {"outcome", "dropped_rejected"}})),
      dropped_queue_full_(SamplesFamily(registry).Add(
          {{"endpoint", endpoint_.url}, {"outcome", "dropped_queue_full"}})),
      pending_bytes_(prometheus::BuildGauge()
                         .Name("suanli_agent_remote_write_pending_bytes")
                         .Help("Encoded bytes waiting to be sent to an endpoint.")
                         .Register(registry)
                         .Add({{"endpoint", endpoint_.url}})),
      last_success_(prometheus::BuildGauge()
                        .Name("suanli_agent_remote_write_last_success_timestamp_seconds")
                        .Help("Unix time of the last request an endpoint accepted.")
                        .Register(registry)
                        .Add({{"endpoint", endpoint_.url}})) {}

RemoteWriteSender::~RemoteWriteSender() { Stop(); }

void RemoteWriteSender::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RemoteWriteSender::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t RemoteWriteSender::pending_bytes() const {
  std::lock_guard lock(mu_);
  return queue_bytes_;
}

void RemoteWriteSender::Enqueue(std::shared_ptr<const EncodedBatch> batch) {
  {
    std::lock_guard lock(mu_);
    queue_bytes_ += batch->body.size();
    queue_.push_back(std::move(batch));
    size_t dropped_samples = 0;
    // Keep the newest data: drop from the front until under the cap (always keep one).
    while (queue_bytes_ > static_cast<size_t>(endpoint_.max_pending_bytes) && queue_.size() > 1) {
      dropped_samples += queue_.front()->samples;
      queue_bytes_ -= queue_.front()->body.size();
      queue_.pop_front();
    }
    if (dropped_samples > 0) {
      dropped_queue_full_.Increment(static_cast<double>(dropped_samples));
      spdlog::warn("remote_write queue full, dropped the oldest samples endpoint={} samples={}",
                   endpoint_.url, dropped_samples);
    }
    pending_bytes_.Set(static_cast<double>(queue_bytes_));
  }
  cv_.notify_one();
}

void RemoteWriteSender::Run() {
  HttpClient::Options opts;
  opts.timeout = endpoint_.timeout;
  opts.ca_file = endpoint_.ca_file;
  opts.insecure_skip_verify = endpoint_.insecure_skip_verify;
  opts.bearer_token = endpoint_.bearer_token;
  HttpClient client(opts);
  const std::map<std::string, std::string> headers = {
      {"Content-Encoding", remote::kContentEncoding},
      {"Content-Type", remote::kWriteContentType},
      {remote::kWriteVersionHeader, remote::kWriteVersion},
      {"User-Agent", "suanli-agent/" SUANLI_VERSION},
  };
  std::mt19937_64 rng(std::random_device{}());
  std::chrono::milliseconds backoff(0);
  const std::chrono::milliseconds kMinBackoff(250), kMaxBackoff(30000);
  bool warned = false;

  for (;;) {
    std::shared_ptr<const EncodedBatch> batch;
    {
      std::unique_lock lock(mu_);
      if (backoff.count() > 0) {
        cv_.wait_for(lock, backoff, [this] { return stopping_; });
      }
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      batch = queue_.front();  // stays queued until accepted or dropped
    }

    auto result = client.Post(endpoint_.url, batch->body, headers);
    remote::WriteOutcome outcome;
    std::string reason;
    std::chrono::milliseconds retry_after(0);
    if (!result.ok()) {
      outcome = remote::WriteOutcome::kRetry;
      reason = result.status().message();
    } else {
      outcome = remote::ClassifyWriteStatus(result->status);
      reason = "HTTP " + std::to_string(result->status) + ": " +
               result->body.substr(0, std::min<size_t>(result->body.size(), 256));
      auto it = result->headers.find("retry-after");
      if (it != result->headers.end()) retry_after = ParseRetryAfter(it->second);
    }

    if (outcome == remote::WriteOutcome::kRetry) {
      requests_retried_.Increment();
      backoff = backoff.count() == 0 ? kMinBackoff : std::min(backoff * 2, kMaxBackoff);
      // Full jitter on the upper half spreads a fleet's retries after an outage.
      std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
      backoff = std::max(std::chrono::milliseconds(jitter(rng)), retry_after);
      if (!warned) {
        spdlog::warn("remote_write failed, retrying endpoint={} reason=\"{}\"", endpoint_.url,
                     reason);
        warned = true;
      }
      continue;
    }

    {
      std::lock_guard lock(mu_);
      if (!queue_.empty() && queue_.front() == batch) {
        queue_bytes_ -= batch->body.size();
        queue_.pop_front();
      }
      pending_bytes_.Set(static_cast<double>(queue_bytes_));
    }
    backoff = std::chrono::milliseconds(0);
    if (outcome == remote::WriteOutcome::kAccepted) {
      if (warned) spdlog::info("remote_write recovered endpoint={}", endpoint_.url);
      warned = false;
      requests_ok_.Increment();
      samples_sent_.Increment(static_cast<double>(batch->samples));
      last_success_.Set(
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count());
    } else {
      dropped_rejected_.Increment(static_cast<double>(batch->samples));
      spdlog::error("remote_write rejected, dropping batch endpoint={} samples={} reason=\"{}\"",
                    endpoint_.url, batch->samples, reason);
    }
  }
}

}  // namespace suanli::agent
