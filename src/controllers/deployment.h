#pragma once

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// The Deployment controller, with upstream's semantics: one ReplicaSet per pod template, named
// <deployment>-<pod-template-hash> and numbered by the deployment.kubernetes.io/revision
// annotation; rolling updates bounded by maxSurge/maxUnavailable; Recreate; proportional
// scaling during a rollout; pause/resume; rollback by reusing the ReplicaSet whose template
// matches; revisionHistoryLimit; and status with Available/Progressing conditions, including
// ProgressDeadlineExceeded.
class DeploymentController {
 public:
  DeploymentController(client::InformerFactory& informers, client::EventRecorder& events);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  struct State;
  void enqueueForReplicaSet(const ObjectPtr& rs);
  std::vector<ObjectPtr> claimReplicaSets(const Json& d);
  bool getAllReplicaSets(State& s, bool create);
  bool scaleReplicaSet(State& s, const Json& rs, int64_t replicas);
  bool rolloutRolling(State& s);
  bool rolloutRecreate(State& s);
  bool scale(State& s);
  bool syncStatus(State& s);
  void cleanup(State& s);

  client::Client& client_;
  client::EventRecorder& events_;
  client::Informer& deployments_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
