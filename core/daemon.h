// Start-up and signal plumbing shared by both binaries' main().
// Thread-safety: BlockSignals() must run before any thread starts; WaitForSignal() on the main
// thread only.
#pragma once

#include <functional>
#include <string>

namespace suanli {

// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and so in every thread started after), so
// that WaitForSignal() receives them synchronously. SIGPIPE is ignored.
void BlockSignals();

enum class DaemonSignal { kTerminate, kReload };
// Waits for SIGTERM/SIGINT (kTerminate) or SIGHUP (kReload).
DaemonSignal WaitForSignal();

// Runs `on_reload` for each SIGHUP until SIGTERM/SIGINT arrives.
void ServeUntilTerminated(const std::function<void()>& on_reload);

}  // namespace suanli
