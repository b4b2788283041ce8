#include "app.h"

#include "podium/common/strings.h"
#include "repo.h"

namespace podium::gitops {

std::string Target::deletePolicy() const {
  std::string p =
      json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/hook-delete-policy"});
  return p.empty() ? "BeforeHookCreation" : p;
}

bool optionSet(const Json& options, const std::string& option) {
  for (const auto& o : options)
    if (o.is_string() && strings::trim(o.get<std::string>()) == option) return true;
  return false;
}

bool annotatedOption(const Json& obj, const std::string& option) {
  std::string a =
      json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/sync-options"});
  for (const auto& o : strings::split(a, ','))
    if (strings::trim(o) == option) return true;
  return false;
}

int kindOrder(const std::string& kind) {
  static const char* order[] = {"Namespace",
                                "NetworkPolicy",
                                "ResourceQuota",
                                "LimitRange",
                                "PodSecurityPolicy",
                                "PodDisruptionBudget",
                                "ServiceAccount",
                                "Secret",
                                "SecretList",
                                "ConfigMap",
                                "StorageClass",
                                "PersistentVolume",
                                "PersistentVolumeClaim",
                                "CustomResourceDefinition",
                                "ClusterRole",
                                "ClusterRoleList",
                                "ClusterRoleBinding",
                                "ClusterRoleBindingList",
                                "Role",
                                "RoleList",
                                "RoleBinding",
                                "RoleBindingList",
                                "Service",
                                "DaemonSet",
                                "Pod",
                                "ReplicationController",
                                "ReplicaSet",
                                "Deployment",
                                "HorizontalPodAutoscaler",
                                "StatefulSet",
                                "Job",
                                "CronJob",
                                "IngressClass",
                                "Ingress",
                                "APIService"};
  for (int i = 0; i < static_cast<int>(std::size(order)); ++i)
    if (kind == order[i]) return i;
  return static_cast<int>(std::size(order));
}

std::string groupOf(const std::string& apiVersion) {
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

std::string secretValue(const Json& secret, const std::string& key) {
  return strings::base64Decode(json::getString(secret, {"data", key})).value_or("");
}

std::string sourceTypeOf(const std::string& file) {
  std::string base = file.substr(file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1);
  if (base == "Chart.yaml") return "Helm";
  for (const char* k : kKustomizationFiles)
    if (base == k) return "Kustomize";
  return "Directory";
}

bool sameRepository(std::string a, std::string b) {
  auto norm = [](std::string u) {
    u = strings::toLower(remoteFor(u));
    while (!u.empty() && u.back() == '/') u.pop_back();
    if (u.size() > 4 && u.compare(u.size() - 4, 4, ".git") == 0) u.resize(u.size() - 4);
    return u;
  };
  return norm(std::move(a)) == norm(std::move(b));
}

// --- compare ---

namespace {
// The paths a target's ignoreDifferences rules leave out, with the live object's fields of the
// managers they name.
std::vector<FieldPath> ignoredPaths(const Target& t, const Json& live) {
  std::vector<FieldPath> out;
  for (const IgnoreRule* r : t.ignore) {
    out.insert(out.end(), r->paths.begin(), r->paths.end());
    for (const auto& m : r->managers) {
      auto owned = managedPaths(live, m);
      out.insert(out.end(), owned.begin(), owned.end());
    }
  }
  return out;
}
}  // namespace

void attachRules(std::vector<Target>& targets, const std::vector<IgnoreRule>& rules) {
  for (auto& t : targets)
    for (const auto& rule : rules)
      if (rule.matches(t.group, t.kind, t.ns, t.name)) t.ignore.push_back(&rule);
}

bool inSync(const Target& t, const Json& live) {
  if (t.ignore.empty()) return contains(live, comparable(t.obj));  // no copy of live
  auto [want, have] = normalized(t, live);
  return contains(have, want);
}

std::pair<Json, Json> normalized(const Target& t, const Json& live) {
  Json want = comparable(t.obj), have = live;
  for (const auto& p : ignoredPaths(t, live)) {
    removePath(want, p);
    removePath(have, p);
  }
  return {std::move(want), std::move(have)};
}

Json toApply(const Target& t, const Json* live, const SyncSettings& settings) {
  if (!live || t.ignore.empty() || !settings.has(&t, "RespectIgnoreDifferences=true")) return t.obj;
  Json out = t.obj;
  for (const auto& p : ignoredPaths(t, *live)) keepLive(out, *live, p);
  return out;
}

}  // namespace podium::gitops
