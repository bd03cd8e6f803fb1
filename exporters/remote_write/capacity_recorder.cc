#include "exporters/remote_write/capacity_recorder.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "exporters/prometheus/capacity_metrics.h"

namespace suanli::exporters {

int64_t NextEvaluationMs(int64_t now_ms, std::chrono::milliseconds interval) {
  return rollup::IntervalStart(now_ms, interval.count()) + interval.count();
}

bool CapacityRecordingWanted(bool record, const std::vector<ForwardTarget>& targets) {
  return record || std::any_of(targets.begin(), targets.end(), [](const ForwardTarget& t) {
           return t.select == ForwardSelect::kCapacity;
         });
}

CapacityRecorder::CapacityRecorder(storage::Store& store, capacity::CapacityModel& model,
                                   const Clock& clock)
    : store_(store), model_(model), clock_(clock) {}

CapacityRecorder::~CapacityRecorder() { Stop(); }

void CapacityRecorder::Apply(bool on, std::chrono::milliseconds interval) {
  if (on && (!running_ || interval != interval_)) {
    Start(interval);
    spdlog::info("capacity evaluations recorded every {}ms", interval.count());
  } else if (!on && running_) {
    Stop();
    spdlog::info("capacity evaluations no longer recorded");
  }
}

void CapacityRecorder::Start(std::chrono::milliseconds interval) {
  Stop();
  std::lock_guard lock(mu_);
  stopping_ = false;
  running_ = true;
  interval_ = interval;
  thread_ = std::thread([this, interval] { Run(interval); });
}

void CapacityRecorder::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

Status CapacityRecorder::RecordAt(int64_t at_ms) {
  std::vector<TimeSeries> series = DcCapacitySeries(model_.Snapshot(at_ms), at_ms);
  Status st = Status::Ok();
  if (!series.empty()) {
    auto appended = store_.Append(series);
    if (!appended.ok()) st = appended.status();
  }
  // Even when empty or failed: targets move past this time (nothing of it can come later).
  progress_.last_recorded_ms.store(at_ms);
  return st;
}

void CapacityRecorder::Run(std::chrono::milliseconds interval) {
  pthread_setname_np(pthread_self(), "capacity-rec");
  bool failing = false;
  while (true) {
    const int64_t now = clock_.NowUnixMs();
    const int64_t at = NextEvaluationMs(now, interval);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(at - now), [this] { return stopping_; })) {
        return;
      }
    }
    if (clock_.NowUnixMs() < at) continue;  // woke early
    Status st = RecordAt(at);
    if (!st.ok() && !failing) {
      spdlog::error("capacity evaluation not recorded at={} reason=\"{}\"", at, st.message());
    }
    failing = !st.ok();
  }
}

}  // namespace suanli::exporters
