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
class GarbageCollector {
 public:
  explicit GarbageCollector(client::InformerFactory& informers);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

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
  bool attemptToDelete(const std::string& uid);
  bool deleteDependentsInForeground(const std::string& uid);
  bool orphanDependents(const std::string& uid);
  bool ownerExists(const Json& ref, const std::string& ns, bool* deletingInForeground);
  bool removeFinalizer(const Node& n, const std::string& uid, const std::string& finalizer);

  client::Client& client_;
  QueueWorkers workers_;
  std::mutex mu_;                                            // guards nodes_, dependents_
  std::map<std::string, Node> nodes_;                        // uid -> object
  std::map<std::string, std::set<std::string>> dependents_;  // owner uid -> dependent uids
};

}  // namespace podium::controllers
