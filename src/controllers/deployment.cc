#include "deployment.h"

#include <algorithm>
#include <cmath>

#include "podium/api/selectors.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {
constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kDesired = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kHashLabel = "pod-template-hash";

int64_t revisionOf(const Json& rs) {
  return strings::parseInt(json::getString(rs, {"metadata", "annotations", kRevision})).value_or(0);
}
std::string created(const Json& obj) {
  return json::getString(obj, {"metadata", "creationTimestamp"});
}

bool olderFirst(const ObjectPtr& a, const ObjectPtr& b) {
  if (created(*a) != created(*b)) return created(*a) < created(*b);
  return nameOf(*a) < nameOf(*b);
}

bool isRecreate(const Json& d) {
  return json::getString(d, {"spec", "strategy", "type"}) == "Recreate";
}

int64_t maxSurge(const Json& d) {
  if (isRecreate(d)) return 0;
  int64_t replicas = specReplicas(d);
  int64_t surge = resolveIntOrPercent(at(d, {"spec", "strategy", "rollingUpdate", "maxSurge"}),
                                      replicas, true, 0);
  int64_t unavailable = resolveIntOrPercent(
      at(d, {"spec", "strategy", "rollingUpdate", "maxUnavailable"}), replicas, false, 0);
  if (surge == 0 && unavailable == 0) return 0;
  return surge;
}

int64_t maxUnavailable(const Json& d) {
  int64_t replicas = specReplicas(d);
  if (isRecreate(d) || replicas == 0) return 0;
  int64_t surge = resolveIntOrPercent(at(d, {"spec", "strategy", "rollingUpdate", "maxSurge"}),
                                      replicas, true, 0);
  int64_t unavailable = resolveIntOrPercent(
      at(d, {"spec", "strategy", "rollingUpdate", "maxUnavailable"}), replicas, false, 0);
  if (surge == 0 && unavailable == 0) unavailable = 1;  // both zero would deadlock the rollout
  return std::min(unavailable, replicas);
}

Json annotationsFor(const Json& d) {
  Json out = Json::object();
  const Json& a = at(d, {"metadata", "annotations"});
  if (a.is_object())
    for (const auto& item : a.items()) {
      const std::string& k = item.key();
      if (k == kRevision || k == kDesired || k == kMaxReplicas ||
          k == "deployment.kubernetes.io/revision-history" ||
          k == "kubectl.kubernetes.io/last-applied-configuration" ||
          k == "deprecated.deployment.rollback.to")
        continue;
      out[k] = item.value();
    }
  return out;
}
}  // namespace

struct DeploymentController::State {
  Json d;
  ObjectPtr newRS;                // current state of the new ReplicaSet (may be updated)
  std::vector<ObjectPtr> oldRSs;  // sorted oldest first
  std::vector<ObjectPtr> all() const {
    std::vector<ObjectPtr> out = oldRSs;
    if (newRS) out.push_back(newRS);
    return out;
  }
  std::string createdNewRS;  // name, when this sync created it
  bool foundNewRS = false;
};

DeploymentController::DeploymentController(client::InformerFactory& f,
                                           client::EventRecorder& events, int workers)
    : Controller("deployment", f.client(), f.clock(), workers),
      events_(events),
      deployments_(f.informer(res::kDeployments)),
      replicaSets_(f.informer(res::kReplicaSets)),
      pods_(f.informer(res::kPods)) {
  deployments_.addHandlers(enqueueHandlers());
  auto onRS = [this](const ObjectPtr& rs) { enqueueForReplicaSet(rs); };
  replicaSets_.addHandlers({onRS, [onRS](const ObjectPtr&, const ObjectPtr& n) { onRS(n); }, onRS});
  // Recreate waits for old pods to be gone: their deletion is news.
  pods_.addHandlers({nullptr, nullptr, [this](const ObjectPtr& pod) {
                       std::string rsName;
                       if (!controlledBy(*pod, "ReplicaSet", &rsName)) return;
                       if (auto rs = replicaSets_.get(namespaceOf(*pod), rsName))
                         enqueueForReplicaSet(rs);
                     }});
}

void DeploymentController::enqueueForReplicaSet(const ObjectPtr& rs) {
  if (controllerOf(*rs)) {
    std::string name;
    if (controlledBy(*rs, "Deployment", &name)) queue().add(namespaceOf(*rs) + "/" + name);
    return;
  }
  const Json& labels = at(*rs, {"metadata", "labels"});
  for (const auto& d : deployments_.list(namespaceOf(*rs))) {
    auto sel = api::LabelSelector::fromObject(at(*d, {"spec", "selector"}));
    if (sel && !sel->empty() && sel->matches(labels)) enqueue(*d);
  }
}

SyncResult DeploymentController::claimReplicaSets(const Json& d, std::vector<ObjectPtr>* out) {
  auto sel = api::LabelSelector::fromObject(at(d, {"spec", "selector"}));
  if (!sel || sel->empty()) return SyncResult::ok();
  client::ControllerRefManager refs(client_, res::kDeployments, d, res::kReplicaSets, *sel);
  auto claim = refs.claim(replicaSets_.list(namespaceOf(d)));
  *out = std::move(claim.owned);
  std::sort(out->begin(), out->end(), olderFirst);
  return claim.result;
}

SyncResult DeploymentController::getAllReplicaSets(State& s, bool create) {
  const Json& d = s.d;
  std::vector<ObjectPtr> rsList;
  SyncResult claimed = claimReplicaSets(d, &rsList);
  if (claimed.failed()) return claimed;
  const Json& tmpl = at(d, {"spec", "template"});
  s.newRS = nullptr;
  s.oldRSs.clear();
  for (const auto& rs : rsList) {
    if (!s.newRS && equalIgnoringHash(at(*rs, {"spec", "template"}), tmpl))
      s.newRS = rs;
    else
      s.oldRSs.push_back(rs);
  }
  int64_t maxOld = 0;
  for (const auto& rs : s.oldRSs) maxOld = std::max(maxOld, revisionOf(*rs));
  int64_t newRevision = maxOld + 1;
  int64_t replicas = specReplicas(d);
  std::string ns = namespaceOf(d);
  if (s.newRS) {
    s.foundNewRS = true;
    // Keep the new ReplicaSet's revision and annotations current (a rollback makes an old
    // ReplicaSet new again, with the next revision number).
    Json rs = *s.newRS;
    Json& ann = rs["metadata"]["annotations"];
    if (!ann.is_object()) ann = Json::object();
    bool changed = false;
    if (revisionOf(rs) < newRevision) {
      ann[kRevision] = std::to_string(newRevision);
      changed = true;
    }
    Json wanted = annotationsFor(d);  // named: items() of a temporary would dangle
    for (const auto& item : wanted.items())
      if (!ann.contains(item.key()) || ann[item.key()] != item.value()) {
        ann[item.key()] = item.value();
        changed = true;
      }
    if (changed) {
      auto r = client_.update(res::kReplicaSets, ns, rs);
      if (!r) return SyncResult::retry("annotate replica set: " + r.error().message());
      s.newRS = std::make_shared<Json>(*r);
    }
  } else if (create) {
    int64_t collisions = json::integer(at(d, {"status"}), "collisionCount", 0);
    std::string hash = templateHash(tmpl, collisions);
    Json rsTemplate = tmpl;
    rsTemplate["metadata"]["labels"][kHashLabel] = hash;
    Json selector = at(d, {"spec", "selector"});
    selector["matchLabels"][kHashLabel] = hash;
    Json labels = at(tmpl, {"metadata", "labels"}).is_object() ? at(tmpl, {"metadata", "labels"})
                                                               : Json::object();
    labels[kHashLabel] = hash;
    Json ann = annotationsFor(d);
    ann[kRevision] = std::to_string(newRevision);
    ann[kDesired] = std::to_string(replicas);
    ann[kMaxReplicas] = std::to_string(replicas + maxSurge(d));
    int64_t newReplicas = 0;
    if (!isRecreate(d)) {
      int64_t current = 0;
      for (const auto& rs : s.oldRSs) current += specReplicas(*rs);
      int64_t maxTotal = replicas + maxSurge(d);
      newReplicas = current >= maxTotal ? 0 : std::min(maxTotal - current, replicas);
    }
    Json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata",
                {{"name", nameOf(d) + "-" + hash},
                 {"namespace", ns},
                 {"labels", labels},
                 {"annotations", ann},
                 {"ownerReferences", Json::array({controllerRef(d)})}}},
               {"spec",
                {{"replicas", newReplicas},
                 {"minReadySeconds", json::integer(at(d, {"spec"}), "minReadySeconds", 0)},
                 {"selector", selector},
                 {"template", rsTemplate}}}};
    auto made = client_.create(res::kReplicaSets, ns, rs);
    if (!made) {
      if (made.error().code() == 409) {
        // A ReplicaSet with this name exists: ours if its template matches, else a hash
        // collision — count it so the next hash differs.
        auto existing = client_.get(res::kReplicaSets, ns, nameOf(rs));
        const Json* ref = existing ? controllerOf(*existing) : nullptr;
        if (existing && ref && json::str(*ref, "uid") == uidOf(d) &&
            equalIgnoringHash(at(*existing, {"spec", "template"}), tmpl)) {
          s.newRS = std::make_shared<Json>(*existing);
          return SyncResult::ok();
        }
        Json st = at(d, {"status"}).is_object() ? at(d, {"status"}) : Json::object();
        st["collisionCount"] = collisions + 1;
        // The next sync hashes with the new count (and is retried whether or not this write
        // went through).
        return SyncResult::retry("replica set name collision")
            .merge(updateStatus(res::kDeployments, d, st));
      }
      events_.record(
          d, "Warning", "ReplicaSetCreateError",
          "Failed to create new replica set \"" + nameOf(rs) + "\": " + made.error().message());
      return SyncResult::retry("create replica set: " + made.error().message());
    }
    s.newRS = std::make_shared<Json>(*made);
    s.createdNewRS = nameOf(*made);
    events_.record(
        d, "Normal", "ScalingReplicaSet",
        "Scaled up replica set " + nameOf(*made) + " from 0 to " + std::to_string(newReplicas));
  }
  // The deployment carries its current revision.
  if (s.newRS) {
    std::string rev = json::getString(*s.newRS, {"metadata", "annotations", kRevision});
    if (json::getString(d, {"metadata", "annotations", kRevision}) != rev) {
      auto r = client_.patch(res::kDeployments, ns, nameOf(d),
                             {{"metadata", {{"annotations", {{kRevision, rev}}}}}});
      if (!r) return SyncResult::retry("annotate deployment: " + r.error().message());
      s.d = *r;
    }
  }
  return SyncResult::ok();
}

SyncResult DeploymentController::scaleReplicaSet(State& s, const Json& rs, int64_t replicas,
                                                 bool* scaled) {
  if (scaled) *scaled = false;
  int64_t current = specReplicas(rs);
  std::string desired = std::to_string(specReplicas(s.d));
  std::string maxR = std::to_string(specReplicas(s.d) + maxSurge(s.d));
  bool annotationsCurrent = json::getString(rs, {"metadata", "annotations", kDesired}) == desired &&
                            json::getString(rs, {"metadata", "annotations", kMaxReplicas}) == maxR;
  if (current == replicas && annotationsCurrent) return SyncResult::ok();
  Json next = rs;
  next["spec"]["replicas"] = replicas;
  next["metadata"]["annotations"][kDesired] = desired;
  next["metadata"]["annotations"][kMaxReplicas] = maxR;
  auto r = client_.update(res::kReplicaSets, namespaceOf(rs), next);
  if (!r) return SyncResult::retry("scale replica set " + nameOf(rs) + ": " + r.error().message());
  auto updated = std::make_shared<Json>(*r);
  if (s.newRS && uidOf(*s.newRS) == uidOf(rs)) s.newRS = updated;
  for (auto& o : s.oldRSs)
    if (uidOf(*o) == uidOf(rs)) o = updated;
  if (current != replicas)
    events_.record(s.d, "Normal", "ScalingReplicaSet",
                   std::string(replicas > current ? "Scaled up" : "Scaled down") + " replica set " +
                       nameOf(rs) + " from " + std::to_string(current) + " to " +
                       std::to_string(replicas));
  if (scaled) *scaled = current != replicas;
  return SyncResult::ok();
}

SyncResult DeploymentController::rolloutRolling(State& s) {
  if (auto r = getAllReplicaSets(s, true); r.failed()) return r;
  const Json& d = s.d;
  int64_t replicas = specReplicas(d);
  if (s.newRS) {
    int64_t cur = specReplicas(*s.newRS);
    int64_t target = cur;
    if (cur > replicas) {
      target = replicas;
    } else if (cur < replicas) {
      int64_t total = 0;
      for (const auto& rs : s.all()) total += specReplicas(*rs);
      int64_t maxTotal = replicas + maxSurge(d);
      if (total < maxTotal) target = cur + std::min(maxTotal - total, replicas - cur);
    }
    if (target != cur) {
      if (auto r = scaleReplicaSet(s, *s.newRS, target); r.failed()) return r;
      return syncStatus(s);
    }
  }
  // Scale old ReplicaSets down as far as availability allows.
  int64_t oldPods = 0;
  for (const auto& rs : s.oldRSs) oldPods += specReplicas(*rs);
  if (oldPods > 0) {
    int64_t allPods = 0;
    for (const auto& rs : s.all()) allPods += specReplicas(*rs);
    int64_t minAvailable = replicas - maxUnavailable(d);
    int64_t newUnavailable =
        s.newRS ? specReplicas(*s.newRS) - statusInt(*s.newRS, "availableReplicas") : 0;
    int64_t maxScaledDown = allPods - minAvailable - std::max<int64_t>(0, newUnavailable);
    int64_t scaledDown = 0;
    if (maxScaledDown > 0) {
      // First the old replicas that are not available anyway.
      for (const auto& rs : std::vector<ObjectPtr>(s.oldRSs)) {
        if (scaledDown >= maxScaledDown) break;
        int64_t spec = specReplicas(*rs), avail = statusInt(*rs, "availableReplicas");
        if (spec == 0 || spec == avail) continue;
        int64_t n = std::min(maxScaledDown - scaledDown, spec - avail);
        if (auto r = scaleReplicaSet(s, *rs, spec - n); r.failed()) return r;
        scaledDown += n;
      }
      // Then available ones, down to minAvailable.
      int64_t available = 0;
      for (const auto& rs : s.all()) available += statusInt(*rs, "availableReplicas");
      if (available > minAvailable) {
        int64_t budget = available - minAvailable, done = 0;
        for (const auto& rs : std::vector<ObjectPtr>(s.oldRSs)) {
          if (done >= budget) break;
          int64_t spec = specReplicas(*rs);
          if (spec == 0) continue;
          int64_t n = std::min(spec, budget - done);
          if (auto r = scaleReplicaSet(s, *rs, spec - n); r.failed()) return r;
          done += n;
        }
        scaledDown += done;
      }
    }
    if (scaledDown > 0) return syncStatus(s);
  }
  bool complete = s.newRS && specReplicas(*s.newRS) == replicas &&
                  statusInt(*s.newRS, "availableReplicas") == replicas;
  for (const auto& rs : s.oldRSs) complete = complete && specReplicas(*rs) == 0;
  SyncResult result = complete ? cleanup(s) : SyncResult::ok();
  return result.merge(syncStatus(s));
}

SyncResult DeploymentController::rolloutRecreate(State& s) {
  if (auto r = getAllReplicaSets(s, false); r.failed()) return r;
  bool scaledDown = false;
  for (const auto& rs : std::vector<ObjectPtr>(s.oldRSs)) {
    if (specReplicas(*rs) == 0) continue;
    bool scaled = false;
    if (auto r = scaleReplicaSet(s, *rs, 0, &scaled); r.failed()) return r;
    scaledDown = scaledDown || scaled;
  }
  if (scaledDown) return syncStatus(s);
  // Wait until no old pod is left running.
  for (const auto& rs : s.oldRSs) {
    std::string uid = uidOf(*rs);
    for (const auto& pod : pods_.list(namespaceOf(s.d))) {
      const Json* ref = controllerOf(*pod);
      std::string phase = json::getString(*pod, {"status", "phase"});
      if (ref && json::str(*ref, "uid") == uid && phase != "Succeeded" && phase != "Failed")
        return syncStatus(s);
    }
  }
  if (!s.newRS)
    if (auto r = getAllReplicaSets(s, true); r.failed()) return r;
  if (s.newRS)
    if (auto r = scaleReplicaSet(s, *s.newRS, specReplicas(s.d)); r.failed()) return r;
  SyncResult result = SyncResult::ok();
  if (s.newRS && statusInt(*s.newRS, "availableReplicas") == specReplicas(s.d)) result = cleanup(s);
  return result.merge(syncStatus(s));
}

// Replica count changes outside a template change (kubectl scale, paused deployments):
// the active ReplicaSet takes it, or all active ones proportionally to their size.
SyncResult DeploymentController::scale(State& s) {
  const Json& d = s.d;
  int64_t replicas = specReplicas(d);
  std::vector<ObjectPtr> active;
  for (const auto& rs : s.all())
    if (specReplicas(*rs) > 0) active.push_back(rs);
  if (active.size() <= 1) {
    ObjectPtr target = active.empty()
                           ? (s.newRS ? s.newRS : (s.oldRSs.empty() ? nullptr : s.oldRSs.back()))
                           : active[0];
    return target ? scaleReplicaSet(s, *target, replicas) : SyncResult::ok();
  }
  if (s.newRS && specReplicas(*s.newRS) == replicas &&
      statusInt(*s.newRS, "availableReplicas") == replicas) {
    for (const auto& rs : std::vector<ObjectPtr>(s.oldRSs))
      if (auto r = scaleReplicaSet(s, *rs, 0); r.failed()) return r;
    return SyncResult::ok();
  }
  if (isRecreate(d)) return SyncResult::ok();
  int64_t allowed = replicas + maxSurge(d);
  int64_t current = 0;
  for (const auto& rs : active) current += specReplicas(*rs);
  int64_t toAdd = allowed - current;
  if (toAdd == 0) {
    // Nothing to add or take, but the annotations take the new size: otherwise every later
    // sync would see a scaling event again, and a rollout begun with it would never go on.
    for (const auto& rs : active)
      if (auto r = scaleReplicaSet(s, *rs, specReplicas(*rs)); r.failed()) return r;
    return SyncResult::ok();
  }
  // Largest first when growing, smallest first when shrinking (newer first on ties).
  std::sort(active.begin(), active.end(), [&](const ObjectPtr& a, const ObjectPtr& b) {
    if (specReplicas(*a) != specReplicas(*b))
      return toAdd > 0 ? specReplicas(*a) > specReplicas(*b) : specReplicas(*a) < specReplicas(*b);
    return created(*a) > created(*b);
  });
  std::vector<int64_t> sizes;
  int64_t added = 0;
  for (const auto& rs : active) {
    int64_t annotated =
        strings::parseInt(json::getString(*rs, {"metadata", "annotations", kDesired})).value_or(0);
    int64_t prop = 0;
    if (annotated > 0) {
      double fraction = static_cast<double>(specReplicas(*rs)) * static_cast<double>(allowed) /
                            static_cast<double>(annotated + maxSurge(d)) -
                        static_cast<double>(specReplicas(*rs));
      prop = static_cast<int64_t>(std::llround(fraction));
      prop = toAdd > 0 ? std::min(prop, toAdd - added) : std::max(prop, toAdd - added);
    }
    added += prop;
    sizes.push_back(specReplicas(*rs) + prop);
  }
  if (!sizes.empty()) sizes[0] += toAdd - added;  // the leftover goes to the largest
  for (size_t i = 0; i < active.size(); ++i)
    if (auto r = scaleReplicaSet(s, *active[i], std::max<int64_t>(0, sizes[i])); r.failed())
      return r;
  return SyncResult::ok();
}

SyncResult DeploymentController::cleanup(State& s) {
  int64_t limit = json::integer(at(s.d, {"spec"}), "revisionHistoryLimit", 10);
  std::vector<ObjectPtr> dead;
  for (const auto& rs : s.oldRSs)
    if (specReplicas(*rs) == 0 && statusInt(*rs, "replicas") == 0 && !isDeleting(*rs))
      dead.push_back(rs);
  if (static_cast<int64_t>(dead.size()) <= limit) return SyncResult::ok();
  std::sort(dead.begin(), dead.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    if (revisionOf(*a) != revisionOf(*b)) return revisionOf(*a) < revisionOf(*b);
    return olderFirst(a, b);
  });
  SyncResult result = SyncResult::ok();
  for (size_t i = 0; i + static_cast<size_t>(limit) < dead.size(); ++i) {
    // Only a ReplicaSet still as we saw it: one scaled up meanwhile is not history.
    client::DeleteOptions o;
    o.preconditionResourceVersion = resourceVersionOf(*dead[i]);
    auto gone = client_.remove(res::kReplicaSets, namespaceOf(*dead[i]), nameOf(*dead[i]), o);
    result.merge(SyncResult::of(gone, "delete old replica set " + nameOf(*dead[i])));
  }
  return result;
}

SyncResult DeploymentController::syncStatus(State& s) {
  const Json& d = s.d;
  auto nowTp = clock_.now();
  std::string now = timefmt::rfc3339(nowTp);
  int64_t replicas = specReplicas(d);
  Json old = at(d, {"status"}).is_object() ? at(d, {"status"}) : Json::object();
  Json st = old;
  int64_t total = 0, ready = 0, available = 0;
  for (const auto& rs : s.all()) {
    total += statusInt(*rs, "replicas");
    ready += statusInt(*rs, "readyReplicas");
    available += statusInt(*rs, "availableReplicas");
  }
  int64_t updated = s.newRS ? statusInt(*s.newRS, "replicas") : 0;
  st["observedGeneration"] = json::integer(at(d, {"metadata"}), "generation", 1);
  st["replicas"] = total;
  st["updatedReplicas"] = updated;
  st["readyReplicas"] = ready;
  st["availableReplicas"] = available;
  st["unavailableReplicas"] = std::max<int64_t>(0, replicas - available);
  for (const char* f :
       {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"})
    if (st[f] == 0) st.erase(f);
  Json& conds = st["conditions"];
  if (!conds.is_array()) conds = Json::array();
  bool minAvailable = available >= replicas - maxUnavailable(d);
  setCondition(
      conds,
      {{"type", "Available"},
       {"status", minAvailable ? "True" : "False"},
       {"lastUpdateTime", now},
       {"reason", minAvailable ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable"},
       {"message", minAvailable ? "Deployment has minimum availability."
                                : "Deployment does not have minimum availability."}},
      now);
  std::string rsName = s.newRS ? nameOf(*s.newRS) : "";
  bool paused = json::boolean(at(d, {"spec"}), "paused");
  bool hasDeadline = at(d, {"spec", "progressDeadlineSeconds"}).is_number_integer();
  int64_t deadline = json::integer(at(d, {"spec"}), "progressDeadlineSeconds", 600);
  SyncResult result = SyncResult::ok();
  const Json* prog = nullptr;
  for (const auto& c : conds)
    if (json::str(c, "type") == "Progressing") prog = &c;
  Json progressing;
  bool oldPodsLeft = false;
  for (const auto& rs : s.oldRSs) oldPodsLeft = oldPodsLeft || statusInt(*rs, "replicas") > 0;
  bool complete =
      s.newRS && updated == replicas && total == replicas && available == replicas && !oldPodsLeft;
  auto progressed = [&] {
    // Anything moved since the last status: new pods created, became ready or available,
    // old pods went away.
    return st.value("updatedReplicas", Json(0)) != old.value("updatedReplicas", Json(0)) ||
           st.value("readyReplicas", Json(0)) != old.value("readyReplicas", Json(0)) ||
           st.value("availableReplicas", Json(0)) != old.value("availableReplicas", Json(0)) ||
           total - updated <
               json::integer(old, "replicas", 0) - json::integer(old, "updatedReplicas", 0);
  };
  if (paused) {
    progressing = {{"type", "Progressing"},
                   {"status", "Unknown"},
                   {"lastUpdateTime", now},
                   {"reason", "DeploymentPaused"},
                   {"message", "Deployment is paused"}};
  } else if (prog && json::str(*prog, "reason") == "DeploymentPaused") {
    progressing = {{"type", "Progressing"},
                   {"status", "Unknown"},
                   {"lastUpdateTime", now},
                   {"reason", "DeploymentResumed"},
                   {"message", "Deployment is resumed"}};
  } else if (complete) {
    progressing = {{"type", "Progressing"},
                   {"status", "True"},
                   {"lastUpdateTime", now},
                   {"reason", "NewReplicaSetAvailable"},
                   {"message", "ReplicaSet \"" + rsName + "\" has successfully progressed."}};
  } else if (!s.createdNewRS.empty()) {
    progressing = {{"type", "Progressing"},
                   {"status", "True"},
                   {"lastUpdateTime", now},
                   {"reason", "NewReplicaSetCreated"},
                   {"message", "Created new replica set \"" + rsName + "\""}};
  } else if (progressed() || !prog) {
    progressing = {
        {"type", "Progressing"},
        {"status", "True"},
        {"lastUpdateTime", now},
        {"reason", s.foundNewRS && !prog ? "FoundNewReplicaSet" : "ReplicaSetUpdated"},
        {"message", s.foundNewRS && !prog ? "Found new replica set \"" + rsName + "\""
                                          : "ReplicaSet \"" + rsName + "\" is progressing."}};
  } else if (hasDeadline && prog && json::str(*prog, "reason") != "NewReplicaSetAvailable") {
    auto last = timefmt::parseRfc3339(json::str(*prog, "lastUpdateTime"));
    if (last && nowTp - *last > std::chrono::seconds(deadline)) {
      progressing = {{"type", "Progressing"},
                     {"status", "False"},
                     {"lastUpdateTime", now},
                     {"reason", "ProgressDeadlineExceeded"},
                     {"message", "ReplicaSet \"" + rsName + "\" has timed out progressing."}};
    } else if (last) {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(
          *last + std::chrono::seconds(deadline) - nowTp);
      result = SyncResult::after(std::chrono::milliseconds(left.count() * 1000 + 1000));
    }
  }
  if (!progressing.is_null()) {
    // An unchanged Progressing condition keeps its lastUpdateTime, so it can time out.
    if (prog && json::str(*prog, "reason") == json::str(progressing, "reason") &&
        json::str(*prog, "status") == json::str(progressing, "status") && !progressed() &&
        json::str(progressing, "reason") != "ReplicaSetUpdated")
      progressing["lastUpdateTime"] = prog->value("lastUpdateTime", Json(now));
    setCondition(conds, progressing, now);
  }
  // Keep Available first and Progressing second, as upstream lists them.
  std::sort(conds.begin(), conds.end(), [](const Json& a, const Json& b) {
    return json::str(a, "type") < json::str(b, "type");
  });
  auto strip = [](Json v) {
    if (v.contains("conditions"))
      for (auto& c : v["conditions"]) c.erase("lastUpdateTime");
    return v;
  };
  if (strip(st) == strip(old)) return result;  // only timestamps would change
  return result.merge(updateStatus(res::kDeployments, d, st));
}

SyncResult DeploymentController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr dPtr = deployments_.get(ns, name);
  if (!dPtr || isDeleting(*dPtr)) return SyncResult::ok();
  State s;
  s.d = *dPtr;
  auto sel = api::LabelSelector::fromObject(at(s.d, {"spec", "selector"}));
  if (!sel || sel->empty()) {
    events_.record(s.d, "Warning", "SelectingAll",
                   "This deployment is selecting all pods. A non-empty selector is required.");
    return SyncResult::ok();
  }
  if (auto r = getAllReplicaSets(s, false); r.failed()) return r;
  bool paused = json::boolean(at(s.d, {"spec"}), "paused");
  if (paused) {
    if (auto r = scale(s); r.failed()) return r;
    return syncStatus(s);
  }
  // A replica count change while ReplicaSets disagree on the desired count is a scaling event.
  std::string desired = std::to_string(specReplicas(s.d));
  for (const auto& rs : s.all())
    if (specReplicas(*rs) > 0 &&
        json::getString(*rs, {"metadata", "annotations", kDesired}) != desired && s.newRS) {
      if (auto r = scale(s); r.failed()) return r;
      return syncStatus(s);
    }
  return isRecreate(s.d) ? rolloutRecreate(s) : rolloutRolling(s);
}

}  // namespace podium::controllers
