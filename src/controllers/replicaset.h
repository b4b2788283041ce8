#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Keeps the number of running pods of each ReplicaSet at spec.replicas: creates pods from the
// template (in batches of 1, 2, 4, ... so a broken template fails fast), deletes the least
// valuable extras, adopts matching orphans and releases pods that stop matching, and reports
// status (replicas, ready, available after minReadySeconds, observedGeneration).
class ReplicaSetController : public client::Controller {
 public:
  ReplicaSetController(client::InformerFactory& informers, client::EventRecorder& events,
                       int workers = 2);
  ~ReplicaSetController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  void enqueueOwner(const ObjectPtr& pod);
  SyncResult manageReplicas(const Json& rs, const std::string& key, std::vector<ObjectPtr>& active);
  SyncResult updateStatus(const Json& rs, const std::vector<ObjectPtr>& active,
                          std::chrono::system_clock::time_point now);

  client::EventRecorder& events_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
  Expectations expectations_;
};

}  // namespace podium::controllers
