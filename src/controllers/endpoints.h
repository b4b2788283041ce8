#pragma once

#include "util.h"

namespace podium::controllers {

// Keeps each selector Service's Endpoints and EndpointSlices in line with its pods (the
// upstream endpoints and endpointslice controllers in one): ready pods are addresses, unready
// ones notReadyAddresses (or ready=false endpoints), terminating pods are dropped from Endpoints
// and marked terminating in slices, target ports are resolved per pod (named container ports),
// and publishNotReadyAddresses publishes every pod with an IP.
class EndpointsController : public client::Controller {
 public:
  explicit EndpointsController(client::InformerFactory& informers, int workers = 2);
  ~EndpointsController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  SyncResult syncEndpoints(const Json& svc, const std::vector<ObjectPtr>& pods);
  SyncResult syncSlices(const Json& svc, const std::vector<ObjectPtr>& pods);

  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& endpoints_;
  client::Informer& slices_;
};

}  // namespace podium::controllers
