#pragma once

// The controllers of a Podium server, run together against the API through one in-process
// client and one set of shared informers: Deployment, ReplicaSet, Job, the garbage collector
// and the namespace controller. (Endpoints, service and node lifecycle controllers join them as
// their parts arrive.)

#include <memory>

namespace podium::api {
class Storage;
}

namespace podium::controllers {

class ControllerManager {
 public:
  virtual ~ControllerManager() = default;
  virtual void stop() = 0;
};

// Starts every controller; returns once their caches have synced.
std::unique_ptr<ControllerManager> startControllers(api::Storage& storage);

}  // namespace podium::controllers
