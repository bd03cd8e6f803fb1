// RescanTimer: how often a collector looks again for a sysfs class directory (or for entries in
// it) that it found absent. Such a directory appears only when a driver is loaded (intel_rapl_msr,
// a hwmon chip driver), which is rare, while looking costs a failed path walk in the kernel every
// sweep: on a host without powercap and hwmon (most containers and VMs) those openat calls were
// ~5% of the sampling thread at 100 ms sweeps. So an absent directory is looked for again at most
// every kInterval (60 s): a driver loaded later is picked up within a minute. A directory that
// is present is not rate-limited (each collector says how it follows changes there).
// Thread-safety: not thread-safe; owned by one collector.
#pragma once

#include <chrono>
#include <functional>
#include <utility>

namespace suanli::agent {

class RescanTimer {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::chrono::seconds kInterval{60};

  // `now`: a seam for tests (they advance a fake clock instead of waiting a minute).
  explicit RescanTimer(Clock now = &std::chrono::steady_clock::now) : now_(std::move(now)) {}

  // True when a look is due: always, unless the last look found nothing less than kInterval ago.
  bool Due() const { return !missed_ || now_() - missed_at_ >= kInterval; }
  // The look found nothing: the next one is due in kInterval.
  void Missed() {
    missed_ = true;
    missed_at_ = now_();
  }
  // The look found something: later looks are not rate-limited.
  void Found() { missed_ = false; }

 private:
  Clock now_;
  bool missed_ = false;
  std::chrono::steady_clock::time_point missed_at_{};
};

}  // namespace suanli::agent
