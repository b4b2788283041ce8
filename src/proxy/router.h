#pragma once

// The routing half of the node proxy, shared by its HTTP/1.1 and HTTP/2 sides: which
// VirtualService route (or Ingress rule) a request takes, where its destination leads (Service,
// port, DestinationRule subset, ready endpoints), which endpoint serves an attempt (the
// DestinationRule's load balancer, skipping ejected hosts) and what an endpoint's answers do to
// its health (outlier detection with Envoy's semantics).

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "http1.h"
#include "routes.h"

namespace podium::proxy {

class Worker;

// Where a request goes once routed.
struct Target {
  const Service* service = nullptr;
  const ServicePort* port = nullptr;
  std::string subset;
  const TrafficPolicy* policy = nullptr;
  std::vector<const Endpoint*> endpoints;  // ready, in the subset
  std::string cluster;                     // Envoy's name: outbound|80|v1|svc.ns.svc.cluster.local
};

// Where a request arrived and who sent it.
struct RequestSource {
  uint32_t ip = 0;  // the client (a pod, for mesh traffic)
  std::string svcNs, svcName;
  uint16_t svcPort = 0;      // mesh traffic: the Service port called
  uint16_t ingressPort = 0;  // ingress traffic: the listener's port
  bool tls = false;          // arrived over TLS (the HTTPS ingress listener)
};

// The outcome of routing one request.
struct Routed {
  int localStatus = 0;  // non-zero: the proxy answers itself (no route, redirect, ...)
  std::string localBody, localFlags = "NR";
  std::vector<std::pair<std::string, std::string>> localHeaders;
  const HttpRoute* route = nullptr;  // the VirtualService route taken, if any
  const RouteDestination* dest = nullptr;
  Target target;
  std::string gateway = "mesh";  // or the Gateway's "ns/name"
};

// Routes `req` into `out` (reset first), applying the route's URI and authority rewrites to it.
void routeRequest(const ProxyConfig& config, http1::Head& req, const RequestSource& from,
                  Routed* out);
// Where a destination leads; an error message when nowhere.
std::string findTarget(const ProxyConfig& config, const RequestSource& from,
                       const RouteDestination* dest, const std::string& host, uint16_t port,
                       Target* t);
// An endpoint for the next attempt (nullptr: none healthy), preferring ones not yet `tried`.
const Endpoint* pickEndpoint(Worker& w, const Target& t, const http1::Head& req, uint32_t srcIp,
                             const std::set<const Endpoint*>& tried);
// Whether the AuthorizationPolicies of `dest`'s workload let `req` from `srcIp` through (`req`
// null: a TCP connection).
// `principal`: the client's, proven by its mesh certificate ("" for a plaintext client);
// without it, the identity of the pod at `srcIp`.
bool authorized(const ProxyConfig& config, uint32_t srcIp, const Endpoint& dest,
                const http1::Head* req, const std::string* principal = nullptr);
// Counts an answer (status) or a failure against the endpoint; may eject it.
void recordOutcome(Worker& w, const Target& t, const Endpoint& e, int status, bool failure);

// A route's header operations (remove, set, add) on a request or response head, or on HTTP/2
// header pairs.
void applyOps(http1::Head& h, const HeaderOps& ops);
void applyOps(std::vector<std::pair<std::string, std::string>>& h, const HeaderOps& ops);

double uniform(double max);  // [0, max), per thread
uint64_t randomU64();
std::string hostOnly(const std::string& host);  // lower-case, without the port

}  // namespace podium::proxy
