#include "endpoints.h"

#include <map>

#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {

constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
constexpr const char* kManagedBy = "endpointslice-controller.k8s.io";
constexpr size_t kMaxEndpointsPerSlice = 100;
// Set on every Endpoints object this controller writes; it marks them as the controller's.
constexpr const char* kTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time";

bool selects(const Json& selector, const Json& labels) {
  if (!selector.is_object() || selector.empty()) return false;
  for (const auto& [k, v] : selector.items())
    if (!labels.is_object() || !labels.contains(k) || labels[k] != v) return false;
  return true;
}

// The Service's ports resolved against one pod: {name, port, protocol} with the container port
// a named targetPort refers to. Ports that cannot be resolved are left out, as upstream does.
Json resolvePorts(const Json& svc, const Json& pod) {
  Json out = Json::array();
  for (const auto& sp : at(svc, {"spec", "ports"})) {
    const Json& target = at(sp, {"targetPort"});
    int64_t port = json::integer(sp, "port");
    std::string proto = json::str(sp, "protocol", "TCP");
    if (target.is_number_integer()) {
      port = target.get<int64_t>();
    } else if (target.is_string()) {
      std::string name = target.get<std::string>();
      if (auto n = strings::parseInt(name)) {
        port = *n;
      } else {
        port = 0;
        for (const auto& c : at(pod, {"spec", "containers"}))
          for (const auto& cp : at(c, {"ports"}))
            if (json::str(cp, "name") == name && json::str(cp, "protocol", "TCP") == proto)
              port = json::integer(cp, "containerPort");
        if (port == 0) continue;
      }
    }
    Json p = {{"port", port}, {"protocol", proto}};
    if (!json::str(sp, "name").empty()) p["name"] = json::str(sp, "name");
    if (sp.contains("appProtocol")) p["appProtocol"] = sp["appProtocol"];
    out.push_back(std::move(p));
  }
  return out;
}

// A pod's DNS name under a Service (<hostname>.<service>.<ns>.svc): its spec.hostname when its
// spec.subdomain is the Service's name (a StatefulSet's pods under its serviceName).
std::string hostnameFor(const Json& svc, const Json& pod) {
  std::string h = json::getString(pod, {"spec", "hostname"});
  if (h.empty() || json::getString(pod, {"spec", "subdomain"}) != nameOf(svc)) return "";
  return h;
}

Json targetRef(const Json& pod) {
  return {
      {"kind", "Pod"}, {"namespace", namespaceOf(pod)}, {"name", nameOf(pod)}, {"uid", uidOf(pod)}};
}

// Pods that belong in the Service's endpoints at all: selected, with an IP, not finished.
std::vector<ObjectPtr> endpointPods(const Json& svc, const std::vector<ObjectPtr>& pods) {
  std::vector<ObjectPtr> out;
  const Json& selector = at(svc, {"spec", "selector"});
  for (const auto& p : pods) {
    if (!selects(selector, at(*p, {"metadata", "labels"}))) continue;
    if (json::getString(*p, {"status", "podIP"}).empty()) continue;
    std::string phase = json::getString(*p, {"status", "phase"});
    if (phase == "Succeeded" || phase == "Failed") continue;
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    return json::getString(*a, {"status", "podIP"}) < json::getString(*b, {"status", "podIP"});
  });
  return out;
}

// What a managed object should carry from its Service: its labels (upstream copies them).
Json serviceLabels(const Json& svc) {
  const Json& l = at(svc, {"metadata", "labels"});
  return l.is_object() ? l : Json::object();
}

}  // namespace

EndpointsController::EndpointsController(client::InformerFactory& f, int workers)
    : Controller("endpoints", f.client(), f.clock(), workers),
      services_(f.informer(res::kServices)),
      pods_(f.informer(res::kPods)),
      endpoints_(f.informer(res::kEndpoints)),
      slices_(f.informer(res::kEndpointSlices)) {
  services_.addHandlers(enqueueHandlers());
  // A pod change wakes every Service in its namespace that selects it (before or after).
  auto podChanged = [this](const ObjectPtr& oldPod, const ObjectPtr& newPod) {
    for (const ObjectPtr& p : {oldPod, newPod}) {
      if (!p) continue;
      for (const auto& svc : services_.list(namespaceOf(*p)))
        if (selects(at(*svc, {"spec", "selector"}), at(*p, {"metadata", "labels"}))) enqueue(*svc);
    }
  };
  pods_.addHandlers({[podChanged](const ObjectPtr& p) { podChanged(nullptr, p); }, podChanged,
                     [podChanged](const ObjectPtr& p) { podChanged(p, nullptr); }});
  // Someone else editing (or deleting) a managed object gets it put back.
  auto owned = [this](const ObjectPtr& o) {
    std::string svc = json::getString(*o, {"metadata", "labels", kServiceNameLabel});
    if (svc.empty() && json::str(*o, "kind") == "Endpoints") svc = nameOf(*o);
    if (!svc.empty()) queue().add(namespaceOf(*o) + "/" + svc);
  };
  for (client::Informer* i : {&endpoints_, &slices_})
    i->addHandlers({nullptr, [owned](const ObjectPtr&, const ObjectPtr& n) { owned(n); }, owned});
}

SyncResult EndpointsController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr svc = services_.get(ns, name);
  if (!svc) {
    // The Service is gone: so is the Endpoints object made for it (its slices follow their
    // owner). Endpoints someone else wrote without a Service stay.
    auto ep = endpoints_.get(ns, name);
    if (ep && !json::getString(*ep, {"metadata", "annotations", kTriggerTime}).empty())
      return SyncResult::of(client_.remove(res::kEndpoints, ns, name), "delete endpoints");
    return SyncResult::ok();
  }
  if (isDeleting(*svc) || !at(*svc, {"spec", "selector"}).is_object() ||
      at(*svc, {"spec", "selector"}).empty()) {
    // Without a selector the endpoints are the user's to manage.
    return SyncResult::ok();
  }
  auto pods = endpointPods(*svc, pods_.list(ns));
  SyncResult result = syncEndpoints(*svc, pods);
  return result.merge(syncSlices(*svc, pods));
}

SyncResult EndpointsController::syncEndpoints(const Json& svc, const std::vector<ObjectPtr>& pods) {
  std::string ns = namespaceOf(svc), name = nameOf(svc);
  bool publishNotReady = json::boolean(at(svc, {"spec"}), "publishNotReadyAddresses");
  // Subsets group the addresses that share the same resolved ports.
  std::map<std::string, Json> subsets;  // ports JSON -> subset
  for (const auto& p : pods) {
    if (isDeleting(*p) && !publishNotReady) continue;
    Json ports = resolvePorts(svc, *p);
    std::string k = json::dump(ports);
    Json& subset = subsets[k];
    if (subset.is_null()) subset = {{"ports", ports}};
    Json addr = {{"ip", json::getString(*p, {"status", "podIP"})}, {"targetRef", targetRef(*p)}};
    if (std::string h = hostnameFor(svc, *p); !h.empty()) addr["hostname"] = h;
    std::string node = json::getString(*p, {"spec", "nodeName"});
    if (!node.empty()) addr["nodeName"] = node;
    bool ready = publishNotReady || isPodReady(*p);
    subset[ready ? "addresses" : "notReadyAddresses"].push_back(std::move(addr));
  }
  Json list = Json::array();
  for (auto& [k, s] : subsets) {
    if (s["ports"].empty()) s.erase("ports");
    list.push_back(std::move(s));
  }
  Json want = {{"apiVersion", "v1"},
               {"kind", "Endpoints"},
               {"metadata", {{"name", name}, {"namespace", ns}, {"labels", serviceLabels(svc)}}}};
  if (!list.empty()) want["subsets"] = list;
  ObjectPtr cur = endpoints_.get(ns, name);
  if (!cur) {
    want["metadata"]["annotations"][kTriggerTime] = timefmt::rfc3339(clock_.now());
    // 409: made meanwhile (the cache will show it, and the next sync updates it).
    return SyncResult::of(client_.create(res::kEndpoints, ns, want), "create endpoints", {409});
  }
  if (at(*cur, {"subsets"}) == at(want, {"subsets"}) &&
      at(*cur, {"metadata", "labels"}) == want["metadata"]["labels"])
    return SyncResult::ok();
  Json obj = *cur;
  obj["metadata"]["labels"] = want["metadata"]["labels"];
  if (want.contains("subsets"))
    obj["subsets"] = want["subsets"];
  else
    obj.erase("subsets");
  obj["metadata"]["annotations"][kTriggerTime] = timefmt::rfc3339(clock_.now());
  return SyncResult::of(client_.update(res::kEndpoints, ns, obj), "update endpoints " + name);
}

SyncResult EndpointsController::syncSlices(const Json& svc, const std::vector<ObjectPtr>& pods) {
  std::string ns = namespaceOf(svc), name = nameOf(svc);
  // Desired slices: endpoints grouped by resolved ports, at most 100 per slice.
  std::map<std::string, std::vector<Json>> groups;
  std::map<std::string, Json> groupPorts;
  for (const auto& p : pods) {
    Json ports = resolvePorts(svc, *p);
    std::string k = json::dump(ports);
    groupPorts[k] = ports;
    bool terminating = isDeleting(*p);
    bool serving = isPodReady(*p);
    Json ep = {
        {"addresses", Json::array({json::getString(*p, {"status", "podIP"})})},
        {"conditions",
         {{"ready", serving && !terminating}, {"serving", serving}, {"terminating", terminating}}},
        {"targetRef", targetRef(*p)}};
    std::string node = json::getString(*p, {"spec", "nodeName"});
    if (!node.empty()) ep["nodeName"] = node;
    if (std::string h = hostnameFor(svc, *p); !h.empty()) ep["hostname"] = h;
    groups[k].push_back(std::move(ep));
  }
  std::vector<std::pair<Json, Json>> desired;  // ports, endpoints
  for (auto& [k, eps] : groups)
    for (size_t i = 0; i < eps.size(); i += kMaxEndpointsPerSlice)
      desired.emplace_back(
          groupPorts[k],
          Json(std::vector<Json>(
              eps.begin() + static_cast<long>(i),
              eps.begin() + static_cast<long>(std::min(eps.size(), i + kMaxEndpointsPerSlice)))));
  if (desired.empty())
    desired.emplace_back(Json::array(), Json::array());  // one empty slice, as upstream keeps
  // Existing slices of this Service, reused in name order.
  auto existing = slices_.list(ns, [&](const Json& s) {
    return json::getString(s, {"metadata", "labels", kServiceNameLabel}) == name &&
           json::getString(s, {"metadata", "labels", kManagedByLabel}) == kManagedBy;
  });
  std::sort(existing.begin(), existing.end(),
            [](const ObjectPtr& a, const ObjectPtr& b) { return nameOf(*a) < nameOf(*b); });
  Json labels = serviceLabels(svc);
  labels[kServiceNameLabel] = name;
  labels[kManagedByLabel] = kManagedBy;
  SyncResult result = SyncResult::ok();
  for (size_t i = 0; i < desired.size(); ++i) {
    const auto& [ports, eps] = desired[i];
    if (i < existing.size()) {
      const Json& cur = *existing[i];
      if (at(cur, {"endpoints"}) == eps && at(cur, {"ports"}) == ports &&
          at(cur, {"metadata", "labels"}) == labels)
        continue;
      Json obj = cur;
      obj["endpoints"] = eps;
      obj["ports"] = ports;
      obj["metadata"]["labels"] = labels;
      result.merge(SyncResult::of(client_.update(res::kEndpointSlices, ns, obj),
                                  "update endpoint slice " + nameOf(cur)));
      continue;
    }
    Json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                  {"kind", "EndpointSlice"},
                  {"metadata",
                   {{"generateName", name + "-"},
                    {"namespace", ns},
                    {"labels", labels},
                    {"ownerReferences", Json::array({controllerRef(svc)})}}},
                  {"addressType", "IPv4"},
                  {"endpoints", eps},
                  {"ports", ports}};
    result.merge(SyncResult::of(client_.create(res::kEndpointSlices, ns, slice),
                                "create endpoint slice", {}));
  }
  for (size_t i = desired.size(); i < existing.size(); ++i)
    result.merge(SyncResult::of(client_.remove(res::kEndpointSlices, ns, nameOf(*existing[i])),
                                "delete endpoint slice " + nameOf(*existing[i])));
  return result;
}

}  // namespace podium::controllers
