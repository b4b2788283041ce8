#pragma once

// The node's `podium proxy` process, run and fed by the agent: it watches Services, Endpoints,
// pods and Istio's and Kubernetes' routing resources, and on every change (batched for 20 ms)
// writes a snapshot line to the proxy's standard input. A proxy that dies is started again on
// the same ports and given the current snapshot.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "podium/client/informer.h"
#include "podium/common/expected.h"
#include "podium/node/process.h"

namespace podium::node {

struct NodeProxyOptions {
  std::string dataDir;
  std::string nodeName;
  // Lifetime asked for workload certificates (renewed at half of it).
  std::chrono::seconds workloadCertTtl{24 * 3600};
  std::string clusterDomain = "cluster.local";
  uint16_t ingressHttpPort = 0;   // 0: no ingress listener on this node
  uint16_t ingressHttpsPort = 0;  // 0: no HTTPS ingress listener
  uint16_t metricsPort = 0;       // 0: any free port
};

class NodeProxy {
 public:
  static Expected<std::unique_ptr<NodeProxy>, std::string> start(client::Client& client,
                                                                 const NodeProxyOptions& options);
  ~NodeProxy();
  void stop();
  uint16_t capturePort() const { return capturePort_; }
  uint16_t metricsPort() const { return metricsPort_; }
  uint16_t ingressHttpPort() const { return ingressPort_; }
  uint16_t ingressHttpsPort() const { return ingressTlsPort_; }
  // This node's meshed pods (IP -> network namespace path), whose traffic the proxy takes.
  void setMeshPods(std::map<std::string, std::string> pods);
  // Waits (up to `timeout`) for the proxy to listen inside the pod at `ip`, so that the pod's
  // containers start with their traffic already taken (as istio-cni waits for ztunnel).
  bool waitMeshPod(const std::string& ip, std::chrono::milliseconds timeout);
  // The proxy's per-pod request counters ({"NS/POD": {"requests", "durationMsSum"}}), or an
  // empty object when it cannot be asked.
  Json podRequestStats() const;
  // The proxy's mesh-graph edges (GET /stats/edges on its metrics port), or null.
  Json edgeStats() const;
  // The proxy's recent spans (GET /stats/traces), of one trace when `traceId` is set.
  Json recentSpans(const std::string& traceId) const;

 private:
  NodeProxy(client::Client& client, NodeProxyOptions options);
  Expected<void, std::string> spawn();
  void feedLoop();
  std::string snapshot();
  // Certificates for the service accounts of this node's meshed pods (and its ingress), new
  // ones and those past half their life requested from the mesh CA; those no pod needs any
  // more dropped. Returns the snapshot's "mesh" field.
  Json meshIdentities();
  bool identitiesDue() const;

  struct Identity {
    std::string key, chain, root;
    std::chrono::system_clock::time_point renewAt, notAfter;
    std::chrono::steady_clock::time_point retryAt;  // after a failed request
  };
  std::map<std::string, Identity> identities_;   // "ns/sa"; feeder thread only
  std::string trustDomain_;                      // the CA's, as it answered
  std::map<std::string, std::string> meshPods_;  // guarded by mu_

  client::Client& client_;
  NodeProxyOptions opts_;
  // What a snapshot is made of: its field name and the informer that fills it.
  std::vector<std::pair<std::string, std::unique_ptr<client::Informer>>> informers_;
  std::unique_ptr<ChildProcess> process_;
  int pipe_ = -1;
  uint16_t capturePort_ = 0, metricsPort_ = 0, ingressPort_ = 0, ingressTlsPort_ = 0;
  std::mutex mu_;  // guards dirty_, stopping_
  std::condition_variable cv_;
  bool dirty_ = true;
  bool stopping_ = false;
  std::thread feeder_;
};

}  // namespace podium::node
