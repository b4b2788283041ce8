#pragma once

// What the metrics server knows, fed by its scrapes: each node's latest Summary (CPU and memory
// of the node and of every container), and a short history of each node proxy's per-pod request
// counters from which request rates and mean latencies are computed. No threads, no I/O: the
// scrape loop feeds it, the aggregated APIs read it.

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::metrics {

using TimePoint = std::chrono::steady_clock::time_point;

struct ContainerUsage {
  std::string name;
  uint64_t nanoCores = 0;
  uint64_t workingSetBytes = 0;
};

struct PodUsage {
  std::string timestamp;  // when the node sampled it (RFC 3339)
  std::vector<ContainerUsage> containers;
};

struct NodeUsage {
  std::string timestamp;
  uint64_t nanoCores = 0;
  uint64_t workingSetBytes = 0;
};

struct RequestRate {
  double perSecond = 0;
  double requests = 0;       // over the window
  double durationMsSum = 0;  // over the window
  double windowSeconds = 0;  // the longest window any node's counters covered
  double meanMs() const { return requests > 0 ? durationMsSum / requests : 0; }
};

// One edge of the mesh graph over the window: requests from a source workload to a service,
// answered by one workload version (as the node proxies counted them).
struct EdgeRate {
  Json id;  // source, sourceNamespace, service, serviceNamespace, workload, version, mtls
  double perSecond = 0;
  double errorRatio = 0;  // 5xx / all
  double p95Ms = 0, p99Ms = 0;
  double requests = 0;
};

class UsageStore {
 public:
  // Request rates are taken over at least `rateWindow` (or all the history there is); data a
  // node has not refreshed for `staleAfter` is no longer reported.
  UsageStore(std::chrono::milliseconds rateWindow, std::chrono::milliseconds staleAfter);

  // A node's Summary API document (GET /stats/summary), read at `at`.
  void addSummary(const std::string& node, const Json& summary, TimePoint at);
  // A node proxy's counters (GET /stats/mesh: {"pods": {"NS/POD": {"requests", ...}}}) at `at`.
  void addMesh(const std::string& node, const Json& mesh, TimePoint at);
  void forgetNode(const std::string& node);

  std::optional<NodeUsage> node(const std::string& name, TimePoint now) const;
  // A pod's usage once every container of it has a CPU rate (metrics-server leaves out pods
  // with incomplete data).
  std::optional<PodUsage> pod(const std::string& ns, const std::string& name, TimePoint now) const;
  // The pod's request rate summed over every node proxy that sends it traffic; nullopt until
  // some proxy has been read twice (a pod no proxy has sent anything to has rate 0).
  std::optional<RequestRate> requests(const std::string& ns, const std::string& pod,
                                      TimePoint now) const;
  // Every edge with traffic over the window, summed over the node proxies.
  std::vector<EdgeRate> edges(TimePoint now) const;

 private:
  struct EdgeCount {
    Json id;
    double requests = 0, errors = 0;
    std::vector<double> buckets;
  };
  struct MeshSample {
    TimePoint at;
    std::map<std::string, std::pair<double, double>> pods;  // "ns/pod" -> requests, ms sum
    std::map<std::string, EdgeCount> edges;                 // by the edge id's JSON
    std::vector<double> bounds;                             // histogram bucket bounds (ms)
  };

  struct NodeState {
    TimePoint summaryAt{};
    std::optional<NodeUsage> usage;
    std::map<std::string, PodUsage> pods;  // "ns/pod"
    std::deque<MeshSample> mesh;
  };
  bool fresh(TimePoint at, TimePoint now) const { return now - at <= staleAfter_; }
  // The latest sample of a node and the newest a window before it (nulls if not two fresh).
  std::pair<const MeshSample*, const MeshSample*> window(const NodeState& s, TimePoint now) const;

  std::chrono::milliseconds rateWindow_, staleAfter_;
  mutable std::mutex mu_;  // guards nodes_
  std::map<std::string, NodeState> nodes_;
};

}  // namespace podium::metrics
