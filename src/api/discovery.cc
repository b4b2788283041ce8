#include "discovery.h"

#include <map>
#include <set>

#include "podium/common/strings.h"

namespace podium::api {
namespace {

const std::vector<std::string> kSubresourceVerbs = {"get", "patch", "update"};

Json discoveryResource(const ResourceInfo& r) {
  Json res = {{"resource", r.plural},
              {"responseKind", {{"group", r.group}, {"version", r.version}, {"kind", r.kind}}},
              {"scope", r.namespaced ? "Namespaced" : "Cluster"},
              {"singularResource", r.singular},
              {"verbs", r.verbs}};
  if (!r.shortNames.empty()) res["shortNames"] = r.shortNames;
  if (!r.categories.empty()) res["categories"] = r.categories;
  Json subs = Json::array();
  if (r.hasScale)
    subs.push_back(
        {{"subresource", "scale"},
         {"responseKind", {{"group", "autoscaling"}, {"version", "v1"}, {"kind", "Scale"}}},
         {"verbs", kSubresourceVerbs}});
  if (r.hasStatus)
    subs.push_back(
        {{"subresource", "status"},
         {"responseKind", {{"group", r.group}, {"version", r.version}, {"kind", r.kind}}},
         {"verbs", kSubresourceVerbs}});
  if (r.group.empty() && r.plural == "pods") {
    Json pod = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}};
    subs.push_back(
        {{"subresource", "attach"},
         {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "PodAttachOptions"}}},
         {"verbs", {"create", "get"}}});
    subs.push_back({{"subresource", "binding"},
                    {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "Binding"}}},
                    {"verbs", {"create"}}});
    subs.push_back({{"subresource", "ephemeralcontainers"},
                    {"responseKind", pod},
                    {"verbs", {"get", "patch", "update"}}});
    subs.push_back(
        {{"subresource", "eviction"},
         {"responseKind", {{"group", "policy"}, {"version", "v1"}, {"kind", "Eviction"}}},
         {"verbs", {"create"}}});
    subs.push_back(
        {{"subresource", "exec"},
         {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "PodExecOptions"}}},
         {"verbs", {"create", "get"}}});
    subs.push_back({{"subresource", "log"}, {"responseKind", pod}, {"verbs", {"get"}}});
    subs.push_back(
        {{"subresource", "portforward"},
         {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "PodPortForwardOptions"}}},
         {"verbs", {"create", "get"}}});
  }
  if (!subs.empty()) res["subresources"] = subs;
  return res;
}

std::string groupVersion(const std::string& group, const std::string& version) {
  return group.empty() ? version : group + "/" + version;
}

// An aggregated API's resources in the v2 form: "pods/cpu" becomes a subresource of "pods"
// (which is listed without verbs when the API serves no "pods" of its own, as
// kube-aggregator does with an APIService's legacy list).
Json aggregatedApiResources(const AggregatedApi& api) {
  Json out = Json::array();
  std::map<std::string, size_t> index;
  auto kindOf = [&](const std::string& kind) {
    return Json{{"group", api.group()}, {"version", api.version()}, {"kind", kind}};
  };
  for (const auto& r : api.resources()) {
    auto slash = r.name.find('/');
    std::string parent = r.name.substr(0, slash);
    auto it = index.find(parent);
    if (it == index.end()) {
      it = index.emplace(parent, out.size()).first;
      out.push_back({{"resource", parent},
                     {"scope", r.namespaced ? "Namespaced" : "Cluster"},
                     {"singularResource", ""},
                     {"verbs", Json::array()}});
    }
    Json& entry = out[it->second];
    if (slash == std::string::npos) {
      entry["responseKind"] = kindOf(r.kind);
      entry["verbs"] = r.verbs;
      continue;
    }
    if (!entry.contains("subresources")) entry["subresources"] = Json::array();
    entry["subresources"].push_back({{"subresource", r.name.substr(slash + 1)},
                                     {"responseKind", kindOf(r.kind)},
                                     {"verbs", r.verbs}});
  }
  return out;
}

}  // namespace

Json aggregatedDiscovery(const ResourceSet& set, bool core, const std::string& apiVersion) {
  Json items = Json::array();
  for (const auto& g : set.groups()) {
    if (core != g.name.empty()) continue;
    Json versions = Json::array();
    for (const auto& v : g.versions) {
      Json resources = Json::array();
      if (auto api = set.aggregated(g.name, v)) resources = aggregatedApiResources(*api);
      for (const auto& r : set.inGroupVersion(g.name, v))
        resources.push_back(discoveryResource(*r));
      versions.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    items.push_back(
        {{"metadata", {{"name", g.name}, {"creationTimestamp", nullptr}}}, {"versions", versions}});
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", apiVersion},
          {"metadata", Json::object()},
          {"items", items}};
}

Json legacyApiVersions(const std::string& serverAddress) {
  return {{"kind", "APIVersions"},
          {"versions", Json::array({"v1"})},
          {"serverAddressByClientCIDRs",
           Json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", serverAddress}}})}};
}

namespace {
Json groupJson(const GroupInfo& g) {
  Json versions = Json::array();
  for (const auto& v : g.versions)
    versions.push_back({{"groupVersion", groupVersion(g.name, v)}, {"version", v}});
  return {{"name", g.name},
          {"versions", versions},
          {"preferredVersion",
           {{"groupVersion", groupVersion(g.name, g.versions[0])}, {"version", g.versions[0]}}}};
}
}  // namespace

Json legacyGroupList(const ResourceSet& set) {
  Json groups = Json::array();
  for (const auto& g : set.groups())
    if (!g.name.empty()) groups.push_back(groupJson(g));
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

Json legacyGroup(const ResourceSet& set, const std::string& group) {
  for (const auto& g : set.groups())
    if (g.name == group && !group.empty()) {
      Json out = groupJson(g);
      out["kind"] = "APIGroup";
      out["apiVersion"] = "v1";
      return out;
    }
  return nullptr;
}

Json legacyResourceList(const ResourceSet& set, const std::string& group,
                        const std::string& version) {
  if (auto api = set.aggregated(group, version)) {
    Json resources = Json::array();
    for (const auto& r : api->resources())
      resources.push_back({{"name", r.name},
                           {"singularName", ""},
                           {"namespaced", r.namespaced},
                           {"kind", r.kind},
                           {"verbs", r.verbs}});
    return {{"kind", "APIResourceList"},
            {"apiVersion", "v1"},
            {"groupVersion", groupVersion(group, version)},
            {"resources", resources}};
  }
  auto rs = set.inGroupVersion(group, version);
  if (rs.empty()) return nullptr;
  Json resources = Json::array();
  for (const auto& r : rs) {
    Json e = {{"name", r->plural},
              {"singularName", r->singular},
              {"namespaced", r->namespaced},
              {"kind", r->kind},
              {"verbs", r->verbs}};
    if (!r->shortNames.empty()) e["shortNames"] = r->shortNames;
    if (!r->categories.empty()) e["categories"] = r->categories;
    resources.push_back(e);
    if (r->hasScale)
      resources.push_back({{"name", r->plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", r->namespaced},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", kSubresourceVerbs}});
    if (r->group.empty() && r->plural == "pods") {
      for (const char* sub : {"attach", "exec", "portforward"})
        resources.push_back(
            {{"name", std::string("pods/") + sub},
             {"singularName", ""},
             {"namespaced", true},
             {"kind", std::string("Pod") + (sub[0] == 'a'   ? "AttachOptions"
                                            : sub[0] == 'e' ? "ExecOptions"
                                                            : "PortForwardOptions")},
             {"verbs", {"create", "get"}}});
      resources.push_back({{"name", "pods/binding"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", "Binding"},
                           {"verbs", {"create"}}});
      resources.push_back({{"name", "pods/eviction"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "policy"},
                           {"version", "v1"},
                           {"kind", "Eviction"},
                           {"verbs", {"create"}}});
      resources.push_back({{"name", "pods/log"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", "Pod"},
                           {"verbs", {"get"}}});
    }
    if (r->hasStatus)
      resources.push_back({{"name", r->plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", r->namespaced},
                           {"kind", r->kind},
                           {"verbs", kSubresourceVerbs}});
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", groupVersion(group, version)},
          {"resources", resources}};
}

// ----------------------------------------------------------------------------- OpenAPI v3

namespace {

using schema::Kind;
using schema::Type;

std::string definitionName(const std::string& schemaName) {
  // core.v1.Pod -> io.k8s.api.core.v1.Pod, meta.v1.X -> io.k8s.apimachinery.pkg.apis.meta.v1.X
  if (schemaName.rfind("meta.v1.", 0) == 0)
    return "io.k8s.apimachinery.pkg.apis.meta.v1." + schemaName.substr(8);
  if (schemaName.rfind("apiextensions.v1.", 0) == 0)
    return "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1." + schemaName.substr(17);
  size_t dots = std::count(schemaName.begin(), schemaName.end(), '.');
  if (dots == 2) return "io.k8s.api." + schemaName;
  return schemaName;  // custom resources: "group.version.Kind"
}

class SchemaWriter {
 public:
  Json ref(const Type* t) {
    switch (t->kind) {
      case Kind::String:
        return enumOf(t, {{"type", "string"}});
      case Kind::Int32:
        return enumOf(t, {{"type", "integer"}, {"format", "int32"}});
      case Kind::Int64:
        return enumOf(t, {{"type", "integer"}, {"format", "int64"}});
      case Kind::Bool:
        return {{"type", "boolean"}};
      case Kind::Float64:
        return {{"type", "number"}, {"format", "double"}};
      case Kind::Bytes:
        return {{"type", "string"}, {"format", "byte"}};
      case Kind::Quantity:
        return {{"$ref", "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}};
      case Kind::IntOrString:
        return {{"$ref", "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}};
      case Kind::Time:
      case Kind::MicroTime:
        return {{"type", "string"}, {"format", "date-time"}};
      case Kind::Duration:
        return {{"type", "string"}};
      case Kind::Raw:
      case Kind::FieldsV1:
        return {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
      case Kind::List:
        return {{"type", "array"}, {"items", ref(t->elem)}};
      case Kind::Map:
        return {{"type", "object"}, {"additionalProperties", ref(t->elem)}};
      case Kind::Object: {
        std::string name = definitionName(t->name);
        if (!schemas_.contains(name)) {
          schemas_[name] = Json::object();  // placeholder breaks recursion
          schemas_[name] = object(t);
        }
        return {{"$ref", "#/components/schemas/" + name}};
      }
    }
    return Json::object();
  }

  Json object(const Type* t) {
    Json props = Json::object();
    for (const auto* f : t->jsonFields()) {
      Json p = ref(f->type);
      if (p.contains("$ref")) p = {{"allOf", Json::array({p})}};
      if (f->type->kind == Kind::List) {
        if (!f->mergeKey.empty()) {
          p["x-kubernetes-patch-merge-key"] = f->mergeKey;
          p["x-kubernetes-patch-strategy"] = f->retainKeys ? "merge,retainKeys" : "merge";
        } else if (f->mergeSet) {
          p["x-kubernetes-patch-strategy"] = "merge";
        }
        if (f->listType == schema::ListType::Map) {
          p["x-kubernetes-list-type"] = "map";
          p["x-kubernetes-list-map-keys"] = f->listKeys;
        } else if (f->listType == schema::ListType::Set) {
          p["x-kubernetes-list-type"] = "set";
        } else {
          p["x-kubernetes-list-type"] = "atomic";
        }
      } else if (f->retainKeys || f->replace) {
        p["x-kubernetes-patch-strategy"] = f->retainKeys ? "retainKeys" : "replace";
      }
      props[f->json] = p;
    }
    Json out = {{"type", "object"}, {"properties", props}};
    if (!t->required.empty()) out["required"] = t->required;
    if (t->preserveUnknown) out["x-kubernetes-preserve-unknown-fields"] = true;
    if (t->atomic) out["x-kubernetes-map-type"] = "atomic";
    return out;
  }

  Json& schemas() { return schemas_; }

 private:
  Json enumOf(const Type* t, Json base) {
    if (!t->enumValues.empty()) base["enum"] = t->enumValues;
    return base;
  }
  Json schemas_ = Json::object();
};

Json gvk(const ResourceInfo& r) {
  return {{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
}

Json param(const char* name, const char* in, bool required = false) {
  return {{"name", name},
          {"in", in},
          {"required", required},
          {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
}

Json operation(const ResourceInfo& r, const std::string& action, const std::string& id,
               const Json& response, bool hasBody, bool writes) {
  Json params = Json::array();
  if (writes) {
    params.push_back(param("dryRun", "query"));
    params.push_back(param("fieldManager", "query"));
    params.push_back(param("fieldValidation", "query"));
  }
  Json op = {
      {"operationId", id},
      {"parameters", params},
      {"responses",
       {{"200",
         {{"description", "OK"}, {"content", {{"application/json", {{"schema", response}}}}}}},
        {"401", {{"description", "Unauthorized"}}}}},
      {"x-kubernetes-action", action},
      {"x-kubernetes-group-version-kind", gvk(r)}};
  if (action == "patch") op["parameters"].push_back(param("force", "query"));
  if (hasBody) {
    Json content = Json::object();
    if (action == "patch") {
      // kubectl sends strategic merge patches only where the document offers them; custom
      // resources do not support them (upstream answers 415), so they are not offered.
      std::vector<const char*> types = {"application/apply-patch+yaml",
                                        "application/json-patch+json",
                                        "application/merge-patch+json"};
      if (!r.custom) types.push_back("application/strategic-merge-patch+json");
      for (const char* ct : types)
        content[ct] = {
            {"schema",
             {{"$ref", "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}}};
    } else {
      content["*/*"] = {{"schema", response}};
    }
    op["requestBody"] = {{"content", content}, {"required", true}};
  }
  return op;
}

bool parseGvPath(const std::string& path, std::string* group, std::string* version) {
  auto parts = strings::split(path, '/');
  if (parts.size() == 2 && parts[0] == "api") {
    *group = "";
    *version = parts[1];
    return true;
  }
  if (parts.size() == 3 && parts[0] == "apis") {
    *group = parts[1];
    *version = parts[2];
    return true;
  }
  return false;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

Json openApiIndex(const ResourceSet& set) {
  Json paths = Json::object();
  for (const auto& g : set.groups())
    for (const auto& v : g.versions) {
      if (set.aggregated(g.name, v)) continue;  // their servers publish no OpenAPI here
      std::string p = g.name.empty() ? "api/" + v : "apis/" + g.name + "/" + v;
      paths[p] = {{"serverRelativeURL", "/openapi/v3/" + p + "?hash=" + openApiHash(set, p)}};
    }
  return {{"paths", paths}};
}

Json openApiDocument(const ResourceSet& set, const std::string& gvPath) {
  std::string group, version;
  if (!parseGvPath(gvPath, &group, &version)) return nullptr;
  auto resources = set.inGroupVersion(group, version);
  if (resources.empty()) return nullptr;
  SchemaWriter w;
  Json paths = Json::object();
  std::string base = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  for (const auto& r : resources) {
    if (!r->schema) continue;
    Json ref = w.ref(r->schema);
    std::string def = definitionName(r->schema->name);
    Json& s = w.schemas()[def];
    s["x-kubernetes-group-version-kind"] = Json::array({gvk(*r)});
    Json listRef = {{"type", "object"},
                    {"properties",
                     {{"items", {{"type", "array"}, {"items", ref}}},
                      {"apiVersion", {{"type", "string"}}},
                      {"kind", {{"type", "string"}}},
                      {"metadata", {{"type", "object"}}}}}};
    std::string collection = base + (r->namespaced ? "/namespaces/{namespace}/" : "/") + r->plural;
    std::string item = collection + "/{name}";
    std::string K = r->kind;
    std::string scope = r->namespaced ? "Namespaced" : "";
    Json itemOps = {{"get", operation(*r, "get", "read" + scope + K, ref, false, false)},
                    {"put", operation(*r, "put", "replace" + scope + K, ref, true, true)},
                    {"patch", operation(*r, "patch", "patch" + scope + K, ref, true, true)},
                    {"delete", operation(*r, "delete", "delete" + scope + K, ref, false, false)}};
    Json pathParams = Json::array({param("name", "path", true)});
    if (r->namespaced) pathParams.push_back(param("namespace", "path", true));
    itemOps["parameters"] = pathParams;
    paths[item] = itemOps;
    Json collOps = {{"get", operation(*r, "list", "list" + scope + K, listRef, false, false)},
                    {"post", operation(*r, "post", "create" + scope + K, ref, true, true)}};
    if (r->namespaced) collOps["parameters"] = Json::array({param("namespace", "path", true)});
    paths[collection] = collOps;
    if (r->hasStatus) {
      Json st = {{"get", operation(*r, "get", "read" + scope + K + "Status", ref, false, false)},
                 {"put", operation(*r, "put", "replace" + scope + K + "Status", ref, true, true)},
                 {"patch", operation(*r, "patch", "patch" + scope + K + "Status", ref, true, true)},
                 {"parameters", pathParams}};
      paths[item + "/status"] = st;
    }
  }
  w.schemas()["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
      {"oneOf", Json::array({{{"type", "string"}}, {{"type", "number"}}})}};
  w.schemas()["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
      {"type", "string"}, {"format", "int-or-string"}, {"x-kubernetes-int-or-string", true}};
  w.schemas()["io.k8s.apimachinery.pkg.apis.meta.v1.Patch"] = {{"type", "object"}};
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.4"}}},
          {"paths", paths},
          {"components", {{"schemas", w.schemas()}}}};
}

std::string openApiHash(const ResourceSet& set, const std::string& gvPath) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llX",
           static_cast<unsigned long long>(fnv1a(openApiDocument(set, gvPath).dump())));
  return buf;
}

}  // namespace podium::api
