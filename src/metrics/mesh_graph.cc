// The mesh graph: the node proxies' request counters over the last window, drawn as Kiali's
// versioned-app graph. Source workloads point at the services they call, services at the
// workload versions that answered, each edge with requests/s, the 5xx ratio, p95/p99 latency and
// whether it was all mutual TLS; an edge from a service carries its share of the service's
// traffic (the canary split). Services carry badges for the routing rules that apply to them.

#include <map>

#include "metrics_apis.h"
#include "podium/client/objects.h"
#include "traces.h"

namespace podium::metrics {

namespace {

struct GraphEdge {
  double perSecond = 0, errors = 0, p95 = 0, p99 = 0;
  bool mtls = true;
};

bool names(const std::string& host, const std::string& svc, const std::string& ns) {
  return host == svc || host == svc + "." + ns || host.rfind(svc + "." + ns + ".svc", 0) == 0;
}

class MeshGraphApi : public api::AggregatedApi {
 public:
  explicit MeshGraphApi(ClusterView view) : view_(std::move(view)) {}
  std::string group() const override { return "mesh.podium.io"; }
  std::string version() const override { return "v1alpha1"; }
  std::vector<api::AggregatedResource> resources() const override {
    return {{"graph", "MeshGraph", false, {"get"}}, {"traces", "Trace", false, {"get", "list"}}};
  }

  Expected<Json, api::ApiError> get(const std::string& path,
                                    const api::AggregatedQuery& q) override {
    if (path.rfind("traces", 0) == 0 && view_.spans) return getTraces(*view_.spans, view_, path, q);
    if (path != "graph")
      return Unexpected(
          api::ApiError(404, "NotFound", "the server could not find the requested resource"));
    std::map<std::string, Json> nodes;
    std::map<std::pair<std::string, std::string>, GraphEdge> edges;
    auto add = [&](const std::string& from, const std::string& to, const EdgeRate& r) {
      GraphEdge& e = edges[{from, to}];
      e.perSecond += r.perSecond;
      e.errors += r.errorRatio * r.perSecond;
      e.p95 = std::max(e.p95, r.p95Ms);
      e.p99 = std::max(e.p99, r.p99Ms);
      e.mtls = e.mtls && json::boolean(r.id, "mtls");
    };
    for (const auto& r : view_.store->edges(view_.clock->monotonic())) {
      const Json& id = r.id;
      std::string srcNs = json::str(id, "sourceNamespace"),
                  svcNs = json::str(id, "serviceNamespace");
      std::string src = "workload/" + srcNs + "/" + json::str(id, "source");
      nodes[src] = {{"id", src},
                    {"kind", "workload"},
                    {"namespace", srcNs},
                    {"name", json::str(id, "source")}};
      std::string dst =
          "version/" + svcNs + "/" + json::str(id, "workload") + "/" + json::str(id, "version");
      nodes[dst] = {{"id", dst},
                    {"kind", "version"},
                    {"namespace", svcNs},
                    {"name", json::str(id, "workload")},
                    {"version", json::str(id, "version")}};
      std::string service = json::str(id, "service");
      if (service.empty() || service == "unknown") {
        add(src, dst, r);
        continue;
      }
      std::string svc = "service/" + svcNs + "/" + service;
      nodes[svc] = {{"id", svc},
                    {"kind", "service"},
                    {"namespace", svcNs},
                    {"name", service},
                    {"badges", badges(service, svcNs)}};
      add(src, svc, r);
      add(svc, dst, r);
    }
    std::map<std::string, double> outOf;  // a service's total, for its edges' shares
    for (const auto& [k, e] : edges) outOf[k.first] += e.perSecond;
    Json list = Json::array();
    for (const auto& [k, e] : edges) {
      Json j = {{"from", k.first},
                {"to", k.second},
                {"requestsPerSecond", e.perSecond},
                {"errorRatio", e.perSecond > 0 ? e.errors / e.perSecond : 0},
                {"p95Ms", e.p95},
                {"p99Ms", e.p99},
                {"mtls", e.mtls}};
      if (k.first.rfind("service/", 0) == 0 && outOf[k.first] > 0)
        j["share"] = e.perSecond / outOf[k.first];
      list.push_back(std::move(j));
    }
    Json nodeList = Json::array();
    for (auto& [k, n] : nodes) nodeList.push_back(std::move(n));
    return Json{{"kind", "MeshGraph"},
                {"apiVersion", "mesh.podium.io/v1alpha1"},
                {"metadata", {{"creationTimestamp", timefmt::rfc3339(view_.clock->now())}}},
                {"nodes", nodeList},
                {"edges", list}};
  }

 private:
  // VirtualService, DestinationRule, fault injection, circuit breaker.
  Json badges(const std::string& svc, const std::string& ns) {
    Json out = Json::array();
    for (const auto& vs : view_.virtualServices().list(ns)) {
      bool applies = false, fault = false;
      for (const auto& h : client::at(*vs, {"spec", "hosts"}))
        applies = applies || (h.is_string() && names(h.get<std::string>(), svc, ns));
      for (const auto& route : client::at(*vs, {"spec", "http"})) {
        fault = fault || route.contains("fault");
        for (const auto& d : client::at(route, {"route"}))
          applies = applies || names(json::getString(d, {"destination", "host"}), svc, ns);
      }
      if (!applies) continue;
      out.push_back({{"kind", "VirtualService"}, {"name", client::nameOf(*vs)}});
      if (fault) out.push_back({{"kind", "FaultInjection"}, {"name", client::nameOf(*vs)}});
    }
    for (const auto& dr : view_.destinationRules().list(ns)) {
      if (!names(json::getString(*dr, {"spec", "host"}), svc, ns)) continue;
      out.push_back({{"kind", "DestinationRule"}, {"name", client::nameOf(*dr)}});
      const Json& policy = client::at(*dr, {"spec", "trafficPolicy"});
      if (policy.contains("connectionPool") || policy.contains("outlierDetection"))
        out.push_back({{"kind", "CircuitBreaker"}, {"name", client::nameOf(*dr)}});
    }
    return out;
  }

  ClusterView view_;
};

}  // namespace

api::AggregatedApiPtr newMeshGraphApi(ClusterView view) {
  return std::make_shared<MeshGraphApi>(std::move(view));
}

}  // namespace podium::metrics
