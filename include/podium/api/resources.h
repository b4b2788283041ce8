#pragma once

// What the API serves: every resource with its group/version/kind, names, scope, subresources
// and schema. Built-in resources are fixed at start-up; custom resources come and go with their
// CustomResourceDefinitions. Readers take an immutable snapshot, so lookups never lock for long.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "podium/api/aggregated.h"
#include "podium/api/schema.h"
#include "podium/common/json.h"

namespace podium::api {

struct PrinterColumn {
  std::string name;
  std::string type = "string";  // string, integer, number, boolean, date
  std::string format;
  std::string description;
  int priority = 0;
  std::string jsonPath;  // custom resources only
};

struct VersionConversion;  // src/api/conversion.h

struct ResourceInfo {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string kind;      // "Deployment"
  std::string listKind;  // "DeploymentList"
  std::string plural;    // "deployments"
  std::string singular;  // "deployment"
  std::vector<std::string> shortNames;
  std::vector<std::string> categories;
  std::vector<std::string> verbs;
  bool namespaced = true;
  bool hasStatus = false;
  bool hasScale = false;
  // Scale subresource paths (built-ins use .spec.replicas / .status.replicas / status.selector).
  std::string specReplicasPath = ".spec.replicas";
  std::string statusReplicasPath = ".status.replicas";
  std::string labelSelectorPath;
  // metadata.generation starts at 1 and goes up on every change outside metadata and status.
  bool tracksGeneration = false;
  bool custom = false;  // served from a CRD
  // The version objects are stored in (custom resources, and built-ins served in an older
  // version too, which then convert through `conversion`).
  std::string storageVersion;
  const VersionConversion* conversion = nullptr;
  std::vector<PrinterColumn> printerColumns;  // custom resources' additionalPrinterColumns
  const schema::Type* schema = nullptr;
  std::shared_ptr<const schema::Registry> schemaOwner;  // keeps CRD schemas alive

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "deployments.apps" / "pods": how Kubernetes names the resource in error messages.
  std::string qualifiedResource() const { return group.empty() ? plural : plural + "." + group; }
  // "Deployment.apps" / "Pod": how Kubernetes names the kind in validation errors.
  std::string qualifiedKind() const { return group.empty() ? kind : kind + "." + group; }
  // Store key prefix of the resource: "/registry/<group|core>/<plural>/".
  std::string keyPrefix() const {
    return "/registry/" + (group.empty() ? std::string("core") : group) + "/" + plural + "/";
  }
  std::string key(const std::string& ns, const std::string& name) const {
    return keyPrefix() + (namespaced ? ns + "/" : "") + name;
  }
};
using ResourcePtr = std::shared_ptr<const ResourceInfo>;

struct GroupInfo {
  std::string name;
  std::vector<std::string> versions;  // preferred first
};

class ResourceSet {
 public:
  ResourcePtr find(const std::string& group, const std::string& version,
                   const std::string& plural) const;
  ResourcePtr findKind(const std::string& group, const std::string& version,
                       const std::string& kind) const;
  // Any served version of group/plural (the storage version for custom resources).
  ResourcePtr findAnyVersion(const std::string& group, const std::string& plural) const;
  const std::vector<ResourcePtr>& all() const { return all_; }
  // Groups in discovery order (core first, then built-in groups, then custom ones).
  const std::vector<GroupInfo>& groups() const { return groups_; }
  std::vector<ResourcePtr> inGroupVersion(const std::string& group,
                                          const std::string& version) const;
  // The aggregated API serving group/version, or null (its group is in groups() too).
  AggregatedApiPtr aggregated(const std::string& group, const std::string& version) const;

  void add(ResourcePtr r);
  void addAggregated(AggregatedApiPtr api);
  void finish();  // computes groups_

 private:
  std::vector<ResourcePtr> all_;
  std::vector<AggregatedApiPtr> aggregated_;
  std::vector<GroupInfo> groups_;
};
using ResourceSetPtr = std::shared_ptr<const ResourceSet>;

class ResourceRegistry {
 public:
  ResourceRegistry();
  ResourceSetPtr snapshot() const;
  // Replaces the custom resources with those served by `crds` (CustomResourceDefinition
  // objects). Invalid CRDs are skipped and reported through `errors` (crd name -> message).
  void setCustomResources(const std::vector<Json>& crds,
                          std::vector<std::pair<std::string, std::string>>* errors);
  // Serves `api`'s group version from now on (replacing one registered for it before).
  void addAggregatedApi(AggregatedApiPtr api);
  // The APIServices' forwarded group versions (replacing the previous set); they take a group
  // version over from an in-process API registered for it.
  void setForwardedApis(std::vector<AggregatedApiPtr> apis);
  // Increments whenever the set of resources changes (discovery and OpenAPI caches key on it).
  uint64_t generation() const;

 private:
  void publish(std::vector<ResourcePtr> custom);  // a new snapshot; mu_ held

  std::vector<ResourcePtr> builtins_;
  mutable std::mutex mu_;  // guards everything below
  std::vector<ResourcePtr> custom_;
  std::vector<AggregatedApiPtr> aggregated_;
  std::vector<AggregatedApiPtr> forwarded_;
  ResourceSetPtr current_;
  uint64_t generation_ = 1;
};

// Builds the resources one CRD serves (one per served version). Errors name the field.
Expected<std::vector<ResourcePtr>, std::string> resourcesFromCrd(const Json& crd);

}  // namespace podium::api
