// suanli-agent: samples this server's power, utilization and links, and pushes them by
// Prometheus remote_write. See README.md and deploy/agent.example.yml.
#include <malloc.h>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/collectors/registry.h"
#include "core/daemon_main.h"

int main(int argc, char** argv) {
  using namespace suanli;
  // One malloc arena for all threads (each thread would otherwise get its own, 64 MB of address
  // space and their own resident pages; the agent's threads allocate little and rarely at once),
  // and freed memory kept up to 1 MiB instead of being trimmed and faulted in again every sweep.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  std::vector<std::string> collector_names;
  for (const auto& spec : agent::AllCollectors()) collector_names.push_back(spec.name);
  FlagSet flags("suanli-agent");
  agent::AddAgentFlags(flags, collector_names);
  return RunDaemon<agent::AgentConfig, agent::Agent>("suanli-agent", flags, argc, argv,
                                                     agent::LoadAgentConfig);
}
