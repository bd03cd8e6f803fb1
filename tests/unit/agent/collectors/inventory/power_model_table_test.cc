#include "agent/collectors/inventory/power_model_table.h"

#include <gtest/gtest.h>

namespace suanli::agent {
namespace {

TEST(PowerModelTableTest, ShippedTableParsesAndEveryEntryNamesItsSource) {
  auto shipped = PowerModelTable::Shipped();
  ASSERT_TRUE(shipped.ok()) << shipped.status().message();
  ASSERT_FALSE(shipped->empty());
  for (const PowerModel& m : *shipped) {
    EXPECT_FALSE(m.source.empty()) << m.match;
    EXPECT_GT(m.cores, 0) << m.match;
    EXPECT_LT(m.idle_watts, m.max_watts) << m.match;
    // The stated assumption: idle is a quarter of the TDP.
    EXPECT_EQ(m.idle_watts, m.max_watts / 4) << m.match;
  }
  PowerModelTable table;
  EXPECT_EQ(table.models().size(), shipped->size());
  EXPECT_EQ(table.per_core().idle_watts, 1.25);
  EXPECT_EQ(table.per_core().max_watts, 5);
}

TEST(PowerModelTableTest, FindsBySubstringOfTheCpuinfoName) {
  PowerModelTable table;
  const PowerModel* m = table.Find("AMD EPYC 7763 64-Core Processor");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->cores, 64);
  EXPECT_EQ(m->max_watts, 280);
  const PowerModel* x = table.Find("Intel(R) Xeon(R) Platinum 8480+");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->max_watts, 350);
  EXPECT_EQ(table.Find("AMD EPYC"), nullptr);  // a VM's generic name: the per-core default
}

}  // namespace
}  // namespace suanli::agent
