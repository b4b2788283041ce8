#pragma once

// A proxy worker: one thread, one event loop, its own SO_REUSEPORT listeners, and every
// connection accepted there handled to the end on that thread.

#include <netinet/in.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "socket.h"
#include "tracing.h"

namespace podium::proxy {

class Worker;

// Shared by all workers: the current configuration and the metrics.
class ProxyState {
 public:
  std::shared_ptr<const ProxyConfig> config() const { return std::atomic_load(&config_); }
  void setConfig(std::shared_ptr<const ProxyConfig> c) {
    std::atomic_store(&config_, std::move(c));
  }
  Metrics metrics;
  Tracer tracer;

 private:
  std::shared_ptr<const ProxyConfig> config_ = ProxyConfig::build(Json::object());
};

// Istio's labels for one side of a request, from its pod.
struct WorkloadLabels {
  std::string workload, ns, app, version, canonicalService, canonicalRevision, principal;
};
WorkloadLabels workloadLabels(const ProxyConfig& config, const Endpoint& pod);

// Who records a request's span, and by which rule: the ingress gateway, the pod a request came
// from (client spans), or the pod it arrives at (`inboundPod`, server spans).
struct TraceSite {
  std::string service;  // "<canonical service>.<namespace>", the span's serviceName
  std::string canonicalService, canonicalRevision, ns;
  bool server = false;
  TracingRule rule;
};
TraceSite traceSite(const ProxyConfig& config, uint32_t sourceIp, bool ingress,
                    const Endpoint* inboundPod);

// What a span says of one finished request.
struct SpanFacts {
  const ProxyConfig* config = nullptr;  // the snapshot that routed the request
  const http1::Head* request = nullptr;
  std::string_view protocol;  // "HTTP/1.1", "HTTP/2"
  std::string_view path;      // as the client sent it
  int status = 0;
  std::string_view flags, cluster;
  uint64_t requestBytes = 0, responseBytes = 0;
  const Service* service = nullptr;
  uint16_t servicePort = 0;
  const Endpoint* upstream = nullptr;
  uint32_t peerIp = 0;
  int64_t startUs = 0;  // wall clock
  double ms = 0;
};
// Records the span of a sampled request with Istio's tags (nothing when it was not sampled).
void recordSpan(ProxyState& state, const TraceSite& site, const TraceContext& trace,
                const SpanFacts& facts);
int64_t wallMicros();

// Labels for one connection: who sent it (from the pod that has the source address) and which
// Service/pod it went to.
MetricLabels labelsFor(const ProxyConfig& config, uint32_t sourceIp, const Service* svc,
                       const Endpoint* dest, bool ingress = false,
                       const TrafficPolicy* policy = nullptr);

// How a connection reaches an endpoint: plaintext from the node (0), from inside the endpoint's
// own pod (kViaPod: the last hop of inbound mesh traffic), or over mesh TLS presenting the
// identity with that number (see MeshTls::identity).
using Via = IdentityId;
inline constexpr Via kViaPod = 0xFFFFFFFF;
// The way for a client at `srcIp` (or the node's ingress) to `dest`: mesh TLS when `dest` is in
// the mesh, takes it, the client has an identity on this node, and the destination's
// DestinationRule (`policy`) does not say tls.mode DISABLE.
Via meshVia(const ProxyConfig& config, uint32_t srcIp, bool ingress, const Endpoint& dest,
            const TrafficPolicy* policy = nullptr);

// An endpoint address as one number (pools and health are kept by it).
inline uint64_t endpointKey(uint32_t ip, uint16_t port) {
  return (static_cast<uint64_t>(ip) << 16) | port;
}
// A pool's key: the endpoint and the way to it (connections made one way never serve another).
struct PoolKey {
  uint64_t endpoint;
  Via via;
  bool operator==(const PoolKey&) const = default;
};
struct PoolKeyHash {
  size_t operator()(const PoolKey& k) const {
    return std::hash<uint64_t>()(k.endpoint ^
                                 (static_cast<uint64_t>(k.via) * 0x9E3779B97F4A7C15ull));
  }
};
inline PoolKey poolKey(uint32_t ip, uint16_t port, Via via) { return {endpointKey(ip, port), via}; }

// What a worker knows of one endpoint's health (outlier detection) and load.
struct EndpointHealth {
  int consecutive5xx = 0;
  int consecutiveGateway = 0;
  int64_t ejectedUntilMs = 0;
  int ejections = 0;
  int active = 0;  // requests in flight (least-request balancing)
};

// A connection to an endpoint. It stays registered with the worker's loop from connect to
// close, so handing it from one request to the next costs no system call: its events go to
// `owner`, the exchange holding it, and one arriving while it idles in the pool (the endpoint
// closed it, or sent something unasked) drops it.
struct UpstreamConn : Watcher, Deletable {
  UpstreamConn(Worker& w, PoolKey key, Socket s) : worker(w), key(key), sock(std::move(s)) {}
  void onEvents(uint32_t events) override;
  Worker& worker;
  PoolKey key;
  // Connecting (and, with mesh TLS, handshaking) until open: the owner's first event is then
  // EPOLLOUT (ready) or EPOLLERR (a connect or handshake failure, retried as one).
  Socket sock;
  Watcher* owner = nullptr;
  int64_t idleSinceMs = 0;
  std::string cluster;  // whose circuit breakers count it
  int requests = 0;     // served so far (maxRequestsPerConnection)
};

// Envoy's circuit breakers for one cluster (a Service port and subset) on one worker: the
// DestinationRule's connectionPool limits are checked against these.
struct ClusterLoad {
  int connections = 0;  // open to the cluster's endpoints, in use or idle
  int requests = 0;     // in flight
  // Requests waiting for a connection (http1MaxPendingRequests), woken in order; a request
  // that went away in the meantime has let its token expire.
  std::deque<std::pair<std::weak_ptr<void>, std::function<void()>>> pending;
};

class Worker {
 public:
  Worker(ProxyState& state, int captureFd);
  ~Worker();
  void start();
  void stop();
  EventLoop& loop() { return loop_; }
  ProxyState& state() { return state_; }
  // Round-robin position per Service port (and subset), on this worker.
  uint64_t nextIndex(const std::string& key) { return rr_[key]++; }
  EndpointHealth& health(uint32_t ip, uint16_t port) { return health_[endpointKey(ip, port)]; }
  // Connections to endpoints, for `owner`: a pooled keep-alive one (nullptr if none), or a new
  // one being connected (nullptr if connect() failed at once).
  UpstreamConn* takeIdle(uint32_t ip, uint16_t port, Via via, Watcher* owner);
  UpstreamConn* connectTo(uint32_t ip, uint16_t port, Via via, Watcher* owner,
                          const std::string& cluster = "");
  // A connection to ip:port made `via` (meshVia), connecting: with mesh TLS, a TLS session on
  // it that presents the source's identity and expects the endpoint's (invalid: failed at once).
  Socket dial(uint32_t ip, uint16_t port, Via via);
  // Moves a connection along on an event (see Socket::establish), counting mesh handshakes and
  // their failures: 1 open, 0 not yet, -1 failed.
  int established(Socket& s, uint32_t events);
  // Pools an established connection to ip:port made `via` as idle.
  void adoptIdle(Socket s, uint32_t ip, uint16_t port, Via via);
  ClusterLoad& load(const std::string& cluster) { return loads_[cluster]; }
  // Closes an idle connection of `cluster` to make room under its maxConnections.
  bool closeIdleOf(const std::string& cluster);
  // Back to the pool, closed, or taken out of the loop (the caller then owns the connection).
  void giveIdle(UpstreamConn* c);
  void closeUpstream(UpstreamConn* c);
  Socket detach(UpstreamConn* c);
  // Extra listeners (the ingress ports) handled by `onAccept` on this worker.
  void addListener(int fd, std::function<void(int fd, const sockaddr_in& peer)> onAccept);
  // A listener for a Service's node port or LoadBalancer port, added or closed while the
  // worker runs (thread-safe): its connections go to whatever Service holds the port then.
  void addServicePort(int fd, uint16_t hostPort);
  void removeServicePort(uint16_t hostPort);
  // A meshed pod's listeners, made inside its network namespace (thread-safe): its outbound
  // capture (15001) and its inbound one (15006).
  void addPodListeners(uint32_t podIp, int outboundFd, int inboundFd);
  void removePodListeners(uint32_t podIp);

 private:
  class Listener;
  void accepted(int fd, const sockaddr_in& peer);
  void serve(Socket s, const sockaddr_in& peer, const std::shared_ptr<const ProxyConfig>& config,
             const Service* svc, const ServicePort* sp);
  void relayTcp(Socket s, uint32_t srcIp, const std::shared_ptr<const ProxyConfig>& config,
                const Service* svc, const ServicePort* sp);
  class Sniffer;
  // A connection to meshed pod `podIp`, at its original destination port: mesh TLS is
  // terminated, or plaintext let through as its PeerAuthentication allows.
  void acceptedInbound(int fd, const sockaddr_in& peer, uint32_t podIp);
  void serveInbound(Socket s, uint32_t srcIp, uint32_t podIp, uint16_t port,
                    std::optional<std::string> principal);
  friend struct UpstreamConn;
  ProxyState& state_;
  EventLoop loop_;
  std::unique_ptr<Listener> capture_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::map<uint16_t, std::unique_ptr<Listener>> servicePorts_;
  std::map<uint32_t, std::pair<std::unique_ptr<Listener>, std::unique_ptr<Listener>>> podListeners_;
  std::unordered_map<std::string, uint64_t> rr_;
  std::unordered_map<uint64_t, EndpointHealth> health_;
  std::unordered_map<PoolKey, std::vector<UpstreamConn*>, PoolKeyHash> idle_;
  std::unordered_map<std::string, ClusterLoad> loads_;
  void wakePending(const std::string& cluster);
  std::thread thread_;
};

// Opens a listening socket with SO_REUSEPORT (non-blocking); port 0 picks one.
int listenSocket(const std::string& address, uint16_t port, std::string* error);
uint16_t localPort(int fd);
// A non-blocking TCP connection (TCP_NODELAY) to ip:port under way; -1 if it failed at once.
int connectTcp(uint32_t ip, uint16_t port);
void setNonBlocking(int fd);

}  // namespace podium::proxy
