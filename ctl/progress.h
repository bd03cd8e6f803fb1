// A progress bar on stderr for long store scans: drawn only when stderr is a terminal and the
// work has taken more than a second (short runs and pipes print nothing), erased at the end.
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace suanli::ctl {

class ProgressBar {
 public:
  // `enabled` false: never draws (tests, --no-progress).
  explicit ProgressBar(bool enabled);
  ~ProgressBar() { Finish(); }

  // done of total units, and what is being worked on; cheap to call often.
  void Update(uint64_t done, uint64_t total, const std::string& what);
  // Erases the bar if one was drawn.
  void Finish();

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace suanli::ctl
