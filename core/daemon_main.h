// RunDaemon: the main() both binaries share: parse flags, --help/--version, load and
// --config.check the configuration, configure logging, start the daemon, reload it on SIGHUP
// (a bad file keeps the old configuration and the log says why) and stop it on SIGTERM or
// RequestShutdown (then the exit code is the one it asked for).
// Config needs `source`, `log_level` and `log_format`; Daemon is built from (Config, Clock) and
// has Start(), Reload(Config) and Stop().
// Thread-safety: call once, from main().
#pragma once

#include <spdlog/spdlog.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include "core/clock.h"
#include "core/daemon.h"
#include "core/flags.h"
#include "core/logging.h"
#include "core/status.h"

namespace suanli {

template <typename Config, typename Daemon>
int RunDaemon(const std::string& name, FlagSet& flags, int argc, char** argv,
              const std::function<Result<Config>(const FlagSet&)>& load) {
  if (Status st = flags.Parse(argc, argv); !st.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), st.message().c_str());
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << flags.Help();
    return 0;
  }
  if (flags.GetBool("version")) {
    std::cout << name << " " << SUANLI_VERSION << "\n";
    return 0;
  }
  Result<Config> config = load(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "%s: configuration error: %s\n", name.c_str(),
                 config.status().message().c_str());
    return 1;
  }
  if (flags.GetBool("config.check")) {
    std::printf("%s: configuration OK\n", config->source.c_str());
    return 0;
  }
  if (Status st = ConfigureLogging(config->log_level, config->log_format); !st.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), st.message().c_str());
    return 1;
  }

  BlockSignals();  // before Start(): every thread it starts inherits the mask
  Daemon daemon(*config, SystemClock::Get());
  if (Status st = daemon.Start(); !st.ok()) {
    spdlog::critical("cannot start: {}", st.message());
    return 1;
  }
  spdlog::info("{} {} started config={}", name, SUANLI_VERSION, config->source);
  ServeUntilTerminated([&] {
    Result<Config> next = load(flags);
    if (!next.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", next.status().message());
      return;
    }
    if (Status st = ConfigureLogging(next->log_level, next->log_format); !st.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", st.message());
      return;
    }
    daemon.Reload(*next);
  });
  spdlog::info("shutting down");
  daemon.Stop();
  const int exit_code = RequestedExitCode();
  if (exit_code != 0) {
    spdlog::info("stopped, exit code {}", exit_code);
  } else {
    spdlog::info("stopped");
  }
  return exit_code;
}

}  // namespace suanli
