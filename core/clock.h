// Clock: the time seam. Production code asks an injected Clock, tests pass a FakeClock.
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace suanli {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time as Unix milliseconds (sample timestamps).
  virtual int64_t NowUnixMs() const = 0;
  // Monotonic time for intervals and timeouts.
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;
  // A process-wide instance (stateless).
  static const SystemClock& Get();
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_ms = 1'700'000'000'000) : unix_ms_(unix_ms) {}
  int64_t NowUnixMs() const override { return unix_ms_.load(); }
  std::chrono::steady_clock::time_point SteadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(unix_ms_.load()));
  }
  void AdvanceMs(int64_t ms) { unix_ms_ += ms; }

 private:
  std::atomic<int64_t> unix_ms_;
};

}  // namespace suanli
