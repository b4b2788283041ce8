#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Keeps the number of running pods of each ReplicaSet at spec.replicas: creates pods from the
// template, deletes the least valuable extras, adopts matching orphans, and reports status
// (replicas, ready, available after minReadySeconds, observedGeneration).
class ReplicaSetController {
 public:
  ReplicaSetController(client::InformerFactory& informers, client::EventRecorder& events);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  void enqueueOwner(const ObjectPtr& pod);
  bool manageReplicas(const Json& rs, const std::string& key, std::vector<ObjectPtr>& active,
                      int64_t want);
  bool updateStatus(const Json& rs, const std::vector<ObjectPtr>& active,
                    std::chrono::system_clock::time_point now);

  client::Client& client_;
  client::EventRecorder& events_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
  Expectations expectations_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
