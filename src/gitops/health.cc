#include "health.h"

namespace podium::gitops {

namespace {

const Json* condition(const Json& obj, const std::string& type) {
  for (const auto& c : json::at(obj, {"status", "conditions"}))
    if (json::str(c, "type") == type) return &c;
  return nullptr;
}

int64_t num(const Json& obj, std::initializer_list<std::string_view> path, int64_t dflt = 0) {
  const Json* v = json::find(obj, path);
  return v && v->is_number_integer() ? v->get<int64_t>() : dflt;
}

Health deployment(const Json& d) {
  if (json::boolean(json::at(d, {"spec"}), "paused")) return {"Suspended", "Deployment is paused"};
  if (num(d, {"metadata", "generation"}) > num(d, {"status", "observedGeneration"}))
    return {"Progressing",
            "Waiting for rollout to finish: observed deployment generation less "
            "than desired generation"};
  const Json* p = condition(d, "Progressing");
  if (p && json::str(*p, "reason") == "ProgressDeadlineExceeded")
    return {"Degraded", "Deployment \"" + json::getString(d, {"metadata", "name"}) +
                            "\" exceeded its progress deadline"};
  int64_t want = num(d, {"spec", "replicas"}, 1), updated = num(d, {"status", "updatedReplicas"});
  int64_t total = num(d, {"status", "replicas"}),
          available = num(d, {"status", "availableReplicas"});
  if (updated < want)
    return {"Progressing", "Waiting for rollout to finish: " + std::to_string(updated) +
                               " out of " + std::to_string(want) +
                               " new replicas have been updated..."};
  if (total > updated)
    return {"Progressing", "Waiting for rollout to finish: " + std::to_string(total - updated) +
                               " old replicas are pending termination..."};
  if (available < updated)
    return {"Progressing", "Waiting for rollout to finish: " + std::to_string(available) + " of " +
                               std::to_string(updated) + " updated replicas are available..."};
  return {"Healthy", ""};
}

Health statefulSet(const Json& s) {
  int64_t observed = num(s, {"status", "observedGeneration"});
  if (observed == 0 || num(s, {"metadata", "generation"}) > observed)
    return {"Progressing", "Waiting for statefulset spec update to be observed..."};
  if (num(s, {"status", "readyReplicas"}) < num(s, {"spec", "replicas"}, 1))
    return {"Progressing", "Waiting for pods to be ready..."};
  if (json::getString(s, {"spec", "updateStrategy", "type"}) == "OnDelete") return {"Healthy", ""};
  if (json::getString(s, {"status", "updateRevision"}) !=
      json::getString(s, {"status", "currentRevision"}))
    return {"Progressing", "waiting for statefulset rolling update to complete"};
  return {"Healthy", ""};
}

Health daemonSet(const Json& d) {
  if (num(d, {"metadata", "generation"}) > num(d, {"status", "observedGeneration"}))
    return {"Progressing",
            "Waiting for rollout to finish: observed daemon set generation less "
            "than desired generation"};
  if (json::getString(d, {"spec", "updateStrategy", "type"}) == "OnDelete") return {"Healthy", ""};
  int64_t desired = num(d, {"status", "desiredNumberScheduled"});
  if (num(d, {"status", "updatedNumberScheduled"}) < desired ||
      num(d, {"status", "numberAvailable"}) < desired)
    return {"Progressing", "Waiting for daemon set rollout to finish"};
  return {"Healthy", ""};
}

Health replicaSet(const Json& r) {
  if (num(r, {"metadata", "generation"}) > num(r, {"status", "observedGeneration"}))
    return {"Progressing",
            "Waiting for rollout to finish: observed replica set generation less "
            "than desired generation"};
  if (const Json* f = condition(r, "ReplicaFailure"); f && json::str(*f, "status") == "True")
    return {"Degraded", json::str(*f, "message")};
  if (num(r, {"status", "availableReplicas"}) < num(r, {"spec", "replicas"}, 1))
    return {"Progressing", "Waiting for rollout to finish"};
  return {"Healthy", ""};
}

Health pod(const Json& p) {
  std::string policy = json::getString(p, {"spec", "restartPolicy"});
  if (policy.empty()) policy = "Always";
  if (policy == "Always")
    for (const auto& cs : json::at(p, {"status", "containerStatuses"})) {
      std::string reason = json::getString(cs, {"state", "waiting", "reason"});
      if (reason.rfind("Err", 0) == 0 ||
          (reason.size() >= 5 && reason.compare(reason.size() - 5, 5, "Error") == 0) ||
          (reason.size() >= 7 && reason.compare(reason.size() - 7, 7, "BackOff") == 0))
        return {"Degraded", json::getString(cs, {"state", "waiting", "message"})};
    }
  std::string phase = json::getString(p, {"status", "phase"});
  if (phase == "Pending") return {"Progressing", json::getString(p, {"status", "message"})};
  if (phase == "Succeeded") return {"Healthy", json::getString(p, {"status", "message"})};
  if (phase == "Failed") return {"Degraded", json::getString(p, {"status", "message"})};
  if (phase == "Running") {
    if (policy != "Always") return {"Progressing", ""};
    const Json* ready = condition(p, "Ready");
    if (ready && json::str(*ready, "status") == "True") return {"Healthy", ""};
    for (const auto& cs : json::at(p, {"status", "containerStatuses"}))
      if (json::find(cs, {"lastState", "terminated"})) return {"Degraded", "container restarted"};
    return {"Progressing", ""};
  }
  return {"Unknown", ""};
}

Health job(const Json& j) {
  for (const auto& c : json::at(j, {"status", "conditions"})) {
    if (json::str(c, "status") != "True") continue;
    std::string type = json::str(c, "type");
    if (type == "Failed") return {"Degraded", json::str(c, "message")};
    if (type == "Complete") return {"Healthy", json::str(c, "message")};
    if (type == "Suspended") return {"Suspended", json::str(c, "message")};
  }
  return {"Progressing", ""};
}

Health loadBalanced(const Json& o, bool onlyLoadBalancers) {
  if (onlyLoadBalancers && json::getString(o, {"spec", "type"}) != "LoadBalancer")
    return {"Healthy", ""};
  const Json& ingress = json::at(o, {"status", "loadBalancer", "ingress"});
  return ingress.is_array() && !ingress.empty() ? Health{"Healthy", ""} : Health{"Progressing", ""};
}

}  // namespace

std::optional<Health> healthOf(const Json& obj) {
  if (json::find(obj, {"metadata", "deletionTimestamp"}))
    return Health{"Progressing", "Pending deletion"};
  std::string apiVersion = json::str(obj, "apiVersion"), kind = json::str(obj, "kind");
  std::string group =
      apiVersion.find('/') == std::string::npos ? "" : apiVersion.substr(0, apiVersion.find('/'));
  if (group == "apps" && kind == "Deployment") return deployment(obj);
  if (group == "apps" && kind == "StatefulSet") return statefulSet(obj);
  if (group == "apps" && kind == "DaemonSet") return daemonSet(obj);
  if (group == "apps" && kind == "ReplicaSet") return replicaSet(obj);
  if (group.empty() && kind == "Pod") return pod(obj);
  if (group == "batch" && kind == "Job") return job(obj);
  if (group.empty() && kind == "Service") return loadBalanced(obj, true);
  if ((group == "networking.k8s.io" || group == "extensions") && kind == "Ingress")
    return loadBalanced(obj, false);
  if (group == "argoproj.io" && kind == "Rollout") {
    // Argo CD's health check for Argo Rollouts: the rollout's own phase, once it has seen the
    // current spec; a paused rollout is Suspended.
    std::string phase = json::getString(obj, {"status", "phase"});
    std::string message = json::getString(obj, {"status", "message"});
    std::string generation =
        std::to_string(json::integer(json::at(obj, {"metadata"}), "generation", 0));
    if (phase.empty() || json::getString(obj, {"status", "observedGeneration"}) != generation)
      return Health{"Progressing", "Waiting for rollout spec update to be observed"};
    if (phase == "Paused") return Health{"Suspended", "Rollout is paused"};
    if (phase == "Degraded" || phase == "Healthy" || phase == "Progressing")
      return Health{phase, message};
    return Health{"Unknown", message};
  }
  if (group.empty() && kind == "PersistentVolumeClaim") {
    std::string phase = json::getString(obj, {"status", "phase"});
    if (phase == "Bound") return Health{"Healthy", ""};
    if (phase == "Pending") return Health{"Progressing", ""};
    if (phase == "Lost") return Health{"Degraded", ""};
    return Health{"Unknown", ""};
  }
  return std::nullopt;  // no check: the kind does not count towards the app's health
}

int healthRank(const std::string& status) {
  static const char* order[] = {"Healthy", "Suspended", "Progressing",
                                "Missing", "Degraded",  "Unknown"};
  for (int i = 0; i < 6; ++i)
    if (status == order[i]) return i;
  return 5;
}

}  // namespace podium::gitops
