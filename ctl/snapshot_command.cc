#include "ctl/snapshot_command.h"

namespace suanli::ctl {

int RunSnapshot(AggregatorClient& client, std::ostream& out, std::ostream& err) {
  auto name = [&]() -> Result<std::string> {
    ASSIGN_OR_RETURN(std::string body, client.Post("/api/v1/admin/snapshot"));
    ASSIGN_OR_RETURN(nlohmann::json answer, ParseSuccessJson(body, "/api/v1/admin/snapshot"));
    const nlohmann::json& data = answer["data"];
    if (!data.is_object() || !data.contains("name") || !data["name"].is_string()) {
      return InvalidArgument("/api/v1/admin/snapshot: the answer names no snapshot");
    }
    return data["name"].get<std::string>();
  }();
  if (!name.ok()) {
    err << "suanlictl snapshot: " << name.status().message() << "\n";
    return 1;
  }
  // Only the name on stdout, so that scripts can take it: name=$(suanlictl snapshot).
  out << *name << "\n";
  return 0;
}

}  // namespace suanli::ctl
