#include "daemonset.h"

#include <algorithm>

#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

DaemonSetController::DaemonSetController(client::InformerFactory& f, client::EventRecorder& events,
                                         int workers)
    : Controller("daemonset", f.client(), f.clock(), workers),
      events_(events),
      daemonSets_(f.informer(res::kDaemonSets)),
      pods_(f.informer(res::kPods)),
      nodes_(f.informer(res::kNodes)),
      expectations_(f.clock()) {
  auto handlers = enqueueHandlers(false);
  handlers.onDelete = [this](const ObjectPtr& o) { expectations_.clear(Informer::keyOf(*o)); };
  daemonSets_.addHandlers(handlers);
  pods_.addHandlers(ownedPodHandlers("DaemonSet", expectations_, queue()));
  // A node that comes, goes or changes labels or taints may change where daemons run.
  nodes_.addHandlers({[this](const ObjectPtr&) { enqueueAll(); },
                      [this](const ObjectPtr& o, const ObjectPtr& n) {
                        if (at(*o, {"metadata", "labels"}) != at(*n, {"metadata", "labels"}) ||
                            at(*o, {"spec"}) != at(*n, {"spec"}))
                          enqueueAll();
                      },
                      [this](const ObjectPtr&) { enqueueAll(); }});
}

void DaemonSetController::enqueueAll() {
  for (const auto& ds : daemonSets_.list("")) enqueue(*ds);
}

namespace {

constexpr const char* kHashLabel = "controller-revision-hash";

// The tolerations Kubernetes gives every daemon pod, so that a node's conditions do not keep
// its daemons away (they are what reports and repairs them).
Json daemonTolerations(Json tolerations) {
  if (!tolerations.is_array()) tolerations = Json::array();
  for (const auto& [key, effect] :
       {std::pair<const char*, const char*>{"node.kubernetes.io/not-ready", "NoExecute"},
        {"node.kubernetes.io/unreachable", "NoExecute"},
        {"node.kubernetes.io/disk-pressure", "NoSchedule"},
        {"node.kubernetes.io/memory-pressure", "NoSchedule"},
        {"node.kubernetes.io/pid-pressure", "NoSchedule"},
        {"node.kubernetes.io/unschedulable", "NoSchedule"}}) {
    Json t = {{"key", key}, {"operator", "Exists"}, {"effect", effect}};
    if (std::find(tolerations.begin(), tolerations.end(), t) == tolerations.end())
      tolerations.push_back(t);
  }
  return tolerations;
}

// Whether the template's pod belongs on `node`: its nodeSelector and required node affinity
// match and it tolerates the node's NoSchedule and NoExecute taints.
bool shouldRun(const Json& node, const Json& podSpec) {
  return client::podFitsNode(podSpec, node) &&
         !client::untoleratedTaint(daemonTolerations(at(podSpec, {"tolerations"})), node);
}

bool olderFirst(const ObjectPtr& a, const ObjectPtr& b) {
  return json::getString(*a, {"metadata", "creationTimestamp"}) <
         json::getString(*b, {"metadata", "creationTimestamp"});
}

}  // namespace

SyncResult DaemonSetController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr dsPtr = daemonSets_.get(ns, name);
  if (!dsPtr) {
    expectations_.clear(key);
    return SyncResult::ok();
  }
  const Json& ds = *dsPtr;
  if (isDeleting(ds)) return SyncResult::ok();
  const Json& spec = at(ds, {"spec"});
  const Json& tmpl = at(spec, {"template"});
  std::string hash = templateHash(tmpl, json::integer(at(ds, {"status"}), "collisionCount", 0));
  int64_t minReady = json::integer(spec, "minReadySeconds", 0);
  auto now = clock_.now();

  std::map<std::string, std::vector<ObjectPtr>> byNode;
  for (const auto& pod : pods_.list(ns)) {
    const Json* ref = controllerOf(*pod);
    if (ref && json::str(*ref, "uid") == uidOf(ds) && !isDeleting(*pod))
      byNode[json::getString(*pod, {"spec", "nodeName"})].push_back(pod);
  }
  std::vector<std::string> createOn;
  std::vector<ObjectPtr> toDelete, old;  // old: available pods of an older template
  int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, updated = 0, available = 0;
  int64_t soonest = 0;  // seconds until a ready pod becomes available
  std::set<std::string> nodeNames;
  for (const auto& node : nodes_.list("")) {
    std::string n = nameOf(*node);
    nodeNames.insert(n);
    auto it = byNode.find(n);
    std::vector<ObjectPtr> pods = it == byNode.end() ? std::vector<ObjectPtr>() : it->second;
    if (!shouldRun(*node, at(tmpl, {"spec"}))) {
      if (!pods.empty()) ++misscheduled;
      toDelete.insert(toDelete.end(), pods.begin(), pods.end());
      continue;
    }
    ++desired;
    std::vector<ObjectPtr> live;
    for (const auto& p : pods) {
      std::string phase = json::getString(*p, {"status", "phase"});
      (phase == "Failed" || phase == "Succeeded" ? toDelete : live).push_back(p);
    }
    if (live.empty()) {
      createOn.push_back(n);
      continue;
    }
    ++current;
    std::sort(live.begin(), live.end(), olderFirst);
    toDelete.insert(toDelete.end(), live.begin() + 1, live.end());  // one per node
    const Json& pod = *live.front();
    bool isAvailable = isPodAvailable(pod, minReady, now);
    ready += isPodReady(pod);
    available += isAvailable;
    if (int64_t s = secondsUntilAvailable(pod, minReady, now); s > 0 && (!soonest || s < soonest))
      soonest = s;
    if (json::getString(pod, {"metadata", "labels", kHashLabel}) == hash)
      ++updated;
    else if (!isAvailable)
      toDelete.push_back(live.front());  // an old pod that is down anyway goes now
    else
      old.push_back(live.front());
  }
  for (const auto& [n, pods] : byNode)  // pods on nodes that are gone
    if (!nodeNames.count(n)) toDelete.insert(toDelete.end(), pods.begin(), pods.end());
  // Rolling update: old pods go while no more than maxUnavailable daemons are down.
  if (json::getString(spec, {"updateStrategy", "type"}) != "OnDelete") {
    int64_t maxUnavailable = std::max<int64_t>(
        1, resolveIntOrPercent(at(spec, {"updateStrategy", "rollingUpdate", "maxUnavailable"}),
                               desired, true, 1));
    int64_t down = desired - available;
    std::sort(old.begin(), old.end(), olderFirst);
    for (const auto& p : old)
      if (down < maxUnavailable) {
        toDelete.push_back(p);
        ++down;
      }
  }

  SyncResult result = SyncResult::ok();
  if (expectations_.satisfied(key) && (!createOn.empty() || !toDelete.empty())) {
    expectations_.expect(key, static_cast<int>(createOn.size()), static_cast<int>(toDelete.size()));
    for (const auto& n : createOn) {
      Json pod = podFromTemplate(ds, tmpl);
      pod["metadata"]["labels"][kHashLabel] = hash;
      pod["spec"]["nodeName"] = n;
      pod["spec"]["tolerations"] = daemonTolerations(at(pod, {"spec", "tolerations"}));
      pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
          {"nodeSelectorTerms",
           {{{"matchFields", {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {n}}}}}}}}};
      auto made = client_.create(res::kPods, ns, pod);
      if (!made) {
        expectations_.lower(key, 1, 0);
        events_.record(ds, "Warning", "FailedCreate", "Error creating: " + made.error().message());
        result.merge(SyncResult::retry("create pod on " + n + ": " + made.error().message()));
        continue;
      }
      events_.record(ds, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*made));
    }
    for (const auto& p : toDelete) {
      auto gone = client_.remove(res::kPods, ns, nameOf(*p));
      if (!gone) {
        expectations_.lower(key, 0, 1);
        result.merge(SyncResult::of(gone, "delete pod " + nameOf(*p)));
        continue;
      }
      events_.record(ds, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(*p));
    }
  }

  Json st = at(ds, {"status"}).is_object() ? at(ds, {"status"}) : Json::object();
  st["desiredNumberScheduled"] = desired;
  st["currentNumberScheduled"] = current;
  st["numberMisscheduled"] = misscheduled;
  st["numberReady"] = ready;
  st["updatedNumberScheduled"] = updated;
  st["numberAvailable"] = available;
  st["numberUnavailable"] = desired - available;
  st["observedGeneration"] = json::integer(at(ds, {"metadata"}), "generation", 1);
  result.merge(updateStatus(res::kDaemonSets, ds, st));
  if (soonest > 0) result.merge(SyncResult::after(std::chrono::seconds(soonest)));
  return result;
}

}  // namespace podium::controllers
