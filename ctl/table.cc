#include "ctl/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace suanli::ctl {
namespace {

// Three significant digits: 1.25, 12.5, 125.
std::string ThreeDigits(double v) {
  char buf[32];
  const double a = std::fabs(v);
  const char* fmt = a >= 100 || a == 0 ? "%.0f" : (a >= 10 ? "%.1f" : "%.2f");
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // continuation bytes take no column
  return n;
}

std::string Table::Render() const {
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = DisplayWidth(columns_[i].header);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) l += "  ";
      const size_t pad = width[i] - DisplayWidth(cells[i]);
      if (columns_[i].align == Align::kRight) l.append(pad, ' ');
      l += cells[i];
      if (columns_[i].align == Align::kLeft) l.append(pad, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  std::vector<std::string> headers;
  for (const Column& c : columns_) headers.push_back(c.header);
  line(headers);
  for (const auto& row : rows_) line(row);
  return out;
}

std::string FormatBytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  if (u == 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f B", v);
    return buf;
  }
  // 1023.7 KiB rounds to "1024 KiB": keep it in the next unit.
  if (ThreeDigits(v) == "1024" && u < 6) {
    v /= 1024;
    ++u;
  }
  return ThreeDigits(v) + " " + kUnits[u];
}

std::string FormatSi(double value, const std::string& unit) {
  if (!std::isfinite(value)) return "-";
  static const char* kPrefixes[] = {"", "k", "M", "G", "T", "P", "E"};
  int p = 0;
  double v = value;
  while (std::fabs(v) >= 1000 && p < 6) {
    v /= 1000;
    ++p;
  }
  if (ThreeDigits(v) == "1000" && p < 6) {
    v /= 1000;
    ++p;
  }
  return ThreeDigits(v) + " " + kPrefixes[p] + unit;
}

std::string FormatPercent(double ratio) {
  if (!std::isfinite(ratio)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", ratio * 100);
  return buf;
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  char buf[48];
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1000);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.0fs", std::floor(seconds));
  } else if (seconds < 3600) {
    const auto s = static_cast<int64_t>(seconds);
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (seconds < 86400) {
    const auto s = static_cast<int64_t>(seconds);
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    const auto s = static_cast<int64_t>(seconds);
    std::snprintf(buf, sizeof buf, "%lldd%lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace suanli::ctl
