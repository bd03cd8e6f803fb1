#include "core/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>

namespace suanli {
namespace {
std::atomic<int> requested_exit_code{0};

sigset_t DaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void BlockSignals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set = DaemonSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

DaemonSignal WaitForSignal() {
  sigset_t set = DaemonSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) return DaemonSignal::kReload;
    return DaemonSignal::kTerminate;
  }
}

void ServeUntilTerminated(const std::function<void()>& on_reload) {
  while (WaitForSignal() == DaemonSignal::kReload) on_reload();
}

void RequestShutdown(int exit_code) {
  int none = 0;
  requested_exit_code.compare_exchange_strong(none, exit_code);
  // To the process, not this thread: the main thread's sigwait takes it (every thread blocks
  // SIGTERM, see BlockSignals).
  kill(getpid(), SIGTERM);
}

int RequestedExitCode() { return requested_exit_code.load(); }

}  // namespace suanli
