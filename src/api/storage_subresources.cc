// The API storage's subresources: pods/binding, serviceaccounts/certificate (the mesh CA's
// front door) and the autoscaling/v1 scale of any resource that has one.
#include "patch.h"

#include "podium/api/selectors.h"
#include "podium/common/strings.h"
#include "storage_impl.h"

namespace podium::api {

// ----------------------------------------------------------------------------- binding

Expected<Json, ApiError> StorageImpl::issueCertificate(const std::string& ns, const std::string& sa,
                                                       const Json& request,
                                                       const std::string& callerNode) {
  if (!issuer_)
    return Unexpected(ApiError(404, "NotFound", "this server runs no mesh certificate authority"));
  return issuer_(ns, sa, request, callerNode);
}

Expected<WriteResult, ApiError> StorageImpl::bind(const std::string& ns, const std::string& pod,
                                                  const std::string& uid, const std::string& node,
                                                  const WriteOptions& o) {
  auto r = registry_.snapshot()->find("", "v1", "pods");
  if (node.empty())
    return Unexpected(ApiError::invalid("", "Binding", pod, {FieldError::required("target.name")}));
  WriteOptions bo = o;
  bo.subresource = "binding";
  return guaranteedUpdate(*r, ns, pod, bo, false, [&](const Json* cur) -> Expected<Json, ApiError> {
    if (!uid.empty() && metaString(*cur, "uid") != uid)
      return Unexpected(ApiError::conflict("", "pods/binding", pod,
                                           "Precondition failed: UID in precondition: " + uid +
                                               ", UID in object meta: " + metaString(*cur, "uid")));
    std::string bound = json::getString(*cur, {"spec", "nodeName"});
    if (!bound.empty())
      return Unexpected(
          ApiError::conflict("", "pods/binding", pod,
                             "pod " + pod + " is already assigned to node \"" + bound + "\""));
    if (json::find(*cur, {"metadata", "deletionTimestamp"}))
      return Unexpected(ApiError::conflict("", "pods/binding", pod, "pod is being deleted"));
    Json next = *cur;
    next["spec"]["nodeName"] = node;
    Json& conds = next["status"]["conditions"];
    if (!conds.is_array()) conds = Json::array();
    Json scheduled = {{"type", "PodScheduled"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", now()}};
    bool replaced = false;
    for (auto& c : conds)
      if (json::str(c, "type") == "PodScheduled") {
        c = scheduled;
        replaced = true;
      }
    if (!replaced) conds.push_back(scheduled);
    return prepareUpdate(*r, *cur, std::move(next), bo, nullptr, false);
  });
}

// ----------------------------------------------------------------------------- scale

namespace {
Json* pathRef(Json& obj, const std::string& dotted, bool create) {
  Json* cur = &obj;
  for (const auto& part :
       strings::split(dotted.size() && dotted[0] == '.' ? dotted.substr(1) : dotted, '.')) {
    if (!cur->is_object()) return nullptr;
    if (!cur->contains(part)) {
      if (!create) return nullptr;
      (*cur)[part] = Json::object();
    }
    cur = &(*cur)[part];
  }
  return cur;
}
}  // namespace

Expected<Json, ApiError> StorageImpl::getScale(const ResourceInfo& r, const std::string& ns,
                                               const std::string& name) {
  if (!r.hasScale)
    return Unexpected(ApiError::notFound(r.group, r.qualifiedResource() + "/scale", name));
  auto obj = get(r, ns, name);
  if (!obj) return Unexpected(obj.error());
  Json o = **obj;
  Json* spec = pathRef(o, r.specReplicasPath, false);
  Json* status = pathRef(o, r.statusReplicasPath, false);
  std::string selector;
  if (r.custom) {
    if (!r.labelSelectorPath.empty())
      if (Json* s = pathRef(o, r.labelSelectorPath, false); s && s->is_string())
        selector = s->get<std::string>();
  } else if (const Json* sel = json::find(o, {"spec", "selector"})) {
    // A ReplicationController's selector is a plain map of labels.
    auto ls = LabelSelector::fromObject(
        r.plural == "replicationcontrollers" ? Json{{"matchLabels", *sel}} : *sel, false);
    if (ls) selector = ls->str();
  }
  Json m = {{"name", name},
            {"uid", metaString(o, "uid")},
            {"resourceVersion", metaString(o, "resourceVersion")},
            {"creationTimestamp", metaString(o, "creationTimestamp")}};
  if (r.namespaced) m["namespace"] = ns;
  Json scale = {
      {"kind", "Scale"},
      {"apiVersion", "autoscaling/v1"},
      {"metadata", m},
      {"spec", {{"replicas", spec && spec->is_number_integer() ? spec->get<int64_t>() : 0}}},
      {"status",
       {{"replicas", status && status->is_number_integer() ? status->get<int64_t>() : 0}}}};
  if (!selector.empty()) scale["status"]["selector"] = selector;
  return scale;
}

Expected<WriteResult, ApiError> StorageImpl::updateScale(const ResourceInfo& r,
                                                         const std::string& ns,
                                                         const std::string& name, const Json& scale,
                                                         const WriteOptions& o) {
  if (!r.hasScale)
    return Unexpected(ApiError::notFound(r.group, r.qualifiedResource() + "/scale", name));
  const Json* replicas = json::find(scale, {"spec", "replicas"});
  if (!replicas || !replicas->is_number_integer() || replicas->get<int64_t>() < 0)
    return Unexpected(
        ApiError::invalid("autoscaling", "Scale.autoscaling", name,
                          {FieldError::invalid("spec.replicas", replicas ? *replicas : Json(),
                                               "must be greater than or equal to 0")}));
  std::string wantRv = json::getString(scale, {"metadata", "resourceVersion"});
  WriteOptions so = o;
  so.subresource = "scale";
  auto result =
      guaranteedUpdate(r, ns, name, so, false, [&](const Json* cur) -> Expected<Json, ApiError> {
        if (!wantRv.empty() && wantRv != metaString(*cur, "resourceVersion"))
          return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
        Json next = *cur;
        Json* spec = pathRef(next, r.specReplicasPath, true);
        if (!spec) return Unexpected(ApiError::internal("cannot set " + r.specReplicasPath));
        *spec = *replicas;
        return prepareUpdate(r, *cur, std::move(next), so, nullptr, false);
      });
  if (!result) return result;
  auto s = getScale(r, ns, name);
  if (!s) return Unexpected(s.error());
  if (o.dryRun) (*s)["spec"]["replicas"] = *replicas;
  result->object = *s;
  return result;
}

Expected<WriteResult, ApiError> StorageImpl::patchScale(const ResourceInfo& r,
                                                        const std::string& ns,
                                                        const std::string& name, PatchType type,
                                                        const std::string& body,
                                                        const WriteOptions& o) {
  auto current = getScale(r, ns, name);
  if (!current) return Unexpected(current.error());
  Expected<Json, ApiError> patched = Unexpected(ApiError::internal("unreachable"));
  if (type == PatchType::JsonPatch)
    patched = applyJsonPatch(*current, body);
  else if (type == PatchType::MergePatch)
    patched = applyMergePatch(*current, body);
  else if (type == PatchType::StrategicMerge)
    patched =
        applyStrategicMergePatch(*current, body, schema::builtin().find("autoscaling.v1.Scale"));
  else {
    auto cfg = json::parseYaml(body);
    if (!cfg) return Unexpected(ApiError::badRequest(cfg.error()));
    Json merged = *current;
    merged.merge_patch(cfg->value);
    patched = merged;
  }
  if (!patched) return Unexpected(patched.error());
  return updateScale(r, ns, name, *patched, o);
}

}  // namespace podium::api

namespace podium::api {

// ----------------------------------------------------------------------------- eviction

namespace {
bool podReady(const Json& pod) {
  for (const auto& c : json::at(pod, {"status", "conditions"}))
    if (json::str(c, "type") == "Ready") return json::str(c, "status") == "True";
  return false;
}
}  // namespace

Expected<WriteResult, ApiError> StorageImpl::evict(const std::string& ns, const std::string& pod,
                                                   const Json& eviction) {
  auto set = registry_.snapshot();
  auto pods = set->find("", "v1", "pods");
  auto pdbs = set->find("policy", "v1", "poddisruptionbudgets");
  if (!pods || !pdbs) return Unexpected(ApiError::internal("pods or budgets are not served"));
  if (!eviction.is_object() || json::str(eviction, "kind", "Eviction") != "Eviction")
    return Unexpected(ApiError::badRequest("the body must be an Eviction (policy/v1)"));
  std::string named = json::getString(eviction, {"metadata", "name"});
  if (!named.empty() && named != pod)
    return Unexpected(ApiError::badRequest("name in URL does not match name in Eviction object"));
  DeleteOptions d;
  const Json& opts = json::at(eviction, {"deleteOptions"});
  if (opts.contains("gracePeriodSeconds") && opts["gracePeriodSeconds"].is_number_integer())
    d.gracePeriodSeconds = opts["gracePeriodSeconds"].get<int64_t>();
  d.preconditionUid = json::getString(opts, {"preconditions", "uid"});
  for (int attempt = 0; attempt < 8; ++attempt) {
    consistentRead();
    auto cur = cacher_.get(pods->key(ns, pod));
    if (!cur) return Unexpected(ApiError::notFound("", "pods", pod));
    const Json& p = *cur->object;
    std::string phase = json::getString(p, {"status", "phase"});
    bool counts = podReady(p) && phase != "Succeeded" && phase != "Failed" &&
                  !json::find(p, {"metadata", "deletionTimestamp"});
    // The budgets that select this pod; a pod that is not ready disrupts nothing.
    std::vector<ObjectPtr> budgets;
    int64_t rev = 0;
    if (counts)
      for (const auto& b : cacher_.list(pdbs->keyPrefix() + ns + "/", &rev)) {
        auto sel = LabelSelector::fromObject(json::at(*b.object, {"spec", "selector"}));
        if (sel && sel->matches(json::at(p, {"metadata", "labels"}))) budgets.push_back(b.object);
      }
    if (budgets.size() > 1)
      return Unexpected(ApiError::internal(
          "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
          "not support."));
    if (!budgets.empty()) {
      const Json& b = *budgets[0];
      const Json& st = json::at(b, {"status"});
      bool current = json::integer(st, "observedGeneration", -1) >=
                     json::integer(json::at(b, {"metadata"}), "generation", 1);
      if (!current || json::integer(st, "disruptionsAllowed", 0) <= 0)
        return Unexpected(ApiError(
            429, "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            {{"causes",
              {{{"reason", "DisruptionBudget"},
                {"message", "The disruption budget " + json::getString(b, {"metadata", "name"}) +
                                " needs " + std::to_string(json::integer(st, "desiredHealthy")) +
                                " healthy pods and has " +
                                std::to_string(json::integer(st, "currentHealthy")) +
                                " currently"}}}}}));
      // Take a disruption (the disruption controller counts the pod out until it is gone).
      Json next = b;
      next["status"]["disruptionsAllowed"] = json::integer(st, "disruptionsAllowed") - 1;
      next["status"]["disruptedPods"][pod] = now();
      WriteOptions so;
      so.fieldManager = "podium-eviction";
      so.subresource = "status";
      auto taken = update(*pdbs, ns, json::getString(b, {"metadata", "name"}), next, so);
      if (!taken) {
        if (taken.error().code() == 409) continue;  // the budget moved: look again
        return Unexpected(taken.error());
      }
    }
    auto gone = remove(*pods, ns, pod, d);
    if (!gone) return Unexpected(gone.error());
    WriteResult out;
    out.object = successStatus(nullptr);
    return out;
  }
  return Unexpected(ApiError(429, "TooManyRequests",
                             "Cannot evict pod as it would violate the pod's disruption budget."));
}

}  // namespace podium::api
