#pragma once

#include "util.h"

namespace podium::controllers {

// Writes Istio's analysis onto each VirtualService's status, as istiod does with its status
// controller on: `validationMessages` with IST0101 (ReferencedResourceNotFound) for every
// destination subset no DestinationRule defines (the node proxy answers such routes 503), a
// Reconciled condition and the observedGeneration. DestinationRule changes re-check every
// VirtualService.
class MeshStatusController : public client::Controller {
 public:
  explicit MeshStatusController(client::InformerFactory& informers, int workers = 1);
  ~MeshStatusController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::Informer& virtualServices_;
  client::Informer& destinationRules_;
};

}  // namespace podium::controllers
