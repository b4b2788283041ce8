#pragma once

// What one kind adds to the API's generic storage rules (Kubernetes' registry strategies): work
// on create and update beyond defaults and schema (service addresses, job selectors, custom
// resource definitions' status), what follows a create (a namespace's default service account),
// and what a delete waits for or takes along (a pod's grace period, a namespace's finalizers, a
// definition's custom resources). The generic storage calls these hooks; a kind without a
// strategy of its own gets the defaults.

#include <mutex>
#include <string>

#include "podium/api/resources.h"
#include "podium/api/status.h"
#include "podium/api/storage.h"
#include "podium/common/json.h"
#include "podium/common/time.h"

namespace podium::api {

// What strategies may use: the store and its cache, the options, the clock, and the storage
// itself (for writes a kind implies).
struct StrategyContext {
  store::Store& store;
  Cacher& cacher;
  const StorageOptions& options;
  Clock& clock;
  Storage& storage;
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // A mutex held around each write of this kind (kinds that allocate from a shared range), or
  // nullptr.
  virtual std::mutex* writeLock() const { return nullptr; }
  // Whether a create starts with an empty status (the controllers write it).
  virtual bool resetsStatusOnCreate(const ResourceInfo& r) const;
  // After defaults, before validation; `old` is null on create.
  virtual Expected<void, ApiError> prepare(const ResourceInfo& r, Json& obj, const Json* old,
                                           StrategyContext& ctx) const {
    return {};
  }
  // After a create was stored (not on a dry run).
  virtual void afterCreate(const ResourceInfo& r, const Json& obj, StrategyContext& ctx) const {}

  // Whether `name` may be deleted at all.
  virtual Expected<void, ApiError> checkDelete(const ResourceInfo& r,
                                               const std::string& name) const {
    return {};
  }
  // Seconds a delete of `obj` waits before the object goes (0: at once).
  virtual int64_t gracePeriod(const Json& obj, const DeleteOptions& o) const { return 0; }
  // Whether something beyond metadata.finalizers still holds a deleted object.
  virtual bool holdsDeletion(const Json& obj) const { return false; }
  // Changes the marking for deletion makes beyond the deletion timestamp.
  virtual void markDeleting(Json& obj) const {}
  // Before the object is removed for good.
  virtual void beforeRemove(const ResourceInfo& r, const Json& obj, StrategyContext& ctx) const {}
};

// The strategy of `r`'s kind.
const Strategy& strategyFor(const ResourceInfo& r);

}  // namespace podium::api
