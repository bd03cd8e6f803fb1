// suanli-aggregator: receives remote_write from agents, stores samples in RocksDB, and serves
// the capacity of its data centers and regions. See README.md and deploy/.
#include "aggregator/aggregator.h"
#include "aggregator/aggregator_config.h"
#include "core/daemon_main.h"

int main(int argc, char** argv) {
  using namespace suanli;
  FlagSet flags("suanli-aggregator");
  aggregator::AddAggregatorFlags(flags);
  return RunDaemon<aggregator::AggregatorConfig, aggregator::Aggregator>(
      "suanli-aggregator", flags, argc, argv, aggregator::LoadAggregatorConfig);
}
