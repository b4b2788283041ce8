#pragma once

// The storage's implementation, shared by its source files: reads and writes (storage.cc),
// deletes (storage_delete.cc), the binding, scale and certificate subresources
// (storage_subresources.cc); the per-kind rules are strategies (strategy.h).

#include <functional>

#include "admission.h"
#include "podium/api/storage.h"
#include "strategy.h"

namespace podium::api {

class StorageImpl : public Storage {
 public:
  StorageImpl(store::Store& store, Cacher& cacher, ResourceRegistry& registry, Clock& clock,
              StorageOptions options);

  Expected<ObjectPtr, ApiError> get(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name) override;
  Expected<ListResult, ApiError> list(const ResourceInfo& r, const std::string& ns,
                                      const ListOptions& options) override;
  Expected<WatchHandle, ApiError> watch(const ResourceInfo& r, const std::string& ns,
                                        const ListOptions& options,
                                        bool sendInitialEvents) override;
  void stopWatch(const WatchHandle& handle) override;
  Expected<WriteResult, ApiError> create(const ResourceInfo& r, const std::string& ns, Json obj,
                                         const WriteOptions& o) override;
  Expected<WriteResult, ApiError> update(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, Json obj,
                                         const WriteOptions& o) override;
  Expected<WriteResult, ApiError> patch(const ResourceInfo& r, const std::string& ns,
                                        const std::string& name, PatchType type,
                                        const std::string& body, const WriteOptions& o) override;
  Expected<WriteResult, ApiError> remove(const ResourceInfo& r, const std::string& ns,
                                         const std::string& name, const DeleteOptions& o) override;
  Expected<std::vector<ObjectPtr>, ApiError> removeCollection(const ResourceInfo& r,
                                                              const std::string& ns,
                                                              const ListOptions& list,
                                                              const DeleteOptions& o) override;
  Expected<WriteResult, ApiError> bind(const std::string& ns, const std::string& pod,
                                       const std::string& uid, const std::string& node,
                                       const WriteOptions& o) override;
  Expected<void, ApiError> admitConnect(const ResourceInfo& r, const std::string& ns,
                                        const std::string& name, const std::string& subresource,
                                        const Json& options) override;
  Expected<WriteResult, ApiError> evict(const std::string& ns, const std::string& pod,
                                        const Json& eviction) override;
  void setCertificateIssuer(CertificateIssuer issuer) override { issuer_ = std::move(issuer); }
  Expected<Json, ApiError> issueCertificate(const std::string& ns, const std::string& sa,
                                            const Json& request,
                                            const std::string& callerNode) override;
  Expected<Json, ApiError> getScale(const ResourceInfo& r, const std::string& ns,
                                    const std::string& name) override;
  Expected<WriteResult, ApiError> updateScale(const ResourceInfo& r, const std::string& ns,
                                              const std::string& name, const Json& scale,
                                              const WriteOptions& o) override;
  Expected<WriteResult, ApiError> patchScale(const ResourceInfo& r, const std::string& ns,
                                             const std::string& name, PatchType type,
                                             const std::string& body,
                                             const WriteOptions& o) override;
  ObjectPtr toVersion(const ResourceInfo& r, const ObjectPtr& obj) const override;
  ResourceRegistry& registry() override { return registry_; }

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
  // The mutating webhooks over `obj`, its identity kept and its defaults applied again.
  Expected<void, ApiError> mutateByWebhooks(const Admission::Request& req, Json& obj,
                                            std::vector<std::string>* warnings);
  Expected<WriteResult, ApiError> commit(const ResourceInfo& r, const std::string& key,
                                         const Json* old, int64_t oldRevision, Json obj,
                                         const WriteOptions& o);
  // True when an object marked for deletion has nothing left to wait for.
  bool deletionComplete(const ResourceInfo& r, const Json& obj) const;
  std::string serialize(const ResourceInfo& r, const Json& obj) const;
  // Stores `obj` under `key` (created, or updated at `oldRevision`), handing the cache the
  // object as stored so that the write's event needs no decoding; the new revision.
  store::Result<int64_t> write(const ResourceInfo& r, const std::string& key, const Json& obj,
                               int64_t oldRevision, bool create);
  std::string now() const;
  ApiError storeError(const ResourceInfo& r, const std::string& name, const store::Error& e) const;
  // A successful write, once this server's cache has it (so whoever wrote reads it back, on a
  // store other servers write too).
  store::Result<int64_t> written(store::Result<int64_t> r);
  // Before a read that names no resourceVersion: the cache catches up with the store (another
  // server's writes to a shared store).
  void consistentRead();
  StrategyContext context() { return StrategyContext{store_, cacher_, options_, clock_, *this}; }

  store::Store& store_;
  Cacher& cacher_;
  ResourceRegistry& registry_;
  Clock& clock_;
  StorageOptions options_;
  CertificateIssuer issuer_;
  Admission admission_;
};

// Helpers the storage's files share.
Json& metaOf(Json& obj);
std::string metaString(const Json& obj, const char* field);
bool nonEmptyList(const Json* v);
// Whether everything but metadata and status (what metadata.generation tracks) is the same.
bool sameSpecPart(const Json& a, const Json& b);

}  // namespace podium::api
