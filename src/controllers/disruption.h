#pragma once

#include "util.h"

namespace podium::controllers {

// Kubernetes' disruption controller: keeps each PodDisruptionBudget's status current — the
// pods its selector takes (expectedPods), the ready ones (currentHealthy, less those an eviction
// just took), the ready ones it needs (desiredHealthy, from minAvailable or maxUnavailable, as
// counts or percentages rounded up) and so how many may go now (disruptionsAllowed), which the
// API's pods/eviction reads. Evicted pods are counted out until they are gone (or 2 minutes).
class DisruptionController : public client::Controller {
 public:
  explicit DisruptionController(client::InformerFactory& informers, int workers = 1);
  ~DisruptionController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::Informer& budgets_;
  client::Informer& pods_;
};

}  // namespace podium::controllers
