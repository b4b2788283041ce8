#pragma once

// The scheduler: binds each pending pod (schedulerName default-scheduler) to a ready node that
// fits it — resource requests against allocatable, nodeSelector, taints and tolerations — and
// prefers the least loaded node and the node with the fewest pods of the same owner. A pod that
// fits nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event, and is retried
// when nodes or pods change.

#include <memory>

#include "podium/client/client.h"
#include "podium/common/time.h"

namespace podium::scheduler {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void stop() = 0;
};

// Starts scheduling through `client` (which must outlive the scheduler); returns once its
// caches have synced.
std::unique_ptr<Scheduler> startScheduler(client::Client& client, Clock& clock = realClock());

}  // namespace podium::scheduler
