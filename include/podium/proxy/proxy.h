#pragma once

// `podium proxy`: the node's proxy (the ambient-mesh shape: one per node instead of a sidecar
// per pod). Pod traffic to ClusterIPs is redirected to it by the node's nftables table; it
// recovers the original destination from the socket and forwards to the Service's endpoints,
// as raw TCP or, for HTTP ports, request by request. It is fed cluster snapshots by the agent
// (one JSON document per line on its standard input).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::proxy {

struct ProxyOptions {
  std::string address = "0.0.0.0";
  uint16_t capturePort = 15001;   // where redirected ClusterIP traffic arrives (0: any)
  uint16_t metricsPort = 15090;   // Prometheus /metrics (0: any)
  uint16_t ingressHttpPort = 0;   // the node's ingress listener (0: off)
  uint16_t ingressHttpsPort = 0;  // the same, terminating TLS (0: off)
  int workers = 1;
  std::string clusterDomain = "cluster.local";
};

class Proxy {
 public:
  virtual ~Proxy() = default;
  virtual void update(const Json& snapshot) = 0;
  virtual uint16_t capturePort() const = 0;
  virtual uint16_t metricsPort() const = 0;
  virtual uint16_t ingressHttpPort() const = 0;
  virtual uint16_t ingressHttpsPort() const = 0;
  virtual void stop() = 0;
};

Expected<std::unique_ptr<Proxy>, std::string> startProxy(const ProxyOptions& options);

// The `podium proxy` command.
int proxyCommand(const std::vector<std::string>& args);

}  // namespace podium::proxy
