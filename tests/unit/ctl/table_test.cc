#include "ctl/table.h"

#include <gtest/gtest.h>

#include <cmath>

namespace suanli::ctl {
namespace {

TEST(TableTest, AlignsColumnsToTheWidestCell) {
  Table t({{"NAME"}, {"VALUE", Table::Align::kRight}, {"NOTE"}});
  t.AddRow({"a", "1", "x"});
  t.AddRow({"longer", "12345", ""});
  t.AddRow({"π", "7"});  // a short row is padded; UTF-8 counts by code point
  EXPECT_EQ(t.Render(),
            "NAME    VALUE  NOTE\n"
            "a           1  x\n"
            "longer  12345\n"
            "π           7\n");
}

TEST(TableTest, HumanUnits) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(549755813888.0), "512 GiB");
  EXPECT_EQ(FormatBytes(1024.0 * 1024 - 1), "1.00 MiB");
  EXPECT_EQ(FormatSi(1250560000000000.0, "FLOPS"), "1.25 PFLOPS");
  EXPECT_EQ(FormatSi(854930697189329.0, "FLOPS"), "855 TFLOPS");
  EXPECT_EQ(FormatSi(1132.8277583976376, "W"), "1.13 kW");
  EXPECT_EQ(FormatSi(0, "W"), "0 W");
  EXPECT_EQ(FormatSi(NAN, "W"), "-");
  EXPECT_EQ(FormatPercent(0.3252009781784698), "32.5%");
  EXPECT_EQ(FormatPercent(NAN), "-");
  EXPECT_EQ(FormatSeconds(0.013), "13ms");
  EXPECT_EQ(FormatSeconds(75), "1m15s");
  EXPECT_EQ(FormatSeconds(7500), "2h5m");
  EXPECT_EQ(FormatSeconds(200000), "2d7h");
  EXPECT_EQ(FormatSeconds(-1), "-");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
}

}  // namespace
}  // namespace suanli::ctl
