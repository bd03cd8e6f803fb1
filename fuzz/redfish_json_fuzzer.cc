// libFuzzer target: ParseRedfishJson, the bounded nlohmann::json parse the Redfish collector reads
// BMC answers with, and the lookups it makes in them (a BMC is a device on the network: its
// answers are untrusted).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/collectors/power/redfish_json.h"

namespace {

using suanli::agent::AsArray;
using suanli::agent::AsBool;
using suanli::agent::AsNumber;
using suanli::agent::AsString;
using suanli::agent::Json;
using suanli::agent::Member;
using suanli::agent::MemberPath;

// Visits every value, as the collector's lookups may.
void Walk(const Json& v, int depth) {
  if (depth > 64) __builtin_trap();  // ParseRedfishJson's depth limit must hold
  if (v.is_array() || v.is_object()) {
    for (const Json& item : v) Walk(item, depth + 1);
  }
  (void)AsBool(&v);
  (void)AsNumber(&v);
  (void)AsString(&v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = suanli::agent::ParseRedfishJson(text);
  if (!doc.ok()) return 0;
  Walk(*doc, 0);
  // The paths the collector reads.
  (void)MemberPath(*doc, {"Chassis", "@odata.id"});
  (void)MemberPath(*doc, {"PowerWatts", "Reading"});
  (void)MemberPath(*doc, {"InputPowerWatts", "Reading"});
  (void)MemberPath(*doc, {"Status", "State"});
  (void)MemberPath(*doc, {"Links", "ContainedBy", "@odata.id"});
  if (const Json::array_t* members = AsArray(Member(*doc, "Members"))) {
    for (const Json& m : *members) (void)Member(m, "@odata.id");
  }
  if (const Json::array_t* pc = AsArray(Member(*doc, "PowerControl"))) {
    for (const Json& e : *pc) {
      (void)AsNumber(Member(e, "PowerConsumedWatts"));
      (void)AsString(Member(e, "PhysicalContext"));
    }
  }
  return 0;
}
