#pragma once

// The scheduler: binds each pending pod (schedulerName default-scheduler) to a ready node that
// fits it — resource requests against allocatable, nodeSelector, taints and tolerations — and
// prefers the least loaded node and the node with the fewest pods of the same owner. A pod that
// fits nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event, and is retried
// when nodes or pods change.

#include <memory>

namespace podium::api {
class Storage;
}

namespace podium::scheduler {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void stop() = 0;
};

std::unique_ptr<Scheduler> startScheduler(api::Storage& storage);

}  // namespace podium::scheduler
