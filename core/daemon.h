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

// Runs `on_reload` for each SIGHUP until SIGTERM/SIGINT arrives or RequestShutdown is called.
void ServeUntilTerminated(const std::function<void()>& on_reload);

// Ends ServeUntilTerminated as SIGTERM does, from any thread, and makes the process exit with
// `exit_code` (RunDaemon returns RequestedExitCode()): a daemon that cannot go on (its store
// failed) stops cleanly and exits non-zero, so that its service manager restarts it. The first
// non-zero code asked for wins.
void RequestShutdown(int exit_code);
// The exit code asked for by RequestShutdown; 0 when none.
int RequestedExitCode();

}  // namespace suanli
