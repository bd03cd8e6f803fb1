// Aligned text tables and the human units suanlictl prints figures in.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace suanli::ctl {

class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  // A row with fewer cells than columns is padded with empty cells; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Headers, then rows; columns separated by two spaces, each as wide as its widest cell
  // (counted in UTF-8 code points), no trailing blanks; every line ends in '\n'.
  std::string Render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text: its code points.
size_t DisplayWidth(const std::string& s);

// 1536 -> "1.5 KiB"; below 1 KiB "512 B"; three significant digits.
std::string FormatBytes(double bytes);
// With SI prefixes (k, M, G, T, P, E) and a unit: 1.2506e15, "FLOPS" -> "1.25 PFLOPS";
// three significant digits; "-" for a non-finite value.
std::string FormatSi(double value, const std::string& unit);
// 0.3252 -> "32.5%"; "-" for a non-finite value.
std::string FormatPercent(double ratio);
// 0.013 -> "13ms", 75 -> "1m15s", 7500 -> "2h5m"; "-" for a negative or non-finite value.
std::string FormatSeconds(double seconds);
// An integer with thousands separators: 1234567 -> "1,234,567".
std::string FormatCount(uint64_t n);

}  // namespace suanli::ctl
