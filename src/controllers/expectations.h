#pragma once

// Controller expectations (Kubernetes' ControllerExpectations): after a controller creates or
// deletes N pods for an owner it waits to observe them in its cache before it counts pods again,
// so a slow cache never makes it create or delete twice. Expectations expire after 5 minutes.

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "podium/client/informer.h"
#include "podium/client/objects.h"
#include "podium/client/workqueue.h"
#include "podium/common/time.h"

namespace podium::controllers {

class Expectations {
 public:
  explicit Expectations(Clock& clock) : clock_(clock) {}

  void expect(const std::string& key, int adds, int deletes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = map_[key];
    e.adds += adds;
    e.deletes += deletes;
    e.since = clock_.monotonic();
  }
  void observedAdd(const std::string& key) { lower(key, 1, 0); }
  void observedDelete(const std::string& key) { lower(key, 0, 1); }
  // A pod's deletion, counted once (Kubernetes' UIDTrackingControllerExpectations): when it is
  // marked for a graceful deletion — its owner replaces it then, not after the grace period —
  // and not again when it is gone.
  void observedDeleteOf(const std::string& key, const std::string& uid) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.deletedUids.insert(uid).second) return;
    it->second.deletes -= 1;
  }
  void lower(const std::string& key, int adds, int deletes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return;
    it->second.adds -= adds;
    it->second.deletes -= deletes;
  }
  bool satisfied(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return true;
    if (it->second.adds <= 0 && it->second.deletes <= 0) return true;
    return clock_.monotonic() - it->second.since > std::chrono::minutes(5);
  }
  void clear(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    map_.erase(key);
  }

 private:
  struct Entry {
    int adds = 0, deletes = 0;
    std::chrono::steady_clock::time_point since;
    std::set<std::string> deletedUids;  // observedDeleteOf's
  };
  Clock& clock_;
  std::mutex mu_;  // guards map_
  std::map<std::string, Entry> map_;
};

// The pod handlers of a controller of `ownerKind` that keeps expectations: an added pod is an
// observed add; a pod marked for graceful deletion, or gone, an observed delete (once, by uid:
// its owner replaces it at once, not after the grace period); each queues its owner's key.
inline client::EventHandlers ownedPodHandlers(const std::string& ownerKind,
                                              Expectations& expectations,
                                              client::WorkQueue& queue) {
  auto seen = [ownerKind, &expectations, &queue](const client::ObjectPtr& pod, bool added,
                                                 bool deleted) {
    std::string name;
    if (!client::controlledBy(*pod, ownerKind, &name)) return;
    std::string key = client::namespaceOf(*pod) + "/" + name;
    if (added) expectations.observedAdd(key);
    if (deleted) expectations.observedDeleteOf(key, client::uidOf(*pod));
    queue.add(key);
  };
  return {[seen](const client::ObjectPtr& p) { seen(p, true, false); },
          [seen](const client::ObjectPtr& o, const client::ObjectPtr& n) {
            seen(n, false, client::isDeleting(*n) && !client::isDeleting(*o));
          },
          [seen](const client::ObjectPtr& p) { seen(p, false, true); }};
}

}  // namespace podium::controllers
