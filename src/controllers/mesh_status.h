#pragma once

#include "util.h"

namespace podium::controllers {

// Writes Istio's analysis onto each VirtualService's status, as istiod does with its status
// controller on: `validationMessages` with IST0101 (ReferencedResourceNotFound) for every
// destination subset no DestinationRule defines (the node proxy answers such routes 503), a
// Reconciled condition and the observedGeneration. DestinationRule changes re-check every
// VirtualService.
class MeshStatusController {
 public:
  explicit MeshStatusController(client::InformerFactory& informers);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  client::Client& client_;
  client::Informer& virtualServices_;
  client::Informer& destinationRules_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
