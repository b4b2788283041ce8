#pragma once

// The API's REST semantics, independent of HTTP: get, list, watch, create, update, patch and
// delete of any resource, with Kubernetes' rules for metadata, resourceVersion preconditions,
// generation, defaulting, validation, field ownership, finalizers and subresources. The HTTP
// handler and the in-process client both call this.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "podium/api/cacher.h"
#include "podium/api/resources.h"
#include "podium/api/status.h"
#include "podium/common/time.h"
#include "podium/store/store.h"

namespace podium::api {

enum class PatchType;

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

class Storage {
 public:
  Storage(store::Store& store, Cacher& cacher, ResourceRegistry& registry, Clock& clock,
          StorageOptions options = {});

  Expected<ObjectPtr, ApiError> get(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name);
  Expected<ListResult, ApiError> list(const ResourceInfo& r, const std::string& ns,
                                      const ListOptions& options);
  Expected<WatchHandle, ApiError> watch(const ResourceInfo& r, const std::string& ns,
                                        const ListOptions& options, bool sendInitialEvents);
  void stopWatch(const WatchHandle& handle);

  Expected<WriteResult, ApiError> create(const ResourceInfo& r, const std::string& ns, Json obj,
                                         const WriteOptions& o);
  Expected<WriteResult, ApiError> update(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, Json obj, const WriteOptions& o);
  Expected<WriteResult, ApiError> patch(const ResourceInfo& r, const std::string& ns,
                                        const std::string& name, PatchType type,
                                        const std::string& body, const WriteOptions& o);
  Expected<WriteResult, ApiError> remove(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, const DeleteOptions& o);
  Expected<std::vector<ObjectPtr>, ApiError> removeCollection(const ResourceInfo& r,
                                                              const std::string& ns,
                                                              const ListOptions& list,
                                                              const DeleteOptions& o);

  // pods/binding: assigns an unscheduled pod to `node` (409 if it is already assigned, or if
  // `uid` is set and names another pod).
  Expected<WriteResult, ApiError> bind(const std::string& ns, const std::string& pod,
                                       const std::string& uid, const std::string& node,
                                       const WriteOptions& o);

  // serviceaccounts/certificate: a mesh workload certificate (see podium/mesh/certificates.h)
  // for `callerNode` ("" when the caller may act for any node); 404 without a mesh CA.
  void setCertificateIssuer(CertificateIssuer issuer) { issuer_ = std::move(issuer); }
  Expected<Json, ApiError> issueCertificate(const std::string& ns, const std::string& sa,
                                            const Json& request, const std::string& callerNode);

  // autoscaling/v1 Scale of a resource with a scale subresource.
  Expected<Json, ApiError> getScale(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name);
  Expected<WriteResult, ApiError> updateScale(const ResourceInfo& r, const std::string& ns,
                                              const std::string& name, const Json& scale,
                                              const WriteOptions& o);
  Expected<WriteResult, ApiError> patchScale(const ResourceInfo& r, const std::string& ns,
                                             const std::string& name, PatchType type,
                                             const std::string& body, const WriteOptions& o);

  // The object converted to the version `r` serves (custom resources store one version).
  ObjectPtr toVersion(const ResourceInfo& r, const ObjectPtr& obj) const;
  ResourceRegistry& registry() { return registry_; }
  Cacher& cacher() { return cacher_; }

 private:
  using Mutator = std::function<Expected<Json, ApiError>(const Json* current)>;
  Expected<WriteResult, ApiError> guaranteedUpdate(const ResourceInfo& r, const std::string& ns,
                                                   const std::string& name, const WriteOptions& o,
                                                   bool allowCreate, const Mutator& mutate);
  Expected<Json, ApiError> prepareCreate(const ResourceInfo& r, const std::string& ns, Json obj,
                                         const WriteOptions& o, std::vector<std::string>* warnings,
                                         bool managedFieldsDone);
  Expected<Json, ApiError> prepareUpdate(const ResourceInfo& r, const Json& old, Json obj,
                                         const WriteOptions& o, std::vector<std::string>* warnings,
                                         bool managedFieldsDone);
  Expected<void, ApiError> checkSchema(const ResourceInfo& r, Json& obj, const WriteOptions& o,
                                       std::vector<std::string>* warnings);
  Expected<void, ApiError> admitNamespace(const ResourceInfo& r, const std::string& ns);
  Expected<void, ApiError> allocateServiceAddresses(Json& svc, const Json* old);
  Expected<WriteResult, ApiError> commit(const ResourceInfo& r, const std::string& key,
                                         const Json* old, int64_t oldRevision, Json obj,
                                         const WriteOptions& o);
  std::string serialize(const ResourceInfo& r, const Json& obj) const;
  std::string now() const;
  ApiError storeError(const ResourceInfo& r, const std::string& name, const store::Error& e) const;

  store::Store& store_;
  Cacher& cacher_;
  ResourceRegistry& registry_;
  Clock& clock_;
  StorageOptions options_;
  CertificateIssuer issuer_;
  std::mutex allocMu_;  // serialises ClusterIP/NodePort allocation with the write that claims it
};

}  // namespace podium::api
