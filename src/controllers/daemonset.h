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
// should not run one and failed pods are deleted. RollingUpdate (the default) replaces pods of
// an older template (label controller-revision-hash) node by node, keeping at most
// maxUnavailable (1 by default, an int or a percentage of the desired count) unavailable; OnDelete
// replaces a pod only once it is deleted. Status: desired/current/misscheduled/ready/updated/
// available/unavailable counts and observedGeneration, as `kubectl get ds` shows them.
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
  Expectations expectations_;
};

}  // namespace podium::controllers
