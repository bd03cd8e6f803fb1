// libFuzzer target: the JSON reader the Redfish collector parses BMC answers with, and the
// lookups it makes in them (a BMC is a device on the network: its answers are untrusted).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/collectors/power/json_reader.h"

namespace {

// Visits every value, as the collector's lookups may.
void Walk(const suanli::agent::JsonValue& v, int depth) {
  if (depth > 200) __builtin_trap();  // ParseJson's depth limit must hold
  if (const auto* a = v.array()) {
    for (const auto& item : *a) Walk(item, depth + 1);
  } else if (const auto* o = v.object()) {
    for (const auto& [key, item] : *o) Walk(item, depth + 1);
  }
  (void)v.boolean();
  (void)v.number();
  (void)v.string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = suanli::agent::ParseJson(text);
  if (!doc.ok()) return 0;
  Walk(*doc, 0);
  // The paths the collector reads.
  (void)doc->FindPath({"Chassis", "@odata.id"});
  (void)doc->FindPath({"PowerWatts", "Reading"});
  (void)doc->FindPath({"InputPowerWatts", "Reading"});
  (void)doc->FindPath({"Status", "State"});
  (void)doc->FindPath({"Links", "ContainedBy", "@odata.id"});
  if (const auto* members = doc->Find("Members")) {
    if (const auto* a = members->array()) {
      for (const auto& m : *a) (void)m.Find("@odata.id");
    }
  }
  if (const auto* pc = doc->Find("PowerControl")) {
    if (const auto* a = pc->array()) {
      for (const auto& e : *a) {
        (void)e.Find("PowerConsumedWatts");
        (void)e.Find("PhysicalContext");
      }
    }
  }
  return 0;
}
