#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Runs one pod of each DaemonSet on every node that should run it: a node that the template's
// nodeSelector and required node affinity match and whose NoSchedule/NoExecute taints the pod
// tolerates (with the tolerations Kubernetes adds to daemon pods: not-ready, unreachable,
// unschedulable, pressure).
// Pods are bound to their node as made (spec.nodeName). Extra pods on a node, pods on nodes that
// should not run one and failed pods are deleted. Templates are kept as ControllerRevisions
// <ds>-<hash> (revisions.h; `kubectl rollout history/undo ds`), pods labelled with the hash.
// RollingUpdate (the default) replaces pods of an older template node by node, oldest first:
// with maxSurge (an int or a percentage of the desired count) a new pod starts beside the old
// one on that many nodes at a time and the old one goes once the new is available; otherwise at
// most maxUnavailable (1 by default) daemons are down at a time. OnDelete replaces a pod only
// once it is deleted. Status: desired/current/misscheduled/ready/updated/available/unavailable
// counts and observedGeneration, as `kubectl get ds` shows them.
class DaemonSetController : public client::Controller {
 public:
  DaemonSetController(client::InformerFactory& informers, client::EventRecorder& events,
                      int workers = 1);
  ~DaemonSetController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  void enqueueAll();

  client::EventRecorder& events_;
  client::Informer& daemonSets_;
  client::Informer& pods_;
  client::Informer& nodes_;
  client::Informer& revisions_;
  Expectations expectations_;
};

}  // namespace podium::controllers
