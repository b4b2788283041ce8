// Argo CD's `GET /api/v1/applications/NAME/resource-tree`: the application's managed resources
// and everything they own (ReplicaSets, Pods, Jobs, EndpointSlices by owner references; a
// Service's Endpoints by name), each with its health, a little info, and the networking facts
// the UI's network view draws (a Service's selector, a Pod's labels, where an Ingress,
// a Gateway or a VirtualService sends traffic). Built on the server in one call, so a page
// showing 1,500 resources makes one request, not one per kind and namespace.

#include <deque>
#include <map>
#include <set>

#include "app_controller_impl.h"
#include "health.h"
#include "podium/client/objects.h"
#include "podium/common/log.h"

namespace podium::gitops {

namespace {

namespace res = client::resources;

std::string groupOf(const std::string& apiVersion) {
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

// (Not `ref`: argument-dependent lookup would find std::ref for a non-const Json.)
Json refOf(const Json& o) {
  return {{"group", groupOf(json::str(o, "apiVersion"))},
          {"kind", json::str(o, "kind")},
          {"namespace", client::namespaceOf(o)},
          {"name", client::nameOf(o)},
          {"uid", client::uidOf(o)}};
}

// A Service a host names from `ns` ("svc", "svc.ns", "svc.ns.svc.cluster.local").
Json serviceRef(const std::string& host, const std::string& ns) {
  auto dot = host.find('.');
  std::string name = host.substr(0, dot), svcNs = ns;
  if (dot != std::string::npos) {
    auto rest = host.substr(dot + 1);
    svcNs = rest.substr(0, rest.find('.'));
  }
  return {{"kind", "Service"}, {"namespace", svcNs}, {"name", name}};
}

Json networking(const Json& o, const std::vector<client::ObjectPtr>& virtualServices) {
  std::string kind = json::str(o, "kind"), ns = client::namespaceOf(o);
  Json out = Json::object();
  if (kind == "Service") {
    if (const Json* sel = json::find(o, {"spec", "selector"}); sel && sel->is_object())
      out["targetLabels"] = *sel;
  } else if (kind == "Pod") {
    out["labels"] = json::at(o, {"metadata", "labels"});
  } else if (kind == "Ingress") {
    std::set<std::string> names;
    for (const auto& r : json::at(o, {"spec", "rules"}))
      for (const auto& p : json::at(r, {"http", "paths"}))
        names.insert(json::getString(p, {"backend", "service", "name"}));
    names.insert(json::getString(o, {"spec", "defaultBackend", "service", "name"}));
    names.erase("");
    for (const auto& n : names)
      out["targetRefs"].push_back({{"kind", "Service"}, {"namespace", ns}, {"name", n}});
    for (const auto& i : json::at(o, {"status", "loadBalancer", "ingress"}))
      out["ingress"].push_back(i);
  } else if (kind == "VirtualService") {
    std::set<std::pair<std::string, std::string>> seen;
    for (const char* proto : {"http", "tcp", "tls"})
      for (const auto& route : json::at(o, {"spec", proto}))
        for (const auto& d : json::at(route, {"route"})) {
          Json s = serviceRef(json::getString(d, {"destination", "host"}), ns);
          if (seen.insert({json::str(s, "namespace"), json::str(s, "name")}).second)
            out["targetRefs"].push_back(s);
        }
  } else if (kind == "Gateway" && groupOf(json::str(o, "apiVersion")) == "networking.istio.io") {
    // Traffic a Gateway takes in goes to the VirtualServices bound to it.
    std::string name = client::nameOf(o);
    for (const auto& vs : virtualServices)
      for (const auto& g : json::at(*vs, {"spec", "gateways"})) {
        std::string gw = g.is_string() ? g.get<std::string>() : "";
        if (gw == name || gw == ns + "/" + name) {
          out["targetRefs"].push_back({{"group", "networking.istio.io"},
                                       {"kind", "VirtualService"},
                                       {"namespace", client::namespaceOf(*vs)},
                                       {"name", client::nameOf(*vs)}});
          break;
        }
      }
  }
  return out;
}

Json info(const Json& o) {
  Json out = Json::array();
  std::string kind = json::str(o, "kind");
  if (kind == "Pod") {
    int ready = 0, total = 0;
    for (const auto& c : json::at(o, {"status", "containerStatuses"})) {
      ++total;
      ready += json::boolean(c, "ready");
    }
    out.push_back({{"name", "Status Reason"}, {"value", json::getString(o, {"status", "phase"})}});
    out.push_back(
        {{"name", "Containers"}, {"value", std::to_string(ready) + "/" + std::to_string(total)}});
  } else if (kind == "ReplicaSet" || kind == "Deployment") {
    out.push_back(
        {{"name", "Replicas"},
         {"value", std::to_string(json::integer(json::at(o, {"status"}), "readyReplicas")) + "/" +
                       std::to_string(json::integer(json::at(o, {"spec"}), "replicas"))}});
  }
  return out;
}

}  // namespace

api::HttpResponse AppController::resourceTree(const std::string& ns, const std::string& name) {
  client::ObjectPtr app = apps_.get(ns, name);
  if (!app)
    return jsonReply(
        404,
        {{"error", "applications.argoproj.io \"" + name + "\" not found in " + ns}, {"code", 5}});
  Json nodes = Json::array();
  auto node = [&](const Json& o, const Json& parents, const Json* health) {
    Json n = refOf(o);
    n["version"] = json::str(o, "apiVersion").substr(json::str(o, "apiVersion").rfind('/') + 1);
    n["resourceVersion"] = json::getString(o, {"metadata", "resourceVersion"});
    n["createdAt"] = json::getString(o, {"metadata", "creationTimestamp"});
    if (!parents.empty()) n["parentRefs"] = parents;
    if (health && health->is_object() && !health->empty())
      n["health"] = *health;
    else if (auto h = healthOf(o))
      n["health"] = {{"status", h->status}, {"message", h->message}};
    if (Json i = info(o); !i.empty()) n["info"] = i;
    nodes.push_back(std::move(n));
  };
  // What may be owned, per namespace the app has resources in: listed once each.
  const std::vector<std::pair<client::Resource, const char*>> ownable = {
      {res::kReplicaSets, "ReplicaSet"},
      {res::kPods, "Pod"},
      {res::kJobs, "Job"},
      {res::kEndpointSlices, "EndpointSlice"},
      {res::kEndpoints, "Endpoints"}};
  std::map<std::string, std::map<std::string, std::vector<client::ObjectPtr>>> byNs;
  std::vector<client::ObjectPtr> virtualServices;
  auto live = [&](const std::string& n,
                  const client::Resource& r) -> std::vector<client::ObjectPtr>& {
    auto& slot = byNs[n][r.plural];
    if (slot.empty())
      if (auto l = client_.list(r, n)) slot = std::move(l->items);
    return slot;
  };
  std::deque<std::pair<Json, std::string>> owners;  // (ref, its namespace) whose children to find
  std::vector<Json> managed;
  for (const auto& r : json::at(*app, {"status", "resources"})) {
    std::string group = json::str(r, "group"), version = json::str(r, "version");
    auto resource =
        client_.resourceFor(group.empty() ? version : group + "/" + version, json::str(r, "kind"));
    if (!resource) continue;
    auto obj = client_.get(*resource, json::str(r, "namespace"), json::str(r, "name"));
    if (!obj) continue;  // missing: the tree shows what exists
    if (json::str(*obj, "kind") == "VirtualService")
      virtualServices.push_back(std::make_shared<Json>(*obj));
    managed.push_back(*obj);
    const Json& health = json::at(r, {"health"});
    node(*obj, Json::array(), &health);
    owners.emplace_back(refOf(*obj), client::namespaceOf(*obj));
  }
  for (size_t i = 0; i < managed.size(); ++i)
    if (Json n = networking(managed[i], virtualServices); !n.empty())
      nodes[i]["networkingInfo"] = n;
  std::set<std::string> seen;
  while (!owners.empty()) {
    auto [owner, ownerNs] = owners.front();
    owners.pop_front();
    if (ownerNs.empty() || !seen.insert(json::str(owner, "uid")).second) continue;
    for (const auto& [r, kind] : ownable) {
      for (const auto& o : live(ownerNs, r)) {
        bool owned = false;
        for (const auto& ref : json::at(*o, {"metadata", "ownerReferences"}))
          owned = owned || json::str(ref, "uid") == json::str(owner, "uid");
        // Endpoints are a Service's by name, as Argo CD shows them.
        if (r.plural == "endpoints")
          owned = json::str(owner, "kind") == "Service" &&
                  client::nameOf(*o) == json::str(owner, "name");
        // A Deployment keeps old ReplicaSets at zero; Argo CD shows only the live ones.
        if (!owned ||
            (r.plural == "replicasets" && json::integer(json::at(*o, {"spec"}), "replicas") == 0))
          continue;
        Json withKind = *o;  // list items may come without their kind
        withKind["kind"] = kind;
        withKind["apiVersion"] = r.apiVersion();
        node(withKind, Json::array({owner}), nullptr);
        if (Json n = networking(withKind, virtualServices); !n.empty())
          nodes.back()["networkingInfo"] = n;
        owners.emplace_back(refOf(withKind), ownerNs);
      }
    }
  }
  return jsonReply(200, {{"nodes", nodes}});
}

}  // namespace podium::gitops
