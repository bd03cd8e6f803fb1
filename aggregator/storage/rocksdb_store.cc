// RocksDbStore: see rocksdb_store.h; key and value formats are drawn in README.md.
#include "aggregator/storage/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "aggregator/storage/column_codec.h"
#include "aggregator/storage/gorilla.h"
#include "aggregator/storage/head_log.h"
#include "core/scratch.h"

namespace suanli::storage {
namespace {

using rollup::Resolution;

constexpr char kIndexCf[] = "index";
constexpr char kHeadCf[] = "head";

// First byte of every key in the index column family.
// Databases written before this build also hold 'h' (hash -> id) and 'p' (postings) keys; the
// index now keeps both in memory, and Open ignores those keys.
constexpr char kSeriesTag = 's';  // s id -> labels
constexpr std::string_view kFormatKey = "mformat_version";
// The next series id (BE64), written when series are forgotten: their chunks stay on disk
// until retention drops their partitions, so their ids must never be handed out again.
constexpr std::string_view kNextIdKey = "mnext_id";
// 1: one key per sample. 2: head log, Gorilla chunks and rollups in time partitions.
constexpr uint32_t kFormatVersion = 2;

// First byte of every key in the head column family.
constexpr char kLogTag = 'l';     // l seq -> samples of one acknowledged batch (head log)
constexpr char kHeadTag = 'h';    // h id -> window start + open chunk (checkpoint)
constexpr char kCursorTag = 'c';  // c name -> kind (1 byte) + value (int64 BE)
// The first head log seq that Replay applies (the last checkpoint's); batches before it are
// only kept for log cursors. Absent in databases written before: replay everything.
constexpr std::string_view kReplayFromKey = "mreplay_from";

constexpr int64_t kNoSamples = std::numeric_limits<int64_t>::min();
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
// One raw chunk per series per hour. An open chunk at a 15 s interval holds 240 samples
// (~400 bytes with these values); a 2 h window would double the head's memory.
constexpr int64_t kWindowMs = kHourMs;
// Partition length per resolution (raw, 1m, 5m, 1h): each a multiple of the window, so a
// window (and its rollups) never straddles two partitions.
constexpr int64_t kPartitionMs[4] = {kDayMs, 7 * kDayMs, 30 * kDayMs, 90 * kDayMs};
constexpr const char* kPartitionPrefix[4] = {"raw_", "1m_", "5m_", "1h_"};

// ---- byte encodings (README.md) ----

void PutBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t GetBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Flipping the sign bit makes the unsigned big-endian order equal the signed order.
uint64_t FlipTimestamp(int64_t ts) { return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63); }
int64_t UnflipTimestamp(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }

std::string RawKey(uint64_t id, int64_t ts) {
  std::string k;
  k.reserve(16);
  PutBE64(&k, id);
  PutBE64(&k, FlipTimestamp(ts));
  return k;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

bool GetLengthPrefixed(std::string_view* in, std::string* out) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

// Appends the blob form of a label set (a range of items with .name and .value) to *out.
template <typename Range>
void EncodeLabelsTo(const Range& labels, std::string* out) {
  PutVarint(out, std::size(labels));
  for (const auto& l : labels) {
    PutVarint(out, std::size(l.name));
    out->append(l.name);
    PutVarint(out, std::size(l.value));
    out->append(l.value);
  }
}

bool DecodeLabels(std::string_view in, Labels* labels) {
  uint64_t n;
  if (!GetVarint(&in, &n) || n > in.size()) return false;  // each label takes >= 2 bytes
  std::vector<Label> items(n);
  for (Label& l : items) {
    if (!GetLengthPrefixed(&in, &l.name) || !GetLengthPrefixed(&in, &l.value)) return false;
  }
  if (!in.empty()) return false;
  *labels = Labels(std::move(items));
  return true;
}

std::string SeriesKey(uint64_t id) {
  std::string k(1, kSeriesTag);
  PutBE64(&k, id);
  return k;
}

// Smallest key greater than every key starting with `prefix`. Our prefixes end in a tag
// letter or a 0x00 terminator, never 0xff, so incrementing the last byte is enough.
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string msg = what + ": " + s.ToString();
  if (s.IsIOError() || s.IsCorruption()) return IoError(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgument(std::move(msg));
  if (s.IsNotFound()) return NotFound(std::move(msg));
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Unavailable(std::move(msg));
  return Internal(std::move(msg));
}

// Key of a chunk or rollup value: series id, then the window start with the sign bit flipped.
std::string ChunkKey(uint64_t id, int64_t window_start) { return RawKey(id, window_start); }

std::string LogKey(uint64_t seq) {
  std::string k(1, kLogTag);
  PutBE64(&k, seq);
  return k;
}

std::string CursorKey(std::string_view name) {
  std::string k(1, kCursorTag);
  k += name;
  return k;
}

std::string HeadKey(uint64_t id) {
  std::string k(1, kHeadTag);
  PutBE64(&k, id);
  return k;
}

int64_t WindowOf(int64_t ts) { return rollup::IntervalStart(ts, kWindowMs); }
int64_t PartitionOf(int res, int64_t ts) { return rollup::FloorDiv(ts, kPartitionMs[res]); }

// End (exclusive) of partition p, saturating at INT64_MAX.
int64_t PartitionEnd(int res, int64_t p) {
  if (p >= std::numeric_limits<int64_t>::max() / kPartitionMs[res]) {
    return std::numeric_limits<int64_t>::max();
  }
  return (p + 1) * kPartitionMs[res];
}

int64_t SatSub(int64_t a, int64_t b) {  // a - b, saturating (b >= 0)
  return a < std::numeric_limits<int64_t>::min() + b ? std::numeric_limits<int64_t>::min() : a - b;
}

// ---- label views (the ingest path's series identity, no Labels built) ----

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Mixes one string into h, 8 bytes at a time (the last word overlapping, short tails read in
// at most two loads, so no call to memcpy); the length keeps name/value borders apart.
uint64_t HashString(uint64_t h, std::string_view s) {
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
uint64_t HashViews(std::span<const LabelView> labels) {
  uint64_t h = 0x243F6A8885A308D3ULL;
  for (const LabelView& l : labels) h = HashString(HashString(h, l.name), l.value);
  return h;
}

// Canonical: names strictly increasing (so sorted, no duplicates) and no empty value.
bool IsCanonical(std::span<const LabelView> labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].value.empty()) return false;
    if (i > 0 && !(labels[i - 1].name < labels[i].name)) return false;
  }
  return true;
}

std::vector<LabelView> ViewsOf(const Labels& labels) {
  std::vector<LabelView> out;
  out.reserve(labels.size());
  for (const Label& l : labels.items()) out.push_back({l.name, l.value});
  return out;
}

// Value of label `name` ("" when absent).
std::string_view ValueOf(std::span<const LabelView> labels, std::string_view name) {
  for (const LabelView& l : labels) {
    if (l.name == name) return l.value;
  }
  return {};
}

Labels LabelsOf(std::span<const LabelView> views) {
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
bool BlobEqualsViews(std::string_view blob, std::span<const LabelView> labels) {
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

class SnapshotGuard {
 public:
  explicit SnapshotGuard(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotGuard() { db_->ReleaseSnapshot(snap_); }
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// RocksDB's info log in the aggregator's log, not in a LOG file in the database directory: on
// a full disk a LOG write fails, and RocksDB's next line to that file aborts the process (an
// assertion in WritableFileWriter that Debian's build of RocksDB 7.8 keeps). Its INFO lines
// (options, flushes, compactions) are at debug level, warnings and errors as such.
class InfoLogToSpdlog final : public rocksdb::Logger {
 public:
  InfoLogToSpdlog() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum to =
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                     : spdlog::level::debug;
    if (!spdlog::should_log(to)) return;
    char line[2048];
    std::vsnprintf(line, sizeof line, format, ap);
    spdlog::log(to, "rocksdb: {}", line);
  }
};

// A WriteBatch waiting for the commit leader. Items are queued in seq order under head_mu
// and written in that order, so a later batch never overtakes an earlier one (a checkpoint
// cannot overwrite a closed chunk with an older copy).
struct CommitItem {
  explicit CommitItem(size_t reserved_bytes = 0) : wb(reserved_bytes) {}
  uint64_t seq = 0;
  rocksdb::WriteBatch wb;
  Status status;
  bool done = false;
};

// Bytes reserved for a new open chunk: its first ~20-40 samples, so that the chunks of every
// series do not regrow (malloc and copy) at the second, fourth and eighth sample of each
// window; a one-hour chunk at 15 s holds 240 samples (~360-720 bytes) anyway.
constexpr size_t kHeadReserveBytes = 64;

// One sample of a batch being appended.
struct Pending {
  SeriesEntry* entry;
  int64_t ts;
  uint64_t bits;
};

}  // namespace

struct RocksDbStore::Impl {
  RocksDbStoreOptions options;
  std::function<uint64_t(const Labels&)> hash_fn;
  std::function<int64_t()> now_fn;
  std::unique_ptr<rocksdb::Env> env;  // over options.file_system, when set
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyOptions part_cf_options[4];          // per resolution
  std::vector<rocksdb::ColumnFamilyHandle*> fixed_handles;  // default, index, head
  rocksdb::ColumnFamilyHandle* index_cf = nullptr;
  rocksdb::ColumnFamilyHandle* head_cf = nullptr;

  // Time partitions: resolution -> partition index -> handle. Lock order: head_mu, cf_mu.
  mutable std::shared_mutex cf_mu;
  std::map<int64_t, rocksdb::ColumnFamilyHandle*> parts[4];

  mutable std::shared_mutex index_mu;
  SeriesTable by_hash;
  EntryArena entry_arena;  // declared before by_id: outlives it
  IdTable by_id;
  EntryPins pins;
  // Bumped under head_mu each time series are forgotten: an append whose lookups came before
  // checks its entries for `removed` only then.
  std::atomic<uint64_t> removals{0};
  // Series per `dc` value.
  std::unordered_map<std::string, uint64_t, StringViewHash, std::equal_to<>> dc_series;
  // Postings: label name -> value -> ids in increasing order (ids are allocated in order under
  // index_mu). In memory only, rebuilt at Open from the `s` keys: writing them as RocksDB keys
  // cost four random memtable inserts per new series, most of the CPU of creating one. Values
  // are hashed, not ordered (string compares down a tree were most of AddPostings' time);
  // matchers visit every value of a name either way.
  std::map<std::string, ValuePostings, std::less<>> postings;
  StoreLimits limits;
  uint64_t next_id = 1;  // 0 is never a series id

  // Head: every SeriesEntry head field, seq assignment and the commit queue's order.
  std::mutex head_mu;
  uint64_t next_seq = 1;
  uint64_t log_bytes_since_checkpoint = 0;
  std::atomic<uint64_t> head_series{0};
  // Chunks of windows the in-order path left behind, not yet written as closed windows. At an
  // hour boundary every series moves on at once, and closing ~30 us per chunk inline would
  // stall ingest for many seconds at 1M series: the background thread writes them in small
  // batches instead. Anything that rewrites closed windows or reads them under head_mu (the
  // general Append path, checkpoint, retention) first writes them all (FlushClosingLocked), so
  // it sees what it saw before; checkpoint and retention first drain the queue in the
  // closer's small batches (DrainClosing), so that the lock is held for what is left only;
  // Select copies them instead (SeriesEntry::closing_chunk). Their
  // samples stay in the head log and checkpoint until written.
  struct Closing {
    SeriesEntry* entry;
    ChunkEncoder chunk;
  };
  std::deque<Closing> closing;

  // Group commit.
  std::mutex commit_mu;
  std::condition_variable commit_cv;
  std::deque<CommitItem*> queue;
  bool leader_busy = false;
  uint64_t written_seq = 0;  // every item with seq <= this is written (commit_mu)
  uint64_t done_seq = 0;     // every item with seq <= this is done: written, kept or failed
  // The first seq of the first group whose write failed, and its error (commit_mu).
  uint64_t failed_seq = std::numeric_limits<uint64_t>::max();
  Status failed_status;
  // A full disk (ENOSPC) is not fatal: the batches that could not be written (already applied
  // to the heads) are kept here in seq order, with every batch queued after them, and written
  // again in that order once RocksDB resumes; until then Append answers kUnavailable before
  // touching the heads (commit_mu; disk_full mirrors `!unwritten.empty()` for lock-free reads).
  std::deque<std::pair<uint64_t, rocksdb::WriteBatch>> unwritten;
  std::atomic<bool> disk_full{false};
  Status DiskFull() const {
    return Unavailable("storage at " + options.path +
                       " is out of disk space; nothing of this request was stored; retry later");
  }
  // The background thread's share while the disk is full: resume RocksDB and write the
  // unwritten batches; true once done.
  bool TryResume();

  // First log seq Replay applies (head_mu); written with each checkpoint.
  uint64_t replay_from = 0;
  // Named cursors (Store::SetCursor), as on disk; log cursors keep the log (cursor_mu).
  std::mutex cursor_mu;
  std::map<std::string, Cursor, std::less<>> cursors;
  // The lowest kLog cursor value, or UINT64_MAX (caller holds cursor_mu).
  uint64_t LowestLogCursorLocked() const {
    uint64_t low = std::numeric_limits<uint64_t>::max();
    for (const auto& [name, c] : cursors) {
      if (c.kind == CursorKind::kLog) low = std::min(low, static_cast<uint64_t>(c.value));
    }
    return low;
  }
  Status CommitCursorBatch(std::unique_ptr<CommitItem> item);

  std::mutex checkpoint_mu;  // one checkpoint or retention pass at a time
  std::thread background;
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  bool stopping = false;
  bool checkpoint_wanted = false;

  std::atomic<uint64_t> series_count{0};
  std::atomic<bool> write_failed{false};
  std::atomic<uint64_t> rejected_too_old{0}, rejected_series_limit{0}, rejected_labels_limit{0},
      partitions_dropped{0}, checkpoints{0}, series_forgotten{0};

  ~Impl() {
    if (db == nullptr) return;
    for (auto& m : parts) {
      for (auto& [p, h] : m) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    for (rocksdb::ColumnFamilyHandle* h : fixed_handles) {
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    rocksdb::Status s = db->Close();
    if (!s.ok()) spdlog::warn("storage: closing {}: {}", options.path, s.ToString());
    delete db;
  }

  // Caller holds index_mu (shared or unique). `labels` canonical.
  SeriesEntry* Find(std::span<const LabelView> labels, uint64_t hash) const {
    return by_hash.Find(
        hash, [&](const SeriesEntry& e) { return BlobEqualsViews(e.labels_blob, labels); });
  }
  SeriesEntry* Find(const Labels& labels, uint64_t hash) const {
    return Find(ViewsOf(labels), hash);
  }
  // The lookup hash of canonical labels; the seam, when set, replaces it (tests of collisions).
  uint64_t LookupHash(std::span<const LabelView> labels) const {
    return options.label_hash ? options.label_hash(LabelsOf(labels)) : HashViews(labels);
  }
  uint64_t LookupHash(const Labels& labels) const {
    return options.label_hash ? options.label_hash(labels) : HashViews(ViewsOf(labels));
  }
  SeriesEntry* ById(uint64_t id) const { return by_id.Get(id); }

  // Caller holds index_mu unique.
  SeriesEntry* Insert(std::unique_ptr<SeriesEntry> entry) {
    SeriesEntry* e = entry.get();
    by_hash.Insert(e->hash, e);
    by_id.Put(std::move(entry));
    return e;
  }

  int64_t Now() const { return now_fn(); }
  int64_t Cutoff(int res) const {
    int64_t keep = options.retention_ms[res];
    return keep <= 0 ? kNoSamples : SatSub(Now(), keep);
  }
  bool PartitionExpired(int res, int64_t p) const {
    int64_t c = Cutoff(res);
    return c != kNoSamples && PartitionEnd(res, p) <= c;
  }

  Status Load();
  Status OpenPartitions(const std::vector<std::string>& names);
  Result<rocksdb::ColumnFamilyHandle*> Partition(int res, int64_t p);    // creates if missing
  rocksdb::ColumnFamilyHandle* FindPartition(int res, int64_t p) const;  // caller: cf_mu
  void AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e);
  // Caller holds index_mu unique; labels canonical.
  void AddPostings(std::span<const LabelView> labels, uint64_t id);
  // One more series of `dc` (caller holds index_mu unique); a key is built only for a new dc.
  void CountSeriesOfDc(std::string_view dc) {
    auto have = dc_series.find(dc);
    if (have == dc_series.end()) have = dc_series.emplace(dc, 0).first;
    ++have->second;
  }
  // Durable series with label name = value / whose value of matcher.name() matches; sorted.
  std::vector<uint64_t> PostingsForValue(const std::string& name, const std::string& value);
  std::vector<uint64_t> PostingsForName(const LabelMatcher& matcher);

  // Head (caller holds head_mu).
  Status ResolveMaxTimestamp(SeriesEntry* e);
  Result<std::optional<std::vector<Sample>>> ReadChunk(uint64_t id, int64_t window);
  Status WriteClosedWindow(rocksdb::WriteBatch* wb, uint64_t id, int64_t window,
                           const std::vector<Sample>& samples);
  Status CloseHead(rocksdb::WriteBatch* wb, SeriesEntry* e);
  // Writes up to `max` queued closing chunks into *wb (caller holds head_mu).
  Status WriteClosingLocked(rocksdb::WriteBatch* wb, size_t max);
  // Writes every queued closing chunk and waits until RocksDB has them (caller holds head_mu).
  Status FlushClosingLocked();
  // The background thread's share: a batch of closing chunks, committed. False when none.
  Result<bool> CloseSomeInBackground();
  // Writes the whole closing queue in those small batches, so that appends interleave; what
  // is queued meanwhile is left to the caller (FlushClosingLocked, then short).
  Status DrainClosing();
  Status ApplyLocked(std::vector<Pending>& pending, bool from_log, rocksdb::WriteBatch* wb,
                     std::string* log_record, AppendStats* stats);
  // The common case of ApplyLocked: every series' samples are newer than all it holds and
  // fall in one window. Returns false, changing nothing, when the batch is not like that.
  Result<bool> ApplyInOrderLocked(const std::vector<Pending>& pending, rocksdb::WriteBatch* wb,
                                  std::string* log_record, AppendStats* stats);

  // Commit: queue (caller holds head_mu) and wait (caller holds no lock).
  CommitItem* Enqueue(std::unique_ptr<CommitItem>& item);
  Status WaitCommitted(CommitItem* item);
  // Returns once every item with seq <= `seq` is written and synced (caller holds no lock);
  // the error of a failed group among them.
  Status WaitDurable(uint64_t seq);
  void WaitWritten(uint64_t seq);
  // Waits until every batch queued with a seq <= `seq` is done (written, kept while the disk
  // is full, or failed), leading a group if none is led. Needs no head_mu: reads wait here
  // for batches queued before they copied the heads, while appends go on.
  void WaitDone(uint64_t seq);
  void Lead(std::unique_lock<std::mutex>& lock);
  Status Fail(const rocksdb::Status& s);

  Status Checkpoint();
  Status EnforceRetention();
  // Series lifecycle: forgets every series with no sample inside any retention (and none in
  // the head log that a log cursor or replay still reads); see the definition.
  Status ForgetExpiredSeries();
  // An upper bound of the newest sample of a series without a head, from its newest closed
  // window on disk at any resolution (kNoSamples: none). Reads RocksDB; takes no lock.
  Result<int64_t> NewestOnDisk(uint64_t id);
  // Per series loaded at Open and not written since (max_ts unknown): NewestOnDisk, found once
  // (ForgetExpiredSeries, under checkpoint_mu).
  std::unordered_map<uint64_t, int64_t> newest_on_disk;
  Status Replay();
  void BackgroundLoop();
};

namespace {

rocksdb::ColumnFamilyOptions MakeCfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           size_t write_buffer_bytes, bool bloom,
                                           rocksdb::CompressionType upper,
                                           rocksdb::CompressionType bottom,
                                           size_t block_bytes = 4096) {
  rocksdb::ColumnFamilyOptions cf;
  // Default level-style compaction (never FIFO: it expires by write time and deletes past its
  // size cap). max_successive_merges stays 0: in 7.8.3 it can block writes.
  cf.level_compaction_dynamic_level_bytes = true;
  cf.write_buffer_size = write_buffer_bytes;
  cf.compression = upper;
  cf.bottommost_compression = bottom;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  table.block_size = block_bytes;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

bool Supported(const std::vector<rocksdb::CompressionType>& list, rocksdb::CompressionType t) {
  return std::find(list.begin(), list.end(), t) != list.end();
}

// "raw_-3" -> (0, -3); false for other names.
bool ParsePartitionName(const std::string& name, int* res, int64_t* p) {
  for (int r = 0; r < 4; ++r) {
    std::string_view prefix = kPartitionPrefix[r];
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string num = name.substr(prefix.size());
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(num.c_str(), &end, 10);
    if (errno != 0 || end == num.c_str() || *end != '\0') return false;
    *res = r;
    *p = v;
    return true;
  }
  return false;
}

std::string PartitionName(int res, int64_t p) { return kPartitionPrefix[res] + std::to_string(p); }

}  // namespace

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.bg_mu);
    d.stopping = true;
  }
  d.bg_cv.notify_all();
  if (d.background.joinable()) d.background.join();
  // A clean shutdown leaves a short head log, so the next Open replays little.
  if (!d.write_failed.load()) {
    Status st = d.Checkpoint();
    if (!st.ok()) spdlog::warn("storage: final checkpoint: {}", st.ToString());
  }
}

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbStoreOptions& options) {
  if (options.path.empty()) return InvalidArgument("storage path is empty");
  if (options.out_of_order_window_ms < 0) return InvalidArgument("out-of-order window < 0");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return IoError("creating storage directory " + options.path + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->limits = options.limits;
  impl->hash_fn =
      options.label_hash
          ? options.label_hash
          : std::function<uint64_t(const Labels&)>([](const Labels& l) { return l.Hash(); });
  impl->now_fn = options.now_ms ? options.now_ms : std::function<int64_t()>([] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  });

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  if (options.file_system) {
    impl->env = rocksdb::NewCompositeEnv(
        std::static_pointer_cast<rocksdb::FileSystem>(options.file_system));
    db_options.env = impl->env.get();
  }
  db_options.create_missing_column_families = true;
  db_options.max_total_wal_size = options.max_wal_bytes;
  // RocksDB's info log goes to ours, not to a LOG file beside the data (InfoLogToSpdlog).
  db_options.info_log = std::make_shared<InfoLogToSpdlog>();
  db_options.info_log_level = rocksdb::InfoLogLevel::INFO_LEVEL;
  db_options.max_background_jobs = 2;
  // kPointInTimeRecovery (the default): after a crash, replay stops at the first torn record;
  // every synced batch before it is recovered whole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // One thread writes at a time (the commit leader), and the index's vector memtable does not
  // take concurrent inserts.
  db_options.allow_concurrent_memtable_write = false;

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  bool lz4 = Supported(supported, rocksdb::kLZ4Compression);
  bool zstd = Supported(supported, rocksdb::kZSTD);
  rocksdb::CompressionType upper = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  rocksdb::CompressionType bottom = zstd ? rocksdb::kZSTD : upper;
  if (!lz4 || !zstd) {
    spdlog::warn("storage: this RocksDB lacks {}{}; using {} and {} bottommost", lz4 ? "" : "LZ4 ",
                 zstd ? "" : "ZSTD ", lz4 ? "LZ4" : "no compression",
                 zstd ? "ZSTD" : (lz4 ? "LZ4" : "no compression"));
  }

  std::vector<std::string> existing;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing);
  if (!ls.ok()) existing.clear();  // a new database

  rocksdb::Status s;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Partitions hold closed, column-coded data, written once and read by range: 16 KiB blocks
    // (fewer index entries, more context for ZSTD at the bottom level, which still takes the
    // keys' shared prefixes). Raw chunks keep a bloom filter (opening a head for a window
    // probes for a closed chunk that mostly does not exist); rollups are only ever scanned, so
    // a filter would be 1.25 bytes per key for nothing.
    for (int res = 0; res < 4; ++res) {
      impl->part_cf_options[res] = MakeCfOptions(cache, options.write_buffer_bytes,
                                                 /*bloom=*/res == 0, upper, bottom, 32 << 10);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, MakeCfOptions(cache, 4 << 20, false, upper, bottom)},
        {kIndexCf, MakeCfOptions(cache, std::max<size_t>(options.write_buffer_bytes / 4, 1 << 20),
                                 false, upper, bottom)},
        {kHeadCf, MakeCfOptions(cache, options.write_buffer_bytes, false, upper, bottom)},
    };
    // The index is written in id order and read only by whole-family scans at Open: an
    // append-only vector memtable (sorted once, at flush or scan) instead of the skiplist,
    // whose search and key compares were a sixth of the CPU of creating a series.
    cfs[1].options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();

    for (const std::string& name : existing) {
      int res;
      int64_t p;
      if (ParsePartitionName(name, &res, &p)) cfs.push_back({name, impl->part_cf_options[res]});
    }
    handles.clear();
    s = rocksdb::DB::Open(db_options, options.path, cfs, &handles, &impl->db);
    bool compression_refused = (s.IsInvalidArgument() || s.IsNotSupported()) &&
                               s.ToString().find("ompression") != std::string::npos;
    if (!compression_refused || upper == rocksdb::kNoCompression) break;
    spdlog::warn("storage: RocksDB refused compression ({}); opening {} without compression",
                 s.ToString(), options.path);
    upper = bottom = rocksdb::kNoCompression;
  }
  if (!s.ok()) return FromRocks(s, "opening storage at " + options.path);
  impl->fixed_handles.assign(handles.begin(), handles.begin() + 3);
  impl->index_cf = handles[1];
  impl->head_cf = handles[2];
  for (size_t i = 3; i < handles.size(); ++i) {
    int res;
    int64_t p;
    ParsePartitionName(handles[i]->GetName(), &res, &p);
    impl->parts[res][p] = handles[i];
  }

  std::string where = "opening storage at " + options.path;
  RETURN_IF_ERROR(impl->Load().WithContext(where));
  RETURN_IF_ERROR(impl->EnforceRetention().WithContext(where));
  RETURN_IF_ERROR(impl->Replay().WithContext(where));
  RETURN_IF_ERROR(impl->Checkpoint().WithContext(where));
  spdlog::info("storage: opened {} with {} series, {} open chunks", options.path,
               impl->series_count.load(), impl->head_series.load());
  Impl* raw = impl.get();
  impl->background = std::thread([raw] { raw->BackgroundLoop(); });
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::move(impl)));
}

Result<std::unique_ptr<Store>> OpenRocksDbStore(const RocksDbStoreOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<RocksDbStore> store, RocksDbStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

Status RocksDbStore::Impl::Load() {
  rocksdb::ReadOptions ro;
  std::string version;
  rocksdb::Status s =
      db->Get(ro, index_cf, rocksdb::Slice(kFormatKey.data(), kFormatKey.size()), &version);
  if (s.IsNotFound()) {
    std::string v;
    PutBE64(&v, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(
        FromRocks(db->Put(wo, index_cf, rocksdb::Slice(kFormatKey.data(), kFormatKey.size()), v),
                  "writing format version"));
  } else if (!s.ok()) {
    return FromRocks(s, "reading format version");
  } else if (version.size() != 8 || GetBE64(version.data()) != kFormatVersion) {
    return InvalidArgument("unknown storage format version (this build reads version " +
                           std::to_string(kFormatVersion) + ")");
  }

  // id -> labels: rebuild the in-memory index.
  std::string lower(1, kSeriesTag), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, index_cf));
  size_t loaded = 0;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    if (key.size() != 9) return Internal("malformed series key in the index");
    uint64_t id = GetBE64(key.data() + 1);
    Labels labels;
    if (!DecodeLabels(View(it->value()), &labels)) {
      return Internal("malformed labels of series " + std::to_string(id));
    }
    uint64_t hash = LookupHash(labels);
    if (SeriesEntry* dup = Find(labels, hash)) {
      return Internal("series " + labels.ToString() + " has two ids (" + std::to_string(dup->id) +
                      ", " + std::to_string(id) + ")");
    }
    CountSeriesOfDc(labels.Get("dc"));
    AddPostings(ViewsOf(labels), id);
    Insert(SeriesEntry::Create(entry_arena, id, hash, View(it->value()), /*durable=*/true));
    next_id = std::max(next_id, id + 1);
    ++loaded;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the series index"));
  std::string floor;
  s = db->Get(rocksdb::ReadOptions(), index_cf,
              rocksdb::Slice(kNextIdKey.data(), kNextIdKey.size()), &floor);
  if (s.ok() && floor.size() == 8) {
    next_id = std::max(next_id, GetBE64(floor.data()));
  } else if (!s.ok() && !s.IsNotFound()) {
    return FromRocks(s, "reading the next series id");
  }

  series_count = loaded;
  return Status::Ok();
}

rocksdb::ColumnFamilyHandle* RocksDbStore::Impl::FindPartition(int res, int64_t p) const {
  auto it = parts[res].find(p);
  return it == parts[res].end() ? nullptr : it->second;
}

Result<rocksdb::ColumnFamilyHandle*> RocksDbStore::Impl::Partition(int res, int64_t p) {
  {
    std::shared_lock lock(cf_mu);
    if (auto* h = FindPartition(res, p)) return h;
  }
  std::unique_lock lock(cf_mu);
  if (auto* h = FindPartition(res, p)) return h;
  rocksdb::ColumnFamilyHandle* h = nullptr;
  RETURN_IF_ERROR(FromRocks(db->CreateColumnFamily(part_cf_options[res], PartitionName(res, p), &h),
                            "creating partition " + PartitionName(res, p)));
  parts[res][p] = h;
  return h;
}

// Only `s id -> labels`: the lookup hash and the postings live in memory, rebuilt at Open.
void RocksDbStore::Impl::AddSeriesToBatch(rocksdb::WriteBatch* wb, const SeriesEntry& e) {
  wb->Put(index_cf, SeriesKey(e.id), e.labels_blob);
}

void RocksDbStore::Impl::AddPostings(std::span<const LabelView> labels, uint64_t id) {
  for (const LabelView& l : labels) {
    auto by_name = postings.find(l.name);
    if (by_name == postings.end()) by_name = postings.try_emplace(std::string(l.name)).first;
    ValuePostings& values = by_name->second;
    auto by_value = values.find(l.value);
    if (by_value == values.end()) by_value = values.try_emplace(std::string(l.value)).first;
    by_value->second.push_back(id);
  }
}

// ---- group commit ----

CommitItem* RocksDbStore::Impl::Enqueue(std::unique_ptr<CommitItem>& item) {
  item->seq = next_seq++;
  std::lock_guard lock(commit_mu);
  queue.push_back(item.get());
  return item.get();
}

Status RocksDbStore::Impl::Fail(const rocksdb::Status& s) {
  // After a WAL error RocksDB cannot tell what reached the disk: stop writing.
  Status status =
      IoError("storage write failed (further writes refused until restart): " + s.ToString());
  if (!write_failed.exchange(true)) {
    spdlog::error("storage: write to {} failed, refusing further writes: {}", options.path,
                  s.ToString());
    if (options.on_write_failed) options.on_write_failed(status);
  }
  return status;
}

// Caller holds commit_mu (in `lock`) and no leader is active: writes every queued item in
// order without sync, then syncs the WAL once for all of them (group commit).
void RocksDbStore::Impl::Lead(std::unique_lock<std::mutex>& lock) {
  if (queue.empty()) return;  // nothing to write (a waiter whose batch another leader has)
  leader_busy = true;
  std::deque<CommitItem*> group;
  group.swap(queue);
  lock.unlock();
  Status status;
  bool keep = false;  // the disk is full: keep the group for TryResume
  if (write_failed.load()) {
    status = IoError("storage refuses writes after a failed write; restart the aggregator");
  } else if (disk_full.load()) {
    keep = true;  // behind batches not yet written: never before them
  } else {
    rocksdb::WriteOptions wo;
    wo.sync = false;
    rocksdb::Status s;
    for (CommitItem* item : group) {
      s = db->Write(wo, &item->wb);
      if (!s.ok()) break;
    }
    if (s.ok() && options.before_sync) {
      if (Status hook = options.before_sync(); !hook.ok()) {
        s = hook.code() == StatusCode::kResourceExhausted
                ? rocksdb::Status::NoSpace(hook.message())
                : rocksdb::Status::IOError(hook.message());
      }
    }
    if (s.ok()) s = db->SyncWAL();
    if (s.IsNoSpace()) {
      keep = true;
      if (!disk_full.exchange(true)) {
        spdlog::error(
            "storage: {} is out of disk space, refusing writes (503) until there is "
            "room again: {}",
            options.path, s.ToString());
      }
    } else if (!s.ok()) {
      status = Fail(s);
    }
  }
  if (keep) status = DiskFull();
  lock.lock();
  if (!status.ok() && !keep && !group.empty() && group.front()->seq < failed_seq) {
    failed_seq = group.front()->seq;
    failed_status = status;
  }
  for (CommitItem* item : group) {
    // A kept batch is written again as it is: writing one twice in order is harmless (the
    // same keys get the same values), should part of the group have reached RocksDB.
    if (keep) unwritten.emplace_back(item->seq, item->wb);
    item->status = status;
    item->done = true;
    done_seq = std::max(done_seq, item->seq);
    if (!keep) written_seq = std::max(written_seq, item->seq);
  }
  leader_busy = false;
  commit_cv.notify_all();
}

Status RocksDbStore::Impl::WaitCommitted(CommitItem* item) {
  std::unique_lock lock(commit_mu);
  while (!item->done) {
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
  return item->status;
}

Status RocksDbStore::Impl::WaitDurable(uint64_t seq) {
  std::unique_lock lock(commit_mu);
  while (written_seq < seq) {
    if (!unwritten.empty() && unwritten.front().first <= seq) return DiskFull();
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
  return failed_seq <= seq ? failed_status : Status::Ok();
}

bool RocksDbStore::Impl::TryResume() {
  std::unique_lock lock(commit_mu);
  if (leader_busy) return false;  // a leader may be about to keep its group
  if (!disk_full.load()) return true;
  leader_busy = true;  // no leader writes meanwhile
  lock.unlock();
  // RocksDB stops writing after an ENOSPC from the WAL; Resume flushes the memtables and
  // starts a new WAL, so that nothing is appended behind a torn record.
  rocksdb::Status s = db->Resume();
  if (s.ok()) {
    rocksdb::WriteOptions wo;
    wo.sync = false;
    for (auto& [seq, wb] : unwritten) {  // only this thread touches it while leader_busy
      s = db->Write(wo, &wb);
      if (!s.ok()) break;
    }
    if (s.ok()) s = db->SyncWAL();
  }
  const bool fatal = !s.ok() && !s.IsNoSpace() && !s.IsBusy();
  Status failed;
  if (fatal) failed = Fail(s);
  lock.lock();
  if (s.ok()) {
    if (!unwritten.empty()) written_seq = std::max(written_seq, unwritten.back().first);
    spdlog::info(
        "storage: {} has room again; {} batches kept while the disk was full are "
        "written, writing resumes",
        options.path, unwritten.size());
    unwritten.clear();
    disk_full = false;
  } else if (fatal) {
    // Kept batches were refused to their callers; the store now refuses everything.
    if (!unwritten.empty()) written_seq = std::max(written_seq, unwritten.back().first);
    if (!unwritten.empty() && unwritten.front().first < failed_seq) {
      failed_seq = unwritten.front().first;
      failed_status = failed;
    }
    unwritten.clear();
    disk_full = false;
  }
  leader_busy = false;
  commit_cv.notify_all();
  return s.ok();
}

void RocksDbStore::Impl::WaitDone(uint64_t seq) {
  std::unique_lock lock(commit_mu);
  while (done_seq < seq) {
    if (!leader_busy) {
      if (queue.empty()) return;  // nothing left to wait for
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
}

// Every queued item is written (reads under head_mu see all closed chunks). Caller holds
// head_mu, so nothing new is queued meanwhile.
void RocksDbStore::Impl::WaitWritten(uint64_t) {
  std::unique_lock lock(commit_mu);
  while (!queue.empty() || leader_busy) {
    if (!leader_busy) {
      Lead(lock);
    } else {
      commit_cv.wait(lock);
    }
  }
}

// ---- head ----

Result<std::optional<std::vector<Sample>>> RocksDbStore::Impl::ReadChunk(uint64_t id,
                                                                         int64_t window) {
  WaitWritten(0);
  // Kept batches (a full disk) may hold this window's chunk: reading RocksDB would miss it.
  if (disk_full.load()) return DiskFull();
  std::shared_lock lock(cf_mu);
  rocksdb::ColumnFamilyHandle* cf = FindPartition(0, PartitionOf(0, window));
  if (cf == nullptr) return std::optional<std::vector<Sample>>();
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, ChunkKey(id, window), &value);
  if (s.IsNotFound()) return std::optional<std::vector<Sample>>();
  RETURN_IF_ERROR(FromRocks(s, "reading a chunk"));
  std::vector<Sample> samples;
  RETURN_IF_ERROR(DecodeChunk(View(value), window, &samples));
  return std::optional<std::vector<Sample>>(std::move(samples));
}

Status RocksDbStore::Impl::ResolveMaxTimestamp(SeriesEntry* e) {
  WaitWritten(0);
  int64_t max_ts = e->has_head && e->head.count() > 0 ? e->head.last_ts() : kNoSamples;
  std::string lower, upper;
  PutBE64(&lower, e->id);
  PutBE64(&upper, e->id + 1);
  std::shared_lock lock(cf_mu);
  for (auto p = parts[0].rbegin(); p != parts[0].rend(); ++p) {
    rocksdb::Slice lower_s(lower), upper_s(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_s;
    ro.iterate_upper_bound = &upper_s;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, p->second));
    it->SeekToLast();
    if (it->Valid()) {
      if (it->key().size() != 16) return Internal("malformed chunk key");
      std::vector<Sample> samples;
      int64_t window = UnflipTimestamp(GetBE64(it->key().data() + 8));
      RETURN_IF_ERROR(DecodeChunk(View(it->value()), window, &samples));
      if (!samples.empty()) max_ts = std::max(max_ts, samples.back().timestamp_ms);
      break;
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the last chunk of a series"));
  }
  e->max_ts = max_ts;
  e->max_known = true;
  return Status::Ok();
}

// Writes the chunk of a closed window and its rollups; partitions past retention are skipped.
Status RocksDbStore::Impl::WriteClosedWindow(rocksdb::WriteBatch* wb, uint64_t id, int64_t window,
                                             const std::vector<Sample>& samples) {
  std::string key = ChunkKey(id, window);
  int64_t p = PartitionOf(0, window);
  if (!PartitionExpired(0, p)) {
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Partition(0, p));
    wb->Put(cf, key, EncodeClosedChunk(window, samples));
  }
  for (int res = 1; res <= rollup::kNumRollupResolutions; ++res) {
    p = PartitionOf(res, window);
    if (PartitionExpired(res, p)) continue;
    int64_t len = rollup::ResolutionMs(static_cast<Resolution>(res));
    std::vector<rollup::Record> records = rollup::Compute(samples, len);
    if (records.empty()) continue;  // only NaN / stale markers: no rollup
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Partition(res, p));
    wb->Put(cf, key, EncodeRollupBlock(window, records));
  }
  return Status::Ok();
}

Status RocksDbStore::Impl::CloseHead(rocksdb::WriteBatch* wb, SeriesEntry* e) {
  std::vector<Sample> samples;
  RETURN_IF_ERROR(DecodeChunk(e->head.Finish(), e->head.window_start(), &samples));
  RETURN_IF_ERROR(WriteClosedWindow(wb, e->id, e->head.window_start(), samples));
  e->head = ChunkEncoder();
  e->has_head = false;
  e->head_dirty = false;
  head_series.fetch_sub(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status RocksDbStore::Impl::WriteClosingLocked(rocksdb::WriteBatch* wb, size_t max) {
  for (size_t n = 0; n < max && !closing.empty(); ++n) {
    Closing& c = closing.front();
    std::vector<Sample> samples;
    RETURN_IF_ERROR(DecodeChunk(c.chunk.Finish(), c.chunk.window_start(), &samples));
    RETURN_IF_ERROR(WriteClosedWindow(wb, c.entry->id, c.chunk.window_start(), samples));
    c.entry->closing_chunk = nullptr;
    closing.pop_front();
  }
  return Status::Ok();
}

Status RocksDbStore::Impl::FlushClosingLocked() {
  std::vector<std::unique_ptr<CommitItem>> items;
  while (!closing.empty()) {
    auto item = std::make_unique<CommitItem>();
    RETURN_IF_ERROR(WriteClosingLocked(&item->wb, 20000));
    if (item->wb.Count() == 0) continue;  // only windows past retention
    Enqueue(item);
    items.push_back(std::move(item));
  }
  if (items.empty()) return Status::Ok();
  WaitWritten(0);
  for (const auto& item : items) RETURN_IF_ERROR(item->status);
  return Status::Ok();
}

Result<bool> RocksDbStore::Impl::CloseSomeInBackground() {
  auto item = std::make_unique<CommitItem>();
  {
    // Small batches: each holds head_mu for ~2000 x 30 us, so appends interleave.
    std::lock_guard lock(head_mu);
    if (closing.empty()) return false;
    RETURN_IF_ERROR(WriteClosingLocked(&item->wb, 2000));
    if (item->wb.Count() == 0) return true;
    Enqueue(item);
  }
  RETURN_IF_ERROR(WaitCommitted(item.get()));
  return true;
}

Status RocksDbStore::Impl::DrainClosing() {
  for (;;) {
    ASSIGN_OR_RETURN(bool wrote, CloseSomeInBackground());
    if (!wrote) return Status::Ok();
  }
}

namespace {

uint64_t BitsOf(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Merges sorted, distinct `add` (whose timestamps are not in `base`) into sorted `base`.
std::vector<Sample> Merge(const std::vector<Sample>& base, const std::vector<Sample>& add) {
  std::vector<Sample> out;
  out.reserve(base.size() + add.size());
  std::merge(base.begin(), base.end(), add.begin(), add.end(), std::back_inserter(out),
             [](const Sample& a, const Sample& b) { return a.timestamp_ms < b.timestamp_ms; });
  return out;
}

Status Conflict(const Labels& labels, int64_t ts, uint64_t stored, uint64_t bits) {
  double a, b;
  std::memcpy(&a, &stored, 8);
  std::memcpy(&b, &bits, 8);
  return InvalidArgument("duplicate sample for timestamp " + std::to_string(ts) + " of series " +
                         labels.ToString() + " with a different value (" + std::to_string(a) +
                         " vs " + std::to_string(b) + ")");
}

}  // namespace

// Checks and then applies `pending` (sorted by series and time, distinct timestamps per
// series) to the heads; closed windows and their rollups go into *wb, head samples into
// *log_record. Nothing changes when a check fails. Caller holds head_mu.
Status RocksDbStore::Impl::ApplyLocked(std::vector<Pending>& pending, bool from_log,
                                       rocksdb::WriteBatch* wb, std::string* log_record,
                                       AppendStats* stats) {
  struct Plan {
    size_t begin, end;  // [begin, end) of pending: one series, one window
    int64_t window;
    bool fast = false;  // appends after the head's last sample
    std::optional<std::vector<Sample>> existing;
  };
  // Closed windows this batch may read or rewrite must be in RocksDB first.
  RETURN_IF_ERROR(FlushClosingLocked());
  std::vector<Plan> plans;
  std::vector<char> skip(pending.size(), 0);
  const int64_t ooo = options.out_of_order_window_ms;

  // Phase 1: checks.
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin;
    while (end < pending.size() && pending[end].entry == e) ++end;
    if (!e->max_known) RETURN_IF_ERROR(ResolveMaxTimestamp(e));
    if (!from_log && e->max_ts != kNoSamples && ooo != std::numeric_limits<int64_t>::max()) {
      int64_t oldest = SatSub(e->max_ts, ooo);
      if (pending[begin].ts < oldest) {  // sorted: the first is the oldest
        rejected_too_old.fetch_add(1, std::memory_order_relaxed);
        Labels labels;
        DecodeLabels(e->labels_blob, &labels);
        return InvalidArgument(
            "out of bounds: sample at " + std::to_string(pending[begin].ts) + " of series " +
            labels.ToString() + " is older than the out-of-order window (" + std::to_string(ooo) +
            " ms before its newest sample at " + std::to_string(e->max_ts) + ")");
      }
    }
    for (size_t wb_begin = begin; wb_begin < end;) {
      int64_t window = WindowOf(pending[wb_begin].ts);
      size_t wb_end = wb_begin;
      while (wb_end < end && WindowOf(pending[wb_end].ts) == window) ++wb_end;
      Plan plan{wb_begin, wb_end, window, false, std::nullopt};
      if (e->has_head && window == e->head.window_start()) {
        if (e->head.count() == 0 || pending[wb_begin].ts > e->head.last_ts()) {
          plan.fast = true;
        } else {
          std::vector<Sample> head;
          RETURN_IF_ERROR(DecodeChunk(e->head.Finish(), window, &head));
          plan.existing = std::move(head);
        }
      } else if (e->max_ts != kNoSamples && e->max_ts >= window) {
        ASSIGN_OR_RETURN(plan.existing, ReadChunk(e->id, window));
      }
      if (plan.existing) {
        const std::vector<Sample>& ex = *plan.existing;
        for (size_t i = wb_begin; i < wb_end; ++i) {
          auto it =
              std::lower_bound(ex.begin(), ex.end(), pending[i].ts,
                               [](const Sample& s, int64_t ts) { return s.timestamp_ms < ts; });
          if (it == ex.end() || it->timestamp_ms != pending[i].ts) continue;
          uint64_t stored = BitsOf(it->value);
          if (stored != pending[i].bits) {
            if (from_log) {
              spdlog::warn("storage: head log sample conflicts with the store; kept the store's");
            } else {
              Labels labels;
              DecodeLabels(e->labels_blob, &labels);
              return Conflict(labels, pending[i].ts, stored, pending[i].bits);
            }
          }
          skip[i] = 1;
          ++stats->duplicates;
        }
      }
      plans.push_back(std::move(plan));
      wb_begin = wb_end;
    }
    begin = end;
  }

  // Phase 2: apply.
  SeriesEntry* log_series = nullptr;
  std::vector<std::pair<int64_t, uint64_t>> log_samples;  // (ts, bits) of log_series
  std::string unused_record;
  HeadLogWriter log(log_record != nullptr ? log_record : &unused_record);
  auto flush_log = [&] {
    if (log_series != nullptr && !log_samples.empty() && log_record != nullptr) {
      log.BeginSeries(log_series->id, log_samples.size(), log_samples.front().first);
      for (const auto& [ts, bits] : log_samples) log.Sample(ts, bits);
    }
    log_series = nullptr;
    log_samples.clear();
  };
  for (Plan& plan : plans) {
    SeriesEntry* e = pending[plan.begin].entry;
    if (e != log_series) {
      flush_log();
      log_series = e;
    }
    std::vector<Sample> fresh;
    for (size_t i = plan.begin; i < plan.end; ++i) {
      if (skip[i]) continue;
      double v;
      std::memcpy(&v, &pending[i].bits, 8);
      fresh.push_back({pending[i].ts, v});
    }
    if (fresh.empty()) continue;
    stats->samples_stored += fresh.size();
    e->max_ts = std::max(e->max_ts, fresh.back().timestamp_ms);
    bool to_head = true;
    if (e->has_head && plan.window == e->head.window_start()) {
      if (plan.fast) {
        for (const Sample& s : fresh) e->head.Append(s.timestamp_ms, BitsOf(s.value));
      } else {
        std::vector<Sample> merged = Merge(*plan.existing, fresh);
        ChunkEncoder enc(plan.window);
        for (const Sample& s : merged) enc.Append(s.timestamp_ms, BitsOf(s.value));
        e->head = std::move(enc);
      }
    } else if (!e->has_head || plan.window > e->head.window_start()) {
      if (e->has_head) RETURN_IF_ERROR(CloseHead(wb, e));
      ChunkEncoder enc(plan.window);
      const std::vector<Sample>& all = plan.existing ? Merge(*plan.existing, fresh) : fresh;
      for (const Sample& s : all) enc.Append(s.timestamp_ms, BitsOf(s.value));
      e->head = std::move(enc);
      e->has_head = true;
      head_series.fetch_add(1, std::memory_order_relaxed);
    } else {
      // An older, closed window: rewrite its chunk and rollups now (rare: out of order).
      const std::vector<Sample> base = plan.existing ? *plan.existing : std::vector<Sample>{};
      RETURN_IF_ERROR(WriteClosedWindow(wb, e->id, plan.window, Merge(base, fresh)));
      to_head = false;
    }
    if (!to_head) continue;
    e->head_dirty = true;
    for (const Sample& s : fresh) log_samples.emplace_back(s.timestamp_ms, BitsOf(s.value));
  }
  flush_log();
  return Status::Ok();
}

Result<bool> RocksDbStore::Impl::ApplyInOrderLocked(const std::vector<Pending>& pending,
                                                    rocksdb::WriteBatch* wb,
                                                    std::string* log_record, AppendStats* stats) {
  // Check: per series (consecutive runs), strictly increasing times after everything the
  // series holds (so no duplicate, conflict or out-of-order case), all in one window that is
  // either the open head's or a later one with nothing stored in it yet.
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    e->head.PrefetchTail();  // the apply loop below appends there
    if (!e->max_known) return false;
    const int64_t window = WindowOf(pending[begin].ts);
    if (e->max_ts != kNoSamples && pending[begin].ts <= e->max_ts) return false;
    const bool head_window = e->has_head && window == e->head.window_start();
    if (!head_window) {
      if (e->closing_chunk != nullptr) return false;  // two windows behind: the general path
      if (e->has_head && window < e->head.window_start()) return false;
      if (e->max_ts != kNoSamples && e->max_ts >= window) return false;
    }
    // Inside [window, window + kWindowMs) without a division per sample.
    const uint64_t window_offset_limit = kWindowMs - 1;
    size_t end = begin + 1;
    for (; end < pending.size() && pending[end].entry == e; ++end) {
      if (pending[end].ts <= pending[end - 1].ts ||
          static_cast<uint64_t>(pending[end].ts) - static_cast<uint64_t>(window) >
              window_offset_limit) {
        return false;
      }
    }
    begin = end;
  }
  // Apply. The log record is sized for the worst case once and written in place (every
  // series has a sample, so pending.size() bounds the series count), then cut to length.
  HeadLogWriter log(nullptr);
  const size_t record_start = log_record->size();
  log_record->resize(record_start + HeadLogWriter::kMaxStartBytes +
                     pending.size() *
                         (HeadLogWriter::kMaxSeriesBytes + HeadLogWriter::kMaxSampleBytes));
  char* out = log_record->data() + record_start;
  for (size_t begin = 0; begin < pending.size();) {
    SeriesEntry* e = pending[begin].entry;
    size_t end = begin + 1;
    while (end < pending.size() && pending[end].entry == e) ++end;
    const int64_t window = WindowOf(pending[begin].ts);
    if (!e->has_head || window != e->head.window_start()) {
      if (e->has_head) {
        // Written later by the background thread (see `closing`); the head count stays.
        closing.push_back({e, std::move(e->head)});
        e->closing_chunk = &closing.back().chunk;
      } else {
        head_series.fetch_add(1, std::memory_order_relaxed);
      }
      e->head = ChunkEncoder(window);
      e->head.Reserve(kHeadReserveBytes);
      e->has_head = true;
    }
    out = log.BeginSeries(out, begin == 0 && record_start == 0, e->id, end - begin,
                          pending[begin].ts);
    for (size_t i = begin; i < end; ++i) {
      e->head.Append(pending[i].ts, pending[i].bits);
      out = log.Sample(out, pending[i].ts, pending[i].bits);
    }
    e->head_dirty = true;
    e->max_ts = pending[end - 1].ts;
    stats->samples_stored += end - begin;
    begin = end;
  }
  log_record->resize(static_cast<size_t>(out - log_record->data()));
  return true;
}

Result<AppendStats> RocksDbStore::AppendViews(std::span<const SeriesView> batch,
                                              const NewSeriesCheck* check_new_series) {
  Impl& d = *impl_;
  if (d.write_failed.load(std::memory_order_acquire)) {
    return IoError("storage at " + d.options.path +
                   " refuses writes after a failed write; restart the aggregator");
  }
  if (d.disk_full.load(std::memory_order_acquire)) return d.DiskFull();
  // Entries found below stay allocated until this call returns (ForgetExpiredSeries).
  const EntryPins::Pin pin = d.pins.Enter();
  for (;;) {  // once, unless a series looked up was forgotten before it was applied
    const uint64_t removals_before = d.removals.load(std::memory_order_acquire);
    AppendStats stats;

    // 1. Look each series up by the hash of its labels as sent. A match compares equal to the
    // stored canonical blob, so the labels were sent canonical (sorted, no empty value), and
    // no Labels object is built. Only a series not found is canonicalized and checked.
    struct Ref {
      std::span<const LabelView> labels;  // as sent; canonical once step 2 ran
      bool used = false;                  // false: the series has no samples (ignored)
      uint64_t hash = 0;
      SeriesEntry* entry = nullptr;
    };
    // Per-thread scratch, reused by the next batch: allocating and faulting in these per
    // request costs as much as the lookups.
    thread_local std::vector<Ref> refs;
    ScratchReleaser release_refs(refs, kMaxKeptScratchBytes);
    refs.assign(batch.size(), Ref{});
    size_t total_samples = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const SeriesView& series = batch[i];
      if (series.samples.empty()) continue;
      total_samples += series.samples.size();
      Ref& r = refs[i];
      r.used = true;
      r.labels = series.labels;
      r.hash = d.LookupHash(r.labels);
    }
    bool missing = false;
    {
      // A lookup misses the cache in its slot, then in its entry (labels included). In groups,
      // the group's slots, then their entries are prefetched together, so that the misses
      // overlap instead of queuing one by one. The span covers typical label blobs and the
      // head state the apply step below reads.
      constexpr size_t kGroup = 16, kEntrySpan = sizeof(SeriesEntry) + 128;
      std::shared_lock lock(d.index_mu);
      for (size_t begin = 0; begin < refs.size(); begin += kGroup) {
        const size_t end = std::min(refs.size(), begin + kGroup);
        for (size_t i = begin; i < end; ++i) {
          if (refs[i].used) d.by_hash.PrefetchSlot(refs[i].hash);
        }
        for (size_t i = begin; i < end; ++i) {
          if (!refs[i].used) continue;
          const char* p = reinterpret_cast<const char*>(d.by_hash.FirstCandidate(refs[i].hash));
          if (p == nullptr) continue;
          for (size_t off = 0; off < kEntrySpan; off += 64) __builtin_prefetch(p + off);
        }
        for (size_t i = begin; i < end; ++i) {
          Ref& r = refs[i];
          if (!r.used) continue;
          r.entry = d.Find(r.labels, r.hash);
          missing = missing || r.entry == nullptr;
        }
      }
    }

    // 2. Series ids for the others. New ids are allocated under the unique lock and published
    // at once, so a concurrent batch with the same new series finds this entry and uses the
    // same id. Limits are checked for all new series of the batch before any is created.
    // A series sent in canonical form (the usual case) is checked and created from the views
    // into the request; only the others are rebuilt, here.
    std::deque<Labels> rebuilt_labels;
    std::deque<std::vector<LabelView>> rebuilt;  // views of rebuilt_labels
    if (missing) {
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        if (IsCanonical(r.labels) && !r.labels.empty()) {
          if (check_new_series != nullptr) RETURN_IF_ERROR((*check_new_series)(i, r.labels));
          continue;
        }
        Labels sent = LabelsOf(r.labels);  // sorted by name, duplicates kept
        if (check_new_series != nullptr) RETURN_IF_ERROR((*check_new_series)(i, ViewsOf(sent)));
        rebuilt_labels.push_back(CanonicalLabels(sent));
        rebuilt.push_back(ViewsOf(rebuilt_labels.back()));
        r.labels = rebuilt.back();
        r.hash = d.LookupHash(r.labels);
      }
      std::unique_lock lock(d.index_mu);
      std::unordered_map<std::string_view, uint64_t> new_per_dc;
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        r.entry = d.Find(r.labels, r.hash);
        if (r.entry != nullptr) continue;
        const std::span<const LabelView> labels = r.labels;
        if (d.limits.max_labels_per_series > 0 && labels.size() > d.limits.max_labels_per_series) {
          d.rejected_labels_limit.fetch_add(1, std::memory_order_relaxed);
          return ResourceExhausted("limit max_labels_per_series (" +
                                   std::to_string(d.limits.max_labels_per_series) +
                                   ") exceeded by series " + LabelsOf(labels).ToString() +
                                   " with " + std::to_string(labels.size()) + " labels");
        }
        std::string_view dc = ValueOf(labels, "dc");
        uint64_t n = ++new_per_dc[dc];
        auto have = d.dc_series.find(dc);
        uint64_t existing = have == d.dc_series.end() ? 0 : have->second;
        if (d.limits.max_series_per_dc > 0 && existing + n > d.limits.max_series_per_dc) {
          d.rejected_series_limit.fetch_add(1, std::memory_order_relaxed);
          return ResourceExhausted("limit max_series_per_dc (" +
                                   std::to_string(d.limits.max_series_per_dc) +
                                   ") reached for dc=\"" + std::string(dc) + "\"; series " +
                                   LabelsOf(labels).ToString() + " refused");
        }
      }
      std::string blob;
      for (size_t i = 0; i < refs.size(); ++i) {
        Ref& r = refs[i];
        if (!r.used || r.entry != nullptr) continue;
        r.entry = d.Find(r.labels, r.hash);
        if (r.entry == nullptr) {
          blob.clear();
          EncodeLabelsTo(r.labels, &blob);
          r.entry = d.Insert(SeriesEntry::Create(d.entry_arena, d.next_id++, r.hash, blob, false));
          r.entry->max_known = true;  // a new series has no samples yet
          d.CountSeriesOfDc(ValueOf(r.labels, "dc"));
          d.AddPostings(r.labels, r.entry->id);
        }
      }
    }

    // 3. Samples grouped by series in time order; duplicates within the batch collapse,
    // conflicts refuse it. Usually each series comes once with sorted samples: then the batch
    // order already is such a grouping and no sort is needed.
    thread_local std::vector<Pending> pending;
    ScratchReleaser release_pending(pending, kMaxKeptScratchBytes);
    pending.clear();
    pending.reserve(total_samples);
    bool grouped = true;
    {
      // Open-addressing set of the batch's entries: a series that comes twice needs the sort.
      size_t slots = 16;
      while (slots < batch.size() * 2) slots <<= 1;
      std::vector<SeriesEntry*> seen(slots, nullptr);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!refs[i].used) continue;
        SeriesEntry* e = refs[i].entry;
        if (grouped) {
          size_t h = (reinterpret_cast<uintptr_t>(e) >> 4) * 0x9E3779B97F4A7C15ULL >> 20;
          for (size_t k = h & (slots - 1);; k = (k + 1) & (slots - 1)) {
            if (seen[k] == e) {
              grouped = false;
              break;
            }
            if (seen[k] == nullptr) {
              seen[k] = e;
              break;
            }
          }
        }
        const std::span<const Sample> samples = batch[i].samples;
        for (size_t j = 0; j < samples.size(); ++j) {
          if (j > 0 && samples[j].timestamp_ms <= samples[j - 1].timestamp_ms) grouped = false;
          pending.push_back({e, samples[j].timestamp_ms, BitsOf(samples[j].value)});
        }
      }
    }
    if (!grouped) {
      std::stable_sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
        if (a.entry->id != b.entry->id) return a.entry->id < b.entry->id;
        return a.ts < b.ts;
      });
      size_t kept = 0;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (kept > 0 && pending[kept - 1].entry == pending[i].entry &&
            pending[kept - 1].ts == pending[i].ts) {
          if (pending[kept - 1].bits != pending[i].bits) {
            Labels labels;
            DecodeLabels(pending[i].entry->labels_blob, &labels);
            return Conflict(labels, pending[i].ts, pending[kept - 1].bits, pending[i].bits);
          }
          ++stats.duplicates;
          continue;
        }
        pending[kept++] = pending[i];
      }
      pending.resize(kept);
    }

    // 4. Check and apply to the heads, and queue the batch, under head_mu; commit outside it.
    // Sized for the usual case (the head log record, a few bytes per sample) so that the batch
    // is not regrown several times.
    auto item = std::make_unique<CommitItem>(pending.size() * 8 + 256);
    std::vector<SeriesEntry*> unconfirmed;
    bool want_checkpoint = false, wake_closer = false;
    uint64_t duplicates_of = 0;  // all duplicates: the last batch queued before this one
    {
      std::unique_lock lock(d.head_mu);
      thread_local std::string record;  // scratch, as `refs`
      ScratchReleaser release_record(record, kMaxKeptScratchBytes);
      record.clear();
      // A series forgotten since the lookups: look up again (it is created anew).
      auto forgotten = [&] {
        return d.removals.load(std::memory_order_relaxed) != removals_before &&
               std::any_of(pending.begin(), pending.end(),
                           [](const Pending& p) { return p.entry->removed; });
      };
      if (forgotten()) continue;
      size_t closing_before = d.closing.size();
      ASSIGN_OR_RETURN(bool applied, d.ApplyInOrderLocked(pending, &item->wb, &record, &stats));
      if (!applied && !d.closing.empty()) {
        // The general path writes the closing queue first (all of it after an hour boundary):
        // write it in the closer's small batches outside the lock, so that other appends go on,
        // then look again (the in-order check changes nothing when it fails).
        lock.unlock();
        RETURN_IF_ERROR(d.DrainClosing());
        lock.lock();
        if (forgotten()) continue;
        closing_before = d.closing.size();
        ASSIGN_OR_RETURN(applied, d.ApplyInOrderLocked(pending, &item->wb, &record, &stats));
      }
      wake_closer = d.closing.size() > closing_before;
      if (!applied) {
        RETURN_IF_ERROR(d.ApplyLocked(pending, /*from_log=*/false, &item->wb, &record, &stats));
      }
      for (size_t i = 0; i < pending.size(); ++i) {
        SeriesEntry* e = pending[i].entry;
        if (i > 0 && pending[i - 1].entry == e) continue;
        e->last_log_seq = d.next_seq;  // the seq Enqueue gives this batch, if it holds samples
        if (!e->durable.load(std::memory_order_acquire)) {
          d.AddSeriesToBatch(&item->wb, *e);
          unconfirmed.push_back(e);
        }
      }
      if (item->wb.Count() == 0 && record.empty()) {
        // All duplicates, maybe of a batch still being committed: acknowledged only once every
        // batch queued before this one is durable, as its own batch would be.
        duplicates_of = d.next_seq - 1;
      } else {
        uint64_t seq = d.next_seq;  // Enqueue assigns it
        if (!record.empty()) {
          item->wb.Put(d.head_cf, LogKey(seq), record);
          d.log_bytes_since_checkpoint += record.size();
          want_checkpoint = d.log_bytes_since_checkpoint > d.options.head_log_bytes;
        }
        d.Enqueue(item);
      }
    }
    if (item->seq == 0) {  // not queued
      RETURN_IF_ERROR(d.WaitDurable(duplicates_of));
      return stats;
    }
    Status st = d.WaitCommitted(item.get());
    if (!st.ok()) return st;

    // 5. Publish: durable series.
    for (SeriesEntry* e : unconfirmed) {
      if (!e->durable.exchange(true, std::memory_order_acq_rel)) {
        ++stats.new_series;
        d.series_count.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (want_checkpoint) {
      std::lock_guard lock(d.bg_mu);
      d.checkpoint_wanted = true;
    }
    if (want_checkpoint || wake_closer) d.bg_cv.notify_all();
    return stats;
  }
}

std::vector<uint64_t> RocksDbStore::Impl::PostingsForValue(const std::string& name,
                                                           const std::string& value) {
  std::vector<uint64_t> ids;
  std::shared_lock lock(index_mu);
  auto by_name = postings.find(name);
  if (by_name == postings.end()) return ids;
  auto by_value = by_name->second.find(value);
  if (by_value == by_name->second.end()) return ids;
  ids.reserve(by_value->second.size());
  for (uint64_t id : by_value->second) {
    if (ById(id)->durable.load(std::memory_order_acquire)) ids.push_back(id);
  }
  return ids;
}

std::vector<uint64_t> RocksDbStore::Impl::PostingsForName(const LabelMatcher& matcher) {
  std::vector<uint64_t> ids;
  std::shared_lock lock(index_mu);
  auto by_name = postings.find(matcher.name());
  if (by_name == postings.end()) return ids;
  for (const auto& [value, list] : by_name->second) {
    if (!matcher.Matches(value)) continue;
    for (uint64_t id : list) {
      if (ById(id)->durable.load(std::memory_order_acquire)) ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<std::vector<SeriesSamples>> RocksDbStore::Select(const std::vector<MatcherSpec>& matchers,
                                                        int64_t min_ms, int64_t max_ms) {
  return SelectRollup(matchers, min_ms, max_ms, Resolution::kRaw, rollup::Aggregate::kRaw);
}

Result<std::vector<SeriesSamples>> RocksDbStore::SelectRollup(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms, Resolution resolution,
    rollup::Aggregate aggregate) {
  return SelectImpl(matchers, min_ms, max_ms, resolution, aggregate, nullptr);
}

Result<std::vector<SeriesRecords>> RocksDbStore::SelectRecords(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms,
    Resolution resolution) {
  if (resolution == Resolution::kRaw) return InvalidArgument("SelectRecords needs a rollup");
  std::vector<SeriesRecords> out;
  RETURN_IF_ERROR(
      SelectImpl(matchers, min_ms, max_ms, resolution, rollup::Aggregate::kRaw, &out).status());
  return out;
}

// Select, SelectRollup and SelectRecords: with `records` (a rollup resolution), each matching
// series' records in range go there and no samples are returned.
Result<std::vector<SeriesSamples>> RocksDbStore::SelectImpl(
    const std::vector<MatcherSpec>& matchers, int64_t min_ms, int64_t max_ms, Resolution resolution,
    rollup::Aggregate aggregate, std::vector<SeriesRecords>* records) {
  Impl& d = *impl_;
  const int res = static_cast<int>(resolution);
  ASSIGN_OR_RETURN(std::vector<LabelMatcher> compiled, CompileMatchers(matchers));
  std::vector<SeriesSamples> out;
  min_ms = std::max(min_ms, d.Cutoff(res));  // exact retention on reads
  if (min_ms > max_ms) return out;
  const EntryPins::Pin pin = d.pins.Enter();  // the entries found below stay allocated

  // Candidates from the postings (one snapshot of the index).
  std::optional<std::vector<uint64_t>> ids;
  {
    for (const LabelMatcher& m : compiled) {
      if (m.spec().type != MatcherSpec::kEqual || m.spec().value.empty()) continue;
      std::vector<uint64_t> posting = d.PostingsForValue(m.name(), m.spec().value);
      if (ids) {
        std::vector<uint64_t> both;
        std::set_intersection(ids->begin(), ids->end(), posting.begin(), posting.end(),
                              std::back_inserter(both));
        ids = std::move(both);
      } else {
        ids = std::move(posting);
      }
      if (ids->empty()) return out;
    }
    if (!ids) {
      for (const LabelMatcher& m : compiled) {
        if (m.Matches("")) continue;
        ids = d.PostingsForName(m);
        break;
      }
    }
  }
  if (!ids) return Internal("no selective matcher after CompileMatchers");

  struct Found {
    SeriesEntry* entry;
    Labels labels;
    int64_t head_window = kNoSamples;
    std::string head;  // the open chunk, if any
    bool has_head = false;
    int64_t closing_window = kNoSamples;
    std::string closing;  // the previous window, closed but not yet written, if any
    bool has_closing = false;
    std::vector<Sample> samples;
    std::vector<rollup::Record> records;
  };
  std::vector<Found> series;
  {
    std::shared_lock lock(d.index_mu);
    for (uint64_t id : *ids) {
      SeriesEntry* e = d.ById(id);
      if (e == nullptr) continue;  // forgotten since the postings were read
      Labels labels;
      if (!DecodeLabels(e->labels_blob, &labels)) return Internal("malformed labels in memory");
      bool match = std::all_of(compiled.begin(), compiled.end(), [&](const LabelMatcher& m) {
        return m.Matches(labels.Get(m.name()));
      });
      if (match) series.push_back(Found{e, std::move(labels), kNoSamples, {}, false, {}, {}});
    }
  }
  const int64_t wlo = WindowOf(min_ms), whi = WindowOf(max_ms);
  {
    // Copies of the open chunks and of the closed ones not yet written (`closing`), under
    // head_mu but without writing or reading RocksDB there, so that a query never holds
    // ingest up (at an hour boundary every series has a closing chunk). Then, outside the
    // lock, every batch queued before the copy is waited for: a window such a batch closed is
    // then readable below, and a window copied here is skipped there (the copy holds all of
    // it that this query can see).
    uint64_t queued_before = 0;
    {
      std::lock_guard lock(d.head_mu);
      for (Found& f : series) {
        SeriesEntry* e = f.entry;
        if (e->has_head && e->head.window_start() >= wlo && e->head.window_start() <= whi) {
          f.has_head = true;
          f.head_window = e->head.window_start();
          f.head = e->head.Finish();
        }
        const ChunkEncoder* c = e->closing_chunk;
        if (c != nullptr && c->window_start() >= wlo && c->window_start() <= whi) {
          f.has_closing = true;
          f.closing_window = c->window_start();
          f.closing = c->Finish();
        }
      }
      queued_before = d.next_seq - 1;
    }
    d.WaitDone(queued_before);
  }

  SnapshotGuard snapshot(d.db);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  const int64_t len = rollup::ResolutionMs(resolution);
  uint64_t total = 0;
  auto count = [&](size_t n) -> Status {
    total += n;
    if (total > d.options.max_select_samples) {
      return ResourceExhausted("query selects more than " +
                               std::to_string(d.options.max_select_samples) + " samples");
    }
    return Status::Ok();
  };
  {
    std::shared_lock lock(d.cf_mu);
    auto first = d.parts[res].lower_bound(PartitionOf(res, wlo));
    auto last = d.parts[res].upper_bound(PartitionOf(res, whi));
    for (auto p = first; p != last; ++p) {
      std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, p->second));
      for (Found& f : series) {
        std::string lower = ChunkKey(f.entry->id, wlo), upper = ChunkKey(f.entry->id, whi);
        for (it->Seek(lower); it->Valid() && it->key().compare(upper) <= 0; it->Next()) {
          if (it->key().size() != 16) return Internal("malformed chunk key");
          int64_t window = UnflipTimestamp(GetBE64(it->key().data() + 8));
          // A copy taken above holds all of that window.
          if (f.has_head && window == f.head_window) continue;
          if (f.has_closing && window == f.closing_window) continue;
          if (res == 0) {
            std::vector<Sample> chunk;
            RETURN_IF_ERROR(DecodeChunk(View(it->value()), window, &chunk));
            size_t before = f.samples.size();
            for (const Sample& s : chunk) {
              if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) f.samples.push_back(s);
            }
            RETURN_IF_ERROR(count(f.samples.size() - before));
          } else {
            size_t before = f.records.size();
            RETURN_IF_ERROR(DecodeRollups(View(it->value()), window, &f.records));
            RETURN_IF_ERROR(count(f.records.size() - before));
          }
        }
        RETURN_IF_ERROR(FromRocks(it->status(), "reading chunks"));
      }
    }
  }
  for (Found& f : series) {
    for (auto [has, chunk, window] : {std::tuple{f.has_head, &f.head, f.head_window},
                                      std::tuple{f.has_closing, &f.closing, f.closing_window}}) {
      if (!has) continue;
      std::vector<Sample> head;
      RETURN_IF_ERROR(DecodeChunk(*chunk, window, &head));
      if (res == 0) {
        size_t before = f.samples.size();
        for (const Sample& s : head) {
          if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) f.samples.push_back(s);
        }
        RETURN_IF_ERROR(count(f.samples.size() - before));
      } else {
        std::vector<rollup::Record> r = rollup::Compute(head, len);
        f.records.insert(f.records.end(), r.begin(), r.end());
      }
    }
    SeriesSamples result;
    if (res == 0) {
      std::sort(f.samples.begin(), f.samples.end(),
                [](const Sample& a, const Sample& b) { return a.timestamp_ms < b.timestamp_ms; });
      for (const Sample& s : f.samples) {
        if (s.timestamp_ms >= min_ms && s.timestamp_ms <= max_ms) result.samples.push_back(s);
      }
    } else {
      std::sort(f.records.begin(), f.records.end(),
                [](const rollup::Record& a, const rollup::Record& b) {
                  return a.start != b.start ? a.start < b.start : a.count > b.count;
                });
      // One record per interval. Two for the same interval (seen after a restart under a
      // catch-up load; the cause is not found yet) would give two values at one timestamp:
      // the one with more samples covers the other.
      auto dup = std::unique(
          f.records.begin(), f.records.end(),
          [](const rollup::Record& a, const rollup::Record& b) { return a.start == b.start; });
      if (dup != f.records.end()) {
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true)) {
          spdlog::warn(
              "storage: two rollup records for one interval of {} (start {}); using the "
              "one with more samples",
              f.labels.ToString(), dup->start);
        }
        f.records.erase(dup, f.records.end());
      }
      // Records of intervals that end before min_ms add nothing (and would seed the counter
      // with a value from outside the range).
      std::vector<rollup::Record> in_range;
      for (const rollup::Record& r : f.records) {
        if (r.last_ts >= min_ms && r.first_ts <= max_ms) in_range.push_back(r);
      }
      if (records != nullptr) {
        if (!in_range.empty()) records->push_back({std::move(f.labels), std::move(in_range)});
        continue;
      }
      rollup::Emit(in_range, aggregate, min_ms, max_ms, &result.samples);
    }
    if (result.samples.empty()) continue;
    result.labels = std::move(f.labels);
    out.push_back(std::move(result));
  }
  std::sort(out.begin(), out.end(),
            [](const SeriesSamples& a, const SeriesSamples& b) { return a.labels < b.labels; });
  if (records != nullptr) {
    std::sort(records->begin(), records->end(),
              [](const SeriesRecords& a, const SeriesRecords& b) { return a.labels < b.labels; });
  }
  return out;
}

// ---- checkpoint, retention, recovery ----

// Persists every changed open chunk to the head family (closing those a window or more behind
// the wall clock's window), then truncates the head log before the first batch not yet covered.
// Idleness follows the clock, not the newest sample seen: one sample from a sender whose clock
// runs ahead must not close every other series' open chunk.
Status RocksDbStore::Impl::Checkpoint() {
  std::lock_guard cp(checkpoint_mu);
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  uint64_t cut;
  std::vector<SeriesEntry*> heads;
  // Chunks still waiting to be closed lose their head log below: write them first, in small
  // batches (after an hour boundary that is every series), then under the lock what came since.
  RETURN_IF_ERROR(DrainClosing());
  {
    std::lock_guard lock(head_mu);
    RETURN_IF_ERROR(FlushClosingLocked());
    cut = next_seq;  // every batch before it is applied to the heads
    log_bytes_since_checkpoint = 0;
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) {
      if (e->has_head) heads.push_back(e);
    });
  }
  constexpr size_t kPerBatch = 20000;  // bounds head_mu hold time and batch size
  std::vector<std::unique_ptr<CommitItem>> items;
  for (size_t begin = 0; begin < heads.size(); begin += kPerBatch) {
    auto item = std::make_unique<CommitItem>();
    std::lock_guard lock(head_mu);
    const int64_t newest_window = WindowOf(Now());
    for (size_t i = begin; i < std::min(heads.size(), begin + kPerBatch); ++i) {
      SeriesEntry* e = heads[i];
      if (!e->has_head) continue;
      bool idle = e->head.window_start() < SatSub(newest_window, kWindowMs);
      if (idle) {
        RETURN_IF_ERROR(CloseHead(&item->wb, e));
        item->wb.Delete(head_cf, HeadKey(e->id));
      } else if (e->head_dirty) {
        std::string v;
        PutBE64(&v, FlipTimestamp(e->head.window_start()));
        v += e->head.Finish();
        item->wb.Put(head_cf, HeadKey(e->id), v);
        e->head_dirty = false;
      }
    }
    if (item->wb.Count() == 0) continue;
    Enqueue(item);
    items.push_back(std::move(item));
  }
  {
    // Batches a log cursor still needs stay (forwarding reads them); Replay starts at `cut`.
    uint64_t keep_from;
    {
      std::lock_guard lock(cursor_mu);
      keep_from = std::min(cut, LowestLogCursorLocked());
    }
    auto item = std::make_unique<CommitItem>();
    std::lock_guard lock(head_mu);
    if (keep_from > 0) item->wb.DeleteRange(head_cf, LogKey(0), LogKey(keep_from));
    std::string v;
    PutBE64(&v, cut);
    item->wb.Put(head_cf, rocksdb::Slice(kReplayFromKey.data(), kReplayFromKey.size()), v);
    replay_from = cut;
    Enqueue(item);
    items.push_back(std::move(item));
  }
  for (auto& item : items) RETURN_IF_ERROR(WaitCommitted(item.get()));
  checkpoints.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status RocksDbStore::Impl::EnforceRetention() {
  std::lock_guard cp(checkpoint_mu);
  RETURN_IF_ERROR(DrainClosing());  // as Checkpoint: not all of it under the lock
  std::lock_guard lock(head_mu);
  RETURN_IF_ERROR(FlushClosingLocked());
  WaitWritten(0);  // no queued batch may name a family dropped below
  std::unique_lock cfs(cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (auto it = parts[res].begin(); it != parts[res].end();) {
      if (!PartitionExpired(res, it->first)) {
        ++it;
        continue;
      }
      std::string name = it->second->GetName();
      RETURN_IF_ERROR(FromRocks(db->DropColumnFamily(it->second), "dropping partition " + name));
      db->DestroyColumnFamilyHandle(it->second).PermitUncheckedError();
      it = parts[res].erase(it);
      partitions_dropped.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("storage: retention dropped partition {}", name);
    }
  }
  return Status::Ok();
}

Result<int64_t> RocksDbStore::Impl::NewestOnDisk(uint64_t id) {
  int64_t newest = kNoSamples;
  std::string lower, upper;
  PutBE64(&lower, id);
  PutBE64(&upper, id + 1);
  std::shared_lock lock(cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (auto p = parts[res].rbegin(); p != parts[res].rend(); ++p) {
      rocksdb::Slice lower_s(lower), upper_s(upper);
      rocksdb::ReadOptions ro;
      ro.iterate_lower_bound = &lower_s;
      ro.iterate_upper_bound = &upper_s;
      ro.fill_cache = false;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, p->second));
      it->SeekToLast();
      RETURN_IF_ERROR(FromRocks(it->status(), "reading the last window of a series"));
      if (!it->Valid()) continue;
      if (it->key().size() != 16) return Internal("malformed chunk key");
      // Every resolution keys its blocks by the raw window: its end bounds every sample.
      const int64_t window = UnflipTimestamp(GetBE64(it->key().data() + 8));
      newest = std::max(newest, SatSub(window + kWindowMs, 1));
      break;
    }
  }
  return newest;
}

// A series is forgotten when it has no head, no chunk waiting to close, its newest sample is
// older than every resolution's retention cutoff (so no read can return anything of it), and
// no head log batch that replay or a log cursor still reads holds its samples. Its index key
// goes, its memory (entry, postings, lookup slot) is freed, and its id is never reused: its
// chunks stay on disk until retention drops their partitions, and nothing reads them.
Status RocksDbStore::Impl::ForgetExpiredSeries() {
  int64_t keep_after = std::numeric_limits<int64_t>::max();
  for (int res = 0; res < 4; ++res) {
    if (options.retention_ms[res] <= 0) return Status::Ok();  // one resolution keeps forever
    keep_after = std::min(keep_after, Cutoff(res));
  }
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  // Candidates, then for series loaded at Open and idle since, their newest window on disk
  // (outside every lock; once per series).
  std::vector<uint64_t> candidates, unknown;
  uint64_t queued = 0;
  {
    std::lock_guard head(head_mu);
    queued = next_seq - 1;
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) {
      if (e->has_head || e->closing_chunk != nullptr) return;
      if (e->max_known) {
        if (e->max_ts < keep_after) candidates.push_back(e->id);
        if (!newest_on_disk.empty()) newest_on_disk.erase(e->id);
      } else if (auto it = newest_on_disk.find(e->id); it == newest_on_disk.end()) {
        unknown.push_back(e->id);
      } else if (it->second < keep_after) {
        candidates.push_back(e->id);
      }
    });
  }
  if (!unknown.empty()) WaitDone(queued);  // closed windows queued so far are on disk
  for (uint64_t id : unknown) {
    ASSIGN_OR_RETURN(int64_t newest, NewestOnDisk(id));
    newest_on_disk[id] = newest;
    if (newest < keep_after) candidates.push_back(id);
  }
  if (candidates.empty()) return Status::Ok();

  uint64_t log_keep_from;
  {
    std::lock_guard lock(cursor_mu);
    log_keep_from = LowestLogCursorLocked();
  }
  constexpr size_t kPerBatch = 10000;  // bounds the time appends wait for the locks
  size_t forgotten = 0;
  std::vector<std::unique_ptr<SeriesEntry>> freed;
  std::vector<std::unique_ptr<CommitItem>> items;
  for (size_t begin = 0; begin < candidates.size(); begin += kPerBatch) {
    auto item = std::make_unique<CommitItem>();
    std::lock_guard head(head_mu);
    const uint64_t keep_from = std::min(log_keep_from, replay_from);
    std::unique_lock index(index_mu);
    // name -> value -> ids to remove from that posting list (sorted: candidates are).
    std::map<std::string, std::map<std::string, std::vector<uint64_t>>> unposted;
    for (size_t i = begin; i < std::min(candidates.size(), begin + kPerBatch); ++i) {
      SeriesEntry* e = ById(candidates[i]);
      if (e == nullptr || e->has_head || e->closing_chunk != nullptr) continue;
      if (e->last_log_seq >= keep_from) continue;
      if (e->max_known) {
        if (e->max_ts >= keep_after) continue;
      } else {
        auto it = newest_on_disk.find(e->id);
        if (it == newest_on_disk.end() || it->second >= keep_after) continue;
      }
      e->removed = true;
      Labels labels;
      DecodeLabels(e->labels_blob, &labels);
      for (const Label& l : labels.items()) unposted[l.name][l.value].push_back(e->id);
      if (auto dc = dc_series.find(labels.Get("dc")); dc != dc_series.end()) {
        if (--dc->second == 0) dc_series.erase(dc);
      }
      if (e->durable.load(std::memory_order_acquire)) {
        item->wb.Delete(index_cf, SeriesKey(e->id));
        series_count.fetch_sub(1, std::memory_order_relaxed);
      }
      newest_on_disk.erase(e->id);
      by_hash.Remove(e->hash, e);
      freed.push_back(by_id.Take(e->id));
      ++forgotten;
    }
    for (auto& [name, values] : unposted) {
      auto by_name = postings.find(name);
      if (by_name == postings.end()) continue;
      for (auto& [value, gone] : values) {
        auto list = by_name->second.find(value);
        if (list == by_name->second.end()) continue;
        std::vector<uint64_t>& ids = list->second;
        std::sort(gone.begin(), gone.end());
        ids.erase(std::remove_if(ids.begin(), ids.end(),
                                 [&](uint64_t id) {
                                   return std::binary_search(gone.begin(), gone.end(), id);
                                 }),
                  ids.end());
        if (ids.empty()) {
          by_name->second.erase(list);
        } else if (ids.capacity() > 2 * ids.size() + 16) {
          ids.shrink_to_fit();
        }
      }
      if (by_name->second.empty()) postings.erase(by_name);
    }
    removals.fetch_add(1, std::memory_order_release);
    if (item->wb.Count() == 0) continue;
    std::string v;
    PutBE64(&v, next_id);
    item->wb.Put(index_cf, rocksdb::Slice(kNextIdKey.data(), kNextIdKey.size()), v);
    Enqueue(item);
    items.push_back(std::move(item));
  }
  for (auto& item : items) RETURN_IF_ERROR(WaitCommitted(item.get()));
  pins.WaitForEarlierPins();  // appends and selects that may still hold them
  freed.clear();
  series_forgotten.fetch_add(forgotten, std::memory_order_relaxed);
  if (forgotten > 0) {
    spdlog::info("storage: forgot {} series with no sample inside any retention", forgotten);
  }
  // Their index keys are tombstones now: compact the index when many went, so that the next
  // start-up reads only live series.
  if (forgotten >= 10000) {
    RETURN_IF_ERROR(
        FromRocks(db->CompactRange(rocksdb::CompactRangeOptions(), index_cf, nullptr, nullptr),
                  "compacting the series index"));
  }
  return Status::Ok();
}

// Rebuilds the heads after Open: the checkpointed open chunks, then every batch of the head
// log since the last checkpoint, in order.
Status RocksDbStore::Impl::Replay() {
  std::lock_guard lock(head_mu);
  rocksdb::ReadOptions ro;
  std::string lower(1, kHeadTag), upper = PrefixEnd(lower);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, head_cf));
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    if (it->key().size() != 9 || it->value().size() < 8) return Internal("malformed head key");
    SeriesEntry* e = ById(GetBE64(it->key().data() + 1));
    if (e == nullptr) continue;
    int64_t window = UnflipTimestamp(GetBE64(it->value().data()));
    // A closed chunk of the same window (closed after this checkpoint) holds everything.
    ASSIGN_OR_RETURN(std::optional<std::vector<Sample>> closed, ReadChunk(e->id, window));
    std::vector<Sample> samples;
    if (closed) {
      samples = std::move(*closed);
    } else {
      RETURN_IF_ERROR(DecodeChunk(View(it->value()).substr(8), window, &samples));
    }
    e->head = ChunkEncoder(window);
    for (const Sample& s : samples) e->head.Append(s.timestamp_ms, BitsOf(s.value));
    if (!e->has_head) head_series.fetch_add(1, std::memory_order_relaxed);
    e->has_head = true;
    e->max_known = false;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading checkpointed heads"));

  // Cursors, and where the last checkpoint left the head log.
  lower.assign(1, kCursorTag);
  upper = PrefixEnd(lower);
  lower_s = lower;
  upper_s = upper;
  it.reset(db->NewIterator(ro, head_cf));
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::string_view v = View(it->value());
    if (v.size() != 9 || (v[0] != static_cast<char>(CursorKind::kLog) &&
                          v[0] != static_cast<char>(CursorKind::kTime))) {
      return Internal("malformed cursor " + std::string(View(it->key()).substr(1)));
    }
    Cursor c{static_cast<CursorKind>(v[0]), static_cast<int64_t>(GetBE64(v.data() + 1))};
    std::lock_guard cl(cursor_mu);
    cursors[std::string(View(it->key()).substr(1))] = c;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading cursors"));
  std::string from;
  rocksdb::Status fs = db->Get(rocksdb::ReadOptions(), head_cf,
                               rocksdb::Slice(kReplayFromKey.data(), kReplayFromKey.size()), &from);
  if (fs.ok() && from.size() == 8) {
    replay_from = GetBE64(from.data());
  } else if (!fs.ok() && !fs.IsNotFound()) {
    return FromRocks(fs, "reading the head log start");
  }

  lower.assign(1, kLogTag);
  upper = PrefixEnd(lower);
  lower_s = lower;
  upper_s = upper;
  it.reset(db->NewIterator(ro, head_cf));
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 9) next_seq = GetBE64(it->key().data() + 1) + 1;
  // Never hand out a seq a cursor or the last checkpoint has already passed.
  next_seq = std::max(next_seq, replay_from);
  {
    std::lock_guard cl(cursor_mu);
    for (const auto& [name, c] : cursors) {
      if (c.kind == CursorKind::kLog) next_seq = std::max(next_seq, static_cast<uint64_t>(c.value));
    }
  }
  {
    std::lock_guard cl(commit_mu);
    written_seq = next_seq - 1;
  }
  const std::string replay_start = LogKey(replay_from);
  lower_s = replay_start;
  size_t batches = 0, samples = 0;
  CommitItem* last = nullptr;
  std::vector<std::unique_ptr<CommitItem>> items;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    std::vector<Pending> pending;
    uint64_t unknown_id = 0;
    bool well_formed = ReadHeadLog(View(it->value()), [&](uint64_t id, int64_t ts, uint64_t bits) {
      SeriesEntry* e = ById(id);
      if (e == nullptr) {
        unknown_id = id;
        return false;
      }
      pending.push_back({e, ts, bits});
      return true;
    });
    if (unknown_id != 0) {
      return Internal("head log names unknown series " + std::to_string(unknown_id));
    }
    if (!well_formed) return Internal("malformed head log");
    samples += pending.size();
    AppendStats ignored;
    auto item = std::make_unique<CommitItem>();
    RETURN_IF_ERROR(ApplyLocked(pending, /*from_log=*/true, &item->wb, nullptr, &ignored));
    ++batches;
    if (item->wb.Count() == 0) continue;
    last = Enqueue(item);
    items.push_back(std::move(item));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the head log"));
  if (last != nullptr) RETURN_IF_ERROR(WaitCommitted(last));
  // Batches before replay_from that a log cursor still reads may name any series: none is
  // forgotten before the log has moved past what it holds now.
  {
    std::shared_lock index(index_mu);
    by_id.ForEach([&](SeriesEntry* e) { e->last_log_seq = next_seq - 1; });
  }
  if (batches > 0) {
    spdlog::info("storage: replayed {} head log batches ({} samples)", batches, samples);
  }
  return Status::Ok();
}

void RocksDbStore::Impl::BackgroundLoop() {
  using Clock = std::chrono::steady_clock;
  auto last_checkpoint = Clock::now(), last_retention = Clock::now();
  std::unique_lock lock(bg_mu);
  while (!stopping) {
    bg_cv.wait_for(lock, std::chrono::seconds(1));
    if (stopping) break;
    auto now = Clock::now();
    bool cp = checkpoint_wanted ||
              (options.checkpoint_interval_ms > 0 &&
               now - last_checkpoint >= std::chrono::milliseconds(options.checkpoint_interval_ms));
    bool ret = options.retention_interval_ms > 0 &&
               now - last_retention >= std::chrono::milliseconds(options.retention_interval_ms);
    checkpoint_wanted = false;
    lock.unlock();
    // A full disk: try to resume every second; nothing else is written until it did.
    if (disk_full.load() && !TryResume()) {
      lock.lock();
      continue;
    }
    // Closed windows first, in small batches (a checkpoint would write them all at once under
    // head_mu); the checkpoint waits for them.
    while (!write_failed.load()) {
      Result<bool> more = CloseSomeInBackground();
      if (!more.ok())
        spdlog::error("storage: closing windows failed: {}", more.status().ToString());
      if (!more.ok() || !*more) break;
      std::lock_guard stop(bg_mu);
      if (stopping) break;
    }
    if (cp && !write_failed.load()) {
      Status st = Checkpoint();
      if (!st.ok()) spdlog::error("storage: checkpoint failed: {}", st.ToString());
      last_checkpoint = Clock::now();
    }
    if (ret && !write_failed.load()) {
      Status st = EnforceRetention();
      if (!st.ok()) spdlog::error("storage: retention failed: {}", st.ToString());
      if (st.ok()) {
        std::lock_guard one(checkpoint_mu);
        st = ForgetExpiredSeries();
        if (!st.ok()) spdlog::error("storage: forgetting expired series failed: {}", st.ToString());
      }
      last_retention = Clock::now();
    }
    lock.lock();
  }
}

Status RocksDbStore::Checkpoint() { return impl_->Checkpoint(); }
Status RocksDbStore::EnforceRetention() {
  RETURN_IF_ERROR(impl_->EnforceRetention());
  std::lock_guard one(impl_->checkpoint_mu);
  return impl_->ForgetExpiredSeries();
}

int64_t RocksDbStore::RetentionCutoff(Resolution resolution) const {
  return impl_->Cutoff(static_cast<int>(resolution));
}

void RocksDbStore::SetLimits(const StoreLimits& limits) {
  std::unique_lock lock(impl_->index_mu);
  impl_->limits = limits;
}

StoreStats RocksDbStore::Stats() const {
  const Impl& d = *impl_;
  StoreStats stats;
  stats.series = d.series_count.load(std::memory_order_relaxed);
  stats.head_series = d.head_series.load(std::memory_order_relaxed);
  stats.rejected_too_old = d.rejected_too_old.load(std::memory_order_relaxed);
  stats.rejected_series_limit = d.rejected_series_limit.load(std::memory_order_relaxed);
  stats.rejected_labels_limit = d.rejected_labels_limit.load(std::memory_order_relaxed);
  stats.partitions_dropped = d.partitions_dropped.load(std::memory_order_relaxed);
  stats.checkpoints = d.checkpoints.load(std::memory_order_relaxed);
  stats.series_forgotten = d.series_forgotten.load(std::memory_order_relaxed);
  auto add = [&](rocksdb::ColumnFamilyHandle* h) {
    uint64_t bytes = 0;
    if (d.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
      stats.disk_bytes += bytes;
    }
  };
  for (rocksdb::ColumnFamilyHandle* h : d.fixed_handles) add(h);
  {
    std::shared_lock lock(d.cf_mu);
    for (const auto& m : d.parts) {
      for (const auto& [p, h] : m) add(h);
    }
  }
  rocksdb::VectorLogPtr wals;
  if (d.db->GetSortedWalFiles(wals).ok()) {
    for (const auto& wal : wals) {
      if (wal->Type() == rocksdb::kAliveLogFile) stats.disk_bytes += wal->SizeFileBytes();
    }
  }
  return stats;
}

std::map<std::string, uint64_t> RocksDbStore::DiskBytesByFamily() const {
  const Impl& d = *impl_;
  std::map<std::string, uint64_t> out;
  auto add = [&](const std::string& key, rocksdb::ColumnFamilyHandle* h) {
    uint64_t bytes = 0;
    if (d.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
      out[key] += bytes;
    }
  };
  for (rocksdb::ColumnFamilyHandle* h : d.fixed_handles) add(h->GetName(), h);
  std::shared_lock lock(d.cf_mu);
  for (int res = 0; res < 4; ++res) {
    for (const auto& [p, h] : d.parts[res]) add(ResolutionName(static_cast<Resolution>(res)), h);
  }
  return out;
}

Status RocksDbStore::CompactAll() {
  Impl& d = *impl_;
  RETURN_IF_ERROR(FromRocks(d.db->Flush(rocksdb::FlushOptions()), "flush"));
  std::vector<rocksdb::ColumnFamilyHandle*> all(d.fixed_handles);
  {
    std::shared_lock lock(d.cf_mu);
    for (const auto& m : d.parts) {
      for (const auto& [p, h] : m) all.push_back(h);
    }
  }
  RETURN_IF_ERROR(FromRocks(d.db->Flush(rocksdb::FlushOptions(), all), "flush"));
  for (rocksdb::ColumnFamilyHandle* h : all) {
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    RETURN_IF_ERROR(FromRocks(d.db->CompactRange(o, h, nullptr, nullptr), "compaction"));
  }
  return Status::Ok();
}

Result<uint64_t> RocksDbStore::SeriesId(const Labels& labels) const {
  const Impl& d = *impl_;
  Labels canonical = CanonicalLabels(labels);
  uint64_t hash = d.LookupHash(canonical);
  std::shared_lock lock(d.index_mu);
  SeriesEntry* e = d.Find(canonical, hash);
  if (e == nullptr || !e->durable.load(std::memory_order_acquire)) {
    return NotFound("no series " + canonical.ToString());
  }
  return e->id;
}

bool RocksDbStore::Healthy() const { return !impl_->write_failed.load(std::memory_order_acquire); }

// ---- the log and cursors ----

Result<LogRead> RocksDbStore::ReadLog(uint64_t from_seq, size_t max_samples, uint64_t end_seq) {
  Impl& d = *impl_;
  uint64_t durable;
  {
    std::lock_guard lock(d.commit_mu);
    durable = d.written_seq;
  }
  const bool bounded = end_seq != UINT64_MAX && end_seq > 0 && end_seq - 1 < durable;
  if (bounded) durable = end_seq - 1;
  LogRead out;
  out.next_seq = from_seq;
  if (from_seq > durable) {
    out.caught_up = true;
    return out;
  }
  std::string lower = LogKey(from_seq), upper = LogKey(durable + 1);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  ro.fill_cache = false;  // read once, in order
  std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, d.head_cf));
  bool stopped_early = false;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    if (out.samples.size() >= max_samples && out.batches > 0) {
      stopped_early = true;
      break;
    }
    if (it->key().size() != 9) return Internal("malformed head log key");
    uint64_t seq = GetBE64(it->key().data() + 1);
    bool well_formed = ReadHeadLog(View(it->value()), [&](uint64_t id, int64_t ts, uint64_t bits) {
      out.samples.push_back({id, ts, std::bit_cast<double>(bits)});
      return true;
    });
    if (!well_formed) return Internal("malformed head log batch " + std::to_string(seq));
    ++out.batches;
    out.next_seq = seq + 1;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the head log"));
  if (!stopped_early) {
    // Every batch up to the durable end (or end_seq) is read; later ones get larger seqs.
    out.next_seq = std::max(out.next_seq, durable + 1);
    out.caught_up = !bounded;
  }
  return out;
}

uint64_t RocksDbStore::LogEnd() {
  std::lock_guard lock(impl_->commit_mu);
  return impl_->written_seq + 1;
}

Result<Labels> RocksDbStore::SeriesLabels(uint64_t series_id) {
  const Impl& d = *impl_;
  std::shared_lock lock(d.index_mu);
  SeriesEntry* e = d.ById(series_id);
  Labels labels;
  if (e == nullptr || !DecodeLabels(e->labels_blob, &labels)) {
    return NotFound("no series with id " + std::to_string(series_id));
  }
  return labels;
}

Result<std::optional<Cursor>> RocksDbStore::GetCursor(std::string_view name) {
  std::lock_guard lock(impl_->cursor_mu);
  auto it = impl_->cursors.find(name);
  if (it == impl_->cursors.end()) return std::optional<Cursor>();
  return std::optional<Cursor>(it->second);
}

Status RocksDbStore::Impl::CommitCursorBatch(std::unique_ptr<CommitItem> item) {
  if (write_failed.load()) return IoError("storage refuses writes after a failed write");
  if (disk_full.load()) return DiskFull();
  {
    std::lock_guard lock(head_mu);
    Enqueue(item);
  }
  return WaitCommitted(item.get());
}

Status RocksDbStore::SetCursor(std::string_view name, Cursor cursor) {
  if (name.empty()) return InvalidArgument("cursor name must not be empty");
  Impl& d = *impl_;
  auto item = std::make_unique<CommitItem>();
  std::string v(1, static_cast<char>(cursor.kind));
  PutBE64(&v, static_cast<uint64_t>(cursor.value));
  item->wb.Put(d.head_cf, CursorKey(name), v);
  // A new log cursor, or one moved back, keeps the log from its place before the write, so
  // that a checkpoint running meanwhile cannot cut below it; one moved forward releases the
  // log only once durable.
  {
    std::lock_guard lock(d.cursor_mu);
    auto it = d.cursors.find(name);
    if (it == d.cursors.end() || cursor.value < it->second.value)
      d.cursors[std::string(name)] = cursor;
  }
  RETURN_IF_ERROR(d.CommitCursorBatch(std::move(item)));
  std::lock_guard lock(d.cursor_mu);
  d.cursors[std::string(name)] = cursor;
  return Status::Ok();
}

Status RocksDbStore::DeleteCursor(std::string_view name) {
  Impl& d = *impl_;
  auto item = std::make_unique<CommitItem>();
  item->wb.Delete(d.head_cf, CursorKey(name));
  RETURN_IF_ERROR(d.CommitCursorBatch(std::move(item)));
  std::lock_guard lock(d.cursor_mu);
  auto it = d.cursors.find(name);
  if (it != d.cursors.end()) d.cursors.erase(it);
  return Status::Ok();
}

std::vector<std::string> RocksDbStore::CursorNames() {
  std::lock_guard lock(impl_->cursor_mu);
  std::vector<std::string> names;
  for (const auto& [name, c] : impl_->cursors) names.push_back(name);
  return names;
}

rocksdb::DB* RocksDbStore::db() const { return impl_->db; }

}  // namespace suanli::storage
