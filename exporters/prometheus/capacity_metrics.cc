#include "exporters/prometheus/capacity_metrics.h"

#include <array>
#include <charconv>
#include <cmath>
#include <memory>
#include <string_view>

#include "core/text_exposition.h"

namespace suanli::exporters {
namespace {

using capacity::ComputeFigures;
using capacity::GroupFigures;
using prometheus::MetricType;

constexpr std::array<const char*, 2> kSources = {"cpu", "gpu"};

// Up to six label pairs, without allocating.
struct LabelList {
  std::array<std::pair<std::string_view, std::string_view>, 6> items;
  size_t n = 0;
  LabelList& Add(std::string_view name, std::string_view value) {
    items[n++] = {name, value};
    return *this;
  }
};

// Where samples go: text, or prometheus-cpp families. Family() announces the next family; a
// family with no samples is left out.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Family(std::string name, std::string_view help, MetricType type) = 0;
  virtual void Sample(const LabelList& labels, double value) = 0;
};

void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out->append(buf, end);
  }
}

void AppendEscaped(std::string_view s, bool quote_too, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '"' && quote_too) {
      *out += "\\\"";
    } else {
      out->push_back(c);
    }
  }
}

class TextSink final : public Sink {
 public:
  explicit TextSink(std::string* out) : out_(out) {}
  void Family(std::string name, std::string_view help, MetricType type) override {
    name_ = std::move(name);
    help_ = help;
    type_ = type;
    header_done_ = false;
  }
  void Sample(const LabelList& labels, double value) override {
    if (!header_done_) {
      *out_ += "# HELP ";
      *out_ += name_;
      out_->push_back(' ');
      AppendEscaped(help_, false, out_);
      *out_ += "\n# TYPE ";
      *out_ += name_;
      *out_ += type_ == MetricType::Counter ? " counter\n" : " gauge\n";
      header_done_ = true;
    }
    *out_ += name_;
    if (labels.n > 0) {
      out_->push_back('{');
      for (size_t i = 0; i < labels.n; ++i) {
        if (i > 0) out_->push_back(',');
        *out_ += labels.items[i].first;
        *out_ += "=\"";
        AppendEscaped(labels.items[i].second, true, out_);
        out_->push_back('"');
      }
      out_->push_back('}');
    }
    out_->push_back(' ');
    AppendValue(value, out_);
    out_->push_back('\n');
  }

 private:
  std::string* out_;
  std::string name_;
  std::string_view help_;
  MetricType type_ = MetricType::Gauge;
  bool header_done_ = true;
};

class FamilySink final : public Sink {
 public:
  void Family(std::string name, std::string_view help, MetricType type) override {
    Flush();
    builder_ = std::make_unique<FamilyBuilder>(std::move(name), std::string(help), type);
  }
  void Sample(const LabelList& labels, double value) override {
    std::vector<prometheus::ClientMetric::Label> l;
    l.reserve(labels.n);
    for (size_t i = 0; i < labels.n; ++i) {
      l.push_back({std::string(labels.items[i].first), std::string(labels.items[i].second)});
    }
    builder_->Add(std::move(l), value);
  }
  std::vector<prometheus::MetricFamily> Take() && {
    Flush();
    return std::move(out_);
  }

 private:
  void Flush() {
    if (builder_ && !builder_->empty()) out_.push_back(std::move(*builder_).Build());
    builder_.reset();
  }
  std::unique_ptr<FamilyBuilder> builder_;
  std::vector<prometheus::MetricFamily> out_;
};

// The dc and link figures as series stamped at one time (forwarding's `select: capacity`).
class SeriesSink final : public Sink {
 public:
  SeriesSink(int64_t timestamp_ms, std::vector<TimeSeries>* out) : ts_(timestamp_ms), out_(out) {}
  void Family(std::string name, std::string_view, MetricType) override {
    name_ = std::move(name);
    keep_ = name_.starts_with("suanli_dc_") || name_.starts_with("suanli_link_");
  }
  void Sample(const LabelList& labels, double value) override {
    if (!keep_) return;
    std::vector<Label> l;
    l.reserve(labels.n + 1);
    l.push_back({"__name__", name_});
    for (size_t i = 0; i < labels.n; ++i) {
      l.push_back({std::string(labels.items[i].first), std::string(labels.items[i].second)});
    }
    out_->push_back({Labels(std::move(l)), {{ts_, value}}});
  }

 private:
  int64_t ts_;
  std::vector<TimeSeries>* out_;
  std::string name_;
  bool keep_ = false;
};

// A figure that is one number per group.
struct Scalar {
  const char* suffix;
  const char* help;
  MetricType type;
  double (*value)(const GroupFigures&);
  bool (*present)(const GroupFigures&);  // nullptr: always
};

const std::vector<Scalar>& Scalars() {
  static const auto* scalars = new std::vector<Scalar>{
      {"nodes_gone_total",
       "Nodes forgotten after capacity.forget_after without a sample (since the aggregator "
       "started).",
       MetricType::Counter, [](const GroupFigures& f) { return double(f.nodes_gone); }, nullptr},
      {"newest_sample_age_seconds", "Age of the newest sample from any node of the group.",
       MetricType::Gauge, nullptr, [](const GroupFigures& f) { return f.newest_sample_ms > 0; }},
      {"cpu_cores", "CPU cores (logical CPUs) of the nodes up.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.cpu_cores; }, nullptr},
      {"cpu_utilization_ratio", "Share of CPU time in use over the nodes' last interval (0-1).",
       MetricType::Gauge, [](const GroupFigures& f) { return f.cpu_utilization(); }, nullptr},
      {"memory_total_bytes", "Memory of the nodes up.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.memory_total_bytes; }, nullptr},
      {"memory_available_bytes", "Memory available for new work on the nodes up.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.memory_available_bytes; }, nullptr},
      {"network_receive_bytes_per_second", "Bytes received per second, all non-loopback NICs.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.network_receive_bytes_per_second; },
       nullptr},
      {"network_transmit_bytes_per_second", "Bytes sent per second, all non-loopback NICs.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.network_transmit_bytes_per_second; },
       nullptr},
      {"gpus", "GPUs of the nodes up.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.gpus; }, nullptr},
      {"gpus_reporting_utilization", "GPUs whose utilization is known (the mean's weight).",
       MetricType::Gauge, [](const GroupFigures& f) { return f.gpus_with_utilization; }, nullptr},
      {"gpu_utilization_ratio", "Mean utilization of the GPUs that report it (0-1).",
       MetricType::Gauge, [](const GroupFigures& f) { return f.gpu_utilization(); }, nullptr},
      {"gpu_memory_total_bytes", "GPU memory of the nodes up.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.gpu_memory_total_bytes; }, nullptr},
      {"gpu_memory_used_bytes", "GPU memory in use or reserved by the driver on the nodes up.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.gpu_memory_used_bytes; }, nullptr},
      {"gpu_power_watts", "Power drawn by the GPUs of the nodes up.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.gpu_power_watts; }, nullptr},
      {"power_watts",
       "Whole-server power of the nodes up that report it (each node's own best source).",
       MetricType::Gauge, [](const GroupFigures& f) { return f.power_watts; }, nullptr},
      {"power_shared_watts",
       "The part of power_watts read from chassis shared by several servers (multi-node "
       "chassis, blade enclosures), each chassis counted once per dc.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.shared_power_watts; }, nullptr},
      {"power_shared_chassis",
       "Shared chassis (by their identity) whose one reading is in power_watts.", MetricType::Gauge,
       [](const GroupFigures& f) { return double(f.shared_power_chassis); }, nullptr},
      {"estimated_power_watts",
       "Power of the nodes up that have no meter, from the agents' utilization model "
       "(source=\"estimated\"): kept apart from power_watts, which is measured.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.estimated_power_watts; }, nullptr},
      {"power_estimated_nodes", "Nodes up whose power is estimated (no meter).", MetricType::Gauge,
       [](const GroupFigures& f) { return double(f.nodes_with_estimated_power); }, nullptr},
      {"energy_joules_total",
       "Energy used by the group's servers: per-node increases re-accumulated, so a server "
       "restart never makes it drop (it restarts only with the aggregator).",
       MetricType::Counter, [](const GroupFigures& f) { return f.energy_joules_total; }, nullptr},
      {"estimated_energy_joules_total",
       "Energy of the nodes that have no meter, integrated by the agents from estimated power "
       "(source=\"estimated\"): kept apart from energy_joules_total, which is measured.",
       MetricType::Counter, [](const GroupFigures& f) { return f.estimated_energy_joules_total; },
       nullptr},
      {"facility_power_watts",
       "Facility power (IT, cooling, losses): metered suanli_facility_power_watts, else the "
       "configured capacity.facility_power.",
       MetricType::Gauge, [](const GroupFigures& f) { return f.facility_power_watts; },
       [](const GroupFigures& f) { return f.dcs_with_facility_power > 0; }},
      {"power_usage_effectiveness_ratio",
       "PUE: facility power over the IT (whole-server) power of the same dcs.", MetricType::Gauge,
       [](const GroupFigures& f) { return f.pue(); },
       [](const GroupFigures& f) { return f.has_pue(); }},
  };
  return *scalars;
}

// One level of the view: its name and its groups with their labels.
struct Group {
  LabelList labels;
  const GroupFigures* figures;
};

void EmitLevel(std::string_view level, const std::vector<Group>& groups, int64_t now_ms,
               Sink& sink) {
  auto name = [&](std::string_view suffix) {
    std::string n = "suanli_";
    n.append(level).push_back('_');
    n.append(suffix);
    return n;
  };
  // Counts by state: one sample per state and group.
  struct State {
    const char* name;
    int64_t GroupFigures::*count;
  };
  auto states = [&](std::string_view suffix, std::string_view help,
                    std::initializer_list<State> list) {
    sink.Family(name(suffix), help, MetricType::Gauge);
    for (const Group& g : groups) {
      for (const State& st : list) {
        LabelList l = g.labels;
        sink.Sample(l.Add("state", st.name), double(g.figures->*st.count));
      }
    }
  };
  states("nodes", "Nodes by state: up (reporting) or stale (silent past capacity.stale_after).",
         {{"up", &GroupFigures::nodes_up}, {"stale", &GroupFigures::nodes_stale}});
  states("dcs",
         "Data centers by state: reporting (fresh figures) or stale (no node up, or a lower "
         "tier's figures older than capacity.stale_after: the last ones are kept).",
         {{"reporting", &GroupFigures::dcs_reporting}, {"stale", &GroupFigures::dcs_stale}});
  for (const Scalar& s : Scalars()) {
    sink.Family(name(s.suffix), s.help, s.type);
    for (const Group& g : groups) {
      if (s.present && !s.present(*g.figures)) continue;
      double v = s.value ? s.value(*g.figures)
                         : double(now_ms - g.figures->newest_sample_ms) / 1000.0;  // the age
      sink.Sample(g.labels, v);
    }
  }
  sink.Family(name("power_source_nodes"),
              "Nodes up by the source of their whole-server power figure (redfish, ipmi_dcmi, "
              "acpi_power_meter, rapl_psys, ...).",
              MetricType::Gauge);
  for (const Group& g : groups) {
    for (const auto& [source, n] : g.figures->power_sources) {
      LabelList l = g.labels;
      sink.Sample(l.Add("source", source), double(n));
    }
  }
  struct ComputeScalar {
    const char* suffix;
    const char* help;
    double ComputeFigures::*field;
  };
  static constexpr ComputeScalar kCompute[] = {
      {"compute_capacity_flops", "Peak compute of the nodes up, per precision (CPU + GPU).",
       &ComputeFigures::capacity_flops},
      {"compute_free_flops",
       "Compute not in use, per precision: per source, capacity x (1 - utilization).",
       &ComputeFigures::free_flops},
  };
  for (const ComputeScalar& c : kCompute) {
    sink.Family(name(c.suffix), c.help, MetricType::Gauge);
    for (const Group& g : groups) {
      for (const auto& [precision, cf] : g.figures->compute) {
        LabelList l = g.labels;
        sink.Sample(l.Add("precision", precision), cf.*(c.field));
      }
    }
  }
  static constexpr ComputeScalar kBySource[] = {
      {"compute_capacity_by_source_flops", "Peak compute of the nodes up by source and precision.",
       nullptr},
      {"compute_free_by_source_flops",
       "Compute not in use by source and precision: capacity x (1 - that source's utilization).",
       nullptr},
  };
  for (int free = 0; free < 2; ++free) {
    sink.Family(name(kBySource[free].suffix), kBySource[free].help, MetricType::Gauge);
    for (const Group& g : groups) {
      for (const auto& [precision, cf] : g.figures->compute) {
        for (const char* source : kSources) {
          bool cpu = source[0] == 'c';
          double v = free ? (cpu ? cf.cpu_free_flops : cf.gpu_free_flops)
                          : (cpu ? cf.cpu_capacity_flops : cf.gpu_capacity_flops);
          LabelList l = g.labels;
          sink.Sample(l.Add("precision", precision).Add("source", source), v);
        }
      }
    }
  }
  sink.Family(name("energy_per_operation_joules"),
              "Whole-server power over the compute in use, per precision: joules per operation "
              "(W per FLOPS); absent while nothing is in use.",
              MetricType::Gauge);
  for (const Group& g : groups) {
    if (g.figures->power_watts <= 0) continue;
    for (const auto& [precision, cf] : g.figures->compute) {
      if (cf.in_use_flops() <= 0) continue;
      LabelList l = g.labels;
      sink.Sample(l.Add("precision", precision), g.figures->power_watts / cf.in_use_flops());
    }
  }
}

void EmitLinks(const capacity::CapacitySnapshot& snap, Sink& sink) {
  auto labels = [](const capacity::LinkKey& k) {
    LabelList l;
    return l.Add("dc", k.dc).Add("link", k.link).Add("peer_dc", k.peer_dc).Add("region", k.region);
  };
  sink.Family("suanli_link_capacity_bytes_per_second",
              "Declared capacity of an inter-dc link, per direction (the largest any node of the "
              "dc declares).",
              MetricType::Gauge);
  for (const auto& [k, l] : snap.links) {
    if (l.capacity_bytes_per_second > 0) sink.Sample(labels(k), l.capacity_bytes_per_second);
  }
  sink.Family("suanli_link_throughput_bytes_per_second",
              "Bytes per second over an inter-dc link, summed over the dc's nodes and devices.",
              MetricType::Gauge);
  for (const auto& [k, l] : snap.links) {
    LabelList rx = labels(k), tx = labels(k);
    sink.Sample(rx.Add("direction", "receive"), l.receive_bytes_per_second);
    sink.Sample(tx.Add("direction", "transmit"), l.transmit_bytes_per_second);
  }
  sink.Family("suanli_link_utilization_ratio",
              "Throughput of an inter-dc link over its capacity, per direction (0-1).",
              MetricType::Gauge);
  for (const auto& [k, l] : snap.links) {
    if (l.capacity_bytes_per_second <= 0) continue;
    LabelList rx = labels(k), tx = labels(k);
    sink.Sample(rx.Add("direction", "receive"), l.receive_utilization());
    sink.Sample(tx.Add("direction", "transmit"), l.transmit_utilization());
  }
}

void Emit(const capacity::CapacitySnapshot& snap, Sink& sink) {
  if (snap.dcs.empty()) return;
  std::vector<Group> groups;
  groups.reserve(snap.dcs.size());
  for (const auto& [loc, f] : snap.dcs) {
    Group g{{}, &f};
    g.labels.Add("dc", loc.dc).Add("region", loc.region);
    groups.push_back(g);
  }
  EmitLevel("dc", groups, snap.at_ms, sink);
  groups.clear();
  for (const auto& [region, f] : snap.regions) {
    Group g{{}, &f};
    g.labels.Add("region", region);
    groups.push_back(g);
  }
  EmitLevel("region", groups, snap.at_ms, sink);
  groups = {Group{{}, &snap.alliance}};
  EmitLevel("alliance", groups, snap.at_ms, sink);
  EmitLinks(snap, sink);
}

}  // namespace

void AppendCapacityText(const capacity::CapacitySnapshot& snap, std::string* out) {
  // About 60 bytes a sample and some 50 samples a dc: reserve once.
  out->reserve(out->size() + snap.dcs.size() * 4096 + 4096);
  TextSink sink(out);
  Emit(snap, sink);
}

std::vector<prometheus::MetricFamily> CapacityFamilies(const capacity::CapacitySnapshot& snap) {
  FamilySink sink;
  Emit(snap, sink);
  return std::move(sink).Take();
}

std::vector<TimeSeries> DcCapacitySeries(const capacity::CapacitySnapshot& snap,
                                         int64_t timestamp_ms) {
  std::vector<TimeSeries> out;
  SeriesSink sink(timestamp_ms, &out);
  Emit(snap, sink);
  // A lower tier's dcs are in the store already, as it forwarded them: recording them again
  // would write a second value for the same series and time.
  if (!snap.from_tier.empty()) {
    std::erase_if(out, [&](const TimeSeries& ts) {
      return snap.from_tier.count(
                 {std::string(ts.labels.Get("region")), std::string(ts.labels.Get("dc"))}) > 0;
    });
  }
  return out;
}

}  // namespace suanli::exporters
