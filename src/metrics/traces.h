#pragma once

// mesh.podium.io/v1alpha1 `traces` (traces.cc): the node proxies' recent sampled spans joined
// by trace id. `traces?labelSelector=...&limit=N` lists traces, newest first, that have a span
// whose tags (and `service`, its serviceName) match; `traces/ID` is one trace's spans in Zipkin's
// JSON v2 form, oldest first.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics_apis.h"
#include "podium/metrics/metrics_server.h"

namespace podium::metrics {

// Reads every node's recent spans through a NodeSource until detached (the metrics server
// stopped; the APIs may outlive it).
class SpanReader {
 public:
  explicit SpanReader(NodeSource* source) : source_(source) {}
  void detach();
  // The spans the nodes hold, of one trace when `traceId` is set; each span once.
  std::vector<Json> read(const std::vector<client::ObjectPtr>& nodes, const std::string& traceId);

 private:
  std::mutex mu_;  // guards source_
  NodeSource* source_;
};

Expected<Json, api::ApiError> getTraces(SpanReader& reader, const ClusterView& view,
                                        const std::string& path, const api::AggregatedQuery& q);

}  // namespace podium::metrics
