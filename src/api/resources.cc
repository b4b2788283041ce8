#include "podium/api/resources.h"

#include "conversion.h"

#include <algorithm>
#include <map>

namespace podium::api {
namespace {

const std::vector<std::string> kStandardVerbs = {"create", "delete", "deletecollection", "get",
                                                 "list",   "patch",  "update",           "watch"};

struct Builtin {
  const char* group;
  const char* version;
  const char* kind;
  const char* plural;
  const char* schemaType;
  bool namespaced;
  std::vector<std::string> shortNames;
  std::vector<std::string> categories;
  bool status;
  bool scale;
  bool generation;
};

// Names, scope and subresources as kube-apiserver 1.32 reports them in discovery.
const std::vector<Builtin>& builtinTable() {
  // clang-format off
  static const std::vector<Builtin> table = {
      // group, version, kind, plural, schema type, namespaced, short names, categories, status, scale, generation
      {"", "v1", "Namespace", "namespaces", "core.v1.Namespace", false, {"ns"}, {}, true, false, false},
      {"", "v1", "Pod", "pods", "core.v1.Pod", true, {"po"}, {"all"}, true, false, false},
      {"", "v1", "Service", "services", "core.v1.Service", true, {"svc"}, {"all"}, true, false, false},
      {"", "v1", "Endpoints", "endpoints", "core.v1.Endpoints", true, {"ep"}, {}, false, false, false},
      {"", "v1", "ConfigMap", "configmaps", "core.v1.ConfigMap", true, {"cm"}, {}, false, false, false},
      {"", "v1", "Secret", "secrets", "core.v1.Secret", true, {}, {}, false, false, false},
      {"", "v1", "ServiceAccount", "serviceaccounts", "core.v1.ServiceAccount", true, {"sa"}, {}, false, false, false},
      {"", "v1", "Event", "events", "core.v1.Event", true, {"ev"}, {}, false, false, false},
      {"", "v1", "Node", "nodes", "core.v1.Node", false, {"no"}, {}, true, false, false},
      {"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "core.v1.PersistentVolumeClaim", true, {"pvc"}, {}, true, false, false},
      {"", "v1", "PersistentVolume", "persistentvolumes", "core.v1.PersistentVolume", false, {"pv"}, {}, true, false, false},
      {"", "v1", "ReplicationController", "replicationcontrollers", "core.v1.ReplicationController", true, {"rc"}, {"all"}, true, true, true},
      {"", "v1", "PodTemplate", "podtemplates", "core.v1.PodTemplate", true, {}, {}, false, false, false},
      {"apps", "v1", "Deployment", "deployments", "apps.v1.Deployment", true, {"deploy"}, {"all"}, true, true, true},
      {"apps", "v1", "ReplicaSet", "replicasets", "apps.v1.ReplicaSet", true, {"rs"}, {"all"}, true, true, true},
      {"apps", "v1", "StatefulSet", "statefulsets", "apps.v1.StatefulSet", true, {"sts"}, {"all"}, true, true, true},
      {"apps", "v1", "DaemonSet", "daemonsets", "apps.v1.DaemonSet", true, {"ds"}, {"all"}, true, false, true},
      {"apps", "v1", "ControllerRevision", "controllerrevisions", "apps.v1.ControllerRevision", true, {}, {}, false, false, false},
      {"batch", "v1", "Job", "jobs", "batch.v1.Job", true, {}, {"all"}, true, false, true},
      {"batch", "v1", "CronJob", "cronjobs", "batch.v1.CronJob", true, {"cj"}, {"all"}, true, false, true},
      {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "discovery.v1.EndpointSlice", true, {}, {}, false, false, true},
      {"networking.k8s.io", "v1", "Ingress", "ingresses", "networking.v1.Ingress", true, {"ing"}, {}, true, false, true},
      {"networking.k8s.io", "v1", "IngressClass", "ingressclasses", "networking.v1.IngressClass", false, {}, {}, false, false, true},
      {"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networking.v1.NetworkPolicy", true, {"netpol"}, {}, false, false, true},
      {"storage.k8s.io", "v1", "StorageClass", "storageclasses", "storage.v1.StorageClass", false, {"sc"}, {}, false, false, false},
      {"coordination.k8s.io", "v1", "Lease", "leases", "coordination.v1.Lease", true, {}, {}, false, false, false},
      {"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling.v2.HorizontalPodAutoscaler", true, {"hpa"}, {"all"}, true, false, true},
      {"autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling.v1.HorizontalPodAutoscaler", true, {"hpa"}, {"all"}, true, false, true},
      {"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "policy.v1.PodDisruptionBudget", true, {"pdb"}, {}, true, false, true},
      {"rbac.authorization.k8s.io", "v1", "Role", "roles", "rbac.v1.Role", true, {}, {}, false, false, false},
      {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "rbac.v1.ClusterRole", false, {}, {}, false, false, false},
      {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rbac.v1.RoleBinding", true, {}, {}, false, false, false},
      {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "rbac.v1.ClusterRoleBinding", false, {}, {}, false, false, false},
      {"admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", "admissionregistration.v1.ValidatingWebhookConfiguration", false, {}, {"api-extensions"}, false, false, true},
      {"admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", "admissionregistration.v1.MutatingWebhookConfiguration", false, {}, {"api-extensions"}, false, false, true},
      {"apiregistration.k8s.io", "v1", "APIService", "apiservices", "apiregistration.v1.APIService", false, {}, {"api-extensions"}, true, false, false},
      {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "apiextensions.v1.CustomResourceDefinition", false, {"crd", "crds"}, {"api-extensions"}, true, false, true},
  };
  // clang-format on
  return table;
}

const std::vector<std::string> kBuiltinGroupOrder = {"",
                                                     "apps",
                                                     "batch",
                                                     "autoscaling",
                                                     "policy",
                                                     "networking.k8s.io",
                                                     "discovery.k8s.io",
                                                     "storage.k8s.io",
                                                     "coordination.k8s.io",
                                                     "rbac.authorization.k8s.io",
                                                     "admissionregistration.k8s.io",
                                                     "apiregistration.k8s.io",
                                                     "apiextensions.k8s.io"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Kubernetes' version priority: GA > beta > alpha, higher numbers first; others sorted by name.
int versionRank(const std::string& v, int* major, int* minor) {
  *major = 0;
  *minor = 0;
  if (v.size() < 2 || v[0] != 'v' || !isdigit(static_cast<unsigned char>(v[1]))) return 3;
  size_t i = 1;
  while (i < v.size() && isdigit(static_cast<unsigned char>(v[i])))
    *major = *major * 10 + (v[i++] - '0');
  if (i == v.size()) return 0;
  int rank = v.compare(i, 4, "beta") == 0 ? 1 : v.compare(i, 5, "alpha") == 0 ? 2 : 3;
  if (rank == 3) return 3;
  i += rank == 1 ? 4 : 5;
  while (i < v.size() && isdigit(static_cast<unsigned char>(v[i])))
    *minor = *minor * 10 + (v[i++] - '0');
  return rank;
}

bool versionLess(const std::string& a, const std::string& b) {
  int am, an, bm, bn;
  int ar = versionRank(a, &am, &an), br = versionRank(b, &bm, &bn);
  if (ar != br) return ar < br;
  if (ar == 3) return a < b;
  if (am != bm) return am > bm;
  return an > bn;
}

}  // namespace

ResourcePtr ResourceSet::find(const std::string& group, const std::string& version,
                              const std::string& plural) const {
  for (const auto& r : all_)
    if (r->group == group && r->version == version && r->plural == plural) return r;
  return nullptr;
}

ResourcePtr ResourceSet::findKind(const std::string& group, const std::string& version,
                                  const std::string& kind) const {
  for (const auto& r : all_)
    if (r->group == group && r->version == version && r->kind == kind) return r;
  return nullptr;
}

ResourcePtr ResourceSet::findAnyVersion(const std::string& group, const std::string& plural) const {
  ResourcePtr any;
  for (const auto& r : all_) {
    if (r->group != group || r->plural != plural) continue;
    if (r->storageVersion.empty() || r->version == r->storageVersion) return r;
    if (!any) any = r;
  }
  return any;
}

std::vector<ResourcePtr> ResourceSet::inGroupVersion(const std::string& group,
                                                     const std::string& version) const {
  std::vector<ResourcePtr> out;
  for (const auto& r : all_)
    if (r->group == group && r->version == version) out.push_back(r);
  return out;
}

AggregatedApiPtr ResourceSet::aggregated(const std::string& group,
                                         const std::string& version) const {
  for (const auto& a : aggregated_)
    if (a->group() == group && a->version() == version) return a;
  return nullptr;
}

void ResourceSet::add(ResourcePtr r) { all_.push_back(std::move(r)); }

void ResourceSet::addAggregated(AggregatedApiPtr api) { aggregated_.push_back(std::move(api)); }

void ResourceSet::finish() {
  std::map<std::string, std::vector<std::string>> versions;
  std::vector<std::string> order;
  auto note = [&](const std::string& group, const std::string& version) {
    auto& vs = versions[group];
    if (vs.empty()) order.push_back(group);
    if (std::find(vs.begin(), vs.end(), version) == vs.end()) vs.push_back(version);
  };
  for (const auto& r : all_) note(r->group, r->version);
  for (const auto& a : aggregated_) note(a->group(), a->version());
  std::stable_sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
    auto ia = std::find(kBuiltinGroupOrder.begin(), kBuiltinGroupOrder.end(), a);
    auto ib = std::find(kBuiltinGroupOrder.begin(), kBuiltinGroupOrder.end(), b);
    if (ia != ib) return ia < ib;
    return ia == kBuiltinGroupOrder.end() ? a < b : false;
  });
  groups_.clear();
  for (const auto& g : order) {
    auto vs = versions[g];
    std::sort(vs.begin(), vs.end(), versionLess);
    groups_.push_back(GroupInfo{g, vs});
  }
}

ResourceRegistry::ResourceRegistry() {
  const auto& types = schema::builtin();
  for (const auto& b : builtinTable()) {
    auto r = std::make_shared<ResourceInfo>();
    r->group = b.group;
    r->version = b.version;
    r->kind = b.kind;
    r->listKind = std::string(b.kind) + "List";
    r->plural = b.plural;
    r->singular = lower(b.kind);
    r->shortNames = b.shortNames;
    r->categories = b.categories;
    r->verbs = kStandardVerbs;
    r->namespaced = b.namespaced;
    r->hasStatus = b.status;
    r->hasScale = b.scale;
    r->tracksGeneration = b.generation;
    r->schema = types.find(b.schemaType);
    if (r->plural == "namespaces")
      r->verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
    if (r->group == "autoscaling" && r->version == "v1") {
      r->storageVersion = "v2";
      r->conversion = &kHpaV1Conversion;
    }
    builtins_.push_back(r);
  }
  publish({});
}

ResourceSetPtr ResourceRegistry::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t ResourceRegistry::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

void ResourceRegistry::setCustomResources(
    const std::vector<Json>& crds, std::vector<std::pair<std::string, std::string>>* errors) {
  std::vector<ResourcePtr> custom;
  auto served = [&](const ResourceInfo& r) {
    auto same = [&](const ResourcePtr& o) {
      return o->group == r.group && o->version == r.version && o->plural == r.plural;
    };
    return std::any_of(builtins_.begin(), builtins_.end(), same) ||
           std::any_of(custom.begin(), custom.end(), same);
  };
  for (const auto& crd : crds) {
    auto rs = resourcesFromCrd(crd);
    if (!rs) {
      if (errors) errors->emplace_back(json::getString(crd, {"metadata", "name"}), rs.error());
      continue;
    }
    for (auto& r : *rs) {
      if (served(*r)) {
        if (errors)
          errors->emplace_back(
              json::getString(crd, {"metadata", "name"}),
              "resource " + r->plural + "." + r->group + "/" + r->version + " is already served");
        continue;
      }
      custom.push_back(r);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  publish(std::move(custom));
}

void ResourceRegistry::addAggregatedApi(AggregatedApiPtr api) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(aggregated_, [&](const AggregatedApiPtr& a) {
    return a->group() == api->group() && a->version() == api->version();
  });
  aggregated_.push_back(std::move(api));
  publish(custom_);
}

void ResourceRegistry::setForwardedApis(std::vector<AggregatedApiPtr> apis) {
  std::lock_guard<std::mutex> lock(mu_);
  forwarded_ = std::move(apis);
  publish(custom_);
}

void ResourceRegistry::publish(std::vector<ResourcePtr> custom) {
  auto set = std::make_shared<ResourceSet>();
  for (const auto& r : builtins_) set->add(r);
  for (const auto& r : custom) set->add(r);
  for (const auto& a : forwarded_) set->addAggregated(a);  // first: they win the lookup
  for (const auto& a : aggregated_)
    if (std::none_of(forwarded_.begin(), forwarded_.end(), [&](const AggregatedApiPtr& f) {
          return f->group() == a->group() && f->version() == a->version();
        }))
      set->addAggregated(a);
  set->finish();
  custom_ = std::move(custom);
  current_ = set;
  ++generation_;
}

Expected<std::vector<ResourcePtr>, std::string> resourcesFromCrd(const Json& crd) {
  const Json* spec = json::find(crd, {"spec"});
  if (!spec || !spec->is_object()) return Unexpected(std::string("spec: Required value"));
  std::string group = json::getString(*spec, {"group"});
  std::string scope = json::getString(*spec, {"scope"});
  const Json* names = json::find(*spec, {"names"});
  if (group.empty()) return Unexpected(std::string("spec.group: Required value"));
  if (!names || !names->is_object()) return Unexpected(std::string("spec.names: Required value"));
  std::string plural = json::getString(*names, {"plural"});
  std::string kind = json::getString(*names, {"kind"});
  if (plural.empty()) return Unexpected(std::string("spec.names.plural: Required value"));
  if (kind.empty()) return Unexpected(std::string("spec.names.kind: Required value"));
  const Json* versions = json::find(*spec, {"versions"});
  if (!versions || !versions->is_array() || versions->empty())
    return Unexpected(std::string("spec.versions: Required value"));
  std::string storage;
  for (const auto& v : *versions)
    if (json::boolean(v, "storage", false)) storage = json::str(v, "name", "");
  if (storage.empty())
    return Unexpected(std::string(
        "spec.versions: Invalid value: must have exactly one version marked as storage version"));
  std::vector<ResourcePtr> out;
  for (size_t i = 0; i < versions->size(); ++i) {
    const Json& v = (*versions)[i];
    if (!json::boolean(v, "served", false)) continue;
    auto r = std::make_shared<ResourceInfo>();
    r->group = group;
    r->version = json::str(v, "name", "");
    r->kind = kind;
    r->listKind = json::str(*names, "listKind", kind + "List");
    r->plural = plural;
    r->singular = json::str(*names, "singular", lower(kind));
    if (auto sn = names->find("shortNames"); sn != names->end() && sn->is_array())
      r->shortNames = sn->get<std::vector<std::string>>();
    if (auto c = names->find("categories"); c != names->end() && c->is_array())
      r->categories = c->get<std::vector<std::string>>();
    r->verbs = kStandardVerbs;
    r->namespaced = scope != "Cluster";
    r->custom = true;
    r->tracksGeneration = true;
    r->storageVersion = storage;
    if (const Json* sub = json::find(v, {"subresources"}); sub && sub->is_object()) {
      r->hasStatus = sub->contains("status");
      if (const Json* sc = json::find(*sub, {"scale"}); sc && sc->is_object()) {
        r->hasScale = true;
        r->specReplicasPath = json::str(*sc, "specReplicasPath", ".spec.replicas");
        r->statusReplicasPath = json::str(*sc, "statusReplicasPath", ".status.replicas");
        if (sc->contains("labelSelectorPath") && (*sc)["labelSelectorPath"].is_string())
          r->labelSelectorPath = (*sc)["labelSelectorPath"].get<std::string>();
      }
    }
    if (const Json* cols = json::find(v, {"additionalPrinterColumns"}); cols && cols->is_array()) {
      for (const auto& c : *cols) {
        PrinterColumn pc;
        pc.name = json::str(c, "name", "");
        pc.type = json::str(c, "type", "string");
        pc.format = json::str(c, "format", "");
        pc.description = json::str(c, "description", "");
        pc.priority = json::integer(c, "priority", 0);
        pc.jsonPath = json::str(c, "jsonPath", "");
        r->printerColumns.push_back(pc);
      }
    }
    Json openapi = Json::object();
    if (const Json* s = json::find(v, {"schema", "openAPIV3Schema"}); s && s->is_object())
      openapi = *s;
    else
      openapi = Json{{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
    auto sch = schema::crdSchema(group + "." + r->version + "." + kind, openapi);
    if (!sch)
      return Unexpected("spec.versions[" + std::to_string(i) +
                        "].schema.openAPIV3Schema: " + sch.error());
    r->schema = sch->root;
    r->schemaOwner = sch->registry;
    out.push_back(r);
  }
  return out;
}

}  // namespace podium::api
