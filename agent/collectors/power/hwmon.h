// HwmonCollector: power and energy sensors of the hwmon class, <sysfs>/class/hwmon/hwmon*/
// (symlinks followed; attributes read from the hwmon directory and from its device/ directory,
// where older drivers, the ACPI power meter among them, put them).
// Sysfs units: power µW, energy µJ, voltage mV, current mA, intervals ms.
//
// node_exporter-compatible families (its names, labels {chip,sensor} and values):
//   node_hwmon_power_watt                      gauge    powerN_input / 1e6
//   node_hwmon_power_<prop>_watt               gauge    powerN_<prop> / 1e6 for the value
//       attributes average, average_highest, average_lowest, average_max, average_min,
//       input_highest, input_lowest, cap, cap_hyst, cap_max, cap_min, max, min, crit, lcrit,
//       rated_max, rated_min
//   node_hwmon_power_<prop>_seconds            gauge    powerN_average_interval{,_min,_max} / 1e3
//   node_hwmon_power_alarm                     gauge    powerN_alarm (0 or 1)
//   node_hwmon_energy_joule_total              counter  energyN_input / 1e6
//   node_hwmon_sensor_label{chip,label,sensor} gauge    1, for power and energy channels with a
//                                                       label
//   node_hwmon_chip_names{chip,chip_name}      gauge    1, for every chip with a `name` file
// Suanli families:
//   suanli_hwmon_power_watts{chip,sensor,method}  gauge  one per power rail, so that whole-server
//       logic reads a single family:
//       method="measured": powerN_average if the chip has it, else powerN_input; sensor="powerN".
//         The chip's own average integrates between our samples, an instantaneous read aliases.
//       method="voltage_x_current": for chips with no power attribute at all, inN × currM in
//         mV × mA / 1e6; sensor="currM". inN_average × currM_average when both exist, else both
//         _input (never mixed). Pairing rule, first that applies:
//         1. chips whose layout the kernel documents: ina3221 pairs inN with currN for N = 1..3
//            (in4..in6 are shunt voltages, in7 their sum); ina2* (ina219, ina226, ...) pairs
//            in1 (bus) with curr1 (in0 is the shunt voltage); max20710/20730/20734/20743 pair
//            in2 (VOUT) with curr1 (IOUT), in1 being VIN;
//         2. otherwise channels with the same label (ina3221 "VDD_CPU"), and PMBus labels vinN
//            with iinN, voutN with ioutN;
//         3. otherwise the same index, inN with currN.
//   suanli_acpi_power_meter_watts{chip}           gauge  whole-server power from an ACPI power
//       meter (ACPI000D, hwmon name "power_meter"): power1_average, else power1_input, / 1e6.
//
// Where this differs from node_exporter on purpose:
//   - a channel whose *_enable reads 0 is skipped entirely (node_exporter exports its stale
//     values, and the enable flag itself);
//   - flags are not exported as watts or joules (node_exporter turns power1_enable into
//     node_hwmon_power_enable_watt, power1_cap_alarm into node_hwmon_power_cap_alarm_watt,
//     energy1_enable into node_hwmon_energy_enable_joule_total); only powerN_alarm is exported,
//     unitless, as node_exporter does;
//   - chip labels never collide: the label is node_exporter's (device path "platform_coretemp_0",
//     else the `name` file, else the hwmonN directory name), and chips that share one get a
//     suffix as node_exporter 1.12 does: "_<name>" when that tells them apart, else
//     "_<hwmonN>". node_exporter before 1.12 emitted colliding series, of which its HTTP
//     handler kept the first.
//
// Paths are resolved once: /sys/class/hwmon is listed every sweep (cheap) and the chips are
// scanned again only when that listing changes or a read fails with ENOENT/ENODEV. While the
// directory is absent or holds no chip, it is listed again at most every RescanTimer::kInterval
// (60 s; rescan_timer.h): a chip driver loaded later is found within a minute.
//
// Outcomes: no /sys/class/hwmon or no chip in it is NoData; a sensor read that fails with an
// unexpected error (EIO, EACCES) or a value that does not parse is Failed, after exporting
// everything else. ENODATA, EAGAIN, EINVAL, EOPNOTSUPP and ENXIO mean "no value now" and only
// leave that value out.
// Thread-safety: not thread-safe; one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "agent/collector.h"
#include "agent/collectors/rescan_timer.h"

namespace suanli::agent {

class HwmonCollector : public Collector {
 public:
  // `now`: the clock of the rescan rate limit (a seam for tests).
  explicit HwmonCollector(const HostPaths& paths,
                          RescanTimer::Clock now = &std::chrono::steady_clock::now);
  CollectResult Collect(Sweep& out) override;

  // With no chip found last time, Collect() only lists the class directory (and reads the new
  // chips' attribute names if some appeared): nothing a slow sensor could stall.
  bool MayBlockNow() const override { return !entries_.empty(); }

 private:
  // A numeric sysfs attribute read every sweep.
  struct Reading {
    std::string path;
    double value = 0;
    bool ok = false;
  };
  static constexpr size_t kNone = static_cast<size_t>(-1);
  // A reading exported as a point; skipped when its channel's enable reading says 0.
  struct Export {
    size_t family;  // into families_
    size_t reading;
    size_t enable = kNone;    // reading of the channel's *_enable
    double mul = 1, div = 1;  // value = raw * mul / div
    std::vector<Label> labels;
  };
  // suanli_hwmon_power_watts from a voltage and a current reading.
  struct Product {
    size_t volts, amps;
    size_t volts_enable = kNone, amps_enable = kNone;
    std::vector<Label> labels;
  };
  // A label point (chip_names, sensor_label) that follows its channel's enable.
  struct Info {
    size_t family;
    size_t enable = kNone;
    std::vector<Label> labels;
  };
  struct Family {
    std::string name, help;
    MetricType type;
  };

  // Lists <sysfs>/class/hwmon into entries_ (name, inode), sorted; false when it is absent.
  bool List(int& err);
  void Scan();
  void ScanChip(const std::string& entry, const std::string& chip, const std::string& chip_name,
                const std::string& device_base);
  size_t FamilyIndex(std::string name, std::string help, MetricType type);
  size_t AddReading(std::string path);
  bool Enabled(size_t enable) const;

  std::string dir_;  // <sysfs>/class/hwmon
  std::vector<std::pair<std::string, ino_t>> entries_, scanned_;
  bool rescan_ = true;
  RescanTimer list_timer_;  // while no chip is found
  CollectResult no_chips_;  // what the last listing that found no chip said
  std::vector<Family> families_;
  std::vector<Reading> readings_;
  std::vector<Export> exports_;  // sorted by family
  std::vector<Product> products_;
  std::vector<Info> infos_;  // sorted by family
  std::string buf_;
};

}  // namespace suanli::agent
