#pragma once

// The one shape of every controller in Podium, after Kubernetes' controllers: shared informers
// feed a rate-limited work queue that never hands one key to two workers; a worker takes a key
// and calls sync(key), which re-reads the cache, does the least work, writes status only when it
// changed, and returns a SyncResult. A failed sync is retried with per-key exponential back-off,
// never dropped; a sync may also ask to be looked at again after a delay (minReadySeconds,
// deadlines). Clock and worker count are injected; tests call process(key) directly.

#include <atomic>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "podium/api/selectors.h"
#include "podium/client/client.h"
#include "podium/client/informer.h"
#include "podium/client/workqueue.h"
#include "podium/common/time.h"

namespace podium::client {

// What one sync asks of its queue. [[nodiscard]]: a failed write cannot be dropped silently.
class [[nodiscard]] SyncResult {
 public:
  static SyncResult ok() { return SyncResult(); }
  // Failed: retried after the key's next back-off delay.
  static SyncResult retry(std::string reason) {
    SyncResult r;
    r.failed_ = true;
    r.reason_ = std::move(reason);
    return r;
  }
  // Done for now; look again after `delay`.
  static SyncResult after(std::chrono::milliseconds delay) {
    SyncResult r;
    r.after_ = delay;
    return r;
  }
  // The outcome of one API call: ok when it succeeded or failed with one of `ignored` codes
  // (by default 404: the object is gone, nothing left to do), else retry naming `what`.
  template <class T>
  static SyncResult of(const Expected<T, api::ApiError>& r, const std::string& what,
                       std::initializer_list<int> ignored = {404}) {
    if (r) return ok();
    for (int code : ignored)
      if (r.error().code() == code) return ok();
    return retry(what + ": " + r.error().message());
  }

  // Folds a step's result into this one: the first failure is kept, the earliest requeue wins.
  SyncResult& merge(const SyncResult& other) {
    if (other.failed_ && !failed_) {
      failed_ = true;
      reason_ = other.reason_;
    }
    if (other.after_ && (!after_ || *other.after_ < *after_)) after_ = other.after_;
    return *this;
  }

  bool failed() const { return failed_; }
  const std::string& reason() const { return reason_; }
  std::optional<std::chrono::milliseconds> requeueAfter() const { return after_; }

 private:
  bool failed_ = false;
  std::string reason_;
  std::optional<std::chrono::milliseconds> after_;
};

class Controller {
 public:
  Controller(std::string name, Client& client, Clock& clock = realClock(), int workers = 1);
  // A started controller must be stopped by its owner (or its subclass's destructor) first:
  // its workers call the subclass's sync.
  virtual ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  void start();
  void stop();
  // Runs one key as a worker does: syncs it, then retries it with back-off on failure (or
  // forgets its back-off on success) and queues any requeue it asked for.
  SyncResult process(const std::string& key);

  const std::string& name() const { return name_; }
  WorkQueue& queue() { return queue_; }

 protected:
  virtual SyncResult sync(const std::string& key) = 0;

  // Handlers that queue the object's own key on add and update, and on delete when `onDelete`.
  EventHandlers enqueueHandlers(bool onDelete = true);
  void enqueue(const Json& obj) { queue_.add(Informer::keyOf(obj)); }

  // Writes `status` into the object's status subresource unless it is already the status;
  // ok when nothing changed or the object is gone.
  SyncResult updateStatus(const Resource& r, const Json& obj, const Json& status);

  Client& client_;
  Clock& clock_;

 private:
  std::string name_;
  int workers_;
  WorkQueue queue_;
  std::vector<std::thread> threads_;
};

// Kubernetes' ControllerRefManager: which of `candidates` the owner controls. Children it owns
// whose labels no longer match its selector are released; matching orphans are adopted (unless
// the owner is being deleted, checked once against the API server). Both patch the child's
// ownerReferences with its resourceVersion as a precondition, so a concurrent change to the
// child is never overwritten: the claim then fails and the owner's sync is retried.
class ControllerRefManager {
 public:
  ControllerRefManager(Client& client, Resource ownerResource, const Json& owner,
                       Resource childResource, api::LabelSelector selector);

  struct Claim {
    std::vector<ObjectPtr> owned;  // owned (or just adopted) and matching, as the cache has them
    SyncResult result;             // failed when an adoption or release could not be written
  };
  Claim claim(const std::vector<ObjectPtr>& candidates);

 private:
  bool ownerStillAdopting();
  Result adopt(const Json& child);
  SyncResult release(const Json& child);

  Client& client_;
  Resource ownerResource_, childResource_;
  const Json& owner_;
  api::LabelSelector selector_;
  std::optional<bool> canAdopt_;
};

}  // namespace podium::client
