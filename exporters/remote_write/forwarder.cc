#include "exporters/remote_write/forwarder.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "core/file_util.h"
#include "core/remote_codec.h"
#include "core/remote_write_response.h"

namespace suanli::exporters {
namespace {

// How often a caught-up target looks for new work. Raw: new batches arrive every few
// milliseconds under load, and a quarter second keeps the delay small without spinning.
std::chrono::milliseconds PollInterval(ForwardSelect s) {
  return s == ForwardSelect::kRaw ? std::chrono::milliseconds(250) : std::chrono::seconds(1);
}

double UnixSeconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

}  // namespace

ForwardMetrics::ForwardMetrics(prometheus::Registry& r)
    : sent(prometheus::BuildCounter()
               .Name("suanli_aggregator_forward_samples_sent_total")
               .Help("Samples a forwarding target accepted (2xx).")
               .Register(r)),
      dropped(prometheus::BuildCounter()
                  .Name("suanli_aggregator_forward_samples_dropped_total")
                  .Help("Samples not forwarded, by reason: the target refused them (bad_request, "
                        "conflict, unsupported_media_type, unprocessable, too_large, other_4xx) "
                        "or they were older than max_backlog (too_old).")
                  .Register(r)),
      retried(prometheus::BuildCounter()
                  .Name("suanli_aggregator_forward_samples_retried_total")
                  .Help("Samples in requests that failed and were sent again (network error, "
                        "5xx, 408, 429, and held requests: 401, 403, 404, 3xx).")
                  .Register(r)),
      requests(prometheus::BuildCounter()
                   .Name("suanli_aggregator_forward_requests_total")
                   .Help("Forwarding requests by the class of the answer (2xx ... 5xx, or "
                         "network when there was none).")
                   .Register(r)),
      skipped_seconds(prometheus::BuildCounter()
                          .Name("suanli_aggregator_forward_backlog_skipped_seconds_total")
                          .Help("History not forwarded because it was older than max_backlog "
                                "when its turn came (rollups, capacity; raw counts samples in "
                                "suanli_aggregator_forward_samples_dropped_total).")
                          .Register(r)),
      backlog_seconds(prometheus::BuildGauge()
                          .Name("suanli_aggregator_forward_backlog_seconds")
                          .Help("Age of the oldest data not yet forwarded (0 when caught up).")
                          .Register(r)),
      blocked(prometheus::BuildGauge()
                  .Name("suanli_aggregator_forward_blocked")
                  .Help("1 while the target answers 401, 403, 404 or 3xx: the backlog is held "
                        "and retried at max_backoff (check credentials and URL).")
                  .Register(r)),
      last_success(prometheus::BuildGauge()
                       .Name("suanli_aggregator_forward_last_success_timestamp_seconds")
                       .Help("Unix time of the last request the target accepted.")
                       .Register(r)) {}

std::string ForwardCursorName(const std::string& target) { return "forward/" + target; }

Forwarder::Forwarder(ForwardTarget target, storage::Store& store, const CapacityProgress* capacity,
                     ForwardMetrics& metrics, const Clock& clock)
    : target_(std::move(target)),
      store_(store),
      capacity_(capacity),
      metrics_(metrics),
      clock_(clock),
      sent_(metrics.sent.Add({{"target", target_.name}})),
      retried_(metrics.retried.Add({{"target", target_.name}})),
      skipped_seconds_(metrics.skipped_seconds.Add({{"target", target_.name}})),
      backlog_seconds_(metrics.backlog_seconds.Add({{"target", target_.name}})),
      blocked_(metrics.blocked.Add({{"target", target_.name}})),
      last_success_(metrics.last_success.Add({{"target", target_.name}})) {
  HttpClient::Options o;
  o.timeout = target_.remote_timeout;
  o.connect_timeout = std::min(target_.remote_timeout, std::chrono::milliseconds(5000));
  o.ca_file = target_.ca_file;
  o.insecure_skip_verify = target_.insecure_skip_verify;
  o.cert_file = target_.cert_file;
  o.key_file = target_.key_file;
  o.username = target_.basic_auth_username;
  o.password = target_.basic_auth_password;
  if (!target_.basic_auth_password_file.empty()) {
    auto pw = ReadFileToString(target_.basic_auth_password_file);
    if (pw.ok()) {
      o.password = *pw;
      while (!o.password.empty() && (o.password.back() == '\n' || o.password.back() == '\r')) {
        o.password.pop_back();
      }
    } else {
      spdlog::error("forward target={} cannot read basic_auth.password_file: {}", target_.name,
                    pw.status().message());
    }
  }
  for (int64_t i = 0; i < target_.queue.shards; ++i) {
    clients_.push_back(std::make_unique<HttpClient>(o));
  }
}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Start() {
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Forwarder::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Forwarder::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping(); });
}

std::map<std::string, std::string> Forwarder::RequestHeaders() {
  std::map<std::string, std::string> h = target_.headers;
  h["Content-Encoding"] = remote::kContentEncoding;
  h["Content-Type"] = remote::kWriteContentType;
  h[remote::kWriteVersionHeader] = remote::kWriteVersion;
  h["User-Agent"] = "suanli-aggregator/" SUANLI_VERSION;
  if (!target_.bearer_token_file.empty()) {
    // Read for every request: a rotated token is used without a reload.
    auto token = ReadFileToString(target_.bearer_token_file);
    if (token.ok()) {
      std::string t = *token;
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      h["Authorization"] = "Bearer " + t;
    } else {
      spdlog::warn("forward target={} cannot read bearer_token_file: {}", target_.name,
                   token.status().message());
    }
  }
  return h;
}

void Forwarder::Run() {
  pthread_setname_np(pthread_self(), ("fwd-" + target_.name).substr(0, 15).c_str());
  std::unique_ptr<ForwardSource> source = MakeForwardSource(target_, store_, capacity_);
  const std::string cursor_name = ForwardCursorName(target_.name);
  std::optional<storage::Cursor> cursor;
  while (!stopping() && !cursor) {
    auto found = store_.GetCursor(cursor_name);
    if (found.ok() && *found && source->Accepts(**found)) {
      cursor = **found;
      break;
    }
    storage::Cursor start = source->Start(clock_.NowUnixMs());
    Status st = store_.SetCursor(cursor_name, start);
    if (st.ok()) {
      spdlog::info("forward target={} select={} starts from now", target_.name,
                   ForwardSelectName(target_.select));
      cursor = start;
    } else {
      spdlog::error("forward target={} cannot store its cursor: {}", target_.name, st.message());
      Wait(std::chrono::seconds(1));
    }
  }
  // The unit in flight when this target last stopped, if any: re-read exactly (see
  // ForwardSource::Next).
  const std::string unit_name = cursor_name + "#unit";
  std::optional<storage::Cursor> until;
  if (auto unit = store_.GetCursor(unit_name);
      unit.ok() && *unit && (*unit)->kind == cursor->kind && (*unit)->value > cursor->value) {
    until = **unit;
  }
  const size_t unit_samples =
      static_cast<size_t>(target_.queue.shards * target_.queue.max_samples_per_send);
  bool read_failing = false;
  while (!stopping()) {
    const int64_t now = clock_.NowUnixMs();
    auto next = source->Next(*cursor, now, unit_samples, until);
    if (!next.ok()) {
      if (!read_failing) {
        spdlog::error("forward target={} cannot read the store: {}", target_.name,
                      next.status().message());
      }
      read_failing = true;
      Wait(std::chrono::seconds(1));
      continue;
    }
    read_failing = false;
    ForwardBatch& batch = *next;
    if (batch.skipped_samples > 0 || batch.skipped_ms > 0) {
      spdlog::warn(
          "forward target={} skipped backlog older than max_backlog={} samples={} seconds={}",
          target_.name, FormatDuration(target_.max_backlog), batch.skipped_samples,
          batch.skipped_ms / 1000);
      if (batch.skipped_samples > 0) {
        metrics_.dropped.Add({{"target", target_.name}, {"reason", "too_old"}})
            .Increment(static_cast<double>(batch.skipped_samples));
      }
      skipped_seconds_.Increment(static_cast<double>(batch.skipped_ms) / 1000.0);
    }
    unit_oldest_ms_.store(batch.oldest_ms);
    UpdateBacklog();
    std::vector<EncodedSeries> part;
    bool stopped = false, first = true, unmarked = false;
    while (!stopped && batch.take(unit_samples, &part)) {
      if (first && !until) {
        // Where this unit ends, before its first request: a restart re-reads it exactly.
        Status st = store_.SetCursor(unit_name, batch.next);
        if (!st.ok()) {
          spdlog::error("forward target={} cannot store its cursor: {}", target_.name,
                        st.message());
          unmarked = true;
          stopped = !Wait(std::chrono::seconds(1));
          break;
        }
      }
      first = false;
      stopped = Deliver(part) == Delivery::kStopped;
    }
    if (stopped) break;      // the cursor stays: the unit goes again after the next start
    if (unmarked) continue;  // nothing was sent: read the unit again
    until.reset();
    if (!(batch.next == *cursor)) {
      Status st = store_.SetCursor(cursor_name, batch.next);
      if (!st.ok()) {
        // The unit was delivered; without its cursor it goes again (exact repeats).
        spdlog::error("forward target={} cannot store its cursor: {}", target_.name, st.message());
        Wait(std::chrono::seconds(1));
        continue;
      }
      cursor = batch.next;
    }
    if (batch.caught_up) {
      unit_oldest_ms_.store(std::numeric_limits<int64_t>::max());
      backlog_seconds_.Set(0);
      Wait(PollInterval(target_.select));
    }
  }
}

void Forwarder::UpdateBacklog() {
  const int64_t oldest = unit_oldest_ms_.load();
  if (oldest == std::numeric_limits<int64_t>::max()) return;
  backlog_seconds_.Set(std::max(0.0, UnixSeconds(clock_.NowUnixMs() - oldest)));
}

Forwarder::Delivery Forwarder::Deliver(std::vector<EncodedSeries>& series) {
  const size_t shards = clients_.size();
  if (shards == 1 ||
      SampleCount(series) <= static_cast<size_t>(target_.queue.max_samples_per_send)) {
    return SendShard(*clients_[0], std::move(series));
  }
  std::vector<std::vector<EncodedSeries>> by_shard(shards);
  for (EncodedSeries& s : series) by_shard[s.hash % shards].push_back(std::move(s));
  series.clear();
  std::vector<std::thread> threads;
  std::vector<Delivery> results(shards, Delivery::kDone);
  for (size_t i = 1; i < shards; ++i) {
    if (by_shard[i].empty()) continue;
    threads.emplace_back([this, i, &by_shard, &results] {
      results[i] = SendShard(*clients_[i], std::move(by_shard[i]));
    });
  }
  if (!by_shard[0].empty()) results[0] = SendShard(*clients_[0], std::move(by_shard[0]));
  for (std::thread& t : threads) t.join();
  bool stopped = std::any_of(results.begin(), results.end(),
                             [](Delivery d) { return d == Delivery::kStopped; });
  return stopped ? Delivery::kStopped : Delivery::kDone;
}

// Requests of at most max_samples_per_send samples, in order; a series longer than that is
// cut into consecutive requests (its samples stay in order; its encoded labels are shared).
Forwarder::Delivery Forwarder::SendShard(HttpClient& client, std::vector<EncodedSeries> series) {
  const size_t max = static_cast<size_t>(target_.queue.max_samples_per_send);
  std::vector<EncodedSeries> request;
  size_t in_request = 0;
  for (EncodedSeries& s : series) {
    if (in_request + s.samples.size() <= max) {  // the usual case: the whole series fits
      in_request += s.samples.size();
      request.push_back(std::move(s));
    } else {
      size_t begin = 0;
      while (begin < s.samples.size()) {
        size_t take = std::min(s.samples.size() - begin, max - in_request);
        EncodedSeries piece{s.labels, s.hash, {}};
        piece.samples.assign(s.samples.begin() + static_cast<ptrdiff_t>(begin),
                             s.samples.begin() + static_cast<ptrdiff_t>(begin + take));
        request.push_back(std::move(piece));
        in_request += take;
        begin += take;
        if (in_request == max) {
          if (Send(client, std::move(request)) == Delivery::kStopped) return Delivery::kStopped;
          request.clear();
          in_request = 0;
        }
      }
    }
    if (in_request == max) {
      if (Send(client, std::move(request)) == Delivery::kStopped) return Delivery::kStopped;
      request.clear();
      in_request = 0;
    }
  }
  if (!request.empty()) return Send(client, std::move(request));
  return Delivery::kDone;
}

Forwarder::Delivery Forwarder::Send(HttpClient& client, std::vector<EncodedSeries> series) {
  const size_t samples = SampleCount(series);
  const std::string body = EncodeWriteBody(series);
  remote::Backoff backoff(target_.queue.min_backoff, target_.queue.max_backoff);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  bool held = false, retrying = false;
  auto settle = [&] {
    if (held) holding_.fetch_sub(1);
    if (retrying) failing_.fetch_sub(1);
    if (holding_.load() == 0) blocked_.Set(0);
  };
  while (!stopping()) {
    auto result = client.Post(target_.url, body, RequestHeaders());
    const int status = result.ok() ? result->status : 0;
    metrics_.requests.Add({{"target", target_.name}, {"status_class", remote::StatusClass(status)}})
        .Increment();
    remote::WriteVerdict verdict = result.ok() ? remote::ClassifyWriteStatus(status)
                                               : remote::WriteVerdict{remote::WriteOutcome::kRetry};
    std::string reason = result.ok() ? "HTTP " + std::to_string(status) + ": " +
                                           remote::ReceiverMessage(result->body)
                                     : result.status().message();
    std::chrono::milliseconds retry_after(0);
    if (result.ok()) {
      auto it = result->headers.find("retry-after");
      if (it != result->headers.end()) {
        retry_after = remote::ParseRetryAfter(it->second, std::chrono::system_clock::now());
      }
    }
    switch (verdict.outcome) {
      case remote::WriteOutcome::kAccepted:
        if (retrying && failing_.load() == 1) {
          spdlog::info("forward target={} recovered", target_.name);
        }
        settle();
        sent_.Increment(static_cast<double>(samples));
        last_success_.Set(UnixSeconds(clock_.NowUnixMs()));
        return Delivery::kDone;
      case remote::WriteOutcome::kRetry: {
        if (!retrying) {
          retrying = true;
          if (failing_.fetch_add(1) == 0) {
            spdlog::warn("forward target={} failed, retrying url={} reason=\"{}\"", target_.name,
                         target_.url, reason);
          }
        }
        retried_.Increment(static_cast<double>(samples));
        UpdateBacklog();
        if (!Wait(backoff.Next(retry_after, unit(rng)))) break;
        continue;
      }
      case remote::WriteOutcome::kHold:
        if (!held) {
          held = true;
          if (holding_.fetch_add(1) == 0) {
            spdlog::warn(
                "forward target={} blocked, holding the backlog and retrying every {} url={} "
                "reason=\"{}\"",
                target_.name, FormatDuration(target_.queue.max_backoff), target_.url, reason);
          }
        }
        blocked_.Set(1);
        retried_.Increment(static_cast<double>(samples));
        UpdateBacklog();
        if (!Wait(std::max(target_.queue.max_backoff, retry_after))) break;
        continue;
      case remote::WriteOutcome::kSplit:
        if (series.size() > 1) {
          settle();
          std::vector<EncodedSeries> first(
              std::make_move_iterator(series.begin()),
              std::make_move_iterator(series.begin() + static_cast<ptrdiff_t>(series.size() / 2)));
          std::vector<EncodedSeries> second(
              std::make_move_iterator(series.begin() + static_cast<ptrdiff_t>(series.size() / 2)),
              std::make_move_iterator(series.end()));
          if (Send(client, std::move(first)) == Delivery::kStopped) return Delivery::kStopped;
          return Send(client, std::move(second));
        }
        [[fallthrough]];
      case remote::WriteOutcome::kDrop:
        settle();
        metrics_.dropped.Add({{"target", target_.name}, {"reason", verdict.reason}})
            .Increment(static_cast<double>(samples));
        spdlog::error("forward target={} refused, dropping samples={} series={} reason=\"{}\"",
                      target_.name, samples, series.size(), reason);
        return Delivery::kDone;
    }
  }
  settle();
  return Delivery::kStopped;
}

ForwardTargetState Forwarder::State() const {
  ForwardTargetState s;
  s.name = target_.name;
  s.url = target_.url;
  s.select = ForwardSelectName(target_.select);
  s.backlog_seconds = backlog_seconds_.Value();
  s.blocked = blocked_.Value() > 0;
  s.last_success_seconds = last_success_.Value();
  s.samples_sent = sent_.Value();
  return s;
}

// ---- ForwardManager ----

ForwardManager::ForwardManager(storage::Store& store, const CapacityProgress& capacity,
                               prometheus::Registry& registry, const Clock& clock)
    : store_(store), clock_(clock), metrics_(registry), capacity_(capacity) {}

ForwardManager::~ForwardManager() { Stop(); }

void ForwardManager::Apply(const std::vector<ForwardTarget>& targets) {
  std::map<std::string, const ForwardTarget*> wanted;
  for (const ForwardTarget& t : targets) wanted[t.name] = &t;
  for (auto it = forwarders_.begin(); it != forwarders_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && *w->second == it->second->target()) {
      ++it;
      continue;
    }
    bool removed = w == wanted.end();
    bool select_changed = !removed && w->second->select != it->second->target().select;
    it->second->Stop();
    if (removed || select_changed) {
      // Its cursor would keep the log (raw) for nothing; a target added again starts anew.
      const std::string name = ForwardCursorName(it->first);
      for (const std::string& c : {name, name + "#unit"}) {
        Status st = store_.DeleteCursor(c);
        if (!st.ok()) spdlog::error("forward cursor {} not deleted: {}", c, st.message());
      }
    }
    spdlog::info("forward target={} {}", it->first, removed ? "removed" : "changed, restarting");
    std::lock_guard lock(forwarders_mu_);
    it = forwarders_.erase(it);
  }
  // Cursors of targets that are gone from the configuration while the aggregator was down.
  for (const std::string& name : store_.CursorNames()) {
    if (!name.starts_with("forward/")) continue;
    const size_t hash = name.find('#');
    const std::string target = name.substr(8, hash == std::string::npos ? hash : hash - 8);
    if (wanted.count(target) > 0) continue;
    Status st = store_.DeleteCursor(name);
    if (st.ok()) spdlog::info("forward cursor {} of a removed target deleted", name);
  }
  for (const ForwardTarget& t : targets) {
    if (forwarders_.count(t.name) > 0) continue;
    auto f = std::make_unique<Forwarder>(t, store_, &capacity_, metrics_, clock_);
    f->Start();
    spdlog::info("forward target={} select={} url={} started", t.name, ForwardSelectName(t.select),
                 t.url);
    std::lock_guard lock(forwarders_mu_);
    forwarders_[t.name] = std::move(f);
  }
}

void ForwardManager::Stop() {
  for (auto& [name, f] : forwarders_) f->Stop();
  {
    std::lock_guard lock(forwarders_mu_);
    forwarders_.clear();
  }
}

std::vector<ForwardTargetState> ForwardManager::TargetStates() const {
  std::lock_guard lock(forwarders_mu_);
  std::vector<ForwardTargetState> out;
  out.reserve(forwarders_.size());
  for (const auto& [name, f] : forwarders_) out.push_back(f->State());
  return out;
}

}  // namespace suanli::exporters
