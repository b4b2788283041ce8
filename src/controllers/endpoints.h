#pragma once

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Keeps each selector Service's Endpoints and EndpointSlices in line with its pods (the
// upstream endpoints and endpointslice controllers in one): ready pods are addresses, unready
// ones notReadyAddresses (or ready=false endpoints), terminating pods are dropped from Endpoints
// and marked terminating in slices, target ports are resolved per pod (named container ports),
// and publishNotReadyAddresses publishes every pod with an IP.
class EndpointsController {
 public:
  explicit EndpointsController(client::InformerFactory& informers);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  bool syncEndpoints(const Json& svc, const std::vector<ObjectPtr>& pods);
  bool syncSlices(const Json& svc, const std::vector<ObjectPtr>& pods);

  client::Client& client_;
  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& endpoints_;
  client::Informer& slices_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
