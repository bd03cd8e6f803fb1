// MeminfoCollector: every /proc/meminfo line as a gauge, with node_exporter's names:
//   "Key: N kB"  -> node_memory_<Key>_bytes = N * 1024
//   "Key: N"     -> node_memory_<Key>        = N   (unitless: HugePages_Total, ...)
// "Active(anon)" becomes Active_anon; any other character outside [A-Za-z0-9_] becomes '_'.
// Keys the kernel does not print (MemAvailable before 3.14, ...) are simply absent. Unlike
// node_exporter >= 1.9, which exports a fixed list, every key is exported (as node_exporter did
// up to 1.8), so Zswap, Percpu, KReclaimable, ... are not lost on newer kernels.
//
// Metric names are built once per key and kept; a steady-state sweep allocates no names.
// A missing /proc/meminfo, or no valid line, is Failed; malformed lines are skipped.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/proc_file.h"

namespace suanli::agent {

class MeminfoCollector : public Collector {
 public:
  explicit MeminfoCollector(const HostPaths& paths);
  CollectResult Collect(Sweep& out) override;

 private:
  struct Key {
    std::string key;   // as in the file, e.g. "Active(anon)"
    bool bytes;        // had a "kB" unit
    std::string name;  // node_memory_Active_anon_bytes
    std::string help;
    uint64_t read = 0;  // the read that last saw it, to drop a key listed twice
  };
  // Finds or adds the name for (key, bytes); `hint` is where it was in the last read.
  Key& Lookup(std::string_view key, bool bytes, size_t hint);

  ProcFile meminfo_;
  std::vector<Key> keys_;  // in file order, so Lookup's hint almost always hits
  uint64_t reads_ = 0;
};

}  // namespace suanli::agent
