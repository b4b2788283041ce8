#pragma once

// The node's nftables table (`ip podium-<bridge>`): redirects traffic from the node's pods (and
// from the node itself) that is addressed to the cluster DNS IP to the agent's DNS server, TCP
// from the pods to ClusterIPs to the node proxy (which recovers the original destination), and
// refuses to forward pod traffic anywhere but another pod bridge, so nothing a pod sends leaves
// the machine. The table is replaced atomically on every apply and deleted on stop.

#include <cstdint>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::node {

struct NetfilterRules {
  std::string bridge;        // the pods' bridge ("podium0")
  std::string clusterDns;    // "10.43.0.10"
  uint16_t dnsPort = 0;      // where the DNS server listens on the node
  std::string serviceCidr;   // "10.43.0.0/16": TCP to it goes to the node proxy
  uint16_t capturePort = 0;  // the node proxy's capture port (0: no proxy)
  // "10.42.0.0/16": pods may reach other nodes' pods (routed off the node); other traffic
  // from pods that would leave the node is refused unless it answers a connection to them.
  std::string clusterCidr;
};

class NodeNetfilter {
 public:
  explicit NodeNetfilter(std::string bridge)
      : bridge_(bridge), table_("podium-" + std::move(bridge)) {}
  ~NodeNetfilter();
  // Makes this process the only user of the bridge, its table and its pod addresses on the
  // machine (its network namespace), until it exits (an flock on
  // /run/podium/<bridge>.<netns inode>.lock, so a killed agent frees it).
  // A second agent on the same pod range would hand out the same pod IPs and replace, then
  // delete, the first one's DNS redirect: it is refused instead, naming the holder's pid.
  Expected<void, std::string> claim();
  // Makes the pods' bridge, up, with the pod range's gateway address (its first, which the CNI
  // bridge plugin would give it at the first pod) and the probe address (mesh::kProbeSource),
  // so that both exist before any pod does: the routes to other nodes' pods take the gateway
  // address as their source. Returns the gateway address.
  Expected<std::string, std::string> makeBridge(const std::string& podCidr);
  // Loads the table. UDP flows to the cluster DNS IP tracked before it are deleted: they are
  // NATed to an earlier agent's DNS port.
  Expected<void, std::string> apply(const NetfilterRules& rules);
  void remove();
  const std::string& table() const { return table_; }
  // Forgets what the host knew of a gone pod that had `ip`, now a new pod's: its neighbour entry
  // on the bridge (a failed one answers "no route to host" until it expires) and its
  // connection-tracking entries. Those include UDP flows to the cluster DNS, NATed to the DNS
  // port of the agent of that time, which stay for up to 120 s once a busy resolver reuses
  // their source ports: the new pod's lookups that hit one would go to a closed port, and fail.
  void forgetAddress(const std::string& ip);

 private:
  // Deletes the connection-tracking entries `conntrack -D <filter>` matches.
  void forgetFlows(const std::vector<std::string>& filter);

  std::string bridge_;
  std::string table_;
  bool applied_ = false;
  int lockFd_ = -1;
};

// The nft script `apply` loads (for tests and for reading).
std::string netfilterScript(const std::string& table, const NetfilterRules& rules);

// A meshed pod's own table (`ip podium-mesh`, in its network namespace): its TCP to the service
// CIDR goes to the node proxy's listener 15001 in the pod, and TCP coming in from the pod
// network to its listener 15006, except the node's probes (from mesh::kProbeSource). DNS is
// left alone.
std::string podMeshScript(const std::string& serviceCidr);
// Loads `script` with nft inside the network namespace at `netnsPath`.
Expected<void, std::string> applyInNetns(const std::string& netnsPath, const std::string& script);

}  // namespace podium::node
