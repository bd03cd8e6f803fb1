#include "agent/collectors/power/hwmon.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "tests/unit/agent/collectors/expected_metrics.h"

namespace suanli::agent {
namespace {

namespace fs = std::filesystem;
using testing::ExpectedMetrics;
using testing::FindFamily;
using testing::FixturePath;
using testing::SeriesKey;
using testing::Slurp;
using testing::SweepMatches;
using testing::TempTree;
using testing::ValueOf;

const char kKeplerSys[] = "kepler/internal/device/testdata/sys";

double Watts(const Sweep& s, const std::string& chip, const std::string& sensor,
             const std::string& method) {
  return ValueOf(s, "suanli_hwmon_power_watts",
                 {{"chip", chip}, {"method", method}, {"sensor", sensor}});
}
double NodeValue(const Sweep& s, const std::string& family, const std::string& chip,
                 const std::string& sensor) {
  return ValueOf(s, family, {{"chip", chip}, {"sensor", sensor}});
}

// A fixture file as a number (mV, mA, µW...).
double FixtureNumber(const std::string& relative) {
  return std::stod(Slurp(FixturePath(std::string(kKeplerSys) + "/class/hwmon/" + relative)));
}
// Power from a voltage and a current file of the kepler fixture, by hand: mV × mA = µW.
double HandWatts(const std::string& chip_dir, const std::string& in, const std::string& curr) {
  return FixtureNumber(chip_dir + "/" + in) * FixtureNumber(chip_dir + "/" + curr) / 1e6;
}

// The expected file without the lines `drop` selects, loaded as ExpectedMetrics.
ExpectedMetrics LoadExpectedWithout(const TempTree& tree, const std::string& path,
                                    const std::function<bool(const std::string&)>& drop) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || !drop(line)) kept += line + "\n";
  }
  tree.Write("expected.txt", kept);
  return ExpectedMetrics::Load(tree.Path("expected.txt"));
}

bool Has(const std::string& line, const std::string& part) {
  return line.find(part) != std::string::npos;
}

// What node_exporter 1.5 makes of our output: it labels same-name chips that have no device link
// with the bare name, so their series collide, and its HTTP handler keeps the first of each
// (directory order, which is ours). Maps our disambiguated labels back to that.
Sweep AsNodeExporter15(const Sweep& ours, const std::map<std::string, std::string>& relabel) {
  Sweep out;
  std::set<std::string> seen;
  for (const Family& f : ours.families()) {
    for (const Point& p : f.points) {
      std::vector<Label> labels = p.labels;
      for (Label& l : labels) {
        if (l.name != "chip") continue;
        auto it = relabel.find(l.value);
        if (it != relabel.end()) l.value = it->second;
      }
      if (!seen.insert(SeriesKey(f.name, labels, {})).second) continue;
      out.Add(f.name, f.help, f.type, labels, p.value);
    }
  }
  return out;
}

bool IsComparedFamily(std::string_view f) {
  return f == "node_hwmon_power_watt" || f == "node_hwmon_power_average_watt" ||
         f == "node_hwmon_energy_joule_total" || f == "node_hwmon_chip_names" ||
         f == "node_hwmon_sensor_label";
}

// Every family's label sets are distinct (no two chips share a label).
void ExpectNoDuplicateSeries(const Sweep& sweep) {
  for (const Family& f : sweep.families()) {
    std::set<std::string> keys;
    for (const Point& p : f.points) {
      EXPECT_TRUE(keys.insert(SeriesKey(f.name, p.labels, {})).second)
          << SeriesKey(f.name, p.labels, {}) << " emitted twice";
    }
  }
}

// The copies of node_exporter's and kepler's fixtures store symlinks as files holding their
// target. Copies `relative` of one into the tree with those turned back into symlinks (relative,
// as in sysfs).
void CopyWithLinks(const fs::path& src_root, const TempTree& tree, const std::string& relative) {
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(src_root / relative)) {
    std::string rel = fs::relative(e.path(), src_root).string();
    fs::path dst = tree.Path(rel);
    if (e.is_directory()) {
      fs::create_directories(dst);
      continue;
    }
    fs::create_directories(dst.parent_path());
    std::string text = Slurp(e.path());
    bool link = (text == ".." || text.rfind("../", 0) == 0) && text.find('\n') == std::string::npos;
    if (link && fs::is_directory(e.path().parent_path() / text)) {
      while (text.size() > 2 && text.back() == '/') text.pop_back();
      fs::create_directory_symlink(text, dst);
    } else {
      fs::copy_file(e.path(), dst);
    }
  }
}

class HwmonKeplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // hwmon_device_path/device is such a link, to devices/pci0000:00/0000:00:02.0/drm/card0.
    const fs::path sys = FixturePath(kKeplerSys);
    CopyWithLinks(sys, tree_, "class/hwmon");
    CopyWithLinks(sys, tree_, "devices");
    ASSERT_TRUE(fs::is_symlink(tree_.Path("class/hwmon/hwmon_device_path/device")));
    HwmonCollector c({tree_.root(), tree_.root()});
    CollectResult r = c.Collect(sweep_);
    ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  }
  TempTree tree_;
  Sweep sweep_;
};

// The sweep of kepler's tree against node_exporter 1.5.0's output for it, where that is right.
void ExpectMatchesNodeExporter15WhereItIsRight(const Sweep& sweep) {
  TempTree tree;
  ExpectedMetrics want = LoadExpectedWithout(
      tree, FixturePath("kepler/expected_node_exporter_1.5.0.txt"), [](const std::string& l) {
        // Disabled channels (power3_enable, energy3_enable = 0): node_exporter exports their
        // stale values; we skip the channel entirely.
        if (Has(l, "chip=\"test_power_chip\"") && Has(l, "sensor=\"power3\"")) return true;
        if (Has(l, "chip=\"energy_with_enable\"") && Has(l, "sensor=\"energy3\"")) return true;
        // Voltage and current channels are not exported by this collector (only their product).
        return Has(l, "sensor=\"in") || Has(l, "sensor=\"curr");
      });
  Sweep as15 =
      AsNodeExporter15(sweep, {
                                  {"ina3221_hwmon_disabled_channel", "ina3221"},
                                  {"ina3221_hwmon_ina3221", "ina3221"},
                                  {"ina3221_hwmon_voltage_current", "ina3221"},
                                  {"ina3221_hwmon_voltage_current_average", "ina3221"},
                                  {"ina3221_hwmon_voltage_current_multi", "ina3221"},
                                  {"ina3221_hwmon_voltage_current_partial_average", "ina3221"},
                                  {"ina226_hwmon_ina226", "ina226"},
                                  {"ina226_hwmon_voltage_current_no_labels", "ina226"},
                              });
  EXPECT_TRUE(SweepMatches(as15, want, testing::Covering(IsComparedFamily)));
}

TEST_F(HwmonKeplerTest, MatchesNodeExporter15WhereItIsRight) {
  ExpectMatchesNodeExporter15WhereItIsRight(sweep_);
}

using HwmonKeplerTestOnUpstreamTrees = testing::OnUpstreamTrees<HwmonKeplerTest>;
TEST_F(HwmonKeplerTestOnUpstreamTrees, MatchesNodeExporter15WhereItIsRight) {
  ExpectMatchesNodeExporter15WhereItIsRight(sweep_);
}

TEST_F(HwmonKeplerTest, PowerAndEnergyValues) {
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "k10temp", "power1"), 45);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "k10temp", "power2"), 15);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_average_watt", "amdgpu", "power1"), 118);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "amdgpu", "power1"), 120);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_energy_joule_total", "energy_meter", "energy1"), 500);
  EXPECT_EQ(FindFamily(sweep_, "node_hwmon_energy_joule_total")->type, MetricType::kCounter);
  // Chip labels from a device link, and from the hwmon directory when there is neither a link
  // nor a name.
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "drm_card0", "power1"), 25);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "hwmon_dir_fallback", "power1"), 35);

  // One family for whole-server logic; the chip's average wins over its instantaneous input.
  EXPECT_EQ(Watts(sweep_, "amdgpu", "power1", "measured"), 118);
  EXPECT_EQ(Watts(sweep_, "k10temp", "power1", "measured"), 45);
  EXPECT_EQ(Watts(sweep_, "platform_sensor", "power1", "measured"), 30);
  ExpectNoDuplicateSeries(sweep_);
}

TEST_F(HwmonKeplerTest, DisabledChannelsAndFlagsAreNotExported) {
  // power3_enable = 0: node_exporter still prints power3 (5 W) and the flag as
  // node_hwmon_power_enable_watt 0 (and 1e-06 "watts" for enabled channels).
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "test_power_chip", "power1"), 45);
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_power_watt", "test_power_chip", "power2"), 15);
  EXPECT_TRUE(std::isnan(NodeValue(sweep_, "node_hwmon_power_watt", "test_power_chip", "power3")));
  EXPECT_TRUE(std::isnan(Watts(sweep_, "test_power_chip", "power3", "measured")));
  EXPECT_TRUE(std::isnan(
      ValueOf(sweep_, "node_hwmon_sensor_label",
              {{"chip", "test_power_chip"}, {"label", "PSU_Rail_C"}, {"sensor", "power3"}})));
  EXPECT_EQ(FindFamily(sweep_, "node_hwmon_power_enable_watt"), nullptr);
  // energy3_enable = 0 likewise (node_exporter: energy3 100 J and
  // node_hwmon_energy_enable_joule_total, a flag as joules).
  EXPECT_EQ(NodeValue(sweep_, "node_hwmon_energy_joule_total", "energy_with_enable", "energy2"),
            200);
  EXPECT_TRUE(std::isnan(
      NodeValue(sweep_, "node_hwmon_energy_joule_total", "energy_with_enable", "energy3")));
  EXPECT_EQ(FindFamily(sweep_, "node_hwmon_energy_enable_joule_total"), nullptr);
}

TEST_F(HwmonKeplerTest, VoltageTimesCurrentWhereAChipHasNoPowerFile) {
  const std::string vxi = "voltage_x_current";
  // ina3221: bus voltage inN with currN for N = 1..3; in4..in7 are shunt voltages and their sum.
  const std::string ina3221 = "ina3221_hwmon_ina3221";
  EXPECT_DOUBLE_EQ(Watts(sweep_, ina3221, "curr1", vxi),
                   HandWatts("hwmon_ina3221", "in1_input", "curr1_input"));  // 12 V × 1 A
  EXPECT_DOUBLE_EQ(Watts(sweep_, ina3221, "curr2", vxi),
                   HandWatts("hwmon_ina3221", "in2_input", "curr2_input"));  // 5 V × 0.5 A
  EXPECT_DOUBLE_EQ(Watts(sweep_, ina3221, "curr3", vxi),
                   HandWatts("hwmon_ina3221", "in3_input", "curr3_input"));  // 3.3 V × 0.2 A
  EXPECT_DOUBLE_EQ(Watts(sweep_, ina3221, "curr3", vxi), 0.66);

  // Channel 3 disabled (in3_enable = 0): no product for it.
  const std::string disabled = "ina3221_hwmon_disabled_channel";
  EXPECT_DOUBLE_EQ(Watts(sweep_, disabled, "curr1", vxi), 12);
  EXPECT_DOUBLE_EQ(Watts(sweep_, disabled, "curr2", vxi), 10);
  EXPECT_TRUE(std::isnan(Watts(sweep_, disabled, "curr3", vxi)));

  // ina226: in1 is the bus voltage, in0 the shunt voltage (1.5 V × 5 A would be wrong).
  EXPECT_DOUBLE_EQ(Watts(sweep_, "ina226_hwmon_ina226", "curr1", vxi),
                   HandWatts("hwmon_ina226", "in1_input", "curr1_input"));
  EXPECT_DOUBLE_EQ(Watts(sweep_, "ina226_hwmon_ina226", "curr1", vxi), 60);
  // An ina226 exposing only the shunt voltage has no product.
  EXPECT_TRUE(std::isnan(Watts(sweep_, "ina226_hwmon_voltage_current_no_labels", "curr1", vxi)));

  // max20730: curr1 is the output current, paired with in2 (VOUT 12 V), not in1 (VIN 48 V).
  EXPECT_DOUBLE_EQ(Watts(sweep_, "max20730", "curr1", vxi),
                   HandWatts("hwmon_max20730", "in2_input", "curr1_input"));
  EXPECT_DOUBLE_EQ(Watts(sweep_, "max20730", "curr1", vxi), 120);

  // Averages when both sides have one (11.8 V × 4.9 A), inputs when only one does (no mixing).
  EXPECT_DOUBLE_EQ(Watts(sweep_, "ina3221_hwmon_voltage_current_average", "curr1", vxi),
                   HandWatts("hwmon_voltage_current_average", "in1_average", "curr1_average"));
  EXPECT_DOUBLE_EQ(Watts(sweep_, "ina3221_hwmon_voltage_current_partial_average", "curr1", vxi),
                   HandWatts("hwmon_voltage_current_partial_average", "in1_input", "curr1_input"));
  // VDD_SOC (in3) has no current channel.
  const std::string multi = "ina3221_hwmon_voltage_current_multi";
  EXPECT_DOUBLE_EQ(Watts(sweep_, multi, "curr1", vxi), 60);
  EXPECT_DOUBLE_EQ(Watts(sweep_, multi, "curr2", vxi), 33);
  EXPECT_EQ(FindFamily(sweep_, "suanli_hwmon_power_watts")->points.size(),
            10u /* measured, power3 disabled */ + 14u /* voltage × current */);
  // An unknown chip without labels: same index.
  EXPECT_DOUBLE_EQ(Watts(sweep_, "unknown_chip", "curr1", vxi), 60);
  EXPECT_DOUBLE_EQ(Watts(sweep_, "unknown_chip", "curr2", vxi), 10);
  // Chips with a power file are never recomputed from voltage and current.
  EXPECT_TRUE(std::isnan(Watts(sweep_, "k10temp", "curr1", vxi)));
}

TEST_F(HwmonKeplerTest, SameNameChipsDoNotCollide) {
  // Six chips are named ina3221 and none has a device link: node_exporter 1.5 labels all six
  // chip="ina3221" and keeps only the first of each colliding series (curr1 = 1 A comes from
  // hwmon_disabled_channel, hwmon_ina3221's own curr1 is lost).
  int ina3221 = 0;
  for (const Point& p : FindFamily(sweep_, "node_hwmon_chip_names")->points) {
    if (p.labels[1].value == "ina3221") {
      ++ina3221;
      EXPECT_EQ(p.labels[0].value.rfind("ina3221_hwmon_", 0), 0u) << p.labels[0].value;
    }
  }
  EXPECT_EQ(ina3221, 6);
  ExpectNoDuplicateSeries(sweep_);
}

SUANLI_CONFORMANCE_TEST(HwmonCollectorTest, ChipLabelsMatchNodeExporter112OnItsFixture) {
  // Its fixture has no power sensors, but node_hwmon_chip_names shows its chip labels: device
  // links (platform_coretemp_0), the name (nct6779), the directory (hwmon4), and 1.12's suffixes
  // for hwmon devices sharing a parent (platform_asus_nb_wmi_asus, ieee80211_phy0_mt7996_phy0_0).
  TempTree tree;
  fs::path sys = FixturePath("node_exporter/sys");
  CopyWithLinks(sys, tree, "class/hwmon");
  CopyWithLinks(sys, tree, "devices/platform");
  ASSERT_TRUE(fs::is_symlink(tree.Path("class/hwmon/hwmon0")));
  HwmonCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  ExpectedMetrics want = ExpectedMetrics::Load(FixturePath("node_exporter/e2e-output.txt"));
  testing::CompareOptions opt =
      testing::Covering([](std::string_view f) { return f == "node_hwmon_chip_names"; });
  // The e2e run restricts chips with --collector.hwmon.chip-include; "bogus" is not in its output.
  opt.not_in_expected = [](std::string_view, const std::vector<Label>& labels) {
    return labels[0].value == "bogus";
  };
  EXPECT_TRUE(SweepMatches(sweep, want, opt));
  EXPECT_EQ(ValueOf(sweep, "node_hwmon_chip_names", {{"chip", "bogus"}, {"chip_name", "bogus"}}),
            1);
  // No power or energy sensor there: nothing else is exported.
  EXPECT_EQ(sweep.families().size(), 1u);
}

TEST(HwmonCollectorTest, AcpiPowerMeterInBothLayouts) {
  TempTree tree;
  // Current kernels: attributes and name in the hwmon directory.
  const std::string modern = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI000D:00";
  tree.Write(modern + "/hwmon/hwmon1/name", "power_meter\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_average", "345000000\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_average_interval", "1000\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_average_interval_max", "300000\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_cap", "500000000\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_is_battery", "0\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_accuracy", "95.0%\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_model_number", "Meter 3\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_alarm", "0\n");
  tree.Write(modern + "/hwmon/hwmon1/power1_cap_alarm", "1\n");
  tree.Symlink("../..", modern + "/hwmon/hwmon1/device");
  tree.Symlink("../../" + modern + "/hwmon/hwmon1", "class/hwmon/hwmon1");
  // Older kernels: the hwmon directory is empty, everything is in its device (the ACPI device).
  const std::string legacy = "devices/LNXSYSTM:00/device:00/ACPI000D:01";
  tree.Write(legacy + "/name", "power_meter\n");
  tree.Write(legacy + "/power1_average", "926000000\n");
  tree.Write(legacy + "/power1_average_interval", "500\n");
  tree.MakeDir(legacy + "/power");  // runtime PM directory, not a sensor
  tree.MakeDir(legacy + "/hwmon/hwmon0");
  tree.Symlink("../..", legacy + "/hwmon/hwmon0/device");
  tree.Symlink("../../" + legacy + "/hwmon/hwmon0", "class/hwmon/hwmon0");

  HwmonCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  ASSERT_EQ(r.kind, CollectResult::Kind::kOk) << r.message;
  // Chip labels from the device path, as node_exporter.
  const std::string m = "lnxsybus:00_acpi000d:00", l = "device:00_acpi000d:01";
  EXPECT_EQ(ValueOf(sweep, "suanli_acpi_power_meter_watts", {{"chip", m}}), 345);
  EXPECT_EQ(ValueOf(sweep, "suanli_acpi_power_meter_watts", {{"chip", l}}), 926);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_average_watt", m, "power1"), 345);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_average_watt", l, "power1"), 926);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_average_interval_seconds", m, "power1"), 1);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_average_interval_seconds", l, "power1"), 0.5);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_average_interval_max_seconds", m, "power1"), 300);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_cap_watt", m, "power1"), 500);
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_alarm", m, "power1"), 0);
  EXPECT_EQ(Watts(sweep, l, "power1", "measured"), 926);
  // node_hwmon_chip_names reads the hwmon directory's name only, as node_exporter.
  EXPECT_EQ(ValueOf(sweep, "node_hwmon_chip_names", {{"chip", m}, {"chip_name", "power_meter"}}),
            1);
  EXPECT_EQ(FindFamily(sweep, "node_hwmon_chip_names")->points.size(), 1u);
  // Flags and strings are not watts (node_exporter: node_hwmon_power_is_battery_watt,
  // node_hwmon_power_cap_alarm_watt 1e-06).
  EXPECT_EQ(FindFamily(sweep, "node_hwmon_power_is_battery_watt"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "node_hwmon_power_cap_alarm_watt"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "node_hwmon_power_accuracy"), nullptr);
  EXPECT_EQ(FindFamily(sweep, "node_hwmon_power_model_number_watt"), nullptr);
}

TEST(HwmonCollectorTest, PmbusLabelsPairVoutWithIout) {
  TempTree tree;
  tree.Write("class/hwmon/hwmon0/name", "tps53679\n");
  tree.Write("class/hwmon/hwmon0/in1_label", "vin\n");
  tree.Write("class/hwmon/hwmon0/in1_input", "12000\n");
  tree.Write("class/hwmon/hwmon0/in2_label", "vout1\n");
  tree.Write("class/hwmon/hwmon0/in2_input", "1800\n");
  tree.Write("class/hwmon/hwmon0/curr1_label", "iin\n");
  tree.Write("class/hwmon/hwmon0/curr1_input", "2000\n");
  tree.Write("class/hwmon/hwmon0/curr2_label", "iout1\n");
  tree.Write("class/hwmon/hwmon0/curr2_input", "10000\n");
  HwmonCollector c({tree.root(), tree.root()});
  Sweep sweep;
  ASSERT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kOk);
  EXPECT_DOUBLE_EQ(Watts(sweep, "tps53679", "curr1", "voltage_x_current"), 24);  // 12 V × 2 A
  EXPECT_DOUBLE_EQ(Watts(sweep, "tps53679", "curr2", "voltage_x_current"), 18);  // 1.8 V × 10 A
}

TEST(HwmonCollectorTest, NoHwmonClassIsNoData) {
  TempTree tree;
  auto now = std::chrono::steady_clock::now();
  HwmonCollector c({tree.root(), tree.root()}, [&now] { return now; });
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find(tree.Path("class/hwmon")), std::string::npos) << r.message;

  // An absent or empty class directory is listed again at most every rescan interval.
  tree.MakeDir("class/hwmon");
  now += RescanTimer::kInterval;
  r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kNoData);
  EXPECT_NE(r.message.find("no hwmon chips"), std::string::npos) << r.message;
  EXPECT_EQ(sweep.PointCount(), 0u);

  tree.Write("class/hwmon/hwmon0/name", "k10temp\n");
  tree.Write("class/hwmon/hwmon0/power1_input", "45000000\n");
  now += RescanTimer::kInterval - std::chrono::seconds(1);
  EXPECT_EQ(c.Collect(sweep).kind, CollectResult::Kind::kNoData);
  now += std::chrono::seconds(1);
  Sweep later;
  ASSERT_EQ(c.Collect(later).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(NodeValue(later, "node_hwmon_power_watt", "k10temp", "power1"), 45);
}

TEST(HwmonCollectorTest, FollowsChipsThatComeAndGo) {
  TempTree tree;
  tree.Write("class/hwmon/hwmon0/name", "k10temp\n");
  tree.Write("class/hwmon/hwmon0/power1_input", "45000000\n");
  HwmonCollector c({tree.root(), tree.root()});
  Sweep s1;
  ASSERT_EQ(c.Collect(s1).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(NodeValue(s1, "node_hwmon_power_watt", "k10temp", "power1"), 45);

  // A GPU driver loads: a new chip; the known chip's value changes in place.
  tree.Write("class/hwmon/hwmon1/name", "amdgpu\n");
  tree.Write("class/hwmon/hwmon1/power1_average", "118000000\n");
  tree.Write("class/hwmon/hwmon0/power1_input", "50000000\n");
  Sweep s2;
  ASSERT_EQ(c.Collect(s2).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(NodeValue(s2, "node_hwmon_power_watt", "k10temp", "power1"), 50);
  EXPECT_EQ(NodeValue(s2, "node_hwmon_power_average_watt", "amdgpu", "power1"), 118);

  // An attribute disappears (driver re-registered its channels): rescanned, not a failure.
  fs::remove(tree.Path("class/hwmon/hwmon0/power1_input"));
  tree.Write("class/hwmon/hwmon0/power2_input", "7000000\n");
  Sweep s3;
  ASSERT_EQ(c.Collect(s3).kind, CollectResult::Kind::kOk);
  Sweep s4;
  ASSERT_EQ(c.Collect(s4).kind, CollectResult::Kind::kOk);
  EXPECT_TRUE(std::isnan(NodeValue(s4, "node_hwmon_power_watt", "k10temp", "power1")));
  EXPECT_EQ(NodeValue(s4, "node_hwmon_power_watt", "k10temp", "power2"), 7);

  fs::remove_all(tree.Path("class/hwmon/hwmon1"));
  Sweep s5;
  ASSERT_EQ(c.Collect(s5).kind, CollectResult::Kind::kOk);
  EXPECT_EQ(FindFamily(s5, "node_hwmon_power_average_watt"), nullptr);
}

TEST(HwmonCollectorTest, GarbledValueIsAFailureAfterExportingTheRest) {
  TempTree tree;
  tree.Write("class/hwmon/hwmon0/name", "test\n");
  tree.Write("class/hwmon/hwmon0/power1_input", "45000000\n");
  tree.Write("class/hwmon/hwmon0/power2_input", "n/a\n");
  HwmonCollector c({tree.root(), tree.root()});
  Sweep sweep;
  CollectResult r = c.Collect(sweep);
  EXPECT_EQ(r.kind, CollectResult::Kind::kFailed);
  EXPECT_NE(r.message.find(tree.Path("class/hwmon/hwmon0/power2_input")), std::string::npos)
      << r.message;
  EXPECT_EQ(NodeValue(sweep, "node_hwmon_power_watt", "test", "power1"), 45);
}

}  // namespace
}  // namespace suanli::agent
