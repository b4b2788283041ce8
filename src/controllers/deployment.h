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
class DeploymentController : public client::Controller {
 public:
  DeploymentController(client::InformerFactory& informers, client::EventRecorder& events,
                       int workers = 2);
  ~DeploymentController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  struct State;
  void enqueueForReplicaSet(const ObjectPtr& rs);
  SyncResult claimReplicaSets(const Json& d, std::vector<ObjectPtr>* out);
  SyncResult getAllReplicaSets(State& s, bool create);
  // Sets a ReplicaSet's replicas (and the desired/max annotations); *scaled says whether the
  // count changed.
  SyncResult scaleReplicaSet(State& s, const Json& rs, int64_t replicas, bool* scaled = nullptr);
  SyncResult rolloutRolling(State& s);
  SyncResult rolloutRecreate(State& s);
  SyncResult scale(State& s);
  SyncResult syncStatus(State& s);
  SyncResult cleanup(State& s);

  client::EventRecorder& events_;
  client::Informer& deployments_;
  client::Informer& replicaSets_;
  client::Informer& pods_;
};

}  // namespace podium::controllers
