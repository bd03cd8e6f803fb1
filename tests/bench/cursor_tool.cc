// cursor_tool: sets (or prints) a named cursor in a stopped aggregator's store, so that a
// benchmark can start a forwarding target as if it had been down: e.g. a rollups or capacity
// target at a time an hour ago, a raw target at the log's first batch.
//   cursor_tool DB_PATH NAME log|time VALUE    set NAME (kLog: a log seq; kTime: Unix ms)
//   cursor_tool DB_PATH NAME                   print NAME ("none" when unset)
// tests/bench/forward_bench.py runs it before starting the aggregator.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "aggregator/storage/store.h"

int main(int argc, char** argv) {
  using suanli::storage::Cursor;
  using suanli::storage::CursorKind;
  if (argc != 3 && argc != 5) {
    std::fprintf(stderr, "usage: cursor_tool DB_PATH NAME [log|time VALUE]\n");
    return 2;
  }
  suanli::storage::RocksDbStoreOptions opts;
  opts.path = argv[1];
  opts.checkpoint_interval_ms = 0;
  opts.retention_interval_ms = 0;
  auto store = suanli::storage::OpenRocksDbStore(opts);
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", argv[1],
                 std::string(store.status().message()).c_str());
    return 1;
  }
  const std::string name = argv[2];
  if (argc == 5) {
    const std::string kind = argv[3];
    if (kind != "log" && kind != "time") {
      std::fprintf(stderr, "kind must be log or time\n");
      return 2;
    }
    Cursor c{kind == "log" ? CursorKind::kLog : CursorKind::kTime,
             std::strtoll(argv[4], nullptr, 10)};
    auto st = (*store)->SetCursor(name, c);
    if (!st.ok()) {
      std::fprintf(stderr, "cannot set %s: %s\n", name.c_str(), std::string(st.message()).c_str());
      return 1;
    }
  }
  auto got = (*store)->GetCursor(name);
  if (!got.ok()) {
    std::fprintf(stderr, "cannot read %s: %s\n", name.c_str(),
                 std::string(got.status().message()).c_str());
    return 1;
  }
  if (!*got) {
    std::printf("%s none\n", name.c_str());
  } else {
    std::printf("%s %s %lld\n", name.c_str(), (*got)->kind == CursorKind::kLog ? "log" : "time",
                static_cast<long long>((*got)->value));
  }
  return 0;
}
