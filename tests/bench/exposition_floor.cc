// The least resident memory of a process built on the libraries DESIGN.md fixes for an agent's
// own metrics: a prometheus-cpp registry rendered once with its TextSerializer, a line
// formatted with fmt (spdlog's formatter), and one thread waking at the sampling interval.
// Nothing is read, encoded, spooled or served. tests/bench/agent_vs_node_exporter.sh runs it
// beside the agent: its RSS is the share of node_exporter's that no agent on these libraries
// can go below.
//
//   exposition_floor INTERVAL_MS
#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  const long interval_ms = argc > 1 ? std::atol(argv[1]) : 0;
  if (interval_ms <= 0) {
    std::fprintf(stderr, "usage: %s INTERVAL_MS (a positive number of milliseconds)\n", argv[0]);
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto& sweeps = prometheus::BuildCounter()
                     .Name("floor_sweeps_total")
                     .Help("Wake-ups of this program.")
                     .Register(*registry)
                     .Add({});
  std::thread sampler([&sweeps, interval_ms] {
    for (;;) {
      sweeps.Increment();
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
  });
  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  std::fputs(fmt::format("rendered {} bytes of metrics\n", text.size()).c_str(), stderr);
  sampler.join();
}
