#include "garbage_collector.h"

#include <algorithm>

#include "podium/common/log.h"

namespace podium::controllers {

using client::Resource;

GarbageCollector::GarbageCollector(client::InformerFactory& f)
    : client_(f.client()),
      workers_(
          "garbage-collector", [this](const std::string& k) { return sync(k); }, 2) {
  for (const auto& r : client_.allResources()) {
    if (r.group == "" && r.plural == "events") continue;  // events are never owners or owned
    f.informer(r).addHandlers({[this, r](const ObjectPtr& o) { observe(r, o); },
                               [this, r](const ObjectPtr&, const ObjectPtr& n) { observe(r, n); },
                               [this](const ObjectPtr& o) { forget(o); }});
  }
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
  if (hasOwners) workers_.queue().add("d:" + uid);
  if (foreground) workers_.queue().add("f:" + uid);
  if (orphan) workers_.queue().add("o:" + uid);
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
  for (const auto& dep : deps) workers_.queue().add("d:" + dep);
  // An owner waiting in the foreground may now have no dependents left.
  for (const auto& o : owners) workers_.queue().add("f:" + o);
}

bool GarbageCollector::sync(const std::string& key) {
  std::string uid = key.substr(2);
  switch (key[0]) {
    case 'd':
      return attemptToDelete(uid);
    case 'f':
      return deleteDependentsInForeground(uid);
    case 'o':
      return orphanDependents(uid);
  }
  return true;
}

bool GarbageCollector::ownerExists(const Json& ref, const std::string& ns,
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
  if (!r) return false;
  auto owner = client_.get(*r, client_.namespaced(*r) ? ns : "", json::str(ref, "name"));
  if (!owner) return owner.error().code() != 404;  // unsure on other errors: keep the dependent
  return uidOf(*owner) == uid;
}

bool GarbageCollector::attemptToDelete(const std::string& uid) {
  Node n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return true;
    n = it->second;
  }
  if (n.owners.empty() || n.deleting) return true;
  std::vector<Json> solid, dangling;
  bool blockedByForeground = false;
  for (const auto& ref : n.owners) {
    bool foreground = false;
    if (ownerExists(ref, n.ns, &foreground)) {
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
    return r || r.error().code() == 404 || r.error().code() == 409;
  }
  if (!dangling.empty()) {
    Json refs = Json::array();
    for (const auto& s : solid) refs.push_back(s);
    auto r = client_.patch(n.resource, n.ns, n.name, {{"metadata", {{"ownerReferences", refs}}}});
    return r || r.error().code() == 404;
  }
  return true;
}

bool GarbageCollector::removeFinalizer(const Node& n, const std::string& uid,
                                       const std::string& finalizer) {
  auto cur = client_.get(n.resource, n.ns, n.name);
  if (!cur) return cur.error().code() == 404;
  if (uidOf(*cur) != uid) return true;
  Json fin = Json::array();
  for (const auto& f : at(*cur, {"metadata", "finalizers"}))
    if (f != finalizer) fin.push_back(f);
  auto r = client_.patch(
      n.resource, n.ns, n.name,
      {{"metadata",
        {{"finalizers", fin},
         {"resourceVersion", json::getString(*cur, {"metadata", "resourceVersion"})}}}});
  return r || r.error().code() == 404;
}

bool GarbageCollector::deleteDependentsInForeground(const std::string& uid) {
  Node owner;
  std::vector<std::string> deps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return true;
    owner = it->second;
    auto d = dependents_.find(uid);
    if (d != dependents_.end()) deps.assign(d->second.begin(), d->second.end());
  }
  if (!owner.deleting ||
      !std::count(owner.finalizers.begin(), owner.finalizers.end(), "foregroundDeletion"))
    return true;
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
      client_.remove(dep.resource, dep.ns, dep.name, d);
    }
  }
  if (waiting) {
    workers_.queue().addAfter("f:" + uid, std::chrono::milliseconds(500));
    return true;
  }
  return removeFinalizer(owner, uid, "foregroundDeletion");
}

bool GarbageCollector::orphanDependents(const std::string& uid) {
  Node owner;
  std::vector<std::string> deps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return true;
    owner = it->second;
    auto d = dependents_.find(uid);
    if (d != dependents_.end()) deps.assign(d->second.begin(), d->second.end());
  }
  if (!owner.deleting || !std::count(owner.finalizers.begin(), owner.finalizers.end(), "orphan"))
    return true;
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
    if (!r && r.error().code() != 404) return false;
  }
  return removeFinalizer(owner, uid, "orphan");
}

}  // namespace podium::controllers
