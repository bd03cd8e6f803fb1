// suanli-agent: samples this server's power, utilization and links, and pushes them by
// Prometheus remote_write. See README.md and deploy/agent.example.yml.
#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/collectors/registry.h"
#include "core/daemon_main.h"

int main(int argc, char** argv) {
  using namespace suanli;
  std::vector<std::string> collector_names;
  for (const auto& spec : agent::AllCollectors()) collector_names.push_back(spec.name);
  FlagSet flags("suanli-agent");
  agent::AddAgentFlags(flags, collector_names);
  return RunDaemon<agent::AgentConfig, agent::Agent>("suanli-agent", flags, argc, argv,
                                                     agent::LoadAgentConfig);
}
