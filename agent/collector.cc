#include "agent/collector.h"

namespace suanli::agent {

void Sweep::Add(std::string_view name, std::string_view help, MetricType type,
                std::vector<Label> labels, double value) {
  // Collectors add a family's points together, so the last family is almost always the one;
  // otherwise a backwards scan (a sweep holds tens of families, a hash map would cost more).
  Family* family = nullptr;
  for (auto it = families_.rbegin(); it != families_.rend(); ++it) {
    if (it->name == name) {
      family = &*it;
      break;
    }
  }
  if (family == nullptr) {
    family = &families_.emplace_back();
    family->name = std::string(name);
    family->help = std::string(help);
    family->type = type;
  }
  family->points.push_back(Point{std::move(labels), value});
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
