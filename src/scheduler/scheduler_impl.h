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

  client::EventRecorder& events_;
  client::Informer& pods_;
  client::Informer& nodes_;
  std::mutex mu_;                                                             // guards assumed_
  std::map<std::string, std::pair<std::string, client::ObjectPtr>> assumed_;  // uid -> node, pod
};

}  // namespace podium::scheduler
