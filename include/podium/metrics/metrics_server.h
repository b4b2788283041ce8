#pragma once

// The metrics pipeline of the cluster, metrics-server and prometheus-adapter in one: every
// node's agent is read once a second (its Summary API for CPU and memory, its proxy's per-pod
// request counters), and two aggregated APIs answer from what was read:
//   metrics.k8s.io/v1beta1         NodeMetrics and PodMetrics (`kubectl top`, the HPA's
//                                  Resource and ContainerResource metrics)
//   custom.metrics.k8s.io/v1beta2  istio_requests_per_second and
//                                  istio_request_duration_milliseconds of pods and Services
//                                  (the HPA's Pods and Object metrics)
// Each API server runs its own; they read the same nodes.

#include <chrono>
#include <memory>
#include <string>

#include "podium/api/aggregated.h"
#include "podium/client/client.h"
#include "podium/common/expected.h"
#include "podium/common/time.h"

namespace podium::metrics {

// How one node's counters are read: `path` is "/stats/summary" or "/stats/mesh" of the node
// agent's endpoints (include/podium/node/node_api.h).
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual Expected<Json, std::string> get(const Json& node, const std::string& path) = 0;
};

// Over HTTPS to the address and port the Node object publishes (InternalIP,
// daemonEndpoints.kubeletEndpoint), with `token`. The agents' certificates are their own, so
// they are not verified (kube-apiserver's default without --kubelet-certificate-authority).
std::unique_ptr<NodeSource> httpsNodeSource(std::string token);

struct MetricsOptions {
  std::chrono::milliseconds scrapeInterval{1000};
  // Request rates are over at least this long (the newest two scrapes at the least).
  std::chrono::milliseconds rateWindow{1000};
  Clock* clock = &realClock();
};

class MetricsServer {
 public:
  virtual ~MetricsServer() = default;
  // The two APIs, to register with the API server (ResourceRegistry::addAggregatedApi).
  virtual api::AggregatedApiPtr resourceMetrics() = 0;
  virtual api::AggregatedApiPtr customMetrics() = 0;
  // mesh.podium.io/v1alpha1 `graph`: who talks to whom, how much and how well (the UI's graph).
  virtual api::AggregatedApiPtr meshGraph() = 0;
  // Stops scraping; the APIs then answer from nothing. Idempotent.
  virtual void stop() = 0;
};

// Starts reading the nodes `client` lists through `source` (both outlive the server).
Expected<std::unique_ptr<MetricsServer>, std::string> startMetricsServer(
    client::Client& client, NodeSource& source, const MetricsOptions& options = {});

}  // namespace podium::metrics
