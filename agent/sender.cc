#include "agent/sender.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "agent/plain_http_client.h"
#include "agent/write_request_encoder.h"
#include "core/http_client.h"
#include "core/remote_codec.h"  // header constants only: the agent does not link libprotobuf

namespace suanli::agent {
namespace {

// A spooled sweep is our own encoding; this only guards against a corrupt one.
constexpr size_t kMaxDecodedRecordBytes = size_t{256} << 20;

prometheus::Family<prometheus::Counter>& RequestsFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("suanli_agent_remote_write_requests_total")
      .Help(
          "remote_write requests by result: ok (2xx), retried (5xx, 408, 429, network error), "
          "held (401, 403, 404, 3xx: retried at max_backoff, never dropped), rejected (other "
          "4xx, not retried).")
      .Register(r);
}

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::chrono::steady_clock::duration SpacingWait(std::chrono::steady_clock::time_point last_send,
                                                std::chrono::steady_clock::time_point now,
                                                std::chrono::milliseconds min_send_interval) {
  auto wait = last_send + min_send_interval - now;
  if (wait * 10 < min_send_interval) return std::chrono::steady_clock::duration::zero();
  return wait;
}

Result<std::string> MergeRecords(const std::vector<SpoolRecord>& records, size_t* series) {
  if (records.size() == 1) {
    if (series != nullptr) *series = 0;  // unknown without decoding; not needed then
    return *records[0].body;
  }
  std::vector<std::string_view> bodies;
  bodies.reserve(records.size());
  for (const auto& r : records) bodies.emplace_back(*r.body);
  auto merged = MergeWriteRequests(bodies, kMaxDecodedRecordBytes, series);
  if (!merged.ok()) {
    return merged.status().WithContext("spooled records " + std::to_string(records.front().seq) +
                                       ".." + std::to_string(records.back().seq));
  }
  return merged;
}

RemoteWriteSender::RemoteWriteSender(RemoteWriteEndpoint endpoint, size_t index, Spool& spool,
                                     std::chrono::milliseconds sample_interval,
                                     prometheus::Registry& registry)
    : endpoint_(std::move(endpoint)),
      index_(index),
      spool_(spool),
      sample_interval_(sample_interval),
      samples_sent_(prometheus::BuildCounter()
                        .Name("suanli_agent_remote_write_samples_sent_total")
                        .Help("Samples an endpoint accepted (2xx).")
                        .Register(registry)
                        .Add({{"endpoint", endpoint_.url}})),
      samples_retried_(prometheus::BuildCounter()
                           .Name("suanli_agent_remote_write_samples_retried_total")
                           .Help("Samples in requests that failed and will be sent again "
                                 "(5xx, 429, network error).")
                           .Register(registry)
                           .Add({{"endpoint", endpoint_.url}})),
      samples_dropped_family_(SamplesDroppedFamily(registry)),
      requests_ok_(RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "ok"}})),
      requests_retried_(
          RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "retried"}})),
      requests_rejected_(
          RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "rejected"}})),
      requests_held_(
          RequestsFamily(registry).Add({{"endpoint", endpoint_.url}, {"result", "held"}})),
      last_success_(prometheus::BuildGauge()
                        .Name("suanli_agent_remote_write_last_success_timestamp_seconds")
                        .Help("Unix time of the last request an endpoint accepted.")
                        .Register(registry)
                        .Add({{"endpoint", endpoint_.url}})),
      blocked_(prometheus::BuildGauge()
                   .Name("suanli_agent_remote_write_blocked")
                   .Help("1 while an endpoint answers 401, 403, 404 or 3xx: its backlog is held "
                         "and retried at max_backoff (check credentials and URL).")
                   .Register(registry)
                   .Add({{"endpoint", endpoint_.url}})) {}

RemoteWriteSender::~RemoteWriteSender() { Stop(); }

void RemoteWriteSender::Start() {
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void RemoteWriteSender::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  spool_.Interrupt();
  if (thread_.joinable()) thread_.join();
}

bool RemoteWriteSender::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void RemoteWriteSender::Run() {
  pthread_setname_np(pthread_self(), ("sender-" + std::to_string(index_)).substr(0, 15).c_str());
  HttpClient::Options opts;
  opts.timeout = endpoint_.timeout;
  opts.ca_file = endpoint_.ca_file;
  opts.insecure_skip_verify = endpoint_.insecure_skip_verify;
  opts.cert_file = endpoint_.cert_file;
  opts.key_file = endpoint_.key_file;
  opts.bearer_token = endpoint_.bearer_token;
  // http:// goes through our own small client: libcurl (and the TLS libraries it initializes)
  // only when the endpoint needs TLS. SUANLI_AGENT_CURL_FOR_EVERY_URL is defined only in the
  // benchmark's build of the agent that measures libcurl in its place
  // (tests/bench/agent_http_client.py).
#ifdef SUANLI_AGENT_CURL_FOR_EVERY_URL
  constexpr bool kPlainForHttp = false;
#else
  constexpr bool kPlainForHttp = true;
#endif
  std::unique_ptr<HttpClient> curl;
  std::unique_ptr<PlainHttpClient> plain;
  if (kPlainForHttp && endpoint_.url.rfind("http://", 0) == 0) {
    plain = std::make_unique<PlainHttpClient>(PlainHttpClient::Options{
        endpoint_.timeout, std::chrono::milliseconds(5000), endpoint_.bearer_token});
  } else {
    curl = std::make_unique<HttpClient>(opts);
  }
  const std::map<std::string, std::string> headers = {
      {"Content-Encoding", remote::kContentEncoding},
      {"Content-Type", remote::kWriteContentType},
      {remote::kWriteVersionHeader, remote::kWriteVersion},
      {"User-Agent", "suanli-agent/" SUANLI_VERSION},
  };
  std::mt19937_64 rng(std::random_device{}());
  std::chrono::milliseconds backoff(0);
  uint64_t single_until = 0;  // records before this seq go one at a time (after a 4xx)
  bool failing = false;
  // Backlog replay after an outage, for the log line that says how long it took.
  std::chrono::steady_clock::time_point replay_start{};
  uint64_t replay_samples = 0;

  // The batch being sent; kept across retries, so that an outage costs one encoding per
  // batch, not one per attempt.
  std::vector<SpoolRecord> batch;
  std::string merged;
  const std::string* body = nullptr;
  uint64_t samples = 0;

  // Start of the last request, for min_send_interval.
  std::chrono::steady_clock::time_point last_send{};
  bool space_next = false;
  bool backlog_behind = false;  // the batch being sent left older records in the spool

  while (!stopping_) {
    if (batch.empty()) {
      if (!spool_.WaitPending(index_, stopping_,
                              std::chrono::steady_clock::now() + std::chrono::seconds(60))) {
        continue;
      }
      // Send spacing: fewer, larger requests when sweeps come faster than min_send_interval.
      // Only once caught up: a backlog (replay), retries and one-at-a-time resends go at once.
      // The wait ignores new sweeps (waking for each would cost the wake-ups this saves) but
      // not a full batch pending when it starts.
      if (space_next && endpoint_.min_send_interval.count() > 0 &&
          spool_.PendingSamples(index_) < static_cast<uint64_t>(endpoint_.max_samples_per_send)) {
        auto wait =
            SpacingWait(last_send, std::chrono::steady_clock::now(), endpoint_.min_send_interval);
        // Stop() during the wait: what it held back is sent now, once (the loop then ends), so
        // that the spacing never keeps a sweep past a shutdown or a reload.
        if (wait > std::chrono::steady_clock::duration::zero()) {
          Sleep(std::chrono::ceil<std::chrono::milliseconds>(wait));
        }
      }
      // Counted before the batch is taken: a sweep spooled while it is taken is not a backlog
      // (counting after would race with it and send the next request without spacing).
      const uint64_t pending_before = spool_.PendingSamples(index_);
      batch = spool_.NextBatch(index_, endpoint_.replay_order,
                               static_cast<size_t>(endpoint_.max_samples_per_send), single_until,
                               endpoint_.out_of_order_window.count());
      if (batch.empty()) continue;
      samples = 0;
      for (const auto& r : batch) samples += r.samples;
      // What the batch left of the records spooled before it is backlog; what arrives while it
      // is sent is not.
      backlog_behind = pending_before > samples;
      body = batch.front().body.get();
      if (batch.size() > 1) {
        auto m = MergeRecords(batch);
        if (!m.ok()) {
          // Cannot happen with our own records; sending them one by one still delivers the rest.
          spdlog::warn("remote_write cannot merge spooled records, sending them one by one: {}",
                       m.status().message());
          single_until = batch.back().seq + 1;
          batch.clear();
          continue;
        }
        merged = std::move(m).value();
        body = &merged;
      }
    }

    const auto attempt = std::chrono::steady_clock::now();
    last_send = attempt;
    auto result = plain ? plain->Post(endpoint_.url, *body, headers)
                        : curl->Post(endpoint_.url, *body, headers);
    remote::WriteVerdict verdict;
    std::string reason;
    std::chrono::milliseconds retry_after(0);
    bool network_error = false;
    if (!result.ok()) {
      verdict.outcome = WriteOutcome::kRetry;
      network_error = true;
      reason = result.status().message();
    } else {
      verdict = remote::ClassifyWriteStatus(result->status);
      if (verdict.outcome != WriteOutcome::kAccepted) {  // for the log; not built for every success
        reason =
            "HTTP " + std::to_string(result->status) + ": " + remote::ReceiverMessage(result->body);
      }
      auto it = result->headers.find("retry-after");
      if (it != result->headers.end()) {
        retry_after = remote::ParseRetryAfter(it->second, std::chrono::system_clock::now());
      }
    }
    WriteOutcome outcome = verdict.outcome;

    if (outcome == WriteOutcome::kHold) {
      // Credentials or URL wrong (401, 403, 404, 3xx): keep everything, ask again slowly.
      requests_held_.Increment();
      if (blocked_.Value() == 0) {
        spdlog::warn(
            "remote_write blocked, holding the backlog and retrying every {} ms endpoint={} "
            "reason=\"{}\" pending_samples={}",
            endpoint_.max_backoff.count(), endpoint_.url, reason, spool_.PendingSamples(index_));
      }
      blocked_.Set(1);
      failing = true;
      Sleep(std::max(endpoint_.max_backoff, retry_after));
      continue;
    }
    blocked_.Set(0);
    if (outcome == WriteOutcome::kRetry) {
      requests_retried_.Increment();
      samples_retried_.Increment(static_cast<double>(samples));
      // A refused or timed-out connection costs the receiver nothing: probe once per sample
      // interval, so that a link that comes back is used within one interval.
      auto cap =
          network_error ? std::min(endpoint_.max_backoff, sample_interval_) : endpoint_.max_backoff;
      cap = std::max(cap, endpoint_.min_backoff);
      backoff = backoff.count() == 0 ? endpoint_.min_backoff : std::min(backoff * 2, cap);
      std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
      auto wait = std::max(std::chrono::milliseconds(jitter(rng)), retry_after);
      if (!failing) {
        spdlog::warn("remote_write failed, retrying endpoint={} reason=\"{}\" pending_samples={}",
                     endpoint_.url, reason, spool_.PendingSamples(index_));
        failing = true;
      }
      Sleep(wait);
      continue;
    }
    backoff = std::chrono::milliseconds(0);

    std::vector<SpoolRecord> done = std::move(batch);
    batch.clear();
    space_next = false;
    if ((outcome == WriteOutcome::kDrop || outcome == WriteOutcome::kSplit) && done.size() > 1) {
      // Find the sweep the receiver refuses instead of dropping the whole batch.
      requests_rejected_.Increment();
      single_until = done.back().seq + 1;
      spdlog::warn(
          "remote_write refused a batch of {} sweeps, resending them one at a time endpoint={} "
          "reason=\"{}\"",
          done.size(), endpoint_.url, reason);
      continue;
    }

    std::vector<uint64_t> seqs;
    seqs.reserve(done.size());
    for (const auto& r : done) seqs.push_back(r.seq);
    if (outcome == WriteOutcome::kAccepted) {
      if (failing) {
        uint64_t pending = spool_.PendingSamples(index_);
        spdlog::info("remote_write recovered endpoint={} pending_samples={}", endpoint_.url,
                     pending);
        failing = false;
        if (pending > samples) {
          replay_start = attempt;  // the replay's first request counts
          replay_samples = pending;
        }
      }
      spool_.Ack(index_, seqs);
      // Caught up (no backlog behind this batch, no one-at-a-time resends to go): space the
      // next request. Sweeps that came while it was on its way are not a backlog, so a slow
      // receiver or a loaded sender still makes one request per min_send_interval, not one
      // per sweep (a full batch of them still goes at once: checked where the spacing applies).
      space_next = done.back().seq + 1 >= single_until && !backlog_behind;
      requests_ok_.Increment();
      samples_sent_.Increment(static_cast<double>(samples));
      last_success_.Set(UnixNow());
      if (replay_samples > 0 && spool_.PendingSamples(index_) == 0) {
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - replay_start).count();
        spdlog::info("remote_write backlog delivered endpoint={} samples={} seconds={:.3f}",
                     endpoint_.url, replay_samples, secs);
        replay_samples = 0;
      }
    } else {
      spool_.Ack(index_, seqs);  // given up: counted as dropped
      requests_rejected_.Increment();
      samples_dropped_family_.Add({{"endpoint", endpoint_.url}, {"reason", verdict.reason}})
          .Increment(static_cast<double>(samples));
      spdlog::error("remote_write rejected, dropping sweep endpoint={} samples={} reason=\"{}\"",
                    endpoint_.url, samples, reason);
    }
  }
}

}  // namespace suanli::agent
