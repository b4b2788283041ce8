#pragma once

// What the GitOps controller's files share: Argo CD's names, a desired object ("target") as
// rendered from git, and an application's sync settings.

#include <string>
#include <vector>

#include "diff.h"
#include "podium/client/client.h"
#include "podium/common/json.h"

namespace podium::gitops {

using client::Resource;

inline const Resource kApplications{"argoproj.io", "v1alpha1", "applications"};
inline constexpr const char* kTrackingId = "argocd.argoproj.io/tracking-id";
inline constexpr const char* kRefresh = "argocd.argoproj.io/refresh";
// Where Argo CD keeps its repository Secrets and ConfigMaps (and the webhook secret).
inline constexpr const char* kArgoNamespace = "argocd";
inline constexpr const char* kFinalizer = "resources-finalizer.argocd.argoproj.io";
// The names a kustomization file has (what makes a directory a Kustomize source).
inline constexpr const char* kKustomizationFiles[] = {"kustomization.yaml", "kustomization.yml",
                                                      "Kustomization"};

// One object an application's source renders, with where it came from and how it syncs.
struct Target {
  Json obj;
  Resource resource;
  std::string group, version, kind, ns, name;
  std::string file;
  std::string hook;  // PreSync, Sync, PostSync, SyncFail, Skip; "" for a resource
  int wave = 0;      // argocd.argoproj.io/sync-wave
  std::vector<const IgnoreRule*> ignore;  // the app's ignoreDifferences rules that select it
  std::string key() const { return group + "/" + kind + "/" + ns + "/" + name; }
  // argocd.argoproj.io/hook-delete-policy (BeforeHookCreation by default).
  std::string deletePolicy() const;
};

// What a source renders to, shared read-only (a refresh of an unchanged app copies none of it).
using TargetList = std::shared_ptr<const std::vector<Target>>;

// Whether a sync option ("Key=value") is set in a list of them (spec.syncPolicy.syncOptions,
// an operation's syncOptions) or in an object's argocd.argoproj.io/sync-options annotation.
bool optionSet(const Json& options, const std::string& option);
bool annotatedOption(const Json& obj, const std::string& option);

// How an app syncs: its sync options (with an operation's) and ignoreDifferences.
struct SyncSettings {
  Json options = Json::array();
  std::vector<IgnoreRule> ignore;
  bool has(const Target* t, const std::string& option) const {
    return optionSet(options, option) || (t && annotatedOption(t->obj, option));
  }
};

// Helm's install order, which Argo CD's sync uses within a wave; other kinds come after.
int kindOrder(const std::string& kind);
std::string groupOf(const std::string& apiVersion);
// A Secret's data value, decoded ("" when absent or not base64).
std::string secretValue(const Json& secret, const std::string& key);
// Argo CD's sourceType, by the file the manifests came from.
std::string sourceTypeOf(const std::string& file);
// Whether two repository URLs name the same repository (case, a trailing ".git" or "/", and
// "file://" aside).
bool sameRepository(std::string a, std::string b);

// --- comparing git with the cluster (compare.cc) ---

// Gives each target the rules that select it (pointers into `rules`).
void attachRules(std::vector<Target>& targets, const std::vector<IgnoreRule>& rules);
// Whether the live object is as git says, ignoreDifferences aside (taken out of both sides, as
// Argo CD's normaliser does).
bool inSync(const Target& t, const Json& live);
// What is compared of a target and its live object: git's fields and the live object, each
// without the fields the target's ignoreDifferences rules leave out.
std::pair<Json, Json> normalized(const Target& t, const Json& live);
// What of `t` a sync writes: with RespectIgnoreDifferences, the ignored fields keep their live
// values.
Json toApply(const Target& t, const Json* live, const SyncSettings& settings);

}  // namespace podium::gitops
