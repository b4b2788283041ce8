#include "garbage_collector.h"

#include <algorithm>

#include "podium/common/log.h"

namespace podium::controllers {

using client::Resource;

namespace {
constexpr std::chrono::seconds kMonitorResync{30};
const Resource kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
}  // namespace

GarbageCollector::GarbageCollector(client::InformerFactory& f, int workers)
    : Controller("garbage-collector", f.client(), f.clock(), workers), informers_(f) {
  for (const auto& r : client_.allResources()) monitor(r);
  // A new custom resource definition brings a resource to watch.
  auto resync = [this](const ObjectPtr&) { queue().add(kResyncKey); };
  f.informer(kCrds).addHandlers(
      {resync, [resync](const ObjectPtr&, const ObjectPtr& n) { resync(n); }, nullptr});
  queue().addAfter(kResyncKey, kMonitorResync);
}

bool GarbageCollector::monitor(const Resource& r) {
  if (r.group == "" && r.plural == "events") return false;  // events are never owners or owned
  {
    std::lock_guard<std::mutex> lock(monitorsMu_);
    if (!monitored_.insert(r.group + "/" + r.version + "/" + r.plural).second) return false;
  }
  client::Informer& inf = informers_.informer(r);
  if (inf.started()) {
    // Another controller's informer, started before the collector saw the resource: handlers
    // cannot join it now. Does not happen for the built-in resources (monitored before start).
    PODIUM_LOG(Warn) << "garbage collector: " << r.plural << " is watched without it";
    return false;
  }
  inf.addHandlers({[this, r](const ObjectPtr& o) { observe(r, o); },
                   [this, r](const ObjectPtr&, const ObjectPtr& n) { observe(r, n); },
                   [this](const ObjectPtr& o) { forget(o); }});
  return true;
}

SyncResult GarbageCollector::resyncMonitors() {
  bool added = false;
  for (const auto& r : client_.allResources()) added = monitor(r) || added;
  if (added) informers_.start();
  return SyncResult::after(kMonitorResync);
}

void GarbageCollector::observe(const Resource& r, const ObjectPtr& obj) {
  std::string uid = uidOf(*obj);
  if (uid.empty()) return;
  Node n{r, namespaceOf(*obj), nameOf(*obj), {}, isDeleting(*obj), {}};
  const Json& owners = at(*obj, {"metadata", "ownerReferences"});
  if (owners.is_array())
    for (const auto& o : owners) n.owners.push_back(o);
  const Json& fin = at(*obj, {"metadata", "finalizers"});
  if (fin.is_array())
    for (const auto& f : fin)
      if (f.is_string()) n.finalizers.push_back(f.get<std::string>());
  bool hasOwners = !n.owners.empty();
  bool foreground =
      n.deleting && std::count(n.finalizers.begin(), n.finalizers.end(), "foregroundDeletion");
  bool orphan = n.deleting && std::count(n.finalizers.begin(), n.finalizers.end(), "orphan");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto old = nodes_.find(uid);
    if (old != nodes_.end())
      for (const auto& o : old->second.owners) dependents_[json::str(o, "uid")].erase(uid);
    for (const auto& o : n.owners) dependents_[json::str(o, "uid")].insert(uid);
    nodes_[uid] = std::move(n);
  }
  if (hasOwners) queue().add("d:" + uid);
  if (foreground) queue().add("f:" + uid);
  if (orphan) queue().add("o:" + uid);
}

void GarbageCollector::forget(const ObjectPtr& obj) {
  std::string uid = uidOf(*obj);
  std::vector<std::string> deps;
  std::vector<std::string> owners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it != nodes_.end()) {
      for (const auto& o : it->second.owners) {
        std::string ou = json::str(o, "uid");
        dependents_[ou].erase(uid);
        owners.push_back(ou);
      }
      nodes_.erase(it);
    }
    auto d = dependents_.find(uid);
    if (d != dependents_.end()) deps.assign(d->second.begin(), d->second.end());
  }
  for (const auto& dep : deps) queue().add("d:" + dep);
  // An owner waiting in the foreground may now have no dependents left.
  for (const auto& o : owners) queue().add("f:" + o);
}

SyncResult GarbageCollector::sync(const std::string& key) {
  if (key == kResyncKey) return resyncMonitors();
  if (key.size() < 2 || key[1] != ':') return SyncResult::ok();
  std::string uid = key.substr(2);
  switch (key[0]) {
    case 'd':
      return attemptToDelete(uid);
    case 'f':
      return deleteDependentsInForeground(uid);
    case 'o':
      return orphanDependents(uid);
  }
  return SyncResult::ok();
}

Expected<bool, api::ApiError> GarbageCollector::ownerExists(const Json& ref, const std::string& ns,
                                                            bool* deletingInForeground) {
  std::string uid = json::str(ref, "uid");
  *deletingInForeground = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it != nodes_.end()) {
      const Node& n = it->second;
      *deletingInForeground =
          n.deleting && std::count(n.finalizers.begin(), n.finalizers.end(), "foregroundDeletion");
      return true;
    }
  }
  // Not in the caches: ask the API (the owner may be of a kind nobody watches, or just created).
  auto r = client_.resourceFor(json::str(ref, "apiVersion"), json::str(ref, "kind"));
  if (!r)  // a kind the server does not serve (yet): keep the dependent, as upstream does
    return Unexpected(
        api::ApiError(404, "NotFound", "unable to resolve owner kind " + json::str(ref, "kind")));
  auto owner = client_.get(*r, client_.namespaced(*r) ? ns : "", json::str(ref, "name"));
  if (!owner) {
    if (owner.error().code() == 404) return false;
    return Unexpected(owner.error());  // unsure: keep the dependent, and look again
  }
  return uidOf(*owner) == uid;
}

SyncResult GarbageCollector::attemptToDelete(const std::string& uid) {
  Node n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return SyncResult::ok();
    n = it->second;
  }
  if (n.owners.empty() || n.deleting) return SyncResult::ok();
  // The cache may be behind (an owner just released it): decide on the object as the API
  // server has it now, as upstream's attemptToDeleteItem does.
  auto latest = client_.get(n.resource, n.ns, n.name);
  if (!latest) return SyncResult::of(latest, "get " + n.resource.plural + " " + n.name);
  if (uidOf(*latest) != uid || isDeleting(*latest)) return SyncResult::ok();
  n.owners.clear();
  for (const auto& o : at(*latest, {"metadata", "ownerReferences"})) n.owners.push_back(o);
  if (n.owners.empty()) return SyncResult::ok();
  std::vector<Json> solid, dangling;
  bool blockedByForeground = false;
  for (const auto& ref : n.owners) {
    bool foreground = false;
    auto exists = ownerExists(ref, n.ns, &foreground);
    if (!exists) return SyncResult::of(exists, "look up owner " + json::str(ref, "name"), {});
    if (*exists) {
      solid.push_back(ref);
      if (foreground && json::boolean(ref, "blockOwnerDeletion")) blockedByForeground = true;
    } else {
      dangling.push_back(ref);
    }
  }
  if (solid.empty() || blockedByForeground) {
    client::DeleteOptions d;
    d.propagationPolicy = blockedByForeground ? "Foreground" : "Background";
    d.preconditionUid = uid;
    auto r = client_.remove(n.resource, n.ns, n.name, d);
    if (r)
      PODIUM_LOG(Debug) << "garbage collector deleted " << n.resource.plural << " " << n.ns << "/"
                        << n.name;
    // 409: the uid precondition failed, another object of that name now.
    return SyncResult::of(r, "delete " + n.resource.plural + " " + n.name, {404, 409});
  }
  if (!dangling.empty()) {
    Json refs = Json::array();
    for (const auto& s : solid) refs.push_back(s);
    auto r = client_.patch(n.resource, n.ns, n.name, {{"metadata", {{"ownerReferences", refs}}}});
    return SyncResult::of(r, "drop dangling owners of " + n.name);
  }
  return SyncResult::ok();
}

SyncResult GarbageCollector::removeFinalizer(const Node& n, const std::string& uid,
                                             const std::string& finalizer) {
  auto cur = client_.get(n.resource, n.ns, n.name);
  if (!cur) return SyncResult::of(cur, "get " + n.name);
  if (uidOf(*cur) != uid) return SyncResult::ok();
  Json fin = Json::array();
  for (const auto& f : at(*cur, {"metadata", "finalizers"}))
    if (f != finalizer) fin.push_back(f);
  auto r = client_.patch(
      n.resource, n.ns, n.name,
      {{"metadata",
        {{"finalizers", fin},
         {"resourceVersion", json::getString(*cur, {"metadata", "resourceVersion"})}}}});
  return SyncResult::of(r, "remove finalizer " + finalizer + " of " + n.name);
}

SyncResult GarbageCollector::deleteDependentsInForeground(const std::string& uid) {
  Node owner;
  std::vector<std::string> deps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return SyncResult::ok();
    owner = it->second;
    auto d = dependents_.find(uid);
    if (d != dependents_.end()) deps.assign(d->second.begin(), d->second.end());
  }
  if (!owner.deleting ||
      !std::count(owner.finalizers.begin(), owner.finalizers.end(), "foregroundDeletion"))
    return SyncResult::ok();
  SyncResult result = SyncResult::ok();
  bool waiting = false;
  for (const auto& depUid : deps) {
    Node dep;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = nodes_.find(depUid);
      if (it == nodes_.end()) continue;
      dep = it->second;
    }
    bool blocks = false;
    for (const auto& o : dep.owners)
      if (json::str(o, "uid") == uid && json::boolean(o, "blockOwnerDeletion")) blocks = true;
    if (!blocks) continue;
    waiting = true;
    if (!dep.deleting) {
      client::DeleteOptions d;
      d.propagationPolicy = "Foreground";
      d.preconditionUid = depUid;
      result.merge(SyncResult::of(client_.remove(dep.resource, dep.ns, dep.name, d),
                                  "delete dependent " + dep.name, {404, 409}));
    }
  }
  if (waiting) return result.merge(SyncResult::after(std::chrono::milliseconds(500)));
  return removeFinalizer(owner, uid, "foregroundDeletion");
}

SyncResult GarbageCollector::orphanDependents(const std::string& uid) {
  Node owner;
  std::vector<std::string> deps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return SyncResult::ok();
    owner = it->second;
    auto d = dependents_.find(uid);
    if (d != dependents_.end()) deps.assign(d->second.begin(), d->second.end());
  }
  if (!owner.deleting || !std::count(owner.finalizers.begin(), owner.finalizers.end(), "orphan"))
    return SyncResult::ok();
  for (const auto& depUid : deps) {
    Node dep;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = nodes_.find(depUid);
      if (it == nodes_.end()) continue;
      dep = it->second;
    }
    Json refs = Json::array();
    for (const auto& o : dep.owners)
      if (json::str(o, "uid") != uid) refs.push_back(o);
    auto r =
        client_.patch(dep.resource, dep.ns, dep.name, {{"metadata", {{"ownerReferences", refs}}}});
    if (auto step = SyncResult::of(r, "orphan " + dep.name); step.failed()) return step;
  }
  return removeFinalizer(owner, uid, "orphan");
}

}  // namespace podium::controllers
