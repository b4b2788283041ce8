#pragma once

// The two aggregated APIs over a UsageStore and the cached nodes, pods and Services (for names,
// labels and selectors): metrics.k8s.io/v1beta1 as metrics-server answers it, and
// custom.metrics.k8s.io/v1beta2 as prometheus-adapter does.

#include <memory>

#include "podium/api/aggregated.h"
#include "podium/client/informer_factory.h"
#include "podium/common/time.h"
#include "usage_store.h"

namespace podium::metrics {

// What the APIs read, shared with them: the API server may keep them after the metrics server
// that fed them has stopped (they then answer from what was last read).
class SpanReader;

struct ClusterView {
  std::shared_ptr<const UsageStore> store;
  std::shared_ptr<SpanReader> spans;  // the nodes' recent spans (traces.h)
  // Started informers of nodes, pods and Services.
  std::shared_ptr<client::InformerFactory> informers;
  Clock* clock = &realClock();
  client::Informer& nodes() const { return informers->informer(client::resources::kNodes); }
  client::Informer& pods() const { return informers->informer(client::resources::kPods); }
  client::Informer& services() const { return informers->informer(client::resources::kServices); }
  client::Informer& virtualServices() const {
    return informers->informer(client::resources::kVirtualServices);
  }
  client::Informer& destinationRules() const {
    return informers->informer(client::resources::kDestinationRules);
  }
};

// The custom metrics served, with what they are per object.
inline constexpr const char* kRequestsPerSecond = "istio_requests_per_second";
inline constexpr const char* kRequestDuration = "istio_request_duration_milliseconds";

api::AggregatedApiPtr newResourceMetricsApi(ClusterView view);
api::AggregatedApiPtr newCustomMetricsApi(ClusterView view);
// mesh.podium.io/v1alpha1 `graph`: Kiali's versioned-app graph from the proxies' counters
// (mesh_graph.cc), and `traces` from their recent spans (traces.cc).
api::AggregatedApiPtr newMeshGraphApi(ClusterView view);

}  // namespace podium::metrics
