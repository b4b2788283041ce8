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
    auto ls = LabelSelector::fromObject(*sel, false);
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
