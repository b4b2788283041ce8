#include "daemonset.h"

#include <algorithm>

#include "podium/common/time.h"
#include "revisions.h"

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
      revisions_(f.informer(res::kControllerRevisions)),
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

  auto revision = ensureRevision(client_, revisions_, ds, hash);
  if (!revision) return SyncResult::retry(revision.error());

  std::map<std::string, std::vector<ObjectPtr>> byNode;
  for (const auto& pod : pods_.list(ns)) {
    const Json* ref = controllerOf(*pod);
    if (ref && json::str(*ref, "uid") == uidOf(ds) && !isDeleting(*pod))
      byNode[json::getString(*pod, {"spec", "nodeName"})].push_back(pod);
  }
  std::vector<std::string> createOn;
  std::vector<ObjectPtr> toDelete;
  std::vector<std::pair<ObjectPtr, std::string>> old;  // available old pods, and their nodes
  std::set<std::string> live = {*revision};            // revisions pods still run
  int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, updated = 0, available = 0;
  int64_t surging = 0;  // nodes where a new pod runs beside an old one until it is available
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
    std::vector<ObjectPtr> fresh, stale;  // live pods of this and of older templates
    for (const auto& p : pods) {
      std::string phase = json::getString(*p, {"status", "phase"});
      std::string podHash = json::getString(*p, {"metadata", "labels", kRevisionHashLabel});
      if (phase == "Failed" || phase == "Succeeded") {
        toDelete.push_back(p);
        continue;
      }
      live.insert(nameOf(ds) + "-" + podHash);
      (podHash == hash ? fresh : stale).push_back(p);
    }
    if (fresh.empty() && stale.empty()) {
      createOn.push_back(n);
      continue;
    }
    ++current;
    // One pod of each kind at most (the oldest stays); an old one only until the new is up.
    std::sort(fresh.begin(), fresh.end(), olderFirst);
    std::sort(stale.begin(), stale.end(), olderFirst);
    if (fresh.size() > 1) toDelete.insert(toDelete.end(), fresh.begin() + 1, fresh.end());
    if (stale.size() > 1) toDelete.insert(toDelete.end(), stale.begin() + 1, stale.end());
    bool freshAvailable = !fresh.empty() && isPodAvailable(*fresh[0], minReady, now);
    bool staleAvailable = !stale.empty() && isPodAvailable(*stale[0], minReady, now);
    for (const ObjectPtr* p :
         {fresh.empty() ? nullptr : &fresh[0], stale.empty() ? nullptr : &stale[0]}) {
      if (!p) continue;
      if (int64_t t = secondsUntilAvailable(**p, minReady, now); t > 0 && (!soonest || t < soonest))
        soonest = t;
    }
    ready += (!fresh.empty() && isPodReady(*fresh[0])) || (!stale.empty() && isPodReady(*stale[0]));
    available += freshAvailable || staleAvailable;
    updated += !fresh.empty();
    if (stale.empty()) continue;
    if (!fresh.empty()) {
      if (freshAvailable || !staleAvailable)
        toDelete.push_back(stale[0]);  // replaced, or down anyway
      else
        ++surging;
    } else if (!staleAvailable) {
      toDelete.push_back(stale[0]);  // an old pod that is down anyway goes now
    } else {
      old.emplace_back(stale[0], n);
    }
  }
  for (const auto& [n, pods] : byNode)  // pods on nodes that are gone
    if (!nodeNames.count(n)) toDelete.insert(toDelete.end(), pods.begin(), pods.end());
  // Rolling update, oldest pods first: with maxSurge, a new pod starts beside an old one on up
  // to maxSurge nodes at a time (the old goes once the new is available); otherwise old pods go
  // while no more than maxUnavailable daemons are down.
  if (json::getString(spec, {"updateStrategy", "type"}) != "OnDelete") {
    const Json& rolling = at(spec, {"updateStrategy", "rollingUpdate"});
    int64_t maxSurge = resolveIntOrPercent(at(rolling, {"maxSurge"}), desired, true, 0);
    int64_t maxUnavailable =
        std::max<int64_t>(maxSurge > 0 ? 0 : 1,
                          resolveIntOrPercent(at(rolling, {"maxUnavailable"}), desired, true, 1));
    int64_t down = desired - available;
    std::sort(old.begin(), old.end(),
              [](const auto& a, const auto& b) { return olderFirst(a.first, b.first); });
    for (const auto& [p, n] : old) {
      if (surging < maxSurge) {
        createOn.push_back(n);
        ++surging;
      } else if (down < maxUnavailable) {
        toDelete.push_back(p);
        ++down;
      }
    }
  }

  SyncResult result = SyncResult::ok();
  if (expectations_.satisfied(key) && (!createOn.empty() || !toDelete.empty())) {
    expectations_.expect(key, static_cast<int>(createOn.size()), static_cast<int>(toDelete.size()));
    for (const auto& n : createOn) {
      Json pod = podFromTemplate(ds, tmpl);
      pod["metadata"]["labels"][kRevisionHashLabel] = hash;
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
  result.merge(pruneRevisions(client_, revisions_, ds, live));
  if (soonest > 0) result.merge(SyncResult::after(std::chrono::seconds(soonest)));
  return result;
}

}  // namespace podium::controllers
