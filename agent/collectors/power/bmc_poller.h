// BmcPoller: runs a collector's poll function on a thread of its own, every `interval`, so that
// a collector whose source can stall (a BMC over IPMI or Redfish) answers Collect() from its
// latest result instead of waiting on the source. The sampler's deadline runner (may_block) is
// not enough on its own: it discards a late result and skips the collector while a call is still
// running, so one slow BMC answer would cost the figures of every sweep it overlaps.
//
// Scheduling: fixed rate (a poll starts `interval` after the previous one started) while polls
// are shorter than the interval; a poll that overran is followed by a full interval of rest, so
// that a slow BMC is never polled back to back. The poll function must return on its own (its
// requests carry their own timeouts); Stop() waits for it.
// Thread-safety: Start(), WaitForFirstPoll() and Stop() may be called from any thread; `poll`
// runs on the poller's thread only and must guard what it shares with the collector.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace suanli::agent {

class BmcPoller {
 public:
  BmcPoller(std::chrono::milliseconds interval, std::function<void()> poll);
  ~BmcPoller();  // Stop()s
  BmcPoller(const BmcPoller&) = delete;
  BmcPoller& operator=(const BmcPoller&) = delete;

  // Starts the thread on the first call; later calls do nothing. Not done by the constructor:
  // collectors are also built for --config.check, where nothing may touch the host.
  void Start();
  // Waits until the first poll has finished or `timeout` has passed; true when it finished.
  bool WaitForFirstPoll(std::chrono::milliseconds timeout);
  // Asks the thread to stop and joins it (after the poll in progress, if any, returns).
  void Stop();

  // From the poll function: wait at least `rest` before the next poll (once). For a source that
  // is not there at all (no IPMI device): looking for it every interval is wasted work.
  void RestAtLeast(std::chrono::milliseconds rest);

  // Polls finished so far.
  uint64_t polls_done() const;
  // True once Stop() was called: a poll of several requests checks it between them, so that
  // stopping waits for one request at most.
  bool stopping() const;

 private:
  void Loop();

  const std::chrono::milliseconds interval_;
  const std::function<void()> poll_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stop_ = false;
  uint64_t polls_done_ = 0;
  std::chrono::milliseconds rest_{0};  // set by RestAtLeast for the next wait
  std::thread thread_;
};

}  // namespace suanli::agent
