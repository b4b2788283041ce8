#pragma once

#include <map>
#include <mutex>
#include <set>

#include "podium/client/events.h"
#include "podium/common/net.h"
#include "util.h"

namespace podium::controllers {

// Kubernetes' node IPAM (kube-controller-manager --allocate-node-cidrs, the range allocator):
// every Node without spec.podCIDR gets the lowest free block of `maskSize` bits from the
// cluster CIDR, as spec.podCIDR and spec.podCIDRs. Ranges nodes already have (an agent's own
// --pod-cidr, an earlier allocation) are never handed out again; a deleted node's block is free
// again once it is gone. When the cluster CIDR is exhausted the node gets a CIDRNotAvailable
// event and is tried again later.
class NodeIpamController : public client::Controller {
 public:
  NodeIpamController(client::InformerFactory& informers, client::EventRecorder& events,
                     net::Cidr clusterCidr, int maskSize);
  ~NodeIpamController() override { stop(); }

 protected:
  SyncResult sync(const std::string& node) override;

 private:
  // Adds the blocks of the cluster CIDR that `range` overlaps.
  void markUsed(const net::Cidr& range, std::set<uint32_t>& used) const;

  client::EventRecorder& events_;
  client::Informer& nodes_;
  net::Cidr cluster_;
  int maskSize_;
  std::mutex mu_;
  // Blocks this controller handed out, which its cache may not show yet: node -> block.
  std::map<std::string, uint32_t> allocated_;
};

}  // namespace podium::controllers
