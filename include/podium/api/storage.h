#pragma once

// The API's REST semantics, independent of HTTP: get, list, watch, create, update, patch and
// delete of any resource, with Kubernetes' rules for metadata, resourceVersion preconditions,
// generation, defaulting, validation, field ownership, finalizers and subresources. The HTTP
// handler and the in-process client both call this (and only the api part and the command that
// wires the process see it: every other part speaks through podium/client).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podium/api/cacher.h"
#include "podium/api/patch_type.h"
#include "podium/api/resources.h"
#include "podium/api/status.h"
#include "podium/common/time.h"
#include "podium/store/store.h"

namespace podium::api {

enum class FieldValidation { Ignore, Warn, Strict };

struct WriteOptions {
  bool dryRun = false;
  std::string fieldManager;  // who makes the change (managedFields)
  FieldValidation fieldValidation = FieldValidation::Warn;
  bool force = false;       // apply: take fields owned by others
  std::string subresource;  // "", "status" or "scale"
};

struct WriteResult {
  Json object;
  bool created = false;
  std::vector<std::string> warnings;
};

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 0;
  std::string continueToken;
  std::string resourceVersion;
  std::string resourceVersionMatch;
};

// Signs a WorkloadCertificateRequest for service account `sa` of `ns`.
using CertificateIssuer =
    std::function<Expected<Json, ApiError>(const std::string& ns, const std::string& sa,
                                           const Json& request, const std::string& callerNode)>;

struct ListResult {
  std::vector<ObjectPtr> items;
  std::string resourceVersion;
  std::string continueToken;
  std::optional<int64_t> remainingItemCount;
};

struct DeleteOptions {
  std::string propagationPolicy;  // Orphan, Background, Foreground ("" = the resource's default)
  std::optional<bool> orphanDependents;
  std::optional<int64_t> gracePeriodSeconds;
  std::string preconditionUid;
  std::string preconditionResourceVersion;
  bool dryRun = false;
};

struct WatchHandle {
  CacheWatcherPtr watcher;
  // Converts a cached object to the version the client asked for (custom resources).
  std::function<ObjectPtr(const ObjectPtr&)> convert;
  int64_t startRevision = 0;
};

struct StorageOptions {
  std::string serviceCidr = "10.43.0.0/16";  // ClusterIP range (k3s's default)
  int nodePortMin = 30000, nodePortMax = 32767;
};

// The API's storage of every resource (Kubernetes' generic registry): one implementation for all
// kinds, with what a kind adds (service addresses, namespaces, pods, jobs, custom resource
// definitions) in per-kind strategies behind it. Thread-safe.
class Storage {
 public:
  virtual ~Storage() = default;

  virtual Expected<ObjectPtr, ApiError> get(const ResourceInfo& r, const std::string& ns,
                                            const std::string& name) = 0;
  virtual Expected<ListResult, ApiError> list(const ResourceInfo& r, const std::string& ns,
                                              const ListOptions& options) = 0;
  // A watch from options.resourceVersion (or now); stopWatch() ends it.
  virtual Expected<WatchHandle, ApiError> watch(const ResourceInfo& r, const std::string& ns,
                                                const ListOptions& options,
                                                bool sendInitialEvents) = 0;
  virtual void stopWatch(const WatchHandle& handle) = 0;

  virtual Expected<WriteResult, ApiError> create(const ResourceInfo& r, const std::string& ns,
                                                 Json obj, const WriteOptions& o) = 0;
  // PUT; o.subresource "" or "status" (404 for a resource without one), "finalize".
  virtual Expected<WriteResult, ApiError> update(const ResourceInfo& r, const std::string& ns,
                                                 const std::string& name, Json obj,
                                                 const WriteOptions& o) = 0;
  virtual Expected<WriteResult, ApiError> patch(const ResourceInfo& r, const std::string& ns,
                                                const std::string& name, PatchType type,
                                                const std::string& body, const WriteOptions& o) = 0;
  virtual Expected<WriteResult, ApiError> remove(const ResourceInfo& r, const std::string& ns,
                                                 const std::string& name,
                                                 const DeleteOptions& o) = 0;
  virtual Expected<std::vector<ObjectPtr>, ApiError> removeCollection(const ResourceInfo& r,
                                                                      const std::string& ns,
                                                                      const ListOptions& list,
                                                                      const DeleteOptions& o) = 0;

  // pods/binding: assigns an unscheduled pod to `node` (409 if it is already assigned, or if
  // `uid` is set and names another pod).
  virtual Expected<WriteResult, ApiError> bind(const std::string& ns, const std::string& pod,
                                               const std::string& uid, const std::string& node,
                                               const WriteOptions& o) = 0;

  // A CONNECT to a subresource (pods/exec, attach, portforward): the admission webhooks that
  // select it may refuse it; `options` is the request's PodExecOptions (or Attach, PortForward).
  virtual Expected<void, ApiError> admitConnect(const ResourceInfo& r, const std::string& ns,
                                                const std::string& name,
                                                const std::string& subresource,
                                                const Json& options) = 0;
  // pods/eviction (policy/v1 Eviction): deletes the pod unless a PodDisruptionBudget that
  // selects it allows no disruption now (429 TooManyRequests, as kube-apiserver answers); an
  // allowed eviction of a ready pod takes one of the budget's disruptions.
  virtual Expected<WriteResult, ApiError> evict(const std::string& ns, const std::string& pod,
                                                const Json& eviction) = 0;

  // serviceaccounts/certificate: a mesh workload certificate signed by `issuer` (the command
  // that wires the process hands the mesh CA in); 404 without one.
  virtual void setCertificateIssuer(CertificateIssuer issuer) = 0;
  virtual Expected<Json, ApiError> issueCertificate(const std::string& ns, const std::string& sa,
                                                    const Json& request,
                                                    const std::string& callerNode) = 0;

  // autoscaling/v1 Scale of a resource with a scale subresource.
  virtual Expected<Json, ApiError> getScale(const ResourceInfo& r, const std::string& ns,
                                            const std::string& name) = 0;
  virtual Expected<WriteResult, ApiError> updateScale(const ResourceInfo& r, const std::string& ns,
                                                      const std::string& name, const Json& scale,
                                                      const WriteOptions& o) = 0;
  virtual Expected<WriteResult, ApiError> patchScale(const ResourceInfo& r, const std::string& ns,
                                                     const std::string& name, PatchType type,
                                                     const std::string& body,
                                                     const WriteOptions& o) = 0;

  // The object converted to the version `r` serves (custom resources store one version).
  virtual ObjectPtr toVersion(const ResourceInfo& r, const ObjectPtr& obj) const = 0;
  // The resources served (built-in and custom), by group/version/plural or kind.
  virtual ResourceRegistry& registry() = 0;
};
using StoragePtr = std::unique_ptr<Storage>;

// The storage of `store` through its watch cache; all must outlive it.
StoragePtr newStorage(store::Store& store, Cacher& cacher, ResourceRegistry& registry, Clock& clock,
                      StorageOptions options = {});

}  // namespace podium::api
