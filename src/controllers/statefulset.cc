#include "statefulset.h"

#include <algorithm>

#include "podium/common/strings.h"
#include "revisions.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {

// The ordinal of a pod named <set>-<n>, or -1.
int64_t ordinalOf(const std::string& pod, const std::string& set) {
  if (pod.size() <= set.size() + 1 || pod.compare(0, set.size() + 1, set + "-") != 0) return -1;
  std::string n = pod.substr(set.size() + 1);
  if (n.size() > 9 || !std::all_of(n.begin(), n.end(), ::isdigit)) return -1;
  return std::stoll(n);
}

// spec.ordinals.start: the ordinal of the first replica (0 unless set).
int64_t startOrdinal(const Json& set) {
  return std::max<int64_t>(0, json::integer(at(set, {"spec", "ordinals"}), "start", 0));
}

bool runningAndReady(const Json& pod) {
  return json::getString(pod, {"status", "phase"}) == "Running" && isPodReady(pod) &&
         !isDeleting(pod);
}

std::string retention(const Json& set, const char* when) {
  return json::getString(set, {"spec", "persistentVolumeClaimRetentionPolicy", when});
}

Json ownerRefTo(const Json& owner, const char* apiVersion, const char* kind) {
  return {
      {"apiVersion", apiVersion}, {"kind", kind}, {"name", nameOf(owner)}, {"uid", uidOf(owner)}};
}

}  // namespace

struct StatefulSetController::Revisions {
  std::string updateName, currentName;
  Json updateTemplate, currentTemplate;
};

StatefulSetController::StatefulSetController(client::InformerFactory& f,
                                             client::EventRecorder& events, int workers)
    : Controller("statefulset", f.client(), f.clock(), workers),
      events_(events),
      sets_(f.informer(res::kStatefulSets)),
      pods_(f.informer(res::kPods)),
      claims_(f.informer(res::kPersistentVolumeClaims)),
      revisions_(f.informer(res::kControllerRevisions)),
      expectations_(f.clock()) {
  auto handlers = enqueueHandlers(false);
  handlers.onDelete = [this](const ObjectPtr& o) { expectations_.clear(Informer::keyOf(*o)); };
  sets_.addHandlers(handlers);
  pods_.addHandlers(ownedPodHandlers("StatefulSet", expectations_, queue()));
}

Expected<StatefulSetController::Revisions, std::string> StatefulSetController::revisions(
    const Json& set) {
  const Json& tmpl = at(set, {"spec", "template"});
  auto updateName =
      ensureRevision(client_, revisions_, set,
                     templateHash(tmpl, json::integer(at(set, {"status"}), "collisionCount", 0)));
  if (!updateName) return Unexpected(updateName.error());
  Revisions r;
  r.updateName = *updateName;
  r.updateTemplate = tmpl;
  r.currentName = json::getString(set, {"status", "currentRevision"});
  r.currentTemplate = tmpl;
  if (r.currentName.empty()) {
    r.currentName = r.updateName;
  } else if (r.currentName != r.updateName) {
    ObjectPtr cr = revisions_.get(namespaceOf(set), r.currentName);
    Json current = cr ? revisionTemplate(*cr) : Json();
    if (current.is_object())
      r.currentTemplate = std::move(current);
    else
      r.currentName = r.updateName;  // its revision is gone: the only template left is the new one
  }
  return r;
}

SyncResult StatefulSetController::ensureClaims(const Json& set, const Json& pod, bool* waiting) {
  SyncResult result = SyncResult::ok();
  std::string ns = namespaceOf(set);
  const Json& templates = at(set, {"spec", "volumeClaimTemplates"});
  if (!templates.is_array()) return result;
  for (const auto& t : templates) {
    std::string claimName = json::getString(t, {"metadata", "name"}) + "-" + nameOf(pod);
    if (ObjectPtr c = claims_.get(ns, claimName)) {
      if (isDeleting(*c)) *waiting = true;  // a new one is made once the old is gone
      continue;
    }
    Json meta = at(t, {"metadata"}).is_object() ? at(t, {"metadata"}) : Json::object();
    meta["name"] = claimName;
    meta["namespace"] = ns;
    const Json& sel = at(set, {"spec", "selector", "matchLabels"});
    if (sel.is_object())
      for (const auto& [k, v] : sel.items()) meta["labels"][k] = v;
    if (retention(set, "whenDeleted") == "Delete")
      meta["ownerReferences"] = Json::array({controllerRef(set)});
    Json claim = {{"apiVersion", "v1"},
                  {"kind", "PersistentVolumeClaim"},
                  {"metadata", meta},
                  {"spec", at(t, {"spec"})}};
    auto made = client_.create(res::kPersistentVolumeClaims, ns, claim);
    if (!made && made.error().code() != 409) {
      events_.record(set, "Warning", "FailedCreate",
                     "create Claim " + claimName + " for Pod " + nameOf(pod) + " in StatefulSet " +
                         nameOf(set) + " failed error: " + made.error().message());
      result.merge(SyncResult::retry("claim " + claimName + ": " + made.error().message()));
      *waiting = true;
      continue;
    }
    events_.record(set, "Normal", "SuccessfulCreate",
                   "create Claim " + claimName + " Pod " + nameOf(pod) + " in StatefulSet " +
                       nameOf(set) + " success");
  }
  return result;
}

SyncResult StatefulSetController::createPod(const std::string& key, const Json& set,
                                            int64_t ordinal, const Revisions& revs) {
  int64_t partition =
      json::integer(at(set, {"spec", "updateStrategy", "rollingUpdate"}), "partition", 0);
  bool rolling = json::getString(set, {"spec", "updateStrategy", "type"}) != "OnDelete";
  // The partition counts replicas from the first ordinal (spec.ordinals.start).
  bool atCurrent = rolling && ordinal - startOrdinal(set) < partition;
  const std::string& rev = atCurrent ? revs.currentName : revs.updateName;
  Json pod = podFromTemplate(set, atCurrent ? revs.currentTemplate : revs.updateTemplate);
  std::string podName = nameOf(set) + "-" + std::to_string(ordinal);
  Json& meta = pod["metadata"];
  meta.erase("generateName");
  meta["name"] = podName;
  meta["labels"][kRevisionHashLabel] = rev;
  meta["labels"]["statefulset.kubernetes.io/pod-name"] = podName;
  meta["labels"]["apps.kubernetes.io/pod-index"] = std::to_string(ordinal);
  Json& spec = pod["spec"];
  spec["hostname"] = podName;
  std::string service = json::getString(set, {"spec", "serviceName"});
  if (!service.empty()) spec["subdomain"] = service;
  const Json& templates = at(set, {"spec", "volumeClaimTemplates"});
  if (templates.is_array())
    for (const auto& t : templates) {
      std::string vname = json::getString(t, {"metadata", "name"});
      Json v = {{"name", vname}, {"persistentVolumeClaim", {{"claimName", vname + "-" + podName}}}};
      Json& vols = spec["volumes"];
      if (!vols.is_array()) vols = Json::array();
      auto same = std::find_if(vols.begin(), vols.end(),
                               [&](const Json& x) { return json::str(x, "name") == vname; });
      if (same != vols.end())
        *same = v;
      else
        vols.push_back(v);
    }
  bool waiting = false;
  SyncResult result = ensureClaims(set, pod, &waiting);
  if (waiting) return result.merge(SyncResult::after(std::chrono::seconds(1)));
  expectations_.expect(key, 1, 0);
  auto made = client_.create(res::kPods, namespaceOf(set), pod);
  if (!made) {
    expectations_.lower(key, 1, 0);
    if (made.error().code() == 409) return result;  // the old one is still going
    events_.record(set, "Warning", "FailedCreate",
                   "create Pod " + podName + " in StatefulSet " + nameOf(set) +
                       " failed error: " + made.error().message());
    return result.merge(SyncResult::retry("create " + podName + ": " + made.error().message()));
  }
  events_.record(set, "Normal", "SuccessfulCreate",
                 "create Pod " + podName + " in StatefulSet " + nameOf(set) + " successful");
  return result;
}

SyncResult StatefulSetController::deletePod(const std::string& key, const Json& set,
                                            const Json& pod) {
  expectations_.expect(key, 0, 1);
  auto gone = client_.remove(res::kPods, namespaceOf(pod), nameOf(pod));
  if (!gone) {
    expectations_.lower(key, 0, 1);
    return SyncResult::of(gone, "delete pod " + nameOf(pod));
  }
  events_.record(set, "Normal", "SuccessfulDelete",
                 "delete Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " successful");
  return SyncResult::ok();
}

// whenScaled=Delete: the condemned pod becomes an owner of its claims, so they go with it.
SyncResult StatefulSetController::releaseClaims(const Json& set, const Json& pod) {
  SyncResult result = SyncResult::ok();
  const Json& templates = at(set, {"spec", "volumeClaimTemplates"});
  if (retention(set, "whenScaled") != "Delete" || !templates.is_array()) return result;
  for (const auto& t : templates) {
    std::string claimName = json::getString(t, {"metadata", "name"}) + "-" + nameOf(pod);
    ObjectPtr c = claims_.get(namespaceOf(set), claimName);
    if (!c) continue;
    Json refs = at(*c, {"metadata", "ownerReferences"}).is_array()
                    ? at(*c, {"metadata", "ownerReferences"})
                    : Json::array();
    Json ref = ownerRefTo(pod, "v1", "Pod");
    if (std::any_of(refs.begin(), refs.end(),
                    [&](const Json& r) { return json::str(r, "uid") == uidOf(pod); }))
      continue;
    refs.push_back(ref);
    result.merge(SyncResult::of(
        client_.patch(res::kPersistentVolumeClaims, namespaceOf(set), claimName,
                      {{"metadata",
                        {{"ownerReferences", refs}, {"resourceVersion", resourceVersionOf(*c)}}}}),
        "owner of claim " + claimName));
  }
  return result;
}

SyncResult StatefulSetController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr ptr = sets_.get(ns, name);
  if (!ptr) {
    expectations_.clear(key);
    return SyncResult::ok();
  }
  const Json& set = *ptr;
  if (isDeleting(set)) return SyncResult::ok();
  const Json& spec = at(set, {"spec"});
  int64_t replicas = specReplicas(set);
  int64_t minReady = json::integer(spec, "minReadySeconds", 0);
  bool parallel = json::str(spec, "podManagementPolicy") == "Parallel";
  bool onDelete = json::getString(spec, {"updateStrategy", "type"}) == "OnDelete";
  int64_t partition =
      onDelete ? 0 : json::integer(at(spec, {"updateStrategy", "rollingUpdate"}), "partition", 0);
  auto revs = revisions(set);
  if (!revs) return SyncResult::retry(revs.error());
  auto now = clock_.now();

  int64_t start = startOrdinal(set);
  std::map<int64_t, ObjectPtr> byIndex;  // replicas by ordinal - start
  std::vector<std::pair<int64_t, ObjectPtr>> condemned;
  int64_t count = 0, ready = 0, available = 0, current = 0, updated = 0, soonest = 0;
  std::set<std::string> live;  // revisions pods still run
  for (const auto& pod : pods_.list(ns)) {
    const Json* ref = controllerOf(*pod);
    if (!ref || json::str(*ref, "uid") != uidOf(set)) continue;
    int64_t ord = ordinalOf(nameOf(*pod), name);
    if (ord < 0) continue;
    if (ord >= start && ord - start < replicas)
      byIndex[ord - start] = pod;
    else
      condemned.emplace_back(ord, pod);
    if (isDeleting(*pod)) continue;
    ++count;
    if (runningAndReady(*pod)) {
      ++ready;
      available += isPodAvailable(*pod, minReady, now);
      if (int64_t s = secondsUntilAvailable(*pod, minReady, now);
          s > 0 && (!soonest || s < soonest))
        soonest = s;
    }
    std::string rev = json::getString(*pod, {"metadata", "labels", kRevisionHashLabel});
    live.insert(rev);
    current += rev == revs->currentName;
    updated += rev == revs->updateName;
  }

  SyncResult result = SyncResult::ok();
  if (expectations_.satisfied(key)) {
    bool blocked = false;  // OrderedReady: a step waits for the one before it
    for (int64_t i = 0; i < replicas && !blocked; ++i) {
      auto it = byIndex.find(i);
      if (it == byIndex.end()) {
        result.merge(createPod(key, set, start + i, *revs));
        blocked = !parallel;
        continue;
      }
      const Json& pod = *it->second;
      std::string phase = json::getString(pod, {"status", "phase"});
      if ((phase == "Failed" || phase == "Succeeded") && !isDeleting(pod)) {
        events_.record(
            set, "Warning", "RecreatingFailedPod",
            "StatefulSet " + ns + "/" + name + " is recreating " + phase + " Pod " + nameOf(pod));
        result.merge(deletePod(key, set, pod));
        blocked = !parallel;
      } else if (!parallel && !runningAndReady(pod)) {
        blocked = true;
      }
    }
    std::sort(condemned.begin(), condemned.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [ord, pod] : condemned) {
      if (blocked) break;
      if (!isDeleting(*pod)) {
        result.merge(releaseClaims(set, *pod));
        result.merge(deletePod(key, set, *pod));
      }
      blocked = !parallel;
    }
    for (int64_t i = replicas - 1; !onDelete && !blocked && i >= partition; --i) {
      auto it = byIndex.find(i);
      if (it == byIndex.end()) break;
      const Json& pod = *it->second;
      if (json::getString(pod, {"metadata", "labels", kRevisionHashLabel}) != revs->updateName &&
          !isDeleting(pod)) {
        result.merge(deletePod(key, set, pod));
        break;
      }
      if (!runningAndReady(pod)) break;
    }
  }

  Json st = at(set, {"status"}).is_object() ? at(set, {"status"}) : Json::object();
  std::string currentRevision = revs->currentName;
  if (updated == replicas && ready == replicas && count == replicas) {
    currentRevision = revs->updateName;  // the rollout is done
    current = updated;
  }
  st["replicas"] = count;
  st["readyReplicas"] = ready;
  st["availableReplicas"] = available;
  st["currentReplicas"] = current;
  st["updatedReplicas"] = updated;
  st["currentRevision"] = currentRevision;
  st["updateRevision"] = revs->updateName;
  st["collisionCount"] = json::integer(st, "collisionCount", 0);
  st["observedGeneration"] = json::integer(at(set, {"metadata"}), "generation", 1);
  result.merge(updateStatus(res::kStatefulSets, set, st));
  live.insert({currentRevision, revs->updateName});
  result.merge(pruneRevisions(client_, revisions_, set, live));
  if (soonest > 0) result.merge(SyncResult::after(std::chrono::seconds(soonest)));
  return result;
}

}  // namespace podium::controllers
