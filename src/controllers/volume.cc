#include "volume.h"

#include <algorithm>

#include "podium/client/volumes.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;
namespace vol = client::volumes;

namespace {
constexpr const char* kClaimProtection = "kubernetes.io/pvc-protection";
constexpr const char* kVolumeProtection = "kubernetes.io/pv-protection";
constexpr const char* kBindCompleted = "pv.kubernetes.io/bind-completed";
constexpr const char* kBoundByController = "pv.kubernetes.io/bound-by-controller";

bool hasFinalizer(const Json& obj, const char* f) {
  const Json& list = at(obj, {"metadata", "finalizers"});
  return list.is_array() && std::find(list.begin(), list.end(), Json(f)) != list.end();
}

Json statusOf(const Json& obj) {
  const Json& s = at(obj, {"status"});
  return s.is_object() ? s : Json::object();
}
}  // namespace

VolumeController::VolumeController(client::InformerFactory& f, client::EventRecorder& events,
                                   int workers)
    : Controller("persistentvolume-binder", f.client(), f.clock(), workers),
      events_(events),
      claims_(f.informer(res::kPersistentVolumeClaims)),
      volumes_(f.informer(res::kPersistentVolumes)),
      classes_(f.informer(res::kStorageClasses)),
      pods_(f.informer(res::kPods)),
      nodes_(f.informer(res::kNodes)) {
  // A claim's change concerns its volume too, and a volume's its claim.
  auto claimChanged = [this](const ObjectPtr& o) {
    queueClaim(*o);
    std::string v = json::getString(*o, {"spec", "volumeName"});
    if (!v.empty()) queue().add("volume:" + v);
  };
  claims_.addHandlers({claimChanged,
                       [claimChanged](const ObjectPtr&, const ObjectPtr& n) { claimChanged(n); },
                       claimChanged});
  auto volumeChanged = [this](const ObjectPtr& o) {
    queueVolume(*o);
    const Json& ref = at(*o, {"spec", "claimRef"});
    if (ref.is_object())
      queue().add("claim:" + json::str(ref, "namespace") + "/" + json::str(ref, "name"));
    else  // a new or freed volume may serve any pending claim
      for (const auto& c : claims_.list(""))
        if (json::getString(*c, {"spec", "volumeName"}).empty()) queueClaim(*c);
  };
  volumes_.addHandlers({volumeChanged,
                        [volumeChanged](const ObjectPtr&, const ObjectPtr& n) { volumeChanged(n); },
                        volumeChanged});
  // A new default class reaches claims that wait for one.
  classes_.addHandlers({[this](const ObjectPtr&) {
                          for (const auto& c : claims_.list("")) queueClaim(*c);
                        },
                        nullptr, nullptr});
  // A pod that stops or goes frees the claims it used (their protection).
  auto podChanged = [this](const ObjectPtr& p) {
    for (const auto& c : vol::claimsOf(*p)) queue().add("claim:" + namespaceOf(*p) + "/" + c);
  };
  pods_.addHandlers(
      {nullptr, [podChanged](const ObjectPtr&, const ObjectPtr& n) { podChanged(n); }, podChanged});
}

void VolumeController::queueClaim(const Json& pvc) {
  queue().add("claim:" + namespaceOf(pvc) + "/" + nameOf(pvc));
}
void VolumeController::queueVolume(const Json& pv) { queue().add("volume:" + nameOf(pv)); }

std::string VolumeController::defaultClass() {
  std::string best, bestTime;
  for (const auto& sc : classes_.list(""))  // the newest default wins, as in Kubernetes
    if (json::getString(*sc, {"metadata", "annotations", vol::kDefaultClass}) == "true") {
      std::string t = json::getString(*sc, {"metadata", "creationTimestamp"});
      if (best.empty() || t > bestTime) best = nameOf(*sc), bestTime = t;
    }
  return best;
}

SyncResult VolumeController::sync(const std::string& key) {
  if (key.rfind("claim:", 0) == 0) {
    auto [ns, name] = Informer::splitKey(key.substr(6));
    return syncClaim(ns, name);
  }
  if (key.rfind("volume:", 0) == 0) return syncVolume(key.substr(7));
  return SyncResult::ok();
}

SyncResult VolumeController::dropFinalizer(const client::Resource& r, const Json& obj,
                                           const char* finalizer) {
  Json next = obj;
  Json& list = next["metadata"]["finalizers"];
  list.erase(std::remove(list.begin(), list.end(), Json(finalizer)), list.end());
  return SyncResult::of(client_.update(r, namespaceOf(obj), next),
                        "drop " + std::string(finalizer));
}

SyncResult VolumeController::setPhase(const client::Resource& r, const Json& obj, Json status) {
  if (r.plural == "persistentvolumes" &&
      json::str(status, "phase") != json::getString(obj, {"status", "phase"}))
    status["lastPhaseTransitionTime"] = timefmt::rfc3339(clock_.now());
  return updateStatus(r, obj, status);
}

SyncResult VolumeController::syncClaim(const std::string& ns, const std::string& name) {
  ObjectPtr ptr = claims_.get(ns, name);
  if (!ptr) return SyncResult::ok();
  const Json& pvc = *ptr;
  if (isDeleting(pvc)) {
    if (!hasFinalizer(pvc, kClaimProtection)) return SyncResult::ok();
    for (const auto& pod : pods_.list(ns)) {
      std::string phase = json::getString(*pod, {"status", "phase"});
      auto used = vol::claimsOf(*pod);
      if (phase != "Succeeded" && phase != "Failed" &&
          std::find(used.begin(), used.end(), name) != used.end())
        return SyncResult::ok();  // still in use: the pod's change brings us back
    }
    return dropFinalizer(res::kPersistentVolumeClaims, pvc, kClaimProtection);
  }
  const Json& spec = at(pvc, {"spec"});
  if (!spec.contains("storageClassName") || spec["storageClassName"].is_null()) {
    std::string d = defaultClass();
    if (!d.empty())
      return SyncResult::of(client_.patch(res::kPersistentVolumeClaims, ns, name,
                                          {{"spec", {{"storageClassName", d}}}}),
                            "default class of claim " + ns + "/" + name);
  }
  std::string volumeName = json::str(spec, "volumeName");
  if (!volumeName.empty()) {
    ObjectPtr pv = volumes_.get("", volumeName);
    if (!pv) {
      Json st = statusOf(pvc);
      if (json::str(st, "phase") == "Bound") {
        events_.record(pvc, "Warning", "ClaimLost",
                       "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
        st["phase"] = "Lost";
      }
      return setPhase(res::kPersistentVolumeClaims, pvc, st);
    }
    const Json& ref = at(*pv, {"spec", "claimRef"});
    if (!ref.is_object() || vol::volumeFitsClaim(*pv, pvc) ||
        (json::str(ref, "name") == name && json::str(ref, "namespace") == ns &&
         json::str(ref, "uid") == uidOf(pvc)))
      return bind(pvc, *pv);
    events_.record(pvc, "Warning", "FailedBinding",
                   "volume \"" + volumeName + "\" already bound to a different claim.");
    return SyncResult::ok();
  }

  std::string className = vol::claimClass(pvc);
  ObjectPtr sc = className.empty() ? nullptr : classes_.get("", className);
  bool waitForConsumer = sc && json::str(*sc, "volumeBindingMode") == "WaitForFirstConsumer";
  std::string selected = json::getString(pvc, {"metadata", "annotations", vol::kSelectedNode});
  ObjectPtr node = selected.empty() ? nullptr : nodes_.get("", selected);
  if (waitForConsumer && selected.empty()) {
    events_.record(pvc, "Normal", "WaitForFirstConsumer",
                   "waiting for first consumer to be created before binding");
    return SyncResult::ok();
  }
  ObjectPtr best;
  bool bestPreBound = false;
  for (const auto& pv : volumes_.list("")) {
    if (isDeleting(*pv) || !vol::volumeFitsClaim(*pv, pvc)) continue;
    std::string phase = json::getString(*pv, {"status", "phase"});
    bool preBound = at(*pv, {"spec", "claimRef"}).is_object();
    if (!preBound && phase != "Available" && phase != "Pending") continue;
    if (waitForConsumer && (!node || !vol::volumeAdmitsNode(*pv, *node))) continue;
    int64_t size = vol::storageOf(*pv, {"spec", "capacity", "storage"});
    if (!best || (preBound && !bestPreBound) ||
        (preBound == bestPreBound &&
         size < vol::storageOf(*best, {"spec", "capacity", "storage"}))) {
      best = pv;
      bestPreBound = preBound;
    }
  }
  if (best) return bind(pvc, *best);
  if (!sc) {
    events_.record(
        pvc, "Warning", className.empty() ? "FailedBinding" : "ProvisioningFailed",
        className.empty()
            ? "no persistent volumes available for this claim and no storage class is set"
            : "storageclass.storage.k8s.io \"" + className + "\" not found");
    return SyncResult::ok();
  }
  std::string provisioner = json::str(*sc, "provisioner");
  if (provisioner == "kubernetes.io/no-provisioner") {
    events_.record(pvc, "Normal", "FailedBinding",
                   "no persistent volumes available for this claim and no storage class is set");
    return SyncResult::ok();
  }
  if (provisioner == vol::kLocalPathProvisioner && !waitForConsumer) {
    events_.record(pvc, "Warning", "ProvisioningFailed",
                   std::string(vol::kLocalPathProvisioner) +
                       " makes a volume on the node of the claim's first pod: its class needs "
                       "volumeBindingMode WaitForFirstConsumer");
    return SyncResult::ok();
  }
  if (json::getString(pvc, {"metadata", "annotations", vol::kStorageProvisioner}) == provisioner)
    return SyncResult::ok();
  events_.record(pvc, "Normal", "ExternalProvisioning",
                 "Waiting for a volume to be created either by the external provisioner '" +
                     provisioner + "' or manually by the system administrator.");
  Json annotations = {{vol::kStorageProvisioner, provisioner},
                      {vol::kStorageProvisionerBeta, provisioner}};
  return SyncResult::of(client_.patch(res::kPersistentVolumeClaims, ns, name,
                                      {{"metadata", {{"annotations", annotations}}}}),
                        "annotate claim " + ns + "/" + name);
}

SyncResult VolumeController::bind(const Json& pvcIn, const Json& pvIn) {
  std::string what = "bind " + namespaceOf(pvcIn) + "/" + nameOf(pvcIn) + " to " + nameOf(pvIn);
  // The volume first: its claimRef reserves it, so no other claim can take it meanwhile.
  Json pv = pvIn;
  if (json::getString(pv, {"spec", "claimRef", "uid"}) != uidOf(pvcIn)) {
    bool byUs = !at(pv, {"spec", "claimRef"}).is_object();
    pv["spec"]["claimRef"] = {{"kind", "PersistentVolumeClaim"},
                              {"namespace", namespaceOf(pvcIn)},
                              {"name", nameOf(pvcIn)},
                              {"uid", uidOf(pvcIn)},
                              {"apiVersion", "v1"},
                              {"resourceVersion", resourceVersionOf(pvcIn)}};
    if (byUs) pv["metadata"]["annotations"][kBoundByController] = "yes";
    auto written = client_.update(res::kPersistentVolumes, "", pv);
    if (!written) return SyncResult::of(written, what, {});
    pv = std::move(*written);
  }
  if (json::getString(pv, {"status", "phase"}) != "Bound") {
    Json st = statusOf(pv);
    st["phase"] = "Bound";
    st["lastPhaseTransitionTime"] = timefmt::rfc3339(clock_.now());
    Json next = pv;
    next["status"] = st;
    auto written = client_.update(res::kPersistentVolumes, "", next, "status");
    if (!written) return SyncResult::of(written, what, {});
  }
  Json pvc = pvcIn;
  if (json::getString(pvc, {"spec", "volumeName"}) != nameOf(pv) ||
      json::getString(pvc, {"metadata", "annotations", kBindCompleted}) != "yes") {
    if (json::getString(pvc, {"spec", "volumeName"}).empty())
      pvc["metadata"]["annotations"][kBoundByController] = "yes";
    pvc["metadata"]["annotations"][kBindCompleted] = "yes";
    pvc["spec"]["volumeName"] = nameOf(pv);
    auto written = client_.update(res::kPersistentVolumeClaims, namespaceOf(pvc), pvc);
    if (!written) return SyncResult::of(written, what, {});
    pvc = std::move(*written);
  }
  Json st = statusOf(pvc);
  st["phase"] = "Bound";
  st["accessModes"] = at(pv, {"spec", "accessModes"});
  st["capacity"] = at(pv, {"spec", "capacity"});
  return updateStatus(res::kPersistentVolumeClaims, pvc, st);
}

SyncResult VolumeController::syncVolume(const std::string& name) {
  ObjectPtr ptr = volumes_.get("", name);
  if (!ptr) return SyncResult::ok();
  const Json& pv = *ptr;
  const Json& ref = at(pv, {"spec", "claimRef"});
  std::string phase = json::getString(pv, {"status", "phase"});
  if (isDeleting(pv)) {
    if (hasFinalizer(pv, kVolumeProtection) && phase != "Bound")
      return dropFinalizer(res::kPersistentVolumes, pv, kVolumeProtection);
    return SyncResult::ok();
  }
  Json st = statusOf(pv);
  if (!ref.is_object()) {
    st["phase"] = "Available";
    return setPhase(res::kPersistentVolumes, pv, st);
  }
  std::string ns = json::str(ref, "namespace"), claimName = json::str(ref, "name");
  ObjectPtr pvc = claims_.get(ns, claimName);
  if (!pvc) {  // the cache may lag a claim just made: ask the server before releasing
    auto live = client_.getShared(res::kPersistentVolumeClaims, ns, claimName);
    if (live)
      pvc = *live;
    else if (live.error().code() != 404)
      return SyncResult::retry("claim of volume " + name + ": " + live.error().message());
  }
  std::string refUid = json::str(ref, "uid");
  bool claimGone = !pvc || (!refUid.empty() && uidOf(*pvc) != refUid);
  if (!claimGone) {
    // Bound once the claim names it; until then a pre-bound volume stays Available.
    st["phase"] = json::getString(*pvc, {"spec", "volumeName"}) == name ? "Bound" : "Available";
    return setPhase(res::kPersistentVolumes, pv, st);
  }
  if (refUid.empty()) {  // pre-bound by name to a claim that does not exist yet
    st["phase"] = "Available";
    return setPhase(res::kPersistentVolumes, pv, st);
  }
  std::string policy = json::getString(pv, {"spec", "persistentVolumeReclaimPolicy"});
  if (phase == "Bound" || phase == "Available" || phase == "Pending") {
    st["phase"] = "Released";
    st.erase("reason");
    st.erase("message");
    return setPhase(res::kPersistentVolumes, pv, st);
  }
  if (phase != "Released" || policy == "Retain") return SyncResult::ok();
  std::string provisioner = json::getString(pv, {"metadata", "annotations", vol::kProvisionedBy});
  if (policy == "Delete" && !provisioner.empty()) return SyncResult::ok();  // the provisioner's
  st["phase"] = "Failed";
  st["reason"] = "VolumeFailedRecycle";
  st["message"] =
      policy == "Delete"
          ? "error getting deleter volume plugin for volume \"" + name +
                "\": no deletable volume plugin matched (no provisioner made it)"
          : "recycling is not supported by this server; delete the volume's data and the volume";
  if (policy == "Delete") st["reason"] = "VolumeFailedDelete";
  events_.record(pv, "Warning", json::str(st, "reason"), json::str(st, "message"));
  return setPhase(res::kPersistentVolumes, pv, st);
}

}  // namespace podium::controllers
