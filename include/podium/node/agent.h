#pragma once

// The node agent (the kubelet's role): registers this machine as a Node and renews its Lease,
// runs containerd and drives it through the CRI to run the pods scheduled here — sandboxes,
// image pulls, init and app containers with restart policies and CrashLoopBackOff, probes,
// graceful termination — and reports pod status and events as Kubernetes does. It also serves
// the API server's logs, exec, attach and port-forward requests for its pods.

#include <chrono>
#include <memory>
#include <string>

#include "podium/api/node_connector.h"
#include "podium/client/client.h"
#include "podium/common/expected.h"
#include "podium/common/time.h"

namespace podium::node {

struct AgentOptions {
  std::string dataDir;
  std::string nodeName;  // default: the host name
  std::string nodeIp;    // default: the first non-loopback IPv4 address, else 127.0.0.1
  // This node's pod addresses; "": the range the server allocates to the Node (its controllers'
  // --cluster-cidr), waited for at start.
  std::string podCidr = "10.42.0.0/24";
  std::string clusterCidr = "10.42.0.0/16";
  std::string serviceCidr = "10.43.0.0/16";
  std::string clusterDns = "10.43.0.10";
  std::string clusterDomain = "cluster.local";
  std::string registry;          // "127.0.0.1:5000"
  std::string sandboxImage;      // "127.0.0.1:5000/podium/pause:3.10"
  std::string bridge;            // the CNI bridge of this node's pods (default: bridgeFor(podCidr))
  int kubeletPort = 10250;       // where the node's endpoints are served (podium agent)
  uint16_t dnsPort = 0;          // the cluster DNS server's port on the node (0: any free one)
  uint16_t ingressHttpPort = 0;  // the node proxy's ingress listener (0: none)
  uint16_t ingressHttpsPort = 0;  // the same with TLS (0: none)
  // The lifetime asked for mesh workload certificates (renewed at half of it).
  std::chrono::seconds workloadCertTtl{24 * 3600};
  bool controlPlane = true;  // labels the node as a control-plane node
  // How often the node's Lease in kube-node-lease is renewed (its "alive").
  std::chrono::milliseconds leaseRenewInterval{2000};
  int workers = 10;
  // Time for statuses, heartbeats, restart and pull back-offs (I/O deadlines stay real time).
  Clock* clock = &realClock();
};

class Agent : public api::NodeConnector {
 public:
  // Stops the agent. With `stopPods`, every pod sandbox is stopped first (a server shutdown);
  // the pods stay in the API and come back on the next start.
  virtual void stop(bool stopPods) = 0;
  virtual const std::string& nodeName() const = 0;
  virtual const std::string& nodeIp() const = 0;
  // The kubelet's Summary API document (GET /stats/summary): CPU and memory of the node and of
  // each container of each pod, sampled every second (see src/node/resource_stats.h).
  virtual Json statsSummary() const = 0;
  // Requests the node's proxy sent to each pod, wherever the pod runs, counted since the proxy
  // started: {"pods": {"NS/POD": {"requests": N, "durationMsSum": X}}} (GET /stats/mesh). The
  // metrics server sums them over nodes into per-pod rates (a restart shows as a drop).
  virtual Json meshStats() const = 0;
  // The node proxy's recent sampled spans as Zipkin JSON v2, all or of one trace (GET
  // /stats/traces[?traceId=ID]); an empty array without a proxy.
  virtual Json recentSpans(const std::string& traceId) const = 0;
  // The node's metrics in Prometheus' text format (GET /metrics): pod start-up by stage.
  virtual std::string metrics() const = 0;
};

// The bridge of a node's pods on its machine, one per pod range: "podium1" for 10.42.1.0/24
// (the third octet; with blocks smaller than /24 the fourth too: "podium1-128").
std::string bridgeFor(const std::string& podCidr);

Expected<std::unique_ptr<Agent>, std::string> startAgent(client::Client& client,
                                                         const AgentOptions& options);

}  // namespace podium::node
