#include "agent/collector.h"

namespace suanli::agent {

namespace {
uint64_t NameHash(std::string_view name) {  // FNV-1a 64
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}
}  // namespace

Family& Sweep::FamilyFor(std::string_view name, std::string_view help, MetricType type) {
  // Collectors add a family's points together, so the last family is almost always the one.
  if (!families_.empty() && families_.back().name == name) return families_.back();
  const uint64_t h = NameHash(name);
  for (size_t i = name_hashes_.size(); i-- > 0;) {
    if (name_hashes_[i] == h && families_[i].name == name) return families_[i];
  }
  Family& family = families_.emplace_back();
  family.name = std::string(name);
  family.help = std::string(help);
  family.type = type;
  name_hashes_.push_back(h);
  return family;
}

void Sweep::Add(std::string_view name, std::string_view help, MetricType type,
                const std::vector<Label>& labels, double value) {
  FamilyFor(name, help, type).points.push_back(Point{labels, value});
}

void Sweep::Add(std::string_view name, std::string_view help, MetricType type,
                std::vector<Label>&& labels, double value) {
  FamilyFor(name, help, type).points.push_back(Point{std::move(labels), value});
}

void Sweep::Merge(Sweep&& other) {
  for (Family& f : other.families_) {
    Family& into = FamilyFor(f.name, f.help, f.type);
    if (into.points.empty()) {
      into.points = std::move(f.points);
    } else {
      for (Point& p : f.points) into.points.push_back(std::move(p));
    }
  }
  other.Clear();
}

const Family* Sweep::Find(std::string_view name) const {
  for (const Family& f : families_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

size_t Sweep::PointCount() const {
  size_t n = 0;
  for (const Family& f : families_) n += f.points.size();
  return n;
}

}  // namespace suanli::agent
