#include "node_lifecycle.h"

namespace podium::controllers {

namespace res = client::resources;
using std::chrono::milliseconds;

namespace {
constexpr const char* kNodeLeaseNamespace = "kube-node-lease";

bool hasTaint(const Json& node, const std::string& key, const std::string& effect) {
  for (const auto& t : at(node, {"spec", "taints"}))
    if (json::str(t, "key") == key && json::str(t, "effect") == effect) return true;
  return false;
}

// The pod's toleration of a NoExecute taint: none (evict now), for N seconds, or for ever.
std::optional<std::optional<int64_t>> toleration(const Json& pod, const Json& taint) {
  for (const auto& t : at(pod, {"spec", "tolerations"})) {
    std::string effect = json::str(t, "effect");
    if (!effect.empty() && effect != json::str(taint, "effect")) continue;
    std::string op = json::str(t, "operator", "Equal");
    std::string key = json::str(t, "key");
    bool matches = (key.empty() && op == "Exists") ||
                   (key == json::str(taint, "key") &&
                    (op == "Exists" || json::str(t, "value") == json::str(taint, "value")));
    if (!matches) continue;
    if (t.contains("tolerationSeconds") && t["tolerationSeconds"].is_number_integer())
      return std::optional<int64_t>(t["tolerationSeconds"].get<int64_t>());
    return std::optional<int64_t>();  // for ever
  }
  return std::nullopt;
}
}  // namespace

NodeLifecycleController::NodeLifecycleController(client::InformerFactory& f,
                                                 client::EventRecorder& events,
                                                 milliseconds gracePeriod)
    : Controller("node-lifecycle", f.client(), f.clock(), 1),
      events_(events),
      nodes_(f.informer(res::kNodes)),
      leases_(f.informer(res::kLeases)),
      pods_(f.informer(res::kPods)),
      grace_(gracePeriod) {
  nodes_.addHandlers(enqueueHandlers(false));
  auto lease = [this](const ObjectPtr& l) {
    if (namespaceOf(*l) == kNodeLeaseNamespace) queue().add(nameOf(*l));
  };
  leases_.addHandlers(
      {lease, [lease](const ObjectPtr&, const ObjectPtr& n) { lease(n); }, nullptr});
  // A pod bound to a node that is tainted NoExecute may have to go.
  auto pod = [this](const ObjectPtr& p) {
    std::string node = json::getString(*p, {"spec", "nodeName"});
    if (node.empty()) return;
    if (auto n = nodes_.get("", node); n && hasTaint(*n, kUnreachable, "NoExecute"))
      queue().add(node);
  };
  pods_.addHandlers({pod, [pod](const ObjectPtr&, const ObjectPtr& n) { pod(n); }, nullptr});
}

milliseconds NodeLifecycleController::silence(const std::string& node) {
  auto lease = leases_.get(kNodeLeaseNamespace, node);
  std::string renew = lease ? json::getString(*lease, {"spec", "renewTime"}) : "";
  auto now = clock_.monotonic();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = observed_.try_emplace(node, Observed{renew, now});
  if (!fresh && it->second.renewTime != renew) it->second = Observed{renew, now};
  return std::chrono::duration_cast<milliseconds>(now - it->second.at);
}

SyncResult NodeLifecycleController::sync(const std::string& name) {
  ObjectPtr node = nodes_.get("", name);
  if (!node) {
    std::lock_guard<std::mutex> lock(mu_);
    observed_.erase(name);
    return SyncResult::ok();
  }
  milliseconds quiet = silence(name);
  const Json* ready = findCondition(*node, "Ready");
  std::string readyStatus = ready ? json::str(*ready, "status") : "";
  SyncResult result = SyncResult::ok();
  if (quiet >= grace_) {
    if (readyStatus != "Unknown") {
      result.merge(markUnknown(*node));
      result.merge(markPodsNotReady(name));
    }
    if (!hasTaint(*node, kUnreachable, "NoExecute")) return result.merge(setTaints(*node, true));
  } else {
    // Looked at again when the grace would run out without a renewal.
    result.merge(SyncResult::after(grace_ - quiet + milliseconds(10)));
    if (readyStatus == "True" && hasTaint(*node, kUnreachable, "NoExecute"))
      return result.merge(setTaints(*node, false));
  }
  if (hasTaint(*node, kUnreachable, "NoExecute")) result.merge(evict(*node));
  return result;
}

SyncResult NodeLifecycleController::markUnknown(const Json& node) {
  std::string now = timefmt::rfc3339(clock_.now());
  Json status = at(node, {"status"}).is_object() ? node["status"] : Json::object();
  Json& conds = status["conditions"];
  if (!conds.is_array()) conds = Json::array();
  for (const char* type : {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}) {
    Json c = {{"type", type},
              {"status", "Unknown"},
              {"reason", "NodeStatusUnknown"},
              {"message", "Kubelet stopped posting node status."}};
    if (const Json* old = findCondition(node, type);
        old && !json::str(*old, "lastHeartbeatTime").empty())
      c["lastHeartbeatTime"] = json::str(*old, "lastHeartbeatTime");
    setCondition(conds, c, now);
  }
  events_.record(node, "Normal", "NodeNotReady",
                 "Node " + nameOf(node) + " status is now: NodeNotReady");
  return updateStatus(res::kNodes, node, status);
}

SyncResult NodeLifecycleController::setTaints(const Json& node, bool unreachable) {
  Json taints = Json::array();
  for (const auto& t : at(node, {"spec", "taints"}))
    if (json::str(t, "key") != kUnreachable) taints.push_back(t);
  if (unreachable) {
    std::string now = timefmt::rfc3339(clock_.now());
    taints.push_back({{"key", kUnreachable}, {"effect", "NoSchedule"}, {"timeAdded", now}});
    taints.push_back({{"key", kUnreachable}, {"effect", "NoExecute"}, {"timeAdded", now}});
  }
  // A patch of the taints alone: the node's status may have just been written.
  Json patch = {{"spec", {{"taints", taints.empty() ? Json(nullptr) : taints}}}};
  return SyncResult::of(client_.patch(res::kNodes, "", nameOf(node), patch),
                        std::string(unreachable ? "taint" : "untaint") + " node " + nameOf(node));
}

SyncResult NodeLifecycleController::markPodsNotReady(const std::string& node) {
  SyncResult result = SyncResult::ok();
  std::string now = timefmt::rfc3339(clock_.now());
  for (const auto& p : pods_.list("", [&](const Json& pod) {
         return json::getString(pod, {"spec", "nodeName"}) == node && isPodActive(pod);
       })) {
    Json status = at(*p, {"status"}).is_object() ? (*p)["status"] : Json::object();
    if (!setCondition(status["conditions"],
                      {{"type", "Ready"}, {"status", "False"}, {"reason", "NodeLost"}}, now))
      continue;
    result.merge(updateStatus(res::kPods, *p, status));
  }
  return result;
}

SyncResult NodeLifecycleController::evict(const Json& node) {
  SyncResult result = SyncResult::ok();
  Json taint;
  for (const auto& t : at(node, {"spec", "taints"}))
    if (json::str(t, "key") == kUnreachable && json::str(t, "effect") == "NoExecute") taint = t;
  auto added = timefmt::parseRfc3339(json::str(taint, "timeAdded"));
  auto now = clock_.now();
  for (const auto& p : pods_.list("", [&](const Json& pod) {
         return json::getString(pod, {"spec", "nodeName"}) == nameOf(node) && !isDeleting(pod);
       })) {
    auto tolerated = toleration(*p, taint);
    if (tolerated && !*tolerated) continue;  // for ever
    if (tolerated && added) {
      auto due = *added + std::chrono::seconds(**tolerated);
      if (now < due) {
        result.merge(SyncResult::after(std::chrono::duration_cast<milliseconds>(due - now) +
                                       milliseconds(10)));
        continue;
      }
    }
    auto gone = client_.remove(res::kPods, namespaceOf(*p), nameOf(*p));
    if (gone)
      events_.record(*p, "Normal", "TaintManagerEviction",
                     "Marking for deletion Pod " + namespaceOf(*p) + "/" + nameOf(*p));
    result.merge(SyncResult::of(gone, "evict pod " + nameOf(*p)));
  }
  return result;
}

}  // namespace podium::controllers
