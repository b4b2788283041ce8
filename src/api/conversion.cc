#include "conversion.h"

#include "patch.h"

namespace podium::api {

namespace {

constexpr const char* kMetricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics";
constexpr const char* kBehaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior";
constexpr const char* kConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions";
constexpr const char* kCurrentAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics";

bool isCpuUtilization(const Json& m, const char* field) {
  return json::str(m, "type") == "Resource" && json::getString(m, {"resource", "name"}) == "cpu" &&
         json::find(m, {"resource", field}) != nullptr;
}

void annotate(Json& obj, const char* key, const Json& value) {
  if (value.is_null() || (value.is_array() && value.empty())) return;
  obj["metadata"]["annotations"][key] = json::dump(value);
}

// The annotation's JSON, removed from the object (null if absent or unreadable).
Json takeAnnotation(Json& obj, const char* key) {
  if (!json::find(obj, {"metadata", "annotations", key})) return nullptr;
  Json& annotations = obj["metadata"]["annotations"];
  auto parsed = json::parse(json::str(annotations, key));
  annotations.erase(key);
  if (annotations.empty()) obj["metadata"].erase("annotations");
  return parsed ? parsed->value : Json();
}

// The fields both versions spell the same way, copied where present.
void copyFields(const Json& from, Json& to, std::initializer_list<const char*> fields) {
  for (const char* f : fields)
    if (from.contains(f)) to[f] = from[f];
}

constexpr std::initializer_list<const char*> kSpecFields = {"scaleTargetRef", "minReplicas",
                                                            "maxReplicas"};
constexpr std::initializer_list<const char*> kStatusFields = {"observedGeneration", "lastScaleTime",
                                                              "currentReplicas", "desiredReplicas"};

Json hpaFromV2(const Json& v2) {
  Json out = {{"apiVersion", "autoscaling/v1"},
              {"kind", "HorizontalPodAutoscaler"},
              {"metadata", v2.contains("metadata") ? v2["metadata"] : Json::object()}};
  const Json& spec = json::at(v2, {"spec"});
  Json s = Json::object();
  copyFields(spec, s, kSpecFields);
  Json others = Json::array();
  for (const auto& m : json::at(spec, {"metrics"}).is_array() ? spec["metrics"] : Json::array()) {
    if (isCpuUtilization(m, "target") &&
        json::getString(m, {"resource", "target", "type"}) == "Utilization" &&
        !s.contains("targetCPUUtilizationPercentage"))
      s["targetCPUUtilizationPercentage"] =
          json::at(m, {"resource", "target", "averageUtilization"});
    else
      others.push_back(m);
  }
  out["spec"] = s;
  annotate(out, kMetricsAnnotation, others);
  if (spec.contains("behavior")) annotate(out, kBehaviorAnnotation, spec["behavior"]);
  const Json& status = json::at(v2, {"status"});
  if (status.is_object()) {
    Json st = Json::object();
    copyFields(status, st, kStatusFields);
    Json current = Json::array();
    for (const auto& m : json::at(status, {"currentMetrics"}).is_array() ? status["currentMetrics"]
                                                                         : Json::array()) {
      const Json* u = json::find(m, {"resource", "current", "averageUtilization"});
      if (isCpuUtilization(m, "current") && u && !st.contains("currentCPUUtilizationPercentage"))
        st["currentCPUUtilizationPercentage"] = *u;
      else
        current.push_back(m);
    }
    out["status"] = st;
    annotate(out, kConditionsAnnotation, json::at(status, {"conditions"}));
    annotate(out, kCurrentAnnotation, current);
  }
  return out;
}

Json hpaToV2(const Json& v1) {
  Json in = v1;
  Json metrics = takeAnnotation(in, kMetricsAnnotation);
  Json behavior = takeAnnotation(in, kBehaviorAnnotation);
  Json conditions = takeAnnotation(in, kConditionsAnnotation);
  Json current = takeAnnotation(in, kCurrentAnnotation);
  Json out = {{"apiVersion", "autoscaling/v2"},
              {"kind", "HorizontalPodAutoscaler"},
              {"metadata", in.contains("metadata") ? in["metadata"] : Json::object()}};
  const Json& spec = json::at(in, {"spec"});
  Json s = Json::object();
  copyFields(spec, s, kSpecFields);
  Json all = Json::array();
  if (spec.contains("targetCPUUtilizationPercentage"))
    all.push_back({{"type", "Resource"},
                   {"resource",
                    {{"name", "cpu"},
                     {"target",
                      {{"type", "Utilization"},
                       {"averageUtilization", spec["targetCPUUtilizationPercentage"]}}}}}});
  if (metrics.is_array())
    for (const auto& m : metrics) all.push_back(m);
  if (!all.empty()) s["metrics"] = all;
  if (behavior.is_object()) s["behavior"] = behavior;
  out["spec"] = s;
  const Json& status = json::at(in, {"status"});
  if (status.is_object()) {
    Json st = Json::object();
    copyFields(status, st, kStatusFields);
    Json cm = Json::array();
    if (status.contains("currentCPUUtilizationPercentage"))
      cm.push_back(
          {{"type", "Resource"},
           {"resource",
            {{"name", "cpu"},
             {"current", {{"averageUtilization", status["currentCPUUtilizationPercentage"]}}}}}});
    if (current.is_array())
      for (const auto& m : current) cm.push_back(m);
    if (!cm.empty()) st["currentMetrics"] = cm;
    if (conditions.is_array()) st["conditions"] = conditions;
    out["status"] = st;
  }
  return out;
}

class ConvertingStorage : public Storage {
 public:
  explicit ConvertingStorage(StoragePtr inner) : inner_(std::move(inner)) {}

  Expected<ObjectPtr, ApiError> get(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name) override {
    if (!r.conversion) return inner_->get(r, ns, name);
    auto s = stored(r);
    auto got = inner_->get(*s, ns, name);
    if (!got) return got;
    return served(r, *got);
  }

  Expected<ListResult, ApiError> list(const ResourceInfo& r, const std::string& ns,
                                      const ListOptions& options) override {
    if (!r.conversion) return inner_->list(r, ns, options);
    auto out = inner_->list(*stored(r), ns, options);
    if (out)
      for (auto& item : out->items) item = served(r, item);
    return out;
  }

  Expected<WatchHandle, ApiError> watch(const ResourceInfo& r, const std::string& ns,
                                        const ListOptions& options,
                                        bool sendInitialEvents) override {
    if (!r.conversion) return inner_->watch(r, ns, options, sendInitialEvents);
    auto h = inner_->watch(*stored(r), ns, options, sendInitialEvents);
    if (h) {
      auto inner = h->convert;
      auto info = std::make_shared<ResourceInfo>(r);
      h->convert = [inner, info](const ObjectPtr& o) {
        return served(*info, inner ? inner(o) : o);
      };
    }
    return h;
  }
  void stopWatch(const WatchHandle& handle) override { inner_->stopWatch(handle); }

  Expected<WriteResult, ApiError> create(const ResourceInfo& r, const std::string& ns, Json obj,
                                         const WriteOptions& o) override {
    if (!r.conversion) return inner_->create(r, ns, std::move(obj), o);
    if (auto bad = checkVersion(r, obj); !bad) return Unexpected(bad.error());
    return servedResult(r, inner_->create(*stored(r), ns, r.conversion->toStorage(obj), o));
  }

  Expected<WriteResult, ApiError> update(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, Json obj,
                                         const WriteOptions& o) override {
    if (!r.conversion) return inner_->update(r, ns, name, std::move(obj), o);
    if (auto bad = checkVersion(r, obj); !bad) return Unexpected(bad.error());
    return servedResult(r, inner_->update(*stored(r), ns, name, r.conversion->toStorage(obj), o));
  }

  // A patch is applied to the object as the served version shows it, then written as an
  // update with the resourceVersion it was applied to (again on a conflict it did not ask for).
  Expected<WriteResult, ApiError> patch(const ResourceInfo& r, const std::string& ns,
                                        const std::string& name, PatchType type,
                                        const std::string& body, const WriteOptions& o) override {
    if (!r.conversion) return inner_->patch(r, ns, name, type, body, o);
    if (type == PatchType::Apply)
      return Unexpected(ApiError::unsupportedMediaType(
          "server-side apply of " + r.qualifiedResource() + "/" + r.version +
          " is not served: apply it as " + r.group + "/" + r.storageVersion));
    for (int attempt = 0;; ++attempt) {
      auto cur = get(r, ns, name);
      if (!cur) return Unexpected(cur.error());
      Expected<Json, ApiError> patched = Unexpected(ApiError::internal("unreachable"));
      if (type == PatchType::JsonPatch)
        patched = applyJsonPatch(**cur, body);
      else if (type == PatchType::MergePatch)
        patched = applyMergePatch(**cur, body);
      else
        patched = applyStrategicMergePatch(**cur, body, r.schema);
      if (!patched) return Unexpected(patched.error());
      if (!patched->is_object())
        return Unexpected(
            ApiError(422, "Invalid", "the patch produced a value that is not an object"));
      std::string asked = json::getString(*patched, {"metadata", "resourceVersion"});
      std::string had = json::getString(**cur, {"metadata", "resourceVersion"});
      if (asked.empty()) (*patched)["metadata"]["resourceVersion"] = had;
      auto written = update(r, ns, name, std::move(*patched), o);
      // A conflict the patch did not ask for (a write between our read and ours): again.
      if (written || written.error().code() != 409 || !asked.empty() || attempt >= 4)
        return written;
    }
  }

  Expected<WriteResult, ApiError> remove(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, const DeleteOptions& o) override {
    if (!r.conversion) return inner_->remove(r, ns, name, o);
    return servedResult(r, inner_->remove(*stored(r), ns, name, o));
  }

  Expected<std::vector<ObjectPtr>, ApiError> removeCollection(const ResourceInfo& r,
                                                              const std::string& ns,
                                                              const ListOptions& list,
                                                              const DeleteOptions& o) override {
    if (!r.conversion) return inner_->removeCollection(r, ns, list, o);
    auto out = inner_->removeCollection(*stored(r), ns, list, o);
    if (out)
      for (auto& item : *out) item = served(r, item);
    return out;
  }

  Expected<WriteResult, ApiError> bind(const std::string& ns, const std::string& pod,
                                       const std::string& uid, const std::string& node,
                                       const WriteOptions& o) override {
    return inner_->bind(ns, pod, uid, node, o);
  }
  Expected<void, ApiError> admitConnect(const ResourceInfo& r, const std::string& ns,
                                        const std::string& name, const std::string& subresource,
                                        const Json& options) override {
    return inner_->admitConnect(r, ns, name, subresource, options);
  }
  Expected<WriteResult, ApiError> evict(const std::string& ns, const std::string& pod,
                                        const Json& eviction) override {
    return inner_->evict(ns, pod, eviction);
  }
  void setCertificateIssuer(CertificateIssuer issuer) override {
    inner_->setCertificateIssuer(std::move(issuer));
  }
  Expected<Json, ApiError> issueCertificate(const std::string& ns, const std::string& sa,
                                            const Json& request,
                                            const std::string& callerNode) override {
    return inner_->issueCertificate(ns, sa, request, callerNode);
  }
  Expected<Json, ApiError> getScale(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name) override {
    return inner_->getScale(r, ns, name);
  }
  Expected<WriteResult, ApiError> updateScale(const ResourceInfo& r, const std::string& ns,
                                              const std::string& name, const Json& scale,
                                              const WriteOptions& o) override {
    return inner_->updateScale(r, ns, name, scale, o);
  }
  Expected<WriteResult, ApiError> patchScale(const ResourceInfo& r, const std::string& ns,
                                             const std::string& name, PatchType type,
                                             const std::string& body,
                                             const WriteOptions& o) override {
    return inner_->patchScale(r, ns, name, type, body, o);
  }
  ObjectPtr toVersion(const ResourceInfo& r, const ObjectPtr& obj) const override {
    if (!r.conversion) return inner_->toVersion(r, obj);
    return served(r, obj);
  }
  ResourceRegistry& registry() override { return inner_->registry(); }

 private:
  ResourcePtr stored(const ResourceInfo& r) {
    auto s = registry().snapshot()->find(r.group, r.storageVersion, r.plural);
    return s ? s : std::make_shared<ResourceInfo>(r);  // the registry always serves both
  }
  static ObjectPtr served(const ResourceInfo& r, const ObjectPtr& obj) {
    if (!obj || json::str(*obj, "apiVersion") == r.apiVersion()) return obj;
    return std::make_shared<const Json>(r.conversion->fromStorage(*obj));
  }
  static Expected<WriteResult, ApiError> servedResult(const ResourceInfo& r,
                                                      Expected<WriteResult, ApiError> res) {
    if (res) res->object = r.conversion->fromStorage(res->object);
    return res;
  }
  static Expected<void, ApiError> checkVersion(const ResourceInfo& r, const Json& obj) {
    std::string v = json::str(obj, "apiVersion");
    if (!v.empty() && v != r.apiVersion())
      return Unexpected(ApiError::badRequest("the API version in the data (" + v +
                                             ") does not match the expected API version (" +
                                             r.apiVersion() + ")"));
    return {};
  }

  StoragePtr inner_;
};

}  // namespace

const VersionConversion kHpaV1Conversion = {hpaFromV2, hpaToV2};

StoragePtr withConversions(StoragePtr inner) {
  return std::make_unique<ConvertingStorage>(std::move(inner));
}

}  // namespace podium::api
