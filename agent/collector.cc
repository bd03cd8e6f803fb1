#include "agent/collector.h"

#include <algorithm>
#include <atomic>
#include <utility>

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
// Shape ids of every Sweep: never reused.
std::atomic<uint64_t> next_shape_id{1};
}  // namespace

Sweep::Sweep(Sweep&& other) noexcept
    : families_(std::move(other.families_)),
      name_hashes_(std::move(other.name_hashes_)),
      filled_(std::move(other.filled_)),
      live_(std::exchange(other.live_, 0)),
      shape_id_(other.shape_id_),
      shape_changed_(other.shape_changed_) {
  other.Clear();
}

Sweep& Sweep::operator=(Sweep&& other) noexcept {
  if (this != &other) {
    families_ = std::move(other.families_);
    name_hashes_ = std::move(other.name_hashes_);
    filled_ = std::move(other.filled_);
    live_ = std::exchange(other.live_, 0);
    shape_id_ = other.shape_id_;
    shape_changed_ = other.shape_changed_;
    other.Clear();
  }
  return *this;
}

uint64_t Sweep::shape_id() const {
  if (shape_changed_) {
    shape_id_ = next_shape_id.fetch_add(1, std::memory_order_relaxed);
    shape_changed_ = false;
  }
  return shape_id_;
}

size_t Sweep::FamilyIndex(std::string_view name, std::string_view help, MetricType type) {
  // Collectors add a family's points together, so the last family is almost always the one.
  if (live_ > 0 && families_[live_ - 1].name == name) return live_ - 1;
  // New in this sweep: the previous sweep's family in this place (the steady state of a
  // recycled sweep; a name is never both there and among this sweep's families), one of its
  // other families moved here, or a new one.
  size_t j = live_;
  uint64_t h = 0;
  if (j == families_.size() || families_[j].name != name) {
    h = NameHash(name);
    for (size_t i = live_; i-- > 0;) {
      if (name_hashes_[i] == h && families_[i].name == name) return i;
    }
    while (j < families_.size() && !(name_hashes_[j] == h && families_[j].name == name)) ++j;
  }
  const auto at = static_cast<std::ptrdiff_t>(live_);
  if (j != live_) shape_changed_ = true;  // a new family, or one moved here
  if (j == families_.size()) {
    if (families_.empty()) {
      // A sweep of this host holds about a hundred families: grow once, not seven times.
      families_.reserve(128);
      name_hashes_.reserve(128);
      filled_.reserve(128);
    }
    families_.emplace(families_.begin() + at)->name = std::string(name);
    name_hashes_.insert(name_hashes_.begin() + at, h);
    filled_.insert(filled_.begin() + at, 0);
  } else if (j != live_) {
    const auto from = static_cast<std::ptrdiff_t>(j);
    std::rotate(families_.begin() + at, families_.begin() + from, families_.begin() + from + 1);
    std::rotate(name_hashes_.begin() + at, name_hashes_.begin() + from,
                name_hashes_.begin() + from + 1);
    std::rotate(filled_.begin() + at, filled_.begin() + from, filled_.begin() + from + 1);
  }
  Family& family = families_[live_];
  if (family.help != help) {
    family.help = std::string(help);
    shape_changed_ = true;
  }
  if (family.type != type) {
    family.type = type;
    shape_changed_ = true;
  }
  filled_[live_] = 0;
  return live_++;
}

template <typename Labels>
void Sweep::AddAt(size_t family, Labels&& labels, double value) {
  Family& f = families_[family];
  size_t& n = filled_[family];
  if (n < f.points.size()) {
    Point& p = f.points[n];
    if (p.labels != labels) {
      p.labels = std::forward<Labels>(labels);
      shape_changed_ = true;
    }
    p.value = value;
  } else {
    f.points.push_back(Point{std::forward<Labels>(labels), value});
    shape_changed_ = true;
  }
  ++n;
}

void Sweep::Add(std::string_view name, std::string_view help, MetricType type,
                const std::vector<Label>& labels, double value) {
  AddAt(FamilyIndex(name, help, type), labels, value);
}

void Sweep::Add(std::string_view name, std::string_view help, MetricType type,
                std::vector<Label>&& labels, double value) {
  AddAt(FamilyIndex(name, help, type), std::move(labels), value);
}

void Sweep::Merge(Sweep&& other) {
  other.Finish();
  for (Family& f : other.families_) {
    size_t i = FamilyIndex(f.name, f.help, f.type);
    for (Point& p : f.points) AddAt(i, std::move(p.labels), p.value);
  }
  other.Clear();
}

void Sweep::Clear() {
  shape_changed_ = true;
  families_.clear();
  name_hashes_.clear();
  filled_.clear();
  live_ = 0;
}

void Sweep::Recycle() {
  Finish();
  live_ = 0;
  std::fill(filled_.begin(), filled_.end(), 0);
}

void Sweep::FinishPoints() {
  for (size_t i = 0; i < live_; ++i) {
    if (families_[i].points.size() > filled_[i]) {
      families_[i].points.resize(filled_[i]);
      shape_changed_ = true;
    }
  }
}

void Sweep::Finish() {
  FinishPoints();
  const auto live = static_cast<std::ptrdiff_t>(live_);
  if (families_.size() > live_) shape_changed_ = true;
  families_.erase(families_.begin() + live, families_.end());
  name_hashes_.erase(name_hashes_.begin() + live, name_hashes_.end());
  filled_.erase(filled_.begin() + live, filled_.end());
}

const Family* Sweep::Find(std::string_view name) const {
  // Only this sweep's families: those past live_ are the previous sweep's, not added again.
  for (size_t i = 0; i < live_; ++i) {
    if (families_[i].name == name) return &families_[i];
  }
  return nullptr;
}

size_t Sweep::PointCount() const {
  size_t n = 0;
  for (const Family& f : families_) n += f.points.size();
  return n;
}

}  // namespace suanli::agent
