// libFuzzer target: the configuration loaders (YAML through yaml-cpp and ConfigMap). The first
// byte picks the agent's, the aggregator's or the web configuration; the rest is the file.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/agent_config.h"
#include "aggregator/aggregator_config.h"
#include "core/web_config.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string yaml(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      suanli::agent::ParseAgentConfig("fuzz.yml", yaml).IgnoreError();
      break;
    case 1:
      suanli::aggregator::ParseAggregatorConfig("fuzz.yml", yaml).IgnoreError();
      break;
    case 2:
      // The web config reads the files it names (certificates, token files): keep the fuzzer
      // away from device files and pseudo-files that never end.
      if (yaml.find("/dev") != std::string::npos || yaml.find("/proc") != std::string::npos ||
          yaml.find("/sys") != std::string::npos) {
        return 0;
      }
      suanli::ParseWebConfig("fuzz.yml", yaml, "/nonexistent").IgnoreError();
      break;
  }
  return 0;
}
