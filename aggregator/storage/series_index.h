// The in-memory series index of RocksDbStore: the label views the ingest path hashes and
// compares without building Labels, the series entries (carved from arena blocks that go back
// to the kernel when their series are forgotten), the lookup table by label hash, the table by
// series id, and the pins that keep entries alive while a call holds them outside the index
// lock. Contracts: the lookup hash never reaches the disk; ids are never reused; an entry's
// id, hash and labels never change; its head fields are guarded by the store's head_mu, the
// tables by its index_mu.
#pragma once

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/store.h"
#include "aggregator/storage/store_keys.h"

namespace suanli::storage {

// ---- label views (the ingest path's series identity, no Labels built) ----

inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Mixes one string into h, 8 bytes at a time (the last word overlapping, short tails read in
// at most two loads, so no call to memcpy); the length keeps name/value borders apart.
inline uint64_t HashString(uint64_t h, std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t last;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      h = (h ^ Load64(p + i)) * kMul;
      h ^= h >> 32;
    }
    last = Load64(p + n - 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    last = (uint64_t{a} << 32) | b;
  } else {
    last = n == 0 ? 0
                  : (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
                        (uint64_t{static_cast<uint8_t>(p[n / 2])} << 8) |
                        static_cast<uint8_t>(p[n - 1]);
  }
  h = (h ^ last ^ (static_cast<uint64_t>(n) << 56)) * kMul;
  return h ^ (h >> 29);
}

// The in-memory lookup hash of a canonical label sequence. It never reaches the disk (the
// index's `h` keys keep Labels::Hash), so it may change between builds.
inline uint64_t HashViews(std::span<const LabelView> labels) {
  uint64_t h = 0x243F6A8885A308D3ULL;
  for (const LabelView& l : labels) h = HashString(HashString(h, l.name), l.value);
  return h;
}

// Canonical: names strictly increasing (so sorted, no duplicates) and no empty value.
inline bool IsCanonical(std::span<const LabelView> labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].value.empty()) return false;
    if (i > 0 && !(labels[i - 1].name < labels[i].name)) return false;
  }
  return true;
}

inline std::vector<LabelView> ViewsOf(const Labels& labels) {
  std::vector<LabelView> out;
  out.reserve(labels.size());
  for (const Label& l : labels.items()) out.push_back({l.name, l.value});
  return out;
}

// Value of label `name` ("" when absent).
inline std::string_view ValueOf(std::span<const LabelView> labels, std::string_view name) {
  for (const LabelView& l : labels) {
    if (l.name == name) return l.value;
  }
  return {};
}

inline Labels LabelsOf(std::span<const LabelView> views) {
  std::vector<Label> items;
  items.reserve(views.size());
  for (const LabelView& l : views) items.push_back({std::string(l.name), std::string(l.value)});
  return Labels(std::move(items));  // sorts by name
}

// a[0, n) == b[0, n), inline for the short strings of labels (a call to memcmp costs more).
// Always inlined: it runs for every label name and value of every series looked up.
[[gnu::always_inline]] inline bool BytesEqual(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (Load64(a + i) != Load64(b + i)) return false;
    }
    return Load64(a + n - 8) == Load64(b + n - 8);
  }
  if (n >= 4) {  // two overlapping 4-byte words
    uint32_t a0, a1, b0, b1;
    std::memcpy(&a0, a, 4);
    std::memcpy(&b0, b, 4);
    std::memcpy(&a1, a + n - 4, 4);
    std::memcpy(&b1, b + n - 4, 4);
    return a0 == b0 && a1 == b1;
  }
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// True when the encoded labels blob holds exactly `labels` (no allocation).
inline bool BlobEqualsViews(std::string_view blob, std::span<const LabelView> labels) {
  uint64_t n;
  if (!GetVarint(&blob, &n) || n != labels.size()) return false;
  for (const LabelView& l : labels) {
    uint64_t len;
    if (!GetVarint(&blob, &len) || len != l.name.size() || len > blob.size() ||
        !BytesEqual(blob.data(), l.name.data(), len)) {
      return false;
    }
    blob.remove_prefix(len);
    if (!GetVarint(&blob, &len) || len != l.value.size() || len > blob.size() ||
        !BytesEqual(blob.data(), l.value.data(), len)) {
      return false;
    }
    blob.remove_prefix(len);
  }
  return blob.empty();
}

// Hashes std::string keys and std::string_view lookups alike, so that maps keyed by label
// text are searched without building a std::string.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using ValuePostings =
    std::unordered_map<std::string, std::vector<uint64_t>, StringViewHash, std::equal_to<>>;

// Memory of the series entries. Entries are carved from 2 MiB blocks instead of one malloc
// each: glibc grows a thread's arena by an mprotect call every few pages, and with malloc's own
// work that was about a tenth of the CPU of creating a series. (Transparent huge pages for the
// blocks were slower here: the kernel zeroes and compacts 2 MiB per fault.) Blocks are mapped
// at 2 MiB alignment, so an entry finds its block by masking its address; a block counts its
// live entries and is unmapped when the last one is freed, so that the memory of forgotten
// series (series churn) goes back to the kernel: churned series were created together and
// die together, while a block shared with a long-lived series stays. Allocate is not
// thread-safe (used under Impl::index_mu, or alone in Open); Free may run on any thread.
class EntryArena {
 public:
  static constexpr size_t kBlockBytes = size_t{2} << 20;

  ~EntryArena() {
    if (current_ != nullptr) Unref(current_);
  }

  void* Allocate(size_t bytes) {
    bytes = (bytes + 15) & ~size_t{15};
    if (bytes > kBlockBytes - kHeaderBytes) {  // a dedicated block (huge label sets)
      Block* big = Map(((kHeaderBytes + bytes + kBlockBytes - 1) / kBlockBytes) * kBlockBytes);
      big->live.store(1, std::memory_order_relaxed);
      return reinterpret_cast<char*>(big) + kHeaderBytes;
    }
    if (current_ == nullptr || bytes > left_) {
      if (current_ != nullptr) Unref(current_);  // the arena's own reference
      current_ = Map(kBlockBytes);
      current_->live.store(1, std::memory_order_relaxed);
      next_ = reinterpret_cast<char*>(current_) + kHeaderBytes;
      left_ = kBlockBytes - kHeaderBytes;
    }
    current_->live.fetch_add(1, std::memory_order_relaxed);
    void* p = next_;
    next_ += bytes;
    left_ -= bytes;
    return p;
  }
  static void Free(void* p) {
    Unref(reinterpret_cast<Block*>(reinterpret_cast<uintptr_t>(p) & ~(kBlockBytes - 1)));
  }
  // Blocks mapped now (tests of the memory of forgotten series).
  static int64_t MappedBlocks() { return mapped_.load(std::memory_order_relaxed); }

 private:
  struct Block {
    std::atomic<uint64_t> live;  // entries, plus one while it is the arena's current block
    size_t bytes;
  };
  static constexpr size_t kHeaderBytes = 64;
  static_assert(sizeof(Block) <= kHeaderBytes);

  static Block* Map(size_t bytes) {
    // Twice the alignment, then the unaligned ends unmapped: an aligned mapping.
    const size_t span = bytes + kBlockBytes;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kBlockBytes - 1) & ~(kBlockBytes - 1);
    if (aligned > start) munmap(raw, aligned - start);
    if (start + span > aligned + bytes) {
      munmap(reinterpret_cast<void*>(aligned + bytes), start + span - aligned - bytes);
    }
    Block* b = ::new (reinterpret_cast<void*>(aligned)) Block{{0}, bytes};
    mapped_.fetch_add(1, std::memory_order_relaxed);
    return b;
  }
  static void Unref(Block* b) {
    if (b->live.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const size_t bytes = b->bytes;
    b->~Block();
    munmap(b, bytes);
    mapped_.fetch_sub(1, std::memory_order_relaxed);
  }

  static inline std::atomic<int64_t> mapped_{0};
  Block* current_ = nullptr;
  char* next_ = nullptr;
  size_t left_ = 0;
};

// One series as kept in memory. id, hash and labels never change after creation; the head
// fields are guarded by Impl::head_mu. The label blob follows the entry in the same
// allocation (from the store's EntryArena): a lookup reads both, and one allocation is one
// cache miss fewer.
struct SeriesEntry {
  static std::unique_ptr<SeriesEntry> Create(EntryArena& arena, uint64_t id, uint64_t hash,
                                             std::string_view blob, bool durable) {
    void* memory = arena.Allocate(sizeof(SeriesEntry) + blob.size());
    char* tail = static_cast<char*>(memory) + sizeof(SeriesEntry);
    if (!blob.empty()) std::memcpy(tail, blob.data(), blob.size());
    return std::unique_ptr<SeriesEntry>(
        ::new (memory) SeriesEntry(id, hash, std::string_view(tail, blob.size()), durable));
  }
  // std::unique_ptr's delete runs the destructor (the open chunk's buffer), then gives the
  // memory back to its arena block.
  static void operator delete(void* p) { EntryArena::Free(p); }

  const uint64_t id;
  const uint64_t hash;                 // lookup hash (HashViews or the label_hash seam)
  const std::string_view labels_blob;  // EncodeLabelsTo form, stored right after the entry
  std::atomic<bool> durable;
  // Head state (head_mu).
  bool removed = false;  // forgotten (ForgetExpiredSeries): an append holding it starts over
  bool max_known = false;
  bool has_head = false;
  bool head_dirty = false;  // changed since the last checkpoint
  // Its previous window, waiting in Impl::closing (a deque: the element stays where it is
  // until popped), or nullptr.
  const ChunkEncoder* closing_chunk = nullptr;
  int64_t max_ts = kNoSamples;
  // The last head log batch that may hold its samples: a log cursor before it (forwarding)
  // still needs its labels, so it is not forgotten.
  uint64_t last_log_seq = 0;
  // Bumped each time a closed window of this series is written (or queued to be): a copy of
  // its closed chunks read outside head_mu is still current while this stays the same.
  uint32_t closed_version = 0;
  ChunkEncoder head;  // the open chunk of window head.window_start (when has_head)

 private:
  SeriesEntry(uint64_t id, uint64_t hash, std::string_view labels_blob, bool durable)
      : id(id), hash(hash), labels_blob(labels_blob), durable(durable) {}
};

// Lookup hash -> series, open addressing with linear probing; series with equal hashes
// (collisions) take further slots, so a lookup checks the labels of each equal-hash entry.
// Power-of-two size, at most 3/4 full: ~21-43 bytes per series, no allocation per series.
class SeriesTable {
 public:
  template <typename Matches>
  SeriesEntry* Find(uint64_t hash, Matches&& matches) const {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t i = Home(hash) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.entry == nullptr) return nullptr;
      if (slot.hash == hash && matches(*slot.entry)) return slot.entry;
    }
  }
  // For batched lookups, which otherwise miss the cache twice in a row each (slot, then the
  // entry with its labels): PrefetchSlot starts loading the home slot; FirstCandidate (once
  // the slot is loaded) gives the first entry a Find would compare, to prefetch it in turn.
  void PrefetchSlot(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Home(hash) & (slots_.size() - 1)]);
  }
  const SeriesEntry* FirstCandidate(uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t i = Home(hash) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.entry == nullptr || slot.hash == hash) return slot.entry;
    }
  }
  void Insert(uint64_t hash, SeriesEntry* entry) {
    if ((used_ + 1) * 4 > slots_.size() * 3) Resize(slots_.empty() ? 1024 : slots_.size() * 2);
    Place(hash, entry);
    ++used_;
  }
  // Removes `entry` (which the table holds). Linear probing's backward shift: each later slot
  // of the run moves into the hole unless its home lies cyclically in (hole, slot], so that
  // every lookup still reaches its entry without tombstones. Shrinks below 1/8 full.
  void Remove(uint64_t hash, const SeriesEntry* entry) {
    const size_t mask = slots_.size() - 1;
    size_t hole = Home(hash) & mask;
    while (slots_[hole].entry != entry) hole = (hole + 1) & mask;
    for (size_t i = (hole + 1) & mask; slots_[i].entry != nullptr; i = (i + 1) & mask) {
      const size_t home = Home(slots_[i].hash) & mask;
      const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (stays) continue;
      slots_[hole] = slots_[i];
      hole = i;
    }
    slots_[hole] = Slot{};
    --used_;
    if (slots_.size() > 1024 && used_ * 8 < slots_.size()) Resize(slots_.size() / 2);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    SeriesEntry* entry = nullptr;
  };
  static size_t Home(uint64_t hash) { return static_cast<size_t>(hash ^ (hash >> 32)); }
  void Place(uint64_t hash, SeriesEntry* entry) {
    const size_t mask = slots_.size() - 1;
    size_t i = Home(hash) & mask;
    while (slots_[i].entry != nullptr) i = (i + 1) & mask;
    slots_[i] = Slot{hash, entry};
  }
  void Resize(size_t size) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(size, Slot{});
    slots_.shrink_to_fit();
    for (const Slot& slot : old) {
      if (slot.entry != nullptr) Place(slot.hash, slot.entry);
    }
  }
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

// Series id -> entry (the owner of every entry). Pages of 4096 ids: ids are never reused, so a
// flat vector would grow with every series ever created; a page is freed once all of its
// series are forgotten. Guarded by Impl::index_mu.
class IdTable {
 public:
  SeriesEntry* Get(uint64_t id) const {
    const uint64_t page = id >> kPageBits;
    if (page >= pages_.size() || pages_[page] == nullptr) return nullptr;
    return pages_[page]->slots[id & kPageMask].get();
  }
  SeriesEntry* Put(std::unique_ptr<SeriesEntry> entry) {
    const uint64_t page = entry->id >> kPageBits;
    if (page >= pages_.size()) pages_.resize(page + 1);
    if (pages_[page] == nullptr) pages_[page] = std::make_unique<Page>();
    Page& p = *pages_[page];
    auto& slot = p.slots[entry->id & kPageMask];
    if (slot == nullptr) ++p.live;
    slot = std::move(entry);
    return slot.get();
  }
  std::unique_ptr<SeriesEntry> Take(uint64_t id) {
    const uint64_t page = id >> kPageBits;
    if (page >= pages_.size() || pages_[page] == nullptr) return nullptr;
    Page& p = *pages_[page];
    std::unique_ptr<SeriesEntry> e = std::move(p.slots[id & kPageMask]);
    if (e != nullptr && --p.live == 0) pages_[page].reset();
    return e;
  }
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& page : pages_) {
      if (page == nullptr) continue;
      for (const auto& e : page->slots) {
        if (e != nullptr) f(e.get());
      }
    }
  }

 private:
  static constexpr int kPageBits = 12;
  static constexpr uint64_t kPageMask = (uint64_t{1} << kPageBits) - 1;
  struct Page {
    std::array<std::unique_ptr<SeriesEntry>, size_t{1} << kPageBits> slots;
    size_t live = 0;
  };
  std::vector<std::unique_ptr<Page>> pages_;
};

// Appends and selects hold SeriesEntry pointers beyond index_mu (across head_mu and the
// commit). Each holds a pin for its call; ForgetExpiredSeries, after unlinking entries from
// the index, frees them only once every pin taken before the unlink is released. Two
// counters by epoch parity, so that waiting never blocks new pins.
class EntryPins {
 public:
  class Pin {
   public:
    explicit Pin(std::atomic<int64_t>* counter) : counter_(counter) {}
    ~Pin() { counter_->fetch_sub(1, std::memory_order_release); }
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

   private:
    std::atomic<int64_t>* counter_;
  };
  Pin Enter() {
    for (;;) {
      const uint64_t epoch = epoch_.load();
      std::atomic<int64_t>& counter = active_[epoch & 1];
      counter.fetch_add(1);
      if (epoch_.load() == epoch) return Pin(&counter);
      counter.fetch_sub(1);  // the epoch moved on meanwhile: pin in the new one
    }
  }
  // Returns once every pin entered before the call is released.
  void WaitForEarlierPins() {
    const uint64_t old = epoch_.fetch_add(1);
    while (active_[old & 1].load(std::memory_order_acquire) != 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

 private:
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int64_t> active_[2] = {0, 0};
};

}  // namespace suanli::storage
