#pragma once

// What the node proxy knows of the cluster, compiled from the snapshots the agent sends: for
// every Service its ClusterIP, ports (with Istio's protocol choice: HTTP when the port's name or
// appProtocol says http/http2/grpc, TCP otherwise) and endpoints (with their pods' labels, for
// DestinationRule subsets). Immutable once built; workers hold a shared_ptr to the current one.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "authz.h"
#include "mesh.h"
#include "podium/common/json.h"
#include "routes.h"
#include "tls.h"
#include "tracing.h"

namespace podium::proxy {

struct Endpoint {
  uint32_t ip = 0;  // host order
  uint16_t port = 0;
  bool ready = true;
  std::string pod, ns;
  std::string serviceAccount = "default";
  bool meshed = false;  // its pod is in the mesh: reached over mesh TLS
  std::map<std::string, std::string> labels;
  // Istio's principal: "<trust domain>/ns/<ns>/sa/<service account>".
  std::string principal(const std::string& trustDomain) const {
    return trustDomain + "/ns/" + ns + "/sa/" + serviceAccount;
  }
};

// Tcp: declared as something else (tcp, tls, https, mysql, ...); Auto: not declared, so the
// first bytes decide, as Istio's protocol sniffing does.
enum class Protocol { Tcp, Http, Http2, Auto };

struct ServicePort {
  std::string name;
  uint16_t port = 0;
  uint16_t nodePort = 0;
  Protocol protocol = Protocol::Tcp;
  std::vector<Endpoint> endpoints;
};

struct Service {
  std::string ns, name;
  std::string type = "ClusterIP";
  uint32_t clusterIp = 0;  // 0: headless or none
  std::map<std::string, std::string> labels;
  std::vector<ServicePort> ports;
  std::string fqdn(const std::string& domain) const { return name + "." + ns + ".svc." + domain; }
  const ServicePort* port(uint16_t p) const {
    for (const auto& sp : ports)
      if (sp.port == p) return &sp;
    return nullptr;
  }
};

class ProxyConfig {
 public:
  // `snapshot`: {"services": [...], "endpoints": [...], "pods": [...], ...} of API objects.
  static std::shared_ptr<const ProxyConfig> build(const Json& snapshot,
                                                  const std::string& domain = "cluster.local");

  const Service* byClusterIp(uint32_t ip) const;
  // A host as clients write it ("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local",
  // with or without ":port"), resolved from namespace `fromNs`.
  const Service* byHost(const std::string& host, const std::string& fromNs) const;
  const Service* find(const std::string& ns, const std::string& name) const;
  const std::vector<Service>& services() const { return services_; }
  const std::string& domain() const { return domain_; }
  // The pod that has `ip` (for the source labels of metrics), or nullptr.
  const Endpoint* podByIp(uint32_t ip) const;
  // Ports the node itself serves for Services, as kube-proxy and k3s' ServiceLB do: every
  // nodePort, and a LoadBalancer Service's own ports. hostPort -> (Service, its port).
  struct Exposed {
    const Service* service;
    const ServicePort* port;
  };
  const std::map<uint16_t, Exposed>& exposed() const { return exposed_; }
  const MeshRoutes& routes() const { return routes_; }
  const TlsCerts& tls() const { return tls_; }
  const AuthzPolicies& authz() const { return authz_; }
  const MeshTls& mesh() const { return mesh_; }
  const TracingConfig& tracing() const { return tracing_; }

 private:
  std::string domain_;
  std::vector<Service> services_;
  std::map<uint32_t, size_t> byIp_;
  std::map<std::string, size_t> byName_;  // "ns/name"
  std::map<uint32_t, Endpoint> pods_;
  std::map<uint16_t, Exposed> exposed_;
  MeshRoutes routes_;
  TlsCerts tls_;
  AuthzPolicies authz_;
  MeshTls mesh_;
  TracingConfig tracing_;
};

Protocol protocolOf(const Json& servicePort);
// The string values of a labels object (others, and a non-object, give nothing).
std::map<std::string, std::string> labelsOf(const Json& labels);

}  // namespace podium::proxy
