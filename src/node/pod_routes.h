#pragma once

// The pod network across nodes, flannel's host-gw backend: this node routes each other node's
// pod range (spec.podCIDR) via that node's InternalIP, so a packet from a pod here to a pod
// there leaves with its pod addresses intact and the other node's bridge delivers it. No
// encapsulation, so the pods' MTU is the link's; the nodes must share a link (one L2 segment),
// as host-gw requires. The routes carry protocol kRouteProtocol, which marks them as the
// agent's: a start after a crash removes the ones no node needs any more. Their source address
// is this node's pod gateway, so what the node itself sends to other nodes' pods (the node
// proxy's connections, the ingress's) comes from an address the pods route back to: pods have
// routes to the pod and service ranges only, not to the nodes' network.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "podium/client/informer.h"
#include "podium/common/json.h"

namespace podium::node {

// The routing protocol number on the agent's routes (`ip route show proto 80`).
constexpr int kRouteProtocol = 80;

// A route in the node's main table, as `ip -j route show` gives it.
struct KernelRoute {
  std::string dst;       // "10.42.1.0/24"
  std::string gateway;   // "10.0.0.12", or "" for a device route
  std::string protocol;  // "kernel", "80", ...
  std::string prefsrc;   // the source address it gives, or ""
};

struct RoutePlan {
  std::map<std::string, std::string> replace;             // dst -> gateway
  std::vector<std::string> remove;                        // dst (ours, no node needs it)
  std::vector<std::pair<std::string, std::string>> skip;  // dst, why
};

// What to change so that every other node's pod range goes via its InternalIP. Nodes without
// a range or an address, on one of this machine's own addresses (`localIps`: another agent on
// the same machine, whose bridge is here) or whose range is this node's own are left out, and
// a range the table routes already by other means (not ours) is left alone. Our routes give
// `source` as their source address.
RoutePlan planPodRoutes(const std::vector<Json>& nodes, const std::string& self,
                        const std::string& ownPodCidr, const std::set<std::string>& localIps,
                        const std::vector<KernelRoute>& table, const std::string& source);

class PodRoutes {
 public:
  // `source`: this node's pod gateway address, on its pod bridge.
  PodRoutes(client::Client& client, std::string nodeName, std::string podCidr, std::string source);
  ~PodRoutes() { stop(); }
  // Watches the nodes and keeps the routes (checked again every 30 s).
  void start();
  // Stops and removes the routes it made.
  void stop();

 private:
  void loop();
  void reconcile();

  std::string self_, podCidr_, source_;
  std::unique_ptr<client::Informer> nodes_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = true, stopping_ = false;
  std::map<std::string, std::string> warned_;  // dst -> the last warning logged about it
};

}  // namespace podium::node
