// The collector framework's contract. A collector reads one source (a /proc file, a sysfs
// class, a device) and adds metric families to the sweep; the framework (sampler.h) owns
// scheduling, timeouts, self-metrics and the "no data" outcome.
// Thread-safety: a Collector instance is called from one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/labels.h"
#include "core/sample.h"

namespace suanli::agent {

// One sample of a family: label pairs (without __name__ and without the agent's static
// labels) and a value.
struct Point {
  std::vector<Label> labels;
  double value = 0;
};

struct Family {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;  // kCounter, kGauge or kInfo-like gauges
  std::vector<Point> points;
};

// The output of one sweep: families in the order they were first added.
//
// Recycling: Recycle() starts a new sweep in the storage of the previous one. While the new
// sweep has the previous one's shape (the same families in the same order, the same label sets:
// the steady state), Add() overwrites values in place and allocates nothing; families, points
// and labels that differ are inserted, moved or reassigned, so the content is always exactly
// what a fresh Sweep would hold. Finish() then drops what the new sweep did not refill; until
// it is called, families() and PointCount() may still show the previous sweep's points, and
// Find() the points of a family that the new sweep did not refill. FinishPoints() drops those
// points but keeps the previous sweep's families that were not added again yet: families
// derived from the collectors' (whole-server power, links) are added after it, in their usual
// place, so that the shape stays the same (Finish() before them dropped and re-added them,
// a new shape every sweep).
//
// Shape: shape_id() names the sweep's current shape (family names, help and types in order, and
// each point's label set; not the values). Equal ids mean equal shapes, in any two Sweeps: an id
// is never reused, and a sweep gets a new one after any change of shape. A recycled sweep that
// was refilled with the same shape keeps its id, so that a consumer that has already processed
// that shape (WriteRequestEncoder) can skip comparing names and labels again.
// Thread-safety: not thread-safe; each collector writes its own Sweep.
class Sweep {
 public:
  Sweep() = default;
  Sweep(const Sweep&) = default;
  Sweep& operator=(const Sweep&) = default;
  // The moved-from sweep is empty, and gets a new shape id.
  Sweep(Sweep&& other) noexcept;
  Sweep& operator=(Sweep&& other) noexcept;

  // Adds a point to family `name`, creating the family (with help and type) on first use.
  // Collectors keep their label sets and pass them by reference: copied here, never rebuilt.
  void Add(std::string_view name, std::string_view help, MetricType type,
           const std::vector<Label>& labels, double value);
  void Add(std::string_view name, std::string_view help, MetricType type,
           std::vector<Label>&& labels, double value);
  // Moves every point of `other` (a finished sweep) here, as if added in its order (families
  // merged by name); `other` is left empty.
  void Merge(Sweep&& other);
  const std::vector<Family>& families() const { return families_; }
  // The family called `name` among those added since Recycle() (all, once finished), or nullptr.
  const Family* Find(std::string_view name) const;
  void Clear();
  size_t PointCount() const;

  void Recycle();
  void FinishPoints();
  void Finish();

  uint64_t shape_id() const;

 private:
  // Index of family `name` among this sweep's families, placing it next when it is new.
  size_t FamilyIndex(std::string_view name, std::string_view help, MetricType type);
  template <typename Labels>
  void AddAt(size_t family, Labels&& labels, double value);

  // families_[0, live_) are this sweep's, in order; families_[live_, end) the previous sweep's
  // not yet reused (only between Recycle() and Finish()).
  std::vector<Family> families_;
  // Hash of each family's name, in the same order: a name not yet in the sweep (the common case
  // while a sweep is built) is found absent by comparing integers, not every name.
  std::vector<uint64_t> name_hashes_;
  std::vector<size_t> filled_;  // points of each family written in this sweep
  size_t live_ = 0;
  // shape_id(): assigned when asked for after a change of shape.
  mutable uint64_t shape_id_ = 0;
  mutable bool shape_changed_ = true;
};

// What one Collect() call came to.
struct CollectResult {
  enum class Kind { kOk, kNoData, kFailed };
  Kind kind = Kind::kOk;
  std::string message;  // why: no data (e.g. "no /proc/pressure: kernel without PSI"), or error

  static CollectResult Ok() { return {}; }
  static CollectResult NoData(std::string why) { return {Kind::kNoData, std::move(why)}; }
  static CollectResult Failed(std::string why) { return {Kind::kFailed, std::move(why)}; }
};

class Collector {
 public:
  virtual ~Collector() = default;
  // Reads the source and adds families to `out`. A failure may still have added what it read.
  virtual CollectResult Collect(Sweep& out) = 0;
  // For collectors that may block (registry: may_block): false when the next Collect() cannot
  // block, because it only returns a cached outcome (no library, no device) or copies what a
  // poller thread of its own fetched. The sampler then calls it on the sampling thread instead
  // of handing it to the collector's thread: a handoff every sweep costs more than such a call.
  // Called from the sampling thread between runs.
  virtual bool MayBlockNow() const { return true; }
};

// Where a collector finds the host: roots of the trees it reads (as node_exporter's flags).
struct HostPaths {
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string devfs = "/dev";  // device nodes (/dev/ipmi0); a seam for tests
};

// What a collector is built from: the host paths and its own configuration section
// (`collector_config.NAME` in the agent's file; an empty map when absent). A factory reads its
// keys with options.Get(...) and must not touch the host: it also runs for --config.check.
// Keys a factory does not read are reported as unknown by the framework.
struct CollectorContext {
  HostPaths paths;
  ConfigMap& options;
  std::chrono::milliseconds sample_interval{15000};
};

}  // namespace suanli::agent
