#pragma once

#include "util.h"

namespace podium::controllers {

// The load balancer of a Service of type LoadBalancer is the nodes themselves, as with k3s'
// ServiceLB: each node's proxy serves the Service's ports on the node, and this controller
// publishes the Ready nodes' InternalIPs in status.loadBalancer.ingress (sorted, so the status
// only changes when the nodes do). Services naming a spec.loadBalancerClass are left to that
// implementation, as upstream does.
class ServiceLbController {
 public:
  explicit ServiceLbController(client::InformerFactory& informers);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  client::Client& client_;
  client::Informer& services_;
  client::Informer& nodes_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
