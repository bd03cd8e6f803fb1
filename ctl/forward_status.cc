#include "ctl/forward_status.h"

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "ctl/table.h"

namespace suanli::ctl {
namespace {

constexpr std::string_view kPrefix = "suanli_aggregator_forward_";

struct TargetFigures {
  double sent = 0, retried = 0, dropped = 0, backlog = 0, blocked = 0, last_success = 0;
  std::map<std::string, double> requests;  // status class -> count
  std::map<std::string, double> dropped_by_reason;
};

// Parses name{a="x",...} value at `line`; false when malformed.
bool ParseLine(std::string_view line, TextSample* out) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ' && line[i] != '\t') ++i;
  out->name = std::string(line.substr(0, i));
  out->labels.clear();
  if (out->name.empty()) return false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return false;
      }
      std::string name(line.substr(i, eq - i)), value;
      for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      if (i >= line.size()) return false;
      ++i;  // the closing quote
      out->labels[name] = std::move(value);
    }
  }
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  std::string rest(line.substr(i));
  rest = rest.substr(0, rest.find_first_of(" \t"));  // a timestamp may follow
  if (rest.empty()) return false;
  char* end = nullptr;
  out->value = std::strtod(rest.c_str(), &end);  // also "NaN", "+Inf", "-Inf"
  return end == rest.c_str() + rest.size();
}

}  // namespace

Result<std::vector<TextSample>> ParseTextExposition(const std::string& text) {
  std::vector<TextSample> out;
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    TextSample s;
    if (!ParseLine(line, &s)) {
      return InvalidArgument("/metrics line " + std::to_string(line_no) +
                             " does not parse: " + std::string(line.substr(0, 120)));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string RenderForwardStatus(const std::vector<TextSample>& samples, double now_seconds) {
  std::map<std::string, TargetFigures> targets;
  for (const TextSample& s : samples) {
    if (!std::string_view(s.name).starts_with(kPrefix)) continue;
    auto t = s.labels.find("target");
    if (t == s.labels.end()) continue;
    TargetFigures& f = targets[t->second];
    const std::string_view what = std::string_view(s.name).substr(kPrefix.size());
    if (what == "samples_sent_total") {
      f.sent += s.value;
    } else if (what == "samples_retried_total") {
      f.retried += s.value;
    } else if (what == "samples_dropped_total") {
      f.dropped += s.value;
      auto r = s.labels.find("reason");
      if (r != s.labels.end() && s.value > 0) f.dropped_by_reason[r->second] += s.value;
    } else if (what == "requests_total") {
      auto c = s.labels.find("status_class");
      if (c != s.labels.end()) f.requests[c->second] += s.value;
    } else if (what == "backlog_seconds") {
      f.backlog = s.value;
    } else if (what == "blocked") {
      f.blocked = s.value;
    } else if (what == "last_success_timestamp_seconds") {
      f.last_success = s.value;
    }
  }
  if (targets.empty()) return "no forward targets (forward: in the aggregator's configuration)\n";
  using A = Table::Align;
  Table table({{"TARGET"},
               {"STATE"},
               {"SENT", A::kRight},
               {"RETRIED", A::kRight},
               {"DROPPED", A::kRight},
               {"BACKLOG", A::kRight},
               {"LAST SUCCESS", A::kRight},
               {"REQUESTS"},
               {"DROPPED BY REASON"}});
  auto count = [](double v) {
    return std::isfinite(v) && v >= 0 ? FormatCount(static_cast<uint64_t>(std::llround(v))) : "-";
  };
  for (const auto& [name, f] : targets) {
    std::string requests, reasons;
    for (const auto& [cls, n] : f.requests) {
      requests += (requests.empty() ? "" : " ") + cls + "=" + count(n);
    }
    for (const auto& [reason, n] : f.dropped_by_reason) {
      reasons += (reasons.empty() ? "" : " ") + reason + "=" + count(n);
    }
    const std::string state = f.blocked > 0 ? "blocked" : (f.backlog > 0 ? "behind" : "caught up");
    table.AddRow(
        {name, state, count(f.sent), count(f.retried), count(f.dropped), FormatSeconds(f.backlog),
         f.last_success > 0 ? FormatSeconds(now_seconds - f.last_success) + " ago" : "never",
         requests.empty() ? "-" : requests, reasons.empty() ? "-" : reasons});
  }
  return table.Render();
}

int RunForwardStatus(AggregatorClient& client, std::ostream& out, std::ostream& err) {
  auto samples = [&]() -> Result<std::vector<TextSample>> {
    ASSIGN_OR_RETURN(std::string body, client.Get("/metrics"));
    return ParseTextExposition(body);
  }();
  if (!samples.ok()) {
    err << "suanlictl forward status: " << samples.status().message() << "\n";
    return 1;
  }
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  out << RenderForwardStatus(*samples, now);
  return 0;
}

}  // namespace suanli::ctl
