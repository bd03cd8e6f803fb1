// CapacityRecorder: evaluates the capacity model every `capacity.evaluation_interval` at
// wall-clock-aligned times (multiples of the interval since the Unix epoch, so both replicas of
// an HA pair stamp identical times) and appends the dc's figures (suanli_dc_*, suanli_link_*)
// to the store: the dc's capacity history, which the status page charts, remote_read serves,
// and `select: capacity` targets read (the store is their queue, so an outage of a target or a
// restart loses no evaluation). Owned by the aggregator; runs while `capacity.record` is on
// (the default) or a capacity target exists.
// Units: Unix ms. Thread-safety: Apply/Start/Stop from one thread; progress() from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "aggregator/capacity/capacity_model.h"
#include "aggregator/storage/store.h"
#include "core/clock.h"
#include "exporters/remote_write/forward_config.h"
#include "exporters/remote_write/forward_source.h"

namespace suanli::exporters {

// The first aligned evaluation time after `now_ms`.
int64_t NextEvaluationMs(int64_t now_ms, std::chrono::milliseconds interval);

// Whether evaluations are recorded: always with `capacity.record`, else while a `select:
// capacity` target reads them.
bool CapacityRecordingWanted(bool record, const std::vector<ForwardTarget>& targets);

class CapacityRecorder {
 public:
  CapacityRecorder(storage::Store& store, capacity::CapacityModel& model, const Clock& clock);
  ~CapacityRecorder();  // Stop()s

  // Runs every `interval` while `on` (start and reload): a changed interval restarts it.
  void Apply(bool on, std::chrono::milliseconds interval);
  bool running() const { return running_; }
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
  bool running_ = false;  // Apply's and Stop's thread only
  std::chrono::milliseconds interval_{0};
};

}  // namespace suanli::exporters
