#include "agent/collectors/power/bmc_poller.h"

#include <algorithm>
#include <utility>

namespace suanli::agent {

BmcPoller::BmcPoller(std::chrono::milliseconds interval, std::function<void()> poll)
    : interval_(interval.count() > 0 ? interval : std::chrono::milliseconds(1000)),
      poll_(std::move(poll)) {}

BmcPoller::~BmcPoller() { Stop(); }

void BmcPoller::Start() {
  std::lock_guard lock(mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

bool BmcPoller::WaitForFirstPoll(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return polls_done_ > 0 || stop_; }) &&
         polls_done_ > 0;
}

void BmcPoller::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t BmcPoller::polls_done() const {
  std::lock_guard lock(mu_);
  return polls_done_;
}

bool BmcPoller::stopping() const {
  std::lock_guard lock(mu_);
  return stop_;
}

void BmcPoller::RestAtLeast(std::chrono::milliseconds rest) {
  std::lock_guard lock(mu_);
  rest_ = std::max(rest_, rest);
}

void BmcPoller::Loop() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mu_);
  while (!stop_) {
    Clock::time_point start = Clock::now();
    lock.unlock();
    poll_();
    lock.lock();
    ++polls_done_;
    cv_.notify_all();
    Clock::time_point end = Clock::now();
    Clock::time_point next = start + interval_;
    if (next <= end) next = end + interval_;  // overran: rest, never poll a slow BMC back to back
    next = std::max(next, end + rest_);
    rest_ = std::chrono::milliseconds(0);
    cv_.wait_until(lock, next, [this] { return stop_; });
  }
}

}  // namespace suanli::agent
