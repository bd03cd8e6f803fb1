#include "ctl/capacity_command.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

#include "ctl/table.h"

namespace suanli::ctl {
namespace {

using Json = nlohmann::json;

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A number at `path` (e.g. {"cpu", "cores"}) of an entry; NaN when absent or null.
double Number(const Json& entry, std::initializer_list<const char*> path) {
  const Json* j = &entry;
  for (const char* key : path) {
    if (!j->is_object() || !j->contains(key)) return NAN;
    j = &(*j)[key];
  }
  return j->is_number() ? j->get<double>() : NAN;
}

std::string Count(double v) {
  return std::isfinite(v) ? FormatCount(static_cast<uint64_t>(std::llround(std::max(v, 0.0))))
                          : "-";
}

void AddRow(Table& table, const std::string& scope, const Json& e, const std::string& precision) {
  const std::string region = e.value("region", std::string("-"));
  const std::string dc = e.value("dc", std::string("-"));
  const double gpus = Number(e, {"gpu", "count"});
  table.AddRow({
      scope,
      region,
      dc,
      Count(Number(e, {"nodes", "up"})),
      Count(Number(e, {"nodes", "stale"})),
      Count(Number(e, {"cpu", "cores"})),
      FormatPercent(Number(e, {"cpu", "utilization_ratio"})),
      FormatBytes(Number(e, {"memory", "available_bytes"})),
      FormatBytes(Number(e, {"memory", "total_bytes"})),
      Count(gpus),
      gpus > 0 ? FormatPercent(Number(e, {"gpu", "utilization_ratio"})) : "-",
      FormatSi(Number(e, {"compute", precision.c_str(), "free_flops"}), "FLOPS"),
      FormatSi(Number(e, {"compute", precision.c_str(), "capacity_flops"}), "FLOPS"),
      FormatPercent(Number(e, {"compute", precision.c_str(), "free_ratio"})),
      FormatSi(Number(e, {"power", "watts"}), "W"),
      FormatSeconds(Number(e, {"freshness_seconds"})),
  });
}

}  // namespace

std::string CapacityPath(const CapacityOptions& o) {
  std::string path = "/api/v1/capacity";
  std::string q;
  if (!o.region.empty()) q += "&region=" + UrlEncode(o.region);
  if (!o.dc.empty()) q += "&dc=" + UrlEncode(o.dc);
  if (!q.empty()) path += "?" + q.substr(1);
  return path;
}

Result<std::string> RenderCapacityTable(const Json& answer, const std::string& precision) {
  if (!answer.is_object() || !answer.contains("data") || !answer["data"].is_object()) {
    return InvalidArgument("/api/v1/capacity: the answer has no \"data\" object");
  }
  const Json& data = answer["data"];
  std::string p = precision;
  for (char& c : p) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  using A = Table::Align;
  Table table({{"SCOPE"},
               {"REGION"},
               {"DC"},
               {"UP", A::kRight},
               {"STALE", A::kRight},
               {"CORES", A::kRight},
               {"CPU", A::kRight},
               {"MEM FREE", A::kRight},
               {"MEM TOTAL", A::kRight},
               {"GPUS", A::kRight},
               {"GPU", A::kRight},
               {p + " FREE", A::kRight},
               {p + " CAPACITY", A::kRight},
               {"FREE", A::kRight},
               {"POWER", A::kRight},
               {"AGE", A::kRight}});
  if (data.contains("alliance") && data["alliance"].is_object()) {
    AddRow(table, "alliance", data["alliance"], precision);
  }
  for (const char* key : {"regions", "dcs"}) {
    if (!data.contains(key)) continue;
    if (!data[key].is_array()) {
      return InvalidArgument(std::string("/api/v1/capacity: \"") + key + "\" is not an array");
    }
    for (const Json& e : data[key]) {
      if (e.is_object())
        AddRow(table, key == std::string("regions") ? "region" : "dc", e, precision);
    }
  }
  if (table.rows() == 0) return std::string("no capacity figures (yet) for this selection\n");
  return table.Render();
}

int RunCapacity(AggregatorClient& client, const CapacityOptions& o, std::ostream& out,
                std::ostream& err) {
  const bool tty = o.watch && isatty(STDOUT_FILENO) == 1;
  for (;;) {
    Result<std::string> table = [&]() -> Result<std::string> {
      ASSIGN_OR_RETURN(std::string body, client.Get(CapacityPath(o)));
      ASSIGN_OR_RETURN(Json answer, ParseSuccessJson(body, "/api/v1/capacity"));
      return RenderCapacityTable(answer, o.precision);
    }();
    if (!o.watch) {
      if (!table.ok()) {
        err << "suanlictl capacity: " << table.status().message() << "\n";
        return 1;
      }
      out << *table;
      return 0;
    }
    // As watch(1): a header with the interval and the time, then the table or the error.
    if (tty) out << "\x1b[H\x1b[2J";
    time_t now = std::time(nullptr);
    char when[64];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    out << "Every " << o.interval_seconds << "s: " << client.base_url() << CapacityPath(o) << "  "
        << when << "\n\n";
    out << (table.ok() ? *table : "error: " + table.status().message() + "\n");
    if (!tty) out << "\n";
    out.flush();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.interval_seconds));
  }
}

}  // namespace suanli::ctl
