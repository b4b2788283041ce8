#pragma once

#include "util.h"

namespace podium::controllers {

// The load balancer of a Service of type LoadBalancer is the nodes themselves, as with k3s'
// ServiceLB: each node's proxy serves the Service's ports on the node, and this controller
// publishes the Ready nodes' InternalIPs in status.loadBalancer.ingress (sorted, so the status
// only changes when the nodes do). Services naming a spec.loadBalancerClass are left to that
// implementation, as upstream does.
class ServiceLbController : public client::Controller {
 public:
  explicit ServiceLbController(client::InformerFactory& informers, int workers = 1);
  ~ServiceLbController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::Informer& services_;
  client::Informer& nodes_;
};

}  // namespace podium::controllers
