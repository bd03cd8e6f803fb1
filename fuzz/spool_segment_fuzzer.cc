// libFuzzer target: the agent's spool segment reader (agent/spool.h), which reads every segment
// file of spool.directory at start-up and reads record bodies back when an endpoint replays its
// backlog. The input becomes the files of a spool directory, the spool is opened on it, one
// endpoint replays and acknowledges everything it is given, and the spool closes. Any file
// contents must be cut, skipped or replayed, never crash, allocate without bound or loop.
//
// Input: byte 0 is a set of flags (below); the rest is split at "\n@@\n" into up to
// kMaxSegments segment files, then (flag kCursorFromInput) the endpoint's cursor file.
// SUANLI_FUZZ_WRITE_SEEDS=DIR: writes seed inputs from segments that a real Spool wrote into DIR
// and exits (fuzz/make_seeds.py).
#include <dirent.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/spool.h"
#include "core/clock.h"
#include "core/crc32c.h"

namespace {

namespace agent = suanli::agent;

// Flags in byte 0.
constexpr uint8_t kFixChecksums = 1;     // recompute header and record CRCs (reach past them)
constexpr uint8_t kNameFromHeader = 2;   // name a segment by its header's first sequence
constexpr uint8_t kCursorFromInput = 4;  // the last part is the cursor file (else: resend all)
constexpr uint8_t kNewestFirst = 8;      // replay order
constexpr uint8_t kAppendBefore = 16;    // append a record after opening, before the replay
constexpr uint8_t kSmallCaps = 32;       // max_bytes 4 KiB, segment_bytes 1 KiB
constexpr size_t kMaxSegments = 4;

constexpr size_t kSegmentHeaderBytes = 32, kRecordHeaderBytes = 40;  // agent/spool.h "On disk"
const char* const kEndpoint = "http://127.0.0.1:9/api/v1/write";

std::string* g_dir = nullptr;

uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }

// The checksums the spool writes, over whatever the fuzzer put around them.
void FixChecksums(std::string* seg) {
  if (seg->size() < kSegmentHeaderBytes) return;
  char* h = seg->data();
  PutU32(h + 12, 0);
  PutU32(h + 12, suanli::Crc32c(std::string_view(h, kSegmentHeaderBytes)));
  size_t off = kSegmentHeaderBytes;
  while (seg->size() - off >= kRecordHeaderBytes) {
    char* r = seg->data() + off;
    const uint64_t len = GetU32(r);
    if (len > seg->size() - off - kRecordHeaderBytes) break;
    const uint32_t crc = suanli::Crc32c(std::string_view(r + 8, kRecordHeaderBytes - 8));
    PutU32(r + 4, suanli::Crc32c(std::string_view(r + kRecordHeaderBytes, len), crc));
    off += kRecordHeaderBytes + len;
  }
}

std::string SegmentName(uint64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".seg", first_seq);
  return buf;
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* de = ::readdir(d)) {
      std::string name = de->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void ClearDir(const std::string& dir) {
  for (const std::string& name : ListDir(dir)) ::unlink((dir + "/" + name).c_str());
}

agent::SpoolOptions Options(const std::string& dir, uint8_t flags) {
  agent::SpoolOptions options;
  options.directory = dir;
  options.fsync = agent::FsyncPolicy::kNever;  // page cache only: a sync costs time, finds nothing
  if (flags & kSmallCaps) {
    options.max_bytes = 4096;
    options.segment_bytes = 1024;
  }
  return options;
}

std::string MakeTempDir(const char* what) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/suanli-fuzz-" + what + "-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) std::abort();
  return dir;
}

// Seeds: what a real Spool leaves in its directory, as an input of this target.
void WriteSeeds(const std::string& out) {
  const std::string dir = MakeTempDir("spool-seed");
  auto seed = [&](const char* name, uint8_t flags, int records, bool newer_version) {
    ClearDir(dir);
    {
      suanli::FakeClock clock;
      prometheus::Registry registry;
      agent::Spool spool(Options(dir, flags), {kEndpoint}, clock, registry);
      for (int i = 0; i < records; ++i) {
        // The body is opaque to the spool; sizes vary so that records straddle segments.
        spool.Append(std::string(40 + 90 * (i % 5), static_cast<char>('a' + i)), 10 + i,
                     clock.NowUnixMs() - 1000, clock.NowUnixMs());
        clock.AdvanceMs(15000);
      }
    }
    std::string input(1, static_cast<char>(flags));
    size_t segments = 0;
    std::string cursor;
    for (const std::string& file : ListDir(dir)) {
      if (file.size() == 24 && file.compare(20, 4, ".seg") == 0 && segments < kMaxSegments) {
        std::string data = ReadFile(dir + "/" + file);
        if (newer_version && data.size() >= kSegmentHeaderBytes) {
          PutU32(data.data() + 8, 2);
          FixChecksums(&data);
        }
        if (segments++ > 0) input += "\n@@\n";
        input += data;
      } else if (file.rfind("cursor-", 0) == 0) {
        cursor = ReadFile(dir + "/" + file);
      }
    }
    if (flags & kCursorFromInput) input += "\n@@\n" + cursor;
    WriteFile(out + "/" + name, input);
  };
  seed("seed-one-segment", kNameFromHeader | kCursorFromInput, 3, false);
  seed("seed-one-segment-fixed", kFixChecksums | kNameFromHeader | kCursorFromInput, 3, false);
  seed("seed-segments-capped",
       kFixChecksums | kNameFromHeader | kCursorFromInput | kSmallCaps | kAppendBefore, 12, false);
  seed("seed-newest-first", kFixChecksums | kNameFromHeader | kNewestFirst | kAppendBefore, 6,
       false);
  seed("seed-newer-version", kFixChecksums | kNameFromHeader | kCursorFromInput | kAppendBefore, 2,
       true);
  ClearDir(dir);
  ::rmdir(dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the spool logs every cut; not the point here
  if (const char* out = std::getenv("SUANLI_FUZZ_WRITE_SEEDS")) {
    WriteSeeds(out);
    std::exit(0);
  }
  g_dir = new std::string(MakeTempDir("spool"));
  std::atexit([] {
    ClearDir(*g_dir);
    ::rmdir(g_dir->c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> parts;
  for (;;) {
    size_t sep = rest.find("\n@@\n");
    parts.emplace_back(rest.substr(0, sep));
    if (sep == std::string_view::npos) break;
    rest.remove_prefix(sep + 4);
  }
  std::string cursor;
  if (flags & kCursorFromInput) {
    if (parts.size() < 2) return 0;
    cursor = std::move(parts.back());
    parts.pop_back();
  } else {
    // Written by an agent before cursors had a CRC line: the endpoint resends all it holds.
    cursor = std::string("suanli-spool-cursor 1\n0\n") + kEndpoint + "\n";
  }
  if (parts.size() > kMaxSegments) parts.resize(kMaxSegments);

  ClearDir(*g_dir);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string& seg = parts[i];
    if (flags & kFixChecksums) FixChecksums(&seg);
    const uint64_t first_seq = (flags & kNameFromHeader) && seg.size() >= 24
                                   ? GetU64(seg.data() + 16)
                                   : static_cast<uint64_t>(i);
    WriteFile(*g_dir + "/" + SegmentName(first_seq), seg);
  }
  // The file name the spool gives this endpoint's cursor (FNV-1a 64 of the URL, agent/spool.cc).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : std::string_view(kEndpoint)) h = (h ^ c) * 1099511628211ULL;
  char cursor_name[40];
  std::snprintf(cursor_name, sizeof cursor_name, "cursor-%016" PRIx64, h);
  WriteFile(*g_dir + "/" + cursor_name, cursor);

  {
    suanli::FakeClock clock;
    prometheus::Registry registry;
    agent::Spool spool(Options(*g_dir, flags), {kEndpoint}, clock, registry);
    const agent::SpoolStats opened = spool.Stats();
    if (flags & kAppendBefore) spool.Append("appended", 1, clock.NowUnixMs(), clock.NowUnixMs());
    const auto order = (flags & kNewestFirst) ? agent::ReplayOrder::kNewestFirst
                                              : agent::ReplayOrder::kOldestFirst;
    // Every batch holds at least one record and every record is acknowledged: more batches than
    // records means the replay loops.
    const uint64_t most_batches = opened.records + 2;
    uint64_t batches = 0;
    for (;;) {
      std::vector<agent::SpoolRecord> batch = spool.NextBatch(0, order, 1000);
      if (batch.empty()) break;
      if (++batches > most_batches) __builtin_trap();
      std::vector<uint64_t> seqs;
      for (const auto& r : batch) {
        if (r.body == nullptr) __builtin_trap();
        seqs.push_back(r.seq);
      }
      spool.Ack(0, seqs);
    }
    if (spool.PendingSamples(0) != 0) __builtin_trap();
    spool.Append("after replay", 1, clock.NowUnixMs() + 1, clock.NowUnixMs() + 1);
  }
  return 0;
}
