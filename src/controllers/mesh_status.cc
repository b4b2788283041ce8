#include "mesh_status.h"

#include "podium/common/time.h"
#include "podium/mesh/routes.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {
constexpr const char* kDocs =
    "https://istio.io/latest/docs/reference/config/analysis/ist0101/?ref=status-controller";
}

MeshStatusController::MeshStatusController(client::InformerFactory& f, int workers)
    : Controller("mesh-status", f.client(), f.clock(), workers),
      virtualServices_(f.informer(res::kVirtualServices)),
      destinationRules_(f.informer(res::kDestinationRules)) {
  virtualServices_.addHandlers(enqueueHandlers(false));
  auto all = [this](const ObjectPtr&) {
    for (const auto& vs : virtualServices_.list("")) enqueue(*vs);
  };
  destinationRules_.addHandlers(
      {all, [all](const ObjectPtr&, const ObjectPtr& n) { all(n); }, all});
}

SyncResult MeshStatusController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr vs = virtualServices_.get(ns, name);
  if (!vs || isDeleting(*vs)) return SyncResult::ok();
  // The same compiled view of the rules the node proxy routes by.
  Json snapshot = {{"virtualServices", Json::array({*vs})}, {"destinationRules", Json::array()}};
  for (const auto& dr : destinationRules_.list("")) snapshot["destinationRules"].push_back(*dr);
  auto routes = mesh::MeshRoutes::build(snapshot, "cluster.local");
  Json messages = Json::array();
  for (const auto& problem : routes.problems(routes.virtualServices().at(0)))
    messages.push_back({{"documentationUrl", kDocs},
                        {"level", "ERROR"},
                        {"type", {{"code", "IST0101"}, {"name", "ReferencedResourceNotFound"}}},
                        {"description", problem}});
  const Json& status = at(*vs, {"status"});
  int64_t generation = json::integer(at(*vs, {"metadata"}), "generation", 1);
  const Json& current = at(status, {"validationMessages"});
  bool same = json::integer(status, "observedGeneration", -1) == generation &&
              (messages.empty() ? current.is_null() : current == messages);
  if (same) return SyncResult::ok();
  Json newStatus = status.is_object() ? status : Json::object();
  Json conditions =
      at(newStatus, {"conditions"}).is_array() ? newStatus["conditions"] : Json::array();
  setCondition(conditions,
               {{"type", "Reconciled"},
                {"status", "True"},
                {"reason", messages.empty() ? "Accepted" : "ReferencedResourceNotFound"},
                {"message", messages.empty() ? "" : messages[0]["description"]}},
               timefmt::rfc3339(clock_.now()));
  newStatus["conditions"] = conditions;
  newStatus["observedGeneration"] = generation;
  if (messages.empty())
    newStatus.erase("validationMessages");
  else
    newStatus["validationMessages"] = messages;
  // A conflict is retried with the newer object.
  return updateStatus(res::kVirtualServices, *vs, newStatus);
}

}  // namespace podium::controllers
