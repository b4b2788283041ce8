#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Keeps the number of running pods of each ReplicaSet at spec.replicas: creates pods from the
// template (in batches of 1, 2, 4, ... so a broken template fails fast), deletes the least
// valuable extras, adopts matching orphans and releases pods that stop matching, and reports
// status (replicas, ready, available after minReadySeconds, observedGeneration). The same
// controller runs ReplicationControllers, the ReplicaSet's predecessor, whose selector is a plain
// map of labels.
class ReplicaSetController : public client::Controller {
 public:
  struct Kind {
    client::Resource resource;
    const char* kind;
    const char* controllerName;
  };
  static const Kind kReplicaSet;
  static const Kind kReplicationController;

  ReplicaSetController(client::InformerFactory& informers, client::EventRecorder& events,
                       int workers = 2, const Kind& kind = kReplicaSet);
  ~ReplicaSetController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  void enqueueOwner(const ObjectPtr& pod);
  std::string ownerKey(const Json& pod) const;
  Expected<api::LabelSelector, std::string> selectorOf(const Json& rs) const;
  SyncResult manageReplicas(const Json& rs, const std::string& key, std::vector<ObjectPtr>& active);
  SyncResult updateStatus(const Json& rs, const std::vector<ObjectPtr>& active,
                          std::chrono::system_clock::time_point now);

  const Kind& kind_;
  client::EventRecorder& events_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
  Expectations expectations_;
};

}  // namespace podium::controllers
