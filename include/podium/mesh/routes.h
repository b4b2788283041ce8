#pragma once

// Istio's traffic management resources (networking.istio.io v1alpha3/v1beta1/v1 — one schema)
// and Kubernetes Ingress, compiled for the proxy: VirtualService routes with their matches,
// weighted destinations, fault injection, retries, timeouts, rewrites, redirects, direct
// responses, header operations and mirrors; DestinationRule subsets and traffic policies;
// Gateway servers. Hosts are resolved to FQDNs relative to the resource's namespace.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "podium/common/json.h"

namespace re2 {
class RE2;
}

namespace podium::mesh {

// Istio's StringMatch. A regex is RE2 syntax matched against the whole string, as Envoy's
// safe_regex: linear time, no recursion, whatever the input; a pattern RE2 rejects matches
// nothing, and so does an input longer than kMaxMatchInput.
struct StringMatch {
  static constexpr size_t kMaxMatchInput = 64 * 1024;
  enum class Kind { Exact, Prefix, Regex } kind = Kind::Exact;
  std::string value;
  std::shared_ptr<const re2::RE2> re;
  bool matches(const std::string& s, bool ignoreCase = false) const;
  static std::optional<StringMatch> from(const Json& m);  // {exact|prefix|regex: "..."}
};

struct HttpMatch {
  std::optional<StringMatch> uri, scheme, method, authority;
  std::vector<std::pair<std::string, std::optional<StringMatch>>> headers;  // lower-case names
  std::vector<std::string> withoutHeaders;
  std::vector<std::pair<std::string, std::optional<StringMatch>>> queryParams;
  uint16_t port = 0;
  std::vector<std::string> gateways;  // empty: the VirtualService's
  std::map<std::string, std::string> sourceLabels;
  std::string sourceNamespace;
  bool ignoreUriCase = false;
};

struct HeaderOps {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

struct RouteDestination {
  std::string host;  // FQDN ("reviews.default.svc.cluster.local") or as written if not a Service
  std::string subset;
  uint16_t port = 0;
  int64_t weight = 0;
  HeaderOps requestHeaders, responseHeaders;
};

struct RetryPolicy {
  int attempts = 2;  // Istio's default: 2 retries
  int64_t perTryTimeoutMs = 0;
  std::set<std::string> retryOn = {"connect-failure", "refused-stream", "unavailable", "cancelled",
                                   "retriable-status-codes"};
  std::set<int> statusCodes;
};

struct HttpRoute {
  std::string name;
  std::vector<HttpMatch> match;  // any of; empty matches everything
  std::vector<RouteDestination> route;
  std::optional<Json> redirect;  // {uri, authority, scheme, port, redirectCode}
  std::optional<std::pair<int, std::string>> directResponse;
  std::optional<std::string> rewriteUri, rewriteAuthority;
  int64_t timeoutMs = 0;  // 0: none (Istio's default)
  RetryPolicy retries;
  double delayPercent = 0;
  int64_t delayMs = 0;
  double abortPercent = 0;
  int abortStatus = 0;
  HeaderOps requestHeaders, responseHeaders;
  std::optional<RouteDestination> mirror;
  double mirrorPercent = 100;
};

struct VirtualService {
  std::string ns, name;
  std::vector<std::string> hosts;     // as written, resolved to FQDNs where they name Services
  std::vector<std::string> gateways;  // "ns/name" or "mesh"
  std::vector<HttpRoute> http;
};

struct TrafficPolicy {
  enum class Lb { RoundRobin, LeastRequest, Random, ConsistentHash } lb = Lb::RoundRobin;
  std::string hashHeader, hashCookie;
  bool hashSourceIp = false;
  // connectionPool
  int maxConnections = 1 << 30;
  int maxPendingRequests = 1 << 30;
  int maxRequestsPerConnection = 0;  // 0: unlimited
  int maxRequests = 1 << 30;         // in flight at once (http2MaxRequests, Envoy's max_requests)
  int64_t connectTimeoutMs = 10000;
  // outlierDetection (Envoy's semantics; Istio's defaults when the block is present)
  bool outlier = false;
  int consecutive5xx = 5;
  int consecutiveGatewayErrors = 0;
  int64_t intervalMs = 10000;
  int64_t baseEjectionMs = 30000;
  int maxEjectionPercent = 10;
  // tls.mode DISABLE: plaintext to these endpoints, never mutual TLS (ISTIO_MUTUAL, the mesh's
  // way anyway, sets it back; SIMPLE/MUTUAL origination is not done).
  bool plaintext = false;
};

struct Subset {
  std::string name;
  std::map<std::string, std::string> labels;
  TrafficPolicy policy;
};

struct DestinationRule {
  std::string ns, name, host;
  TrafficPolicy policy;
  std::vector<Subset> subsets;
  const Subset* subset(const std::string& n) const {
    for (const auto& s : subsets)
      if (s.name == n) return &s;
    return nullptr;
  }
};

struct GatewayServer {
  uint16_t port = 0;
  std::string protocol;  // HTTP, HTTPS, ...
  std::vector<std::string> hosts;
  std::string tlsMode, credentialName;  // for HTTPS
  bool httpsRedirect = false;           // an HTTP server sending clients to HTTPS
};

struct Gateway {
  std::string ns, name;
  std::vector<GatewayServer> servers;
};

// Kubernetes Ingress rules, as routes of the node's ingress listener.
struct IngressPath {
  std::string host;  // "" = any
  std::string path;
  std::string pathType;  // Exact, Prefix, ImplementationSpecific
  std::string service, ns;
  uint16_t port = 0;
  std::string portName;
};

class MeshRoutes {
 public:
  static MeshRoutes build(const Json& snapshot, const std::string& domain);
  // The VirtualService for traffic to `fqdn` inside the mesh (gateways include "mesh").
  const VirtualService* forMesh(const std::string& fqdn) const;
  // The VirtualService serving `host` (no port) on a Gateway's plain-HTTP server (or, with
  // `https`, a server terminating TLS), that gateway, and whether the server redirects to HTTPS.
  const VirtualService* forGateway(const std::string& host, bool https, std::string* gatewayName,
                                   bool* httpsRedirect = nullptr) const;
  const DestinationRule* ruleFor(const std::string& fqdn) const;
  // Ingress paths matching host and path (longest Exact/Prefix first).
  const IngressPath* ingressFor(const std::string& host, const std::string& path) const;
  const std::vector<VirtualService>& virtualServices() const { return virtualServices_; }
  // What Istio's analysis reports on a VirtualService (IST0101 ReferencedResourceNotFound):
  // destinations whose subset no DestinationRule for their host defines. Traffic routed there
  // is answered 503.
  std::vector<std::string> problems(const VirtualService& v) const;
  const std::vector<Gateway>& gateways() const { return gateways_; }

 private:
  std::vector<VirtualService> virtualServices_;
  std::vector<DestinationRule> rules_;
  std::vector<Gateway> gateways_;
  std::vector<IngressPath> ingress_;
};

// "1.5s", "100ms", "2m", "1h" -> milliseconds; nullopt if malformed.
std::optional<int64_t> parseDuration(const std::string& d);
// Istio host matching: "*.example.com" matches "a.example.com"; "*" matches everything.
bool hostMatches(const std::string& pattern, const std::string& host);
// How closely `pattern` names `host`: -1 not at all, 0 for "*", the length of a matching
// "*.suffix", more than any of those for the exact name.
int hostSpecificity(const std::string& pattern, const std::string& host);

}  // namespace podium::mesh
