#include "replicaset.h"

#include <algorithm>

#include "podium/api/selectors.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {
constexpr int64_t kBurst = 500;  // pods created or deleted in one sync at most

}  // namespace

const ReplicaSetController::Kind ReplicaSetController::kReplicaSet{res::kReplicaSets, "ReplicaSet",
                                                                   "replicaset"};
const ReplicaSetController::Kind ReplicaSetController::kReplicationController{
    res::kReplicationControllers, "ReplicationController", "replicationcontroller"};

std::string ReplicaSetController::ownerKey(const Json& pod) const {
  std::string name;
  return controlledBy(pod, kind_.kind, &name) ? namespaceOf(pod) + "/" + name : "";
}

Expected<api::LabelSelector, std::string> ReplicaSetController::selectorOf(const Json& rs) const {
  const Json& sel = at(rs, {"spec", "selector"});
  // A ReplicationController's selector is a plain map of labels.
  if (&kind_ == &kReplicationController)
    return api::LabelSelector::fromObject(Json{{"matchLabels", sel}});
  return api::LabelSelector::fromObject(sel);
}

ReplicaSetController::ReplicaSetController(client::InformerFactory& f,
                                           client::EventRecorder& events, int workers,
                                           const Kind& kind)
    : Controller(kind.controllerName, f.client(), f.clock(), workers),
      kind_(kind),
      events_(events),
      replicaSets_(f.informer(kind.resource)),
      pods_(f.informer(res::kPods)),
      expectations_(f.clock()) {
  auto handlers = enqueueHandlers(false);
  handlers.onDelete = [this](const ObjectPtr& o) { expectations_.clear(Informer::keyOf(*o)); };
  replicaSets_.addHandlers(handlers);
  pods_.addHandlers({[this](const ObjectPtr& p) {
                       if (auto key = ownerKey(*p); !key.empty()) expectations_.observedAdd(key);
                       enqueueOwner(p);
                     },
                     [this](const ObjectPtr& o, const ObjectPtr& n) {
                       if (isDeleting(*n) && !isDeleting(*o))
                         if (auto key = ownerKey(*n); !key.empty())
                           expectations_.observedDeleteOf(key, uidOf(*n));
                       enqueueOwner(n);
                       const Json* a = controllerOf(*o);
                       const Json* b = controllerOf(*n);
                       if (a && (!b || *a != *b)) enqueueOwner(o);
                     },
                     [this](const ObjectPtr& p) {
                       if (auto key = ownerKey(*p); !key.empty())
                         expectations_.observedDeleteOf(key, uidOf(*p));
                       enqueueOwner(p);
                     }});
}

void ReplicaSetController::enqueueOwner(const ObjectPtr& pod) {
  if (controllerOf(*pod)) {
    if (auto key = ownerKey(*pod); !key.empty()) queue().add(key);
    return;
  }
  // An orphan: every ReplicaSet whose selector matches may adopt it.
  if (isDeleting(*pod)) return;
  const Json& labels = at(*pod, {"metadata", "labels"});
  for (const auto& rs : replicaSets_.list(namespaceOf(*pod))) {
    auto sel = selectorOf(*rs);
    if (sel && !sel->empty() && sel->matches(labels)) enqueue(*rs);
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

}  // namespace

SyncResult ReplicaSetController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr rsPtr = replicaSets_.get(ns, name);
  if (!rsPtr) {
    expectations_.clear(key);
    return SyncResult::ok();
  }
  const Json& rs = *rsPtr;
  auto selector = selectorOf(rs);
  if (!selector) return SyncResult::ok();  // invalid selectors are refused by validation
  client::ControllerRefManager refs(client_, kind_.resource, rs, res::kPods, *selector);
  auto claim = refs.claim(pods_.list(ns, [](const Json& p) { return isPodActive(p); }));
  SyncResult result = claim.result;
  std::vector<ObjectPtr>& active = claim.owned;
  if (expectations_.satisfied(key) && !isDeleting(rs))
    result.merge(manageReplicas(rs, key, active));
  auto now = clock_.now();
  result.merge(updateStatus(rs, active, now));
  // Pods that are ready but not yet available need another look once minReadySeconds passes.
  int64_t minReady = json::integer(at(rs, {"spec"}), "minReadySeconds", 0);
  int64_t soonest = 0;
  for (const auto& p : active) {
    int64_t s = secondsUntilAvailable(*p, minReady, now);
    if (s > 0 && (soonest == 0 || s < soonest)) soonest = s;
  }
  if (soonest > 0) result.merge(SyncResult::after(std::chrono::seconds(soonest)));
  return result;
}

SyncResult ReplicaSetController::manageReplicas(const Json& rs, const std::string& key,
                                                std::vector<ObjectPtr>& active) {
  int64_t want = json::integer(at(rs, {"spec"}), "replicas", 1);
  int64_t diff = static_cast<int64_t>(active.size()) - want;
  std::string ns = namespaceOf(rs);
  if (diff < 0) {
    int64_t toCreate = std::min<int64_t>(-diff, kBurst);
    expectations_.expect(key, static_cast<int>(toCreate), 0);
    // Slow start: batches of 1, 2, 4, ... so a broken template fails fast without a flood.
    Json pod = podFromTemplate(rs, at(rs, {"spec", "template"}));
    int64_t created = 0;
    for (int64_t batch = 1; created < toCreate; batch *= 2) {
      for (int64_t i = 0, n = std::min(batch, toCreate - created); i < n; ++i) {
        auto made = client_.create(res::kPods, ns, pod);
        if (!made) {
          expectations_.lower(key, static_cast<int>(toCreate - created), 0);
          events_.record(rs, "Warning", "FailedCreate",
                         "Error creating: " + made.error().message());
          return SyncResult::retry("create pod: " + made.error().message());
        }
        ++created;
        events_.record(rs, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*made));
      }
    }
    return SyncResult::ok();
  }
  SyncResult result = SyncResult::ok();
  if (diff > 0) {
    std::sort(active.begin(), active.end(), deleteBefore);
    int64_t toDelete = std::min<int64_t>(diff, kBurst);
    expectations_.expect(key, 0, static_cast<int>(toDelete));
    for (int64_t i = 0; i < toDelete; ++i) {
      const Json& pod = *active[static_cast<size_t>(i)];
      auto del = client_.remove(res::kPods, ns, nameOf(pod));
      if (!del) {
        expectations_.lower(key, 0, 1);
        if (del.error().code() != 404)
          events_.record(rs, "Warning", "FailedDelete", "Error deleting: " + del.error().message());
        result.merge(SyncResult::of(del, "delete pod " + nameOf(pod)));
        continue;
      }
      events_.record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + nameOf(pod));
    }
  }
  return result;
}

SyncResult ReplicaSetController::updateStatus(const Json& rs, const std::vector<ObjectPtr>& active,
                                              std::chrono::system_clock::time_point now) {
  int64_t minReady = json::integer(at(rs, {"spec"}), "minReadySeconds", 0);
  const Json& tmplLabels = at(rs, {"spec", "template", "metadata", "labels"});
  int64_t ready = 0, available = 0, fullyLabeled = 0;
  for (const auto& p : active) {
    if (isPodReady(*p)) ++ready;
    if (isPodAvailable(*p, minReady, now)) ++available;
    bool labeled = true;
    const Json& labels = at(*p, {"metadata", "labels"});
    if (tmplLabels.is_object())
      for (const auto& item : tmplLabels.items())
        labeled = labeled && labels.is_object() && labels.contains(item.key()) &&
                  labels[item.key()] == item.value();
    if (labeled) ++fullyLabeled;
  }
  Json next = at(rs, {"status"}).is_object() ? rs["status"] : Json::object();
  next["replicas"] = static_cast<int64_t>(active.size());
  next["fullyLabeledReplicas"] = fullyLabeled;
  next["readyReplicas"] = ready;
  next["availableReplicas"] = available;
  next["observedGeneration"] = json::integer(at(rs, {"metadata"}), "generation", 1);
  for (const char* f : {"readyReplicas", "availableReplicas", "fullyLabeledReplicas"})
    if (next[f] == 0) next.erase(f);
  return Controller::updateStatus(kind_.resource, rs, next);
}

}  // namespace podium::controllers
