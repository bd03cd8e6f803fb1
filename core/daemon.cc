#include "core/daemon.h"

#include <csignal>

namespace suanli {
namespace {
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

}  // namespace suanli
