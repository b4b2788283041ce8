#pragma once

// The controllers of a Podium cluster (kube-controller-manager's role), run together through
// one client and one set of shared informers: Deployment, ReplicaSet, Job, Endpoints and
// EndpointSlices, Service load balancers, the mesh's VirtualService status, the namespace
// controller, the garbage collector, node lifecycle (unreachable nodes, eviction), node pod
// ranges, PodDisruptionBudgets and HorizontalPodAutoscalers. The client may be in-process (the
// server) or remote (`podium controllers` on another machine): they behave the same.

#include <memory>
#include <string>

#include "podium/client/client.h"
#include "podium/common/time.h"

namespace podium::controllers {

struct ControllerOptions {
  // How long a node's Lease may go unrenewed before the node is Ready=Unknown and tainted
  // unreachable (Kubernetes' --node-monitor-grace-period, 40 s there).
  std::chrono::milliseconds nodeMonitorGracePeriod{20000};
  // Nodes without spec.podCIDR get a block of `nodeCidrMaskSize` bits from this range
  // (--allocate-node-cidrs with --cluster-cidr); "" allocates none.
  std::string clusterCidr = "10.42.0.0/16";
  int nodeCidrMaskSize = 24;
};

class ControllerManager {
 public:
  virtual ~ControllerManager() = default;
  // Stops every controller and informer; idempotent.
  virtual void stop() = 0;
};

// Starts every controller on `client` (which must outlive the manager); returns once their
// caches have synced (or 30 s have passed).
std::unique_ptr<ControllerManager> startControllers(client::Client& client,
                                                    const ControllerOptions& options = {},
                                                    Clock& clock = realClock());

}  // namespace podium::controllers
