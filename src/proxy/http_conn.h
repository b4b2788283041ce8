#pragma once

// One downstream HTTP/1.1 connection through the proxy, request by request (keep-alive and
// pipelining in order): parse and check the request, route it (the Service's VirtualService for
// mesh traffic; Gateway-bound VirtualServices and Ingress rules on the ingress listener), apply
// faults, redirects, direct responses, rewrites and header operations, pick a destination by
// weight and an endpoint by the DestinationRule's load balancer (skipping ejected hosts), send
// it over a pooled connection, retry as the route says, and stream the response back while
// counting Istio's metrics and writing an Envoy-style access log line. An upgrade (WebSocket)
// answered with 101 becomes a raw relay.

#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "http1.h"
#include "worker.h"

namespace podium::proxy {

// Mesh traffic to `svc`'s port `sp` (captured ClusterIP traffic).
void startHttpConnection(Worker& worker, Socket s, const Service* svc, const ServicePort* sp,
                         uint32_t sourceIp);
// Traffic arriving at the node's ingress listener on `port` (Gateway servers, Ingress); with
// `tls`, the HTTPS listener's front context, TLS is terminated first.
void startIngressConnection(Worker& worker, int fd, uint16_t port, uint32_t sourceIp,
                            SSL_CTX* tls = nullptr);

// Inbound mesh traffic to a pod of this node (see Conn::setInbound).
void startInboundConnection(Worker& worker, Socket s, const Endpoint& pod, uint32_t sourceIp,
                            std::optional<std::string> principal);

// When set, every finished request is logged to stdout in Envoy's default format.
void setAccessLog(bool on);

}  // namespace podium::proxy
