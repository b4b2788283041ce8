// The API's storage: deletes, with propagation policies, preconditions, finalizers and what a
// kind's strategy makes a delete wait for (a pod's grace period, a namespace's finalizers).
#include <algorithm>

#include "storage_impl.h"

namespace podium::api {

bool StorageImpl::deletionComplete(const ResourceInfo& r, const Json& obj) const {
  if (!json::find(obj, {"metadata", "deletionTimestamp"})) return false;
  if (nonEmptyList(json::find(obj, {"metadata", "finalizers"}))) return false;
  if (strategyFor(r).holdsDeletion(obj)) return false;
  return json::integer(*json::find(obj, {"metadata"}), "deletionGracePeriodSeconds", 0) <= 0;
}

namespace {

Expected<std::string, ApiError> propagationOf(const ResourceInfo& r, const std::string& name,
                                              const DeleteOptions& o) {
  std::string policy = o.propagationPolicy;
  if (policy.empty() && o.orphanDependents.has_value())
    policy = *o.orphanDependents ? "Orphan" : "Background";
  if (!policy.empty() && policy != "Orphan" && policy != "Background" && policy != "Foreground")
    return Unexpected(
        ApiError::invalid(r.group, r.qualifiedKind(), name,
                          {FieldError::notSupported("propagationPolicy", policy,
                                                    {"Foreground", "Background", "Orphan"})}));
  return policy;
}

Expected<void, ApiError> checkPreconditions(const ResourceInfo& r, const std::string& name,
                                            const Json& obj, const DeleteOptions& o) {
  if (!o.preconditionUid.empty() && o.preconditionUid != metaString(obj, "uid"))
    return Unexpected(
        ApiError::conflict(r.group, r.qualifiedResource(), name,
                           "Precondition failed: UID in precondition: " + o.preconditionUid +
                               ", UID in object meta: " + metaString(obj, "uid")));
  if (!o.preconditionResourceVersion.empty() &&
      o.preconditionResourceVersion != metaString(obj, "resourceVersion"))
    return Unexpected(ApiError::conflict(
        r.group, r.qualifiedResource(), name,
        "Precondition failed: ResourceVersion in precondition: " + o.preconditionResourceVersion +
            ", ResourceVersion in object meta: " + metaString(obj, "resourceVersion")));
  return {};
}

}  // namespace

Expected<WriteResult, ApiError> StorageImpl::remove(const ResourceInfo& r, const std::string& ns,
                                                    const std::string& name,
                                                    const DeleteOptions& o) {
  std::string key = r.key(ns, name);
  auto policy = propagationOf(r, name, o);
  if (!policy) return Unexpected(policy.error());
  const Strategy& strategy = strategyFor(r);
  if (auto allowed = strategy.checkDelete(r, name); !allowed) return Unexpected(allowed.error());
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto cur = cacher_.get(key);
    if (!cur) return Unexpected(ApiError::notFound(r.group, r.qualifiedResource(), name));
    const Json& obj = *cur->object;
    if (auto pre = checkPreconditions(r, name, obj, o); !pre) return Unexpected(pre.error());
    if (attempt == 0) {  // admission webhooks see the delete once, with the object as it was
      Admission::Request admit{r, "", "DELETE", ns, name, &obj, o.dryRun};
      if (auto a = admission_.review(admit, Json()); !a) return Unexpected(a.error());
    }
    Json next = obj;
    Json& m = metaOf(next);
    Json fin =
        m.contains("finalizers") && m["finalizers"].is_array() ? m["finalizers"] : Json::array();
    auto addFinalizer = [&](const char* f) {
      if (std::find(fin.begin(), fin.end(), f) == fin.end()) fin.push_back(f);
    };
    if (*policy == "Foreground") addFinalizer("foregroundDeletion");
    if (*policy == "Orphan") addFinalizer("orphan");
    int64_t grace = strategy.gracePeriod(obj, o);
    if (fin.empty() && !strategy.holdsDeletion(next) && grace == 0) {
      WriteResult res;
      res.object = obj;
      if (o.dryRun) return res;
      auto ctx = context();
      strategy.beforeRemove(r, obj, ctx);
      auto rv = written(store_.remove(key, cur->revision));
      if (!rv) {
        if (rv.error().code == store::Errc::Conflict) {
          consistentRead();
          continue;
        }
        return Unexpected(storeError(r, name, rv.error()));
      }
      res.object["metadata"]["resourceVersion"] = std::to_string(*rv);
      return res;
    }
    // Deletion waits for finalizers, a node's graceful shutdown of a pod, or what the kind
    // holds it for: mark it.
    if (!m.contains("deletionTimestamp")) {
      m["deletionTimestamp"] = now();
      m["deletionGracePeriodSeconds"] = 0;
    }
    if (grace > 0) {
      int64_t current = json::integer(m, "deletionGracePeriodSeconds", 0);
      if (current == 0 || grace < current) {
        m["deletionTimestamp"] = timefmt::rfc3339(clock_.now() + std::chrono::seconds(grace));
        m["deletionGracePeriodSeconds"] = grace;
      }
    }
    m["finalizers"] = fin;
    if (fin.empty()) m.erase("finalizers");
    strategy.markDeleting(next);
    WriteResult res;
    res.object = next;
    if (o.dryRun || next == obj) return res;
    auto rv = written(write(r, key, next, cur->revision, false));
    if (!rv) {
      if (rv.error().code == store::Errc::Conflict) {
        consistentRead();
        continue;
      }
      return Unexpected(storeError(r, name, rv.error()));
    }
    res.object["metadata"]["resourceVersion"] = std::to_string(*rv);
    return res;
  }
  return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
}

Expected<void, ApiError> StorageImpl::admitConnect(const ResourceInfo& r, const std::string& ns,
                                                   const std::string& name,
                                                   const std::string& subresource,
                                                   const Json& options) {
  Admission::Request admit{r, subresource, "CONNECT", ns, name, nullptr, false};
  return admission_.review(admit, options);
}

Expected<std::vector<ObjectPtr>, ApiError> StorageImpl::removeCollection(const ResourceInfo& r,
                                                                         const std::string& ns,
                                                                         const ListOptions& list,
                                                                         const DeleteOptions& o) {
  auto items = this->list(r, ns, list);
  if (!items) return Unexpected(items.error());
  std::vector<ObjectPtr> out;
  for (const auto& item : items->items) {
    auto res = remove(r, metaString(*item, "namespace"), metaString(*item, "name"), o);
    if (res)
      out.push_back(std::make_shared<Json>(res->object));
    else if (res.error().code() != 404)
      return Unexpected(res.error());
  }
  return out;
}

}  // namespace podium::api
