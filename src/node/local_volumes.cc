#include "local_volumes.h"

#include <filesystem>

#include "podium/client/objects.h"
#include "podium/client/volumes.h"
#include "podium/common/log.h"

namespace podium::node {

namespace fs = std::filesystem;
namespace res = client::resources;
namespace vol = client::volumes;
using client::at;
using client::ObjectPtr;
using client::SyncResult;

LocalVolumes::LocalVolumes(client::Client& client, std::string nodeName, std::string root,
                           Clock& clock)
    : Controller("local-path-provisioner", client, clock, 1),
      node_(std::move(nodeName)),
      root_(std::move(root)),
      claims_(client, res::kPersistentVolumeClaims),
      volumes_(client, res::kPersistentVolumes) {
  auto claim = [this](const ObjectPtr& o) {
    queue().add("claim:" + client::namespaceOf(*o) + "/" + client::nameOf(*o));
  };
  claims_.addHandlers(
      {claim, [claim](const ObjectPtr&, const ObjectPtr& n) { claim(n); }, nullptr});
  auto volume = [this](const ObjectPtr& o) { queue().add("volume:" + client::nameOf(*o)); };
  volumes_.addHandlers(
      {volume, [volume](const ObjectPtr&, const ObjectPtr& n) { volume(n); }, nullptr});
}

LocalVolumes::~LocalVolumes() {
  stop();
  claims_.stop();
  volumes_.stop();
}

void LocalVolumes::run() {
  claims_.start();
  volumes_.start();
  start();
}

SyncResult LocalVolumes::sync(const std::string& key) {
  if (key.rfind("claim:", 0) == 0) {
    auto [ns, name] = client::Informer::splitKey(key.substr(6));
    ObjectPtr c = claims_.get(ns, name);
    return c ? provision(*c) : SyncResult::ok();
  }
  if (key.rfind("volume:", 0) == 0) {
    ObjectPtr v = volumes_.get("", key.substr(7));
    return v ? reclaim(*v) : SyncResult::ok();
  }
  return SyncResult::ok();
}

SyncResult LocalVolumes::provision(const Json& claim) {
  const Json& annotations = at(claim, {"metadata", "annotations"});
  if (json::str(annotations, vol::kSelectedNode) != node_ ||
      json::str(annotations, vol::kStorageProvisioner) != vol::kLocalPathProvisioner ||
      !json::getString(claim, {"spec", "volumeName"}).empty() || client::isDeleting(claim))
    return SyncResult::ok();
  std::string ns = client::namespaceOf(claim), name = client::nameOf(claim);
  std::string pvName = "pvc-" + client::uidOf(claim);
  if (volumes_.get("", pvName)) return SyncResult::ok();  // made already; the binder binds it
  auto sc = client_.get(res::kStorageClasses, "", vol::claimClass(claim));
  if (!sc) return SyncResult::of(sc, "class of claim " + ns + "/" + name);
  fs::path dir = fs::path(root_) / (pvName + "_" + ns + "_" + name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return SyncResult::retry("make " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::all, ec);  // any container user may write, as local-path does
  Json pv = {
      {"apiVersion", "v1"},
      {"kind", "PersistentVolume"},
      {"metadata",
       {{"name", pvName}, {"annotations", {{vol::kProvisionedBy, vol::kLocalPathProvisioner}}}}},
      {"spec",
       {{"capacity", {{"storage", at(claim, {"spec", "resources", "requests", "storage"})}}},
        {"accessModes", at(claim, {"spec", "accessModes"})},
        {"hostPath", {{"path", dir.string()}, {"type", "DirectoryOrCreate"}}},
        {"nodeAffinity",
         {{"required",
           {{"nodeSelectorTerms",
             Json::array({{{"matchExpressions", Json::array({{{"key", "kubernetes.io/hostname"},
                                                              {"operator", "In"},
                                                              {"values", {node_}}}})}}})}}}}},
        {"persistentVolumeReclaimPolicy", json::str(*sc, "reclaimPolicy", "Delete")},
        {"storageClassName", vol::claimClass(claim)},
        {"volumeMode", json::getString(claim, {"spec", "volumeMode"})},
        {"claimRef",
         {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"namespace", ns},
          {"name", name},
          {"uid", client::uidOf(claim)}}}}}};
  auto made = client_.create(res::kPersistentVolumes, "", pv);
  if (made)
    PODIUM_LOG(Info) << "provisioned " << pvName << " for " << ns << "/" << name << " at "
                     << dir.string();
  return SyncResult::of(made, "create volume " + pvName, {409});
}

SyncResult LocalVolumes::reclaim(const Json& volume) {
  Json self = {{"metadata", {{"name", node_}, {"labels", {{"kubernetes.io/hostname", node_}}}}}};
  if (json::getString(volume, {"metadata", "annotations", vol::kProvisionedBy}) !=
          vol::kLocalPathProvisioner ||
      json::getString(volume, {"status", "phase"}) != "Released" ||
      json::getString(volume, {"spec", "persistentVolumeReclaimPolicy"}) != "Delete" ||
      client::isDeleting(volume) || !vol::volumeAdmitsNode(volume, self))
    return SyncResult::ok();
  fs::path dir = json::getString(volume, {"spec", "hostPath", "path"});
  // Only what this provisioner made: a directory right under its root.
  if (dir.parent_path() == fs::path(root_) && dir.filename().string().rfind("pvc-", 0) == 0) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return SyncResult::retry("remove " + dir.string() + ": " + ec.message());
  }
  return SyncResult::of(client_.remove(res::kPersistentVolumes, "", client::nameOf(volume)),
                        "delete volume " + client::nameOf(volume));
}

}  // namespace podium::node
