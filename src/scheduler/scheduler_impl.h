#pragma once

// The scheduler's controller: pending pods are its queue's keys; sync(key) places one pod.

#include <map>
#include <mutex>

#include "filters.h"
#include "podium/client/controller.h"
#include "podium/client/events.h"
#include "podium/client/informer_factory.h"

namespace podium::scheduler {

class SchedulerController : public client::Controller {
 public:
  SchedulerController(client::InformerFactory& informers, client::EventRecorder& events);
  ~SchedulerController() override { stop(); }

  // Whether a pod waits for this scheduler: unbound, not finished or being deleted, and
  // asking for default-scheduler.
  static bool pending(const Json& pod);

 protected:
  client::SyncResult sync(const std::string& key) override;

 private:
  void maybeQueue(const client::ObjectPtr& pod);
  void requeuePending();
  void forgetAssumed(const client::ObjectPtr& pod);
  // Pods on each node, counting pods bound by this scheduler that the cache has not shown yet.
  std::map<std::string, std::vector<client::ObjectPtr>> podsByNode();
  client::SyncResult unschedulable(const Json& pod, size_t nodeCount,
                                   const std::map<std::string, int>& reasons);
  // The pod's claims from the caches (and why no node can take it, if one is missing).
  PodVolumes volumesOf(const Json& pod);
  // Asks the volume binder for the pod's unbound claims on `node` (the selected-node
  // annotation); true when all are bound and the pod can be bound.
  Expected<bool, std::string> volumesBound(const PodVolumes& volumes, const std::string& node);

  client::EventRecorder& events_;
  client::Informer& pods_;
  client::Informer& nodes_;
  client::Informer& claims_;
  client::Informer& volumes_;
  client::Informer& classes_;
  std::mutex mu_;  // guards assumed_
  // uid -> node, pod: bound (or waiting for its volumes) but not yet seen so in the cache.
  std::map<std::string, std::pair<std::string, client::ObjectPtr>> assumed_;
};

}  // namespace podium::scheduler
