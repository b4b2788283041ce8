#include "replicaset.h"

#include <algorithm>

#include "podium/api/selectors.h"
#include "podium/common/log.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

ReplicaSetController::ReplicaSetController(client::InformerFactory& f,
                                           client::EventRecorder& events)
    : client_(f.client()),
      events_(events),
      replicaSets_(f.informer(res::kReplicaSets)),
      pods_(f.informer(res::kPods)),
      workers_(
          "replicaset", [this](const std::string& k) { return sync(k); }, 2) {
  auto enqueue = [this](const ObjectPtr& o) { workers_.queue().add(Informer::keyOf(*o)); };
  replicaSets_.addHandlers(
      {enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& n) { enqueue(n); },
       [this](const ObjectPtr& o) { expectations_.clear(Informer::keyOf(*o)); }});
  pods_.addHandlers(
      {[this](const ObjectPtr& p) {
         if (const Json* ref = controllerOf(*p); ref && json::str(*ref, "kind") == "ReplicaSet")
           expectations_.observedAdd(namespaceOf(*p) + "/" + json::str(*ref, "name"));
         enqueueOwner(p);
       },
       [this](const ObjectPtr& o, const ObjectPtr& n) {
         enqueueOwner(n);
         const Json* a = controllerOf(*o);
         const Json* b = controllerOf(*n);
         if (a && (!b || *a != *b)) enqueueOwner(o);
       },
       [this](const ObjectPtr& p) {
         if (const Json* ref = controllerOf(*p); ref && json::str(*ref, "kind") == "ReplicaSet")
           expectations_.observedDelete(namespaceOf(*p) + "/" + json::str(*ref, "name"));
         enqueueOwner(p);
       }});
}

void ReplicaSetController::enqueueOwner(const ObjectPtr& pod) {
  const Json* ref = controllerOf(*pod);
  if (ref) {
    if (json::str(*ref, "kind") == "ReplicaSet")
      workers_.queue().add(namespaceOf(*pod) + "/" + json::str(*ref, "name"));
    return;
  }
  // An orphan: every ReplicaSet whose selector matches may adopt it.
  if (isDeleting(*pod)) return;
  const Json* labels = json::find(*pod, {"metadata", "labels"});
  for (const auto& rs : replicaSets_.list(namespaceOf(*pod))) {
    auto sel = api::LabelSelector::fromObject(at(*rs, {"spec", "selector"}));
    if (sel && !sel->empty() && sel->matches(labels ? *labels : Json()))
      workers_.queue().add(Informer::keyOf(*rs));
  }
}

namespace {

// Kubernetes' preference for which pods to delete first: unscheduled, then pending, then not
// ready, then ready for less time, then more restarts, then newer.
int phaseRank(const Json& pod) {
  std::string phase = json::getString(pod, {"status", "phase"});
  if (phase == "Pending") return 0;
  if (phase == "Unknown") return 1;
  return 2;
}

int64_t restarts(const Json& pod) {
  int64_t n = 0;
  const Json* cs = json::find(pod, {"status", "containerStatuses"});
  if (cs && cs->is_array())
    for (const auto& c : *cs) n += json::integer(c, "restartCount");
  return n;
}

bool deleteBefore(const ObjectPtr& a, const ObjectPtr& b) {
  bool aBound = !json::getString(*a, {"spec", "nodeName"}).empty();
  bool bBound = !json::getString(*b, {"spec", "nodeName"}).empty();
  if (aBound != bBound) return !aBound;
  if (phaseRank(*a) != phaseRank(*b)) return phaseRank(*a) < phaseRank(*b);
  bool aReady = isPodReady(*a), bReady = isPodReady(*b);
  if (aReady != bReady) return !aReady;
  if (aReady) {
    std::string ta = json::str(*findCondition(*a, "Ready"), "lastTransitionTime");
    std::string tb = json::str(*findCondition(*b, "Ready"), "lastTransitionTime");
    if (ta != tb) return ta > tb;  // ready more recently goes first
  }
  if (restarts(*a) != restarts(*b)) return restarts(*a) > restarts(*b);
  return json::getString(*a, {"metadata", "creationTimestamp"}) >
         json::getString(*b, {"metadata", "creationTimestamp"});
}

Json podFromTemplate(const Json& rs) {
  const Json* tmpl = json::find(rs, {"spec", "template"});
  Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  Json meta = tmpl && tmpl->contains("metadata") ? (*tmpl)["metadata"] : Json::object();
  meta.erase("name");
  meta.erase("creationTimestamp");
  meta["generateName"] = nameOf(rs) + "-";
  meta["namespace"] = namespaceOf(rs);
  meta["ownerReferences"] = Json::array({controllerRef(rs)});
  pod["metadata"] = meta;
  pod["spec"] = tmpl && tmpl->contains("spec") ? (*tmpl)["spec"] : Json::object();
  return pod;
}

}  // namespace

bool ReplicaSetController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr rsPtr = replicaSets_.get(ns, name);
  if (!rsPtr) {
    expectations_.clear(key);
    return true;
  }
  const Json& rs = *rsPtr;
  auto selector = api::LabelSelector::fromObject(at(rs, {"spec", "selector"}));
  if (!selector) return true;  // invalid selectors are refused by validation
  std::string uid = uidOf(rs);
  std::vector<ObjectPtr> active;
  for (const auto& pod : pods_.list(ns)) {
    const Json* ref = controllerOf(*pod);
    const Json* labels = json::find(*pod, {"metadata", "labels"});
    bool matches = !selector->empty() && selector->matches(labels ? *labels : Json());
    if (ref) {
      if (json::str(*ref, "uid") != uid) continue;
      if (!matches && !isDeleting(rs)) {
        // Released: its labels no longer match. Drop our reference.
        Json refs = Json::array();
        for (const auto& r : at(*pod, {"metadata", "ownerReferences"}))
          if (json::str(r, "uid") != uid) refs.push_back(r);
        client_.patch(res::kPods, ns, nameOf(*pod), {{"metadata", {{"ownerReferences", refs}}}});
        continue;
      }
    } else {
      if (!matches || isDeleting(*pod) || isDeleting(rs) || !isPodActive(*pod)) continue;
      // Adopt the orphan.
      Json refs = json::find(*pod, {"metadata", "ownerReferences"})
                      ? (*pod)["metadata"]["ownerReferences"]
                      : Json::array();
      refs.push_back(controllerRef(rs));
      auto adopted = client_.patch(
          res::kPods, ns, nameOf(*pod),
          {{"metadata",
            {{"ownerReferences", refs},
             {"resourceVersion", json::getString(*pod, {"metadata", "resourceVersion"})}}}});
      if (!adopted) continue;
    }
    if (isPodActive(*pod)) active.push_back(pod);
  }
  bool ok = true;
  if (expectations_.satisfied(key) && !isDeleting(rs)) {
    int64_t want = json::integer(at(rs, {"spec"}), "replicas", 1);
    ok = manageReplicas(rs, key, active, want);
  }
  auto now = realClock().now();
  if (!updateStatus(rs, active, now)) ok = false;
  // Pods that are ready but not yet available need another look once minReadySeconds passes.
  int64_t minReady = json::integer(at(rs, {"spec"}), "minReadySeconds", 0);
  int64_t soonest = 0;
  for (const auto& p : active) {
    int64_t s = secondsUntilAvailable(*p, minReady, now);
    if (s > 0 && (soonest == 0 || s < soonest)) soonest = s;
  }
  if (soonest > 0) workers_.queue().addAfter(key, std::chrono::seconds(soonest));
  return ok;
}

bool ReplicaSetController::manageReplicas(const Json& rs, const std::string& key,
                                          std::vector<ObjectPtr>& active, int64_t want) {
  int64_t diff = static_cast<int64_t>(active.size()) - want;
  std::string ns = namespaceOf(rs);
  if (diff < 0) {
    int64_t toCreate = std::min<int64_t>(-diff, 500);
    expectations_.expect(key, static_cast<int>(toCreate), 0);
    // Slow start: batches of 1, 2, 4, ... so a broken template fails fast without a flood.
    int64_t created = 0, batch = 1;
    bool failed = false;
    while (created < toCreate && !failed) {
      int64_t n = std::min(batch, toCreate - created);
      for (int64_t i = 0; i < n; ++i) {
        auto made = client_.create(res::kPods, ns, podFromTemplate(rs));
        if (!made) {
          failed = true;
          expectations_.lower(key, static_cast<int>(toCreate - created), 0);
          events_.record(rs, "Warning", "FailedCreate",
                         "Error creating: " + made.error().message());
          break;
        }
        ++created;
        events_.record(rs, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*made));
      }
      batch *= 2;
    }
    return !failed;
  }
  if (diff > 0) {
    std::sort(active.begin(), active.end(), deleteBefore);
    int64_t toDelete = std::min<int64_t>(diff, 500);
    expectations_.expect(key, 0, static_cast<int>(toDelete));
    bool ok = true;
    for (int64_t i = 0; i < toDelete; ++i) {
      const Json& pod = *active[static_cast<size_t>(i)];
      auto del = client_.remove(res::kPods, ns, nameOf(pod));
      if (!del) {
        expectations_.lower(key, 0, 1);
        if (del.error().code() != 404) {
          ok = false;
          events_.record(rs, "Warning", "FailedDelete", "Error deleting: " + del.error().message());
        }
        continue;
      }
      events_.record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(pod));
    }
    return ok;
  }
  return true;
}

bool ReplicaSetController::updateStatus(const Json& rs, const std::vector<ObjectPtr>& active,
                                        std::chrono::system_clock::time_point now) {
  int64_t minReady = json::integer(at(rs, {"spec"}), "minReadySeconds", 0);
  const Json* tmplLabels = json::find(rs, {"spec", "template", "metadata", "labels"});
  int64_t ready = 0, available = 0, fullyLabeled = 0;
  for (const auto& p : active) {
    if (isPodReady(*p)) ++ready;
    if (isPodAvailable(*p, minReady, now)) ++available;
    bool labeled = true;
    const Json* labels = json::find(*p, {"metadata", "labels"});
    if (tmplLabels && tmplLabels->is_object())
      for (const auto& item : tmplLabels->items())
        labeled = labeled && labels && labels->is_object() && labels->contains(item.key()) &&
                  (*labels)[item.key()] == item.value();
    if (labeled) ++fullyLabeled;
  }
  Json status = rs.contains("status") && rs["status"].is_object() ? rs["status"] : Json::object();
  Json next = status;
  next["replicas"] = static_cast<int64_t>(active.size());
  next["fullyLabeledReplicas"] = fullyLabeled;
  next["readyReplicas"] = ready;
  next["availableReplicas"] = available;
  next["observedGeneration"] = json::integer(at(rs, {"metadata"}), "generation", 1);
  for (const char* f : {"readyReplicas", "availableReplicas", "fullyLabeledReplicas"})
    if (next[f] == 0) next.erase(f);
  if (next == status) return true;
  Json obj = rs;
  obj["status"] = next;
  auto r = client_.update(res::kReplicaSets, namespaceOf(rs), obj, "status");
  if (!r && r.error().code() != 404) {
    PODIUM_LOG(Debug) << "replicaset status " << nameOf(rs) << ": " << r.error().message();
    return false;
  }
  return true;
}

}  // namespace podium::controllers
