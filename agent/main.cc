// suanli-agent: samples this server's power, utilization and links, and pushes them by
// Prometheus remote_write. See README.md and deploy/agent.example.yml.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/collectors/registry.h"
#include "core/clock.h"
#include "core/daemon.h"
#include "core/logging.h"

using namespace suanli;

int main(int argc, char** argv) {
  std::vector<std::string> collector_names;
  for (const auto& spec : agent::AllCollectors()) collector_names.push_back(spec.name);
  FlagSet flags("suanli-agent");
  agent::AddAgentFlags(flags, collector_names);
  if (Status st = flags.Parse(argc, argv); !st.ok()) {
    std::fprintf(stderr, "suanli-agent: %s\n", st.message().c_str());
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << flags.Help();
    return 0;
  }
  if (flags.GetBool("version")) {
    std::cout << "suanli-agent " << SUANLI_VERSION << "\n";
    return 0;
  }
  auto config = agent::LoadAgentConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "suanli-agent: configuration error: %s\n",
                 config.status().message().c_str());
    return 1;
  }
  if (flags.GetBool("config.check")) {
    std::printf("%s: configuration OK\n", config->source.c_str());
    return 0;
  }
  if (Status st = ConfigureLogging(config->log_level, config->log_format); !st.ok()) {
    std::fprintf(stderr, "suanli-agent: %s\n", st.message().c_str());
    return 1;
  }

  BlockSignals();
  agent::Agent agent(*config, SystemClock::Get());
  if (Status st = agent.Start(); !st.ok()) {
    spdlog::critical("cannot start: {}", st.message());
    return 1;
  }
  spdlog::info("suanli-agent {} started config={}", SUANLI_VERSION, config->source);
  ServeUntilTerminated([&] {
    auto next = agent::LoadAgentConfig(flags);
    if (!next.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", next.status().message());
      return;
    }
    if (Status st = ConfigureLogging(next->log_level, next->log_format); !st.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", st.message());
      return;
    }
    agent.Reload(*next);
  });
  spdlog::info("shutting down");
  agent.Stop();
  return 0;
}
