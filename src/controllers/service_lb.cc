#include "service_lb.h"

#include <set>

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

ServiceLbController::ServiceLbController(client::InformerFactory& f)
    : client_(f.client()),
      services_(f.informer(res::kServices)),
      nodes_(f.informer(res::kNodes)),
      workers_("service-lb", [this](const std::string& k) { return sync(k); }) {
  auto enqueue = [this](const ObjectPtr& o) { workers_.queue().add(Informer::keyOf(*o)); };
  services_.addHandlers(
      {enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& n) { enqueue(n); }, nullptr});
  auto all = [this](const ObjectPtr&) {
    for (const auto& s : services_.list(""))
      if (json::getString(*s, {"spec", "type"}) == "LoadBalancer")
        workers_.queue().add(Informer::keyOf(*s));
  };
  nodes_.addHandlers({all, [all](const ObjectPtr&, const ObjectPtr& n) { all(n); }, all});
}

bool ServiceLbController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr svc = services_.get(ns, name);
  if (!svc || isDeleting(*svc)) return true;
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
  if (!ours && current.is_null()) return true;  // not ours, and nothing of ours to take back
  if (ingress.empty() ? current.is_null() || current.empty() : current == ingress) return true;
  Json obj = *svc;
  if (!obj["status"].is_object()) obj["status"] = Json::object();
  obj["status"]["loadBalancer"] = ingress.empty() ? Json::object() : Json{{"ingress", ingress}};
  auto r = client_.update(res::kServices, ns, obj, "status");
  return r || r.error().code() == 404;
}

}  // namespace podium::controllers
