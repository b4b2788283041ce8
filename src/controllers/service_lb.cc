#include "service_lb.h"

#include <set>

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

ServiceLbController::ServiceLbController(client::InformerFactory& f, int workers)
    : Controller("service-lb", f.client(), f.clock(), workers),
      services_(f.informer(res::kServices)),
      nodes_(f.informer(res::kNodes)) {
  services_.addHandlers(enqueueHandlers(false));
  auto all = [this](const ObjectPtr&) {
    for (const auto& s : services_.list(""))
      if (json::getString(*s, {"spec", "type"}) == "LoadBalancer") enqueue(*s);
  };
  nodes_.addHandlers({all, [all](const ObjectPtr&, const ObjectPtr& n) { all(n); }, all});
}

SyncResult ServiceLbController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr svc = services_.get(ns, name);
  if (!svc || isDeleting(*svc)) return SyncResult::ok();
  const Json& spec = at(*svc, {"spec"});
  bool ours =
      json::str(spec, "type") == "LoadBalancer" && json::str(spec, "loadBalancerClass").empty();
  Json ingress = Json::array();
  if (ours) {
    std::set<std::string> ips;
    for (const auto& n : nodes_.list("")) {
      const Json* ready = findCondition(*n, "Ready");
      if (!ready || json::str(*ready, "status") != "True") continue;
      for (const auto& a : at(*n, {"status", "addresses"}))
        if (json::str(a, "type") == "InternalIP" && !json::str(a, "address").empty())
          ips.insert(json::str(a, "address"));
    }
    for (const auto& ip : ips) ingress.push_back({{"ip", ip}, {"ipMode", "VIP"}});
  }
  const Json& current = at(*svc, {"status", "loadBalancer", "ingress"});
  if (!ours && current.is_null()) return SyncResult::ok();  // nothing of ours to take back
  if (ingress.empty() ? current.is_null() || current.empty() : current == ingress)
    return SyncResult::ok();
  Json status = at(*svc, {"status"}).is_object() ? (*svc)["status"] : Json::object();
  status["loadBalancer"] = ingress.empty() ? Json::object() : Json{{"ingress", ingress}};
  return updateStatus(res::kServices, *svc, status);
}

}  // namespace podium::controllers
