// WriteHandler: POST /api/v1/write, the remote_write 1.0 receiver. A request is checked whole
// (headers, snappy, protobuf, every label set) before anything is stored; it is answered 204
// only once the Store reports it durable. Rejections are 4xx with a one-line reason and are
// counted by reason; nothing of a rejected request is stored.
// Thread-safety: Handle() is called concurrently from HTTP worker threads.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <string>

#include "aggregator/aggregator_config.h"
#include "aggregator/capacity/capacity_model.h"
#include "aggregator/storage/store.h"
#include "core/http_server.h"

namespace suanli::aggregator {

class WriteHandler {
 public:
  WriteHandler(storage::Store& store, capacity::CapacityModel& model, prometheus::Registry& registry);

  HttpResponse Handle(const HttpRequest& request);
  void set_limits(const WriteLimits& limits);

 private:
  HttpResponse Reject(int status, const char* reason, const std::string& message);

  storage::Store& store_;
  capacity::CapacityModel& model_;
  std::atomic<int64_t> max_decoded_bytes_;
  prometheus::Counter& samples_ingested_;
  prometheus::Counter& requests_accepted_;
  prometheus::Family<prometheus::Counter>& rejected_;
  std::map<std::string, prometheus::Counter*> rejected_by_reason_;  // filled at construction
};

}  // namespace suanli::aggregator
