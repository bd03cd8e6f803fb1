// suanli-aggregator: receives remote_write from agents, stores samples in RocksDB, and serves
// the capacity of its data centers and regions. See README.md and deploy/.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "aggregator/aggregator.h"
#include "aggregator/aggregator_config.h"
#include "core/clock.h"
#include "core/daemon.h"
#include "core/logging.h"

using namespace suanli;

int main(int argc, char** argv) {
  FlagSet flags("suanli-aggregator");
  aggregator::AddAggregatorFlags(flags);
  if (Status st = flags.Parse(argc, argv); !st.ok()) {
    std::fprintf(stderr, "suanli-aggregator: %s\n", st.message().c_str());
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << flags.Help();
    return 0;
  }
  if (flags.GetBool("version")) {
    std::cout << "suanli-aggregator " << SUANLI_VERSION << "\n";
    return 0;
  }
  auto config = aggregator::LoadAggregatorConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "suanli-aggregator: configuration error: %s\n",
                 config.status().message().c_str());
    return 1;
  }
  if (flags.GetBool("config.check")) {
    std::printf("%s: configuration OK\n", config->source.c_str());
    return 0;
  }
  if (Status st = ConfigureLogging(config->log_level, config->log_format); !st.ok()) {
    std::fprintf(stderr, "suanli-aggregator: %s\n", st.message().c_str());
    return 1;
  }

  BlockSignals();
  aggregator::Aggregator agg(*config, SystemClock::Get());
  if (Status st = agg.Start(); !st.ok()) {
    spdlog::critical("cannot start: {}", st.message());
    return 1;
  }
  spdlog::info("suanli-aggregator {} started config={}", SUANLI_VERSION, config->source);
  ServeUntilTerminated([&] {
    auto next = aggregator::LoadAggregatorConfig(flags);
    if (!next.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", next.status().message());
      return;
    }
    if (Status st = ConfigureLogging(next->log_level, next->log_format); !st.ok()) {
      spdlog::error("reload failed, keeping the old configuration: {}", st.message());
      return;
    }
    agg.Reload(*next);
  });
  spdlog::info("shutting down");
  agg.Stop();
  spdlog::info("stopped");
  return 0;
}
