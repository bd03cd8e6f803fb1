// CapacityRecorder: evaluates the capacity model every `capacity.evaluation_interval` at
// wall-clock-aligned times (multiples of the interval since the Unix epoch, so both replicas of
// an HA pair stamp identical times) and appends the dc's figures (suanli_dc_*, suanli_link_*)
// to the store, where `select: capacity` targets read them: the store is their queue, and an
// outage of a target or a restart loses no evaluation. Runs while a capacity target exists.
// Units: Unix ms. Thread-safety: Start/Stop from one thread; progress() from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "aggregator/capacity/capacity_model.h"
#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "exporters/remote_write/forward_source.h"

namespace suanli::exporters {

// The first aligned evaluation time after `now_ms`.
int64_t NextEvaluationMs(int64_t now_ms, std::chrono::milliseconds interval);

class CapacityRecorder {
 public:
  CapacityRecorder(storage::Store& store, capacity::CapacityModel& model, const Clock& clock);
  ~CapacityRecorder();  // Stop()s

  void Start(std::chrono::milliseconds interval);
  void Stop();
  // Records the evaluation at `at_ms` now (the thread's work; tests call it directly).
  Status RecordAt(int64_t at_ms);
  const CapacityProgress& progress() const { return progress_; }

 private:
  void Run(std::chrono::milliseconds interval);

  storage::Store& store_;
  capacity::CapacityModel& model_;
  const Clock& clock_;
  CapacityProgress progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace suanli::exporters
