// Remote_write receivers that answer as the distributed stores document it, for the
// forwarder's tests (these stores cannot run here):
//   Mimir            POST /api/v1/push; X-Scope-OrgID required (401 without); HA dedupe on
//                    cluster/__replica__ labels: a non-elected replica gets 202 and nothing is
//                    stored; 400 "out of order sample"; 429 with Retry-After over the rate limit
//   Thanos Receive   POST /api/v1/receive; tenant in THANOS-TENANT (default tenant without);
//                    409 for out-of-order samples and duplicates with another value; 503 when
//                    the replication quorum is not reached
//   VictoriaMetrics  POST /insert/<tenant>/prometheus/api/v1/write; any sample order; 503 when
//                    overloaded
// Every kind can be told to fail the next requests (FailNext), to refuse bodies over a size
// (413), and to require a bearer token (401 otherwise).
// Thread-safety: the handler runs on the server's threads; the accessors lock.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/http_server.h"
#include "core/remote_codec.h"

namespace suanli::exporters::testing {

class BackendReceiver {
 public:
  enum class Kind { kMimir, kThanos, kVictoriaMetrics, kPrometheus };

  explicit BackendReceiver(Kind kind) : kind_(kind) {
    HttpServer::Options o;
    o.listen_address = "127.0.0.1:0";
    o.io_threads = 2;
    o.worker_threads = 4;
    o.max_body_bytes = 64 << 20;
    server_ = std::make_unique<HttpServer>(o);
    server_->Route("POST", Path(), [this](const HttpRequest& r) { return Handle(r); });
    Status st = server_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }

  std::string Path() const {
    switch (kind_) {
      case Kind::kMimir:
        return "/api/v1/push";
      case Kind::kThanos:
        return "/api/v1/receive";
      case Kind::kVictoriaMetrics:
        return "/insert/0/prometheus/api/v1/write";
      case Kind::kPrometheus:
        break;
    }
    return "/api/v1/write";
  }
  std::string url() const { return "http://" + server_->address() + Path(); }

  void FailNext(int n, int status, const std::string& retry_after = "") {
    std::lock_guard lock(mu_);
    for (int i = 0; i < n; ++i) failures_.push_back({status, retry_after});
  }
  void RequireToken(const std::string& token) {
    std::lock_guard lock(mu_);
    token_ = token;
  }
  void MaxBodyBytes(size_t n) {
    std::lock_guard lock(mu_);
    max_body_ = n;
  }
  // Mimir HA: the replica whose samples are stored; others get 202.
  void ElectReplica(const std::string& replica) {
    std::lock_guard lock(mu_);
    elected_ = replica;
  }

  // Stored samples by series (Labels::ToString()), in arrival order.
  std::map<std::string, std::vector<Sample>> series() const {
    std::lock_guard lock(mu_);
    return series_;
  }
  size_t samples() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [k, v] : series_) n += v.size();
    return n;
  }
  std::vector<int> statuses() const {
    std::lock_guard lock(mu_);
    return statuses_;
  }
  std::vector<std::map<std::string, std::string>> headers() const {
    std::lock_guard lock(mu_);
    return headers_;
  }

 private:
  HttpResponse Reply(int status, const std::string& body, const std::string& retry_after = "") {
    statuses_.push_back(status);
    HttpResponse r = HttpResponse::Text(status, body);
    if (!retry_after.empty()) r.headers["Retry-After"] = retry_after;
    if (status == 204) r.content_type.clear();
    return r;
  }

  HttpResponse Handle(const HttpRequest& r) {
    std::lock_guard lock(mu_);
    headers_.push_back(r.headers);
    if (!failures_.empty()) {
      auto [status, retry_after] = failures_.front();
      failures_.pop_front();
      const char* why =
          status == 503 ? (kind_ == Kind::kThanos ? "2 of 3 ingestors failed: quorum not reached"
                                                  : "too many concurrent inserts")
                        : "rate limited: ingestion rate limit exceeded";
      return Reply(status, why, retry_after);
    }
    if (!token_.empty() && r.Header("authorization") != "Bearer " + token_) {
      return Reply(401, "invalid or expired token");
    }
    if (kind_ == Kind::kMimir && r.Header("x-scope-orgid").empty()) {
      return Reply(401, "no org id");
    }
    if (max_body_ > 0 && r.body.size() > max_body_) return Reply(413, "request body too large");
    auto req = remote::DecodeWriteRequest(r.body, 64 << 20);
    if (!req.ok()) return Reply(400, req.status().message());
    if (kind_ == Kind::kMimir && !elected_.empty()) {
      for (const TimeSeries& ts : req->series) {
        std::string_view replica = ts.labels.Get("__replica__");
        if (!replica.empty() && replica != elected_) return Reply(202, "");
      }
    }
    // Check the whole request, then store it (these stores refuse a bad request whole).
    for (const TimeSeries& ts : req->series) {
      const auto& have = series_[ts.labels.ToString()];
      int64_t last = have.empty() ? INT64_MIN : have.back().timestamp_ms;
      for (const Sample& s : ts.samples) {
        if (kind_ == Kind::kVictoriaMetrics) break;  // takes any order
        if (s.timestamp_ms < last || (s.timestamp_ms == last && s.value != have.back().value)) {
          if (kind_ == Kind::kThanos) return Reply(409, "out of order samples");
          return Reply(400, "out of order sample");
        }
        last = s.timestamp_ms;
      }
    }
    for (const TimeSeries& ts : req->series) {
      auto& have = series_[ts.labels.ToString()];
      for (const Sample& s : ts.samples) {
        if (!have.empty() && have.back().timestamp_ms == s.timestamp_ms) continue;  // exact repeat
        have.push_back(s);
      }
    }
    return Reply(kind_ == Kind::kMimir ? 200 : 204, "");
  }

  const Kind kind_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  std::deque<std::pair<int, std::string>> failures_;
  std::string token_;
  std::string elected_;
  size_t max_body_ = 0;
  std::map<std::string, std::vector<Sample>> series_;
  std::vector<int> statuses_;
  std::vector<std::map<std::string, std::string>> headers_;
};

}  // namespace suanli::exporters::testing
