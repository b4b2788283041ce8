#pragma once

#include <map>
#include <mutex>
#include <set>

#include "util.h"

namespace podium::controllers {

// Deletes objects whose owners are gone (ownerReferences), as Kubernetes' garbage collector:
// background deletion removes dependents after their owner; an owner deleted in the
// foreground (finalizer foregroundDeletion) waits until its dependents are gone; an owner
// deleted with propagationPolicy Orphan (finalizer orphan) first releases its dependents.
// It watches every resource the server serves, and the resources of custom resource
// definitions created later from the moment they appear (and on a 30 s resync, as upstream's
// monitors follow discovery).
class GarbageCollector : public client::Controller {
 public:
  explicit GarbageCollector(client::InformerFactory& informers, int workers = 2);
  ~GarbageCollector() override { stop(); }
  // The key that makes the collector look for resources it does not watch yet.
  static constexpr const char* kResyncKey = "resync";

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  struct Node {
    client::Resource resource;
    std::string ns, name;
    std::vector<Json> owners;  // ownerReferences
    bool deleting = false;
    std::vector<std::string> finalizers;
  };
  void observe(const client::Resource& r, const ObjectPtr& obj);
  void forget(const ObjectPtr& obj);
  // Starts watching `r` if it is not watched yet; false if it was.
  bool monitor(const client::Resource& r);
  SyncResult resyncMonitors();
  SyncResult attemptToDelete(const std::string& uid);
  SyncResult deleteDependentsInForeground(const std::string& uid);
  SyncResult orphanDependents(const std::string& uid);
  // Whether the owner exists (and is being deleted in the foreground); an error when the API
  // cannot tell.
  Expected<bool, api::ApiError> ownerExists(const Json& ref, const std::string& ns,
                                            bool* deletingInForeground);
  SyncResult removeFinalizer(const Node& n, const std::string& uid, const std::string& finalizer);

  client::InformerFactory& informers_;
  std::mutex monitorsMu_;                                    // guards monitored_
  std::set<std::string> monitored_;                          // "group/version/plural"
  std::mutex mu_;                                            // guards nodes_, dependents_
  std::map<std::string, Node> nodes_;                        // uid -> object
  std::map<std::string, std::set<std::string>> dependents_;  // owner uid -> dependent uids
};

}  // namespace podium::controllers
