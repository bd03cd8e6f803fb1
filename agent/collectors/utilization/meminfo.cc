#include "agent/collectors/utilization/meminfo.h"

#include <algorithm>

namespace suanli::agent {

namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// node_exporter's mangling: "Active(anon)" -> "Active_anon" (the parenthesised part becomes a
// suffix), then anything that cannot be in a metric name becomes '_'.
std::string MangleKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  size_t open = key.find('(');
  size_t close = key.rfind(')');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    out.append(key.substr(0, open));
    out += '_';
    out.append(key.substr(open + 1, close - open - 1));
    out.append(key.substr(close + 1));
  } else {
    out.append(key);
  }
  for (char& c : out) {
    if (!IsNameChar(c)) c = '_';
  }
  return out;
}

}  // namespace

MeminfoCollector::MeminfoCollector(const HostPaths& paths)
    : meminfo_(paths.procfs + "/meminfo", 4096, ProcFile::Layout::kWhole) {}

MeminfoCollector::Key& MeminfoCollector::Lookup(std::string_view key, bool bytes, size_t hint) {
  if (hint < keys_.size() && keys_[hint].key == key && keys_[hint].bytes == bytes) {
    return keys_[hint];
  }
  for (Key& k : keys_) {
    if (k.key == key && k.bytes == bytes) return k;
  }
  std::string suffix = MangleKey(key) + (bytes ? "_bytes" : "");
  Key k{std::string(key), bytes, "node_memory_" + suffix,
        "Memory information field " + suffix + ".", 0};
  // Keep file order so that the next read's hints hit.
  size_t at = std::min(hint, keys_.size());
  return *keys_.insert(keys_.begin() + static_cast<ptrdiff_t>(at), std::move(k));
}

CollectResult MeminfoCollector::Collect(Sweep& out) {
  if (Status st = meminfo_.Read(); !st.ok()) return CollectResult::Failed(st.message());

  ++reads_;
  std::string first_error;
  int skipped = 0;
  size_t parsed = 0;
  std::string_view rest = meminfo_.contents();
  for (int line_no = 1; !rest.empty(); ++line_no) {
    bool terminated = false;
    std::string_view line = NextLine(rest, &terminated);
    if (TrimBlanks(line).empty()) continue;
    auto skip = [&](std::string_view why) {
      if (first_error.empty()) first_error = LineError(meminfo_.path(), line_no, why);
      ++skipped;
    };
    // A cut-off last line could have lost its " kB" and would change name and value.
    if (!terminated) {
      skip("truncated line (no newline)");
      continue;
    }
    size_t colon = line.find(':');
    std::string_view key =
        colon == std::string_view::npos ? std::string_view{} : TrimBlanks(line.substr(0, colon));
    if (key.empty()) {
      skip("want \"Key: value [kB]\"");
      continue;
    }
    std::string_view fields = line.substr(colon + 1);
    uint64_t v = 0;
    if (!ParseUint64(NextField(fields), v)) {
      skip("value is not a number");
      continue;
    }
    std::string_view unit = NextField(fields);
    if (!NextField(fields).empty() || (!unit.empty() && unit != "kB")) {
      skip("want \"Key: value [kB]\"");
      continue;
    }
    bool bytes = !unit.empty();
    Key& k = Lookup(key, bytes, parsed);
    if (k.read == reads_) {
      skip("key listed twice");
      continue;
    }
    k.read = reads_;
    ++parsed;
    double value = static_cast<double>(v);
    if (bytes) value *= 1024;
    out.Add(k.name, k.help, MetricType::kGauge, {}, value);
  }

  if (parsed == 0) {
    return CollectResult::Failed(first_error.empty() ? meminfo_.path() + ": no \"Key: value\" lines"
                                                     : first_error);
  }
  if (skipped > 0) {
    return {CollectResult::Kind::kOk,
            "skipped " + std::to_string(skipped) + " malformed line(s); first: " + first_error};
  }
  return CollectResult::Ok();
}

}  // namespace suanli::agent
