#include "worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http_conn.h"
#include "mesh.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "router.h"
#include "tcp_relay.h"

namespace podium::proxy {

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int connectTcp(uint32_t ip, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

int listenSocket(const std::string& address, uint16_t port, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    *error = "bad address " + address;
    close(fd);
    return -1;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0) {
    *error = "listen " + address + ":" + std::to_string(port) + ": " + strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t localPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

namespace {

// The workload a pod belongs to, as Istio names it: the Deployment for a Deployment's pods
// (the pod name without its ReplicaSet hash and random suffix), else the pod's name.
// Istio's workload name: a Deployment's pods are its Deployment (the ReplicaSet's hash
// trimmed); an Argo Rollout's pods are their ReplicaSet, one per revision (what a canary
// analysis asks about).
std::string workloadOf(const Endpoint& pod) {
  std::string name = pod.pod;
  if (pod.labels.count("pod-template-hash")) {
    std::string hash = "-" + pod.labels.at("pod-template-hash") + "-";
    auto at = name.rfind(hash);
    if (at != std::string::npos) return name.substr(0, at);
  }
  if (pod.labels.count("rollouts-pod-template-hash")) {
    std::string hash = "-" + pod.labels.at("rollouts-pod-template-hash") + "-";
    auto at = name.rfind(hash);
    if (at != std::string::npos) return name.substr(0, at + hash.size() - 1);
  }
  return name;
}

std::string labelOr(const Endpoint& e, std::initializer_list<const char*> keys,
                    const std::string& dflt) {
  for (const char* k : keys)
    if (auto it = e.labels.find(k); it != e.labels.end()) return it->second;
  return dflt;
}

}  // namespace

WorkloadLabels workloadLabels(const ProxyConfig& config, const Endpoint& pod) {
  WorkloadLabels w;
  w.workload = workloadOf(pod);
  w.ns = pod.ns;
  w.app = labelOr(pod, {"app"}, "unknown");
  w.version = labelOr(pod, {"version"}, "unknown");
  w.canonicalService = labelOr(
      pod, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"}, w.workload);
  w.canonicalRevision =
      labelOr(pod, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
              "latest");
  w.principal = "spiffe://" + pod.principal(config.domain());
  return w;
}

Via meshVia(const ProxyConfig& config, uint32_t srcIp, bool ingress, const Endpoint& dest,
            const TrafficPolicy* policy) {
  const MeshTls& mesh = config.mesh();
  if (!mesh.wantsMtls(dest) || (policy && policy->plaintext)) return 0;
  if (ingress) return mesh.ingressIdentity();
  const Endpoint* src = config.podByIp(srcIp);
  if (!src || !mesh.pods().count(srcIp)) return 0;  // not one of this node's meshed pods
  return mesh.identity(src->ns, src->serviceAccount);
}

MetricLabels labelsFor(const ProxyConfig& config, uint32_t sourceIp, const Service* svc,
                       const Endpoint* dest, bool ingress, const TrafficPolicy* policy) {
  MetricLabels l;
  if (dest && meshVia(config, sourceIp, ingress, *dest, policy))
    l.connectionSecurityPolicy = "mutual_tls";
  if (ingress) {
    // What Istio reports for requests its ingress gateway sends on: the gateway is the source.
    l.sourceWorkload = l.sourceApp = l.sourceCanonicalService = "istio-ingressgateway";
    l.sourceWorkloadNamespace = "istio-system";
  } else if (const Endpoint* src = config.podByIp(sourceIp)) {
    WorkloadLabels w = workloadLabels(config, *src);
    l.sourceWorkload = w.workload;
    l.sourceWorkloadNamespace = w.ns;
    l.sourceApp = w.app;
    l.sourceVersion = w.version;
    l.sourceCanonicalService = w.canonicalService;
    l.sourceCanonicalRevision = w.canonicalRevision;
    l.sourcePrincipal = w.principal;
  }
  if (svc) {
    l.destinationService = svc->fqdn(config.domain());
    l.destinationServiceName = svc->name;
    l.destinationServiceNamespace = svc->ns;
  }
  if (dest) {
    WorkloadLabels w = workloadLabels(config, *dest);
    l.destinationWorkload = w.workload;
    l.destinationWorkloadNamespace = w.ns;
    l.destinationApp = w.app;
    l.destinationVersion = w.version;
    l.destinationCanonicalService = w.canonicalService;
    l.destinationCanonicalRevision = w.canonicalRevision;
    l.destinationPrincipal = w.principal;
  }
  return l;
}

class Worker::Listener : public Watcher, public Deletable {
 public:
  using OnAccept = std::function<void(int fd, const sockaddr_in& peer)>;
  Listener(Worker& w, int fd, OnAccept onAccept = nullptr)
      : worker_(w), fd_(fd), onAccept_(std::move(onAccept)) {}
  ~Listener() override { close(fd_); }
  int fd() const { return fd_; }
  void onEvents(uint32_t) override {
    for (;;) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors: the next connection retries
      }
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (onAccept_)
        onAccept_(c, peer);
      else
        worker_.accepted(c, peer);
    }
  }

 private:
  Worker& worker_;
  int fd_;
  OnAccept onAccept_;
};

void UpstreamConn::onEvents(uint32_t events) {
  if (!sock.valid()) return;  // closed earlier in this batch of events
  if (!sock.open()) {
    int r = worker.established(sock, events);
    if (r == 0) return;
    events = r > 0 ? EPOLLIN | EPOLLOUT : EPOLLERR;
    if (!owner) {  // given up on while it was being made
      worker.closeUpstream(this);
      return;
    }
  }
  if (owner) {
    owner->onEvents(events);
    return;
  }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;  // an ACK freed space
  auto& list = worker.idle_[key];
  std::erase(list, this);
  worker.closeUpstream(this);
}

UpstreamConn* Worker::takeIdle(uint32_t ip, uint16_t port, Via via, Watcher* owner) {
  auto it = idle_.find(poolKey(ip, port, via));
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    UpstreamConn* c = it->second.back();
    it->second.pop_back();
    // Still open and quiet? An endpoint's close raises an event that drops the connection, but
    // one that has idled a while may have been closed since this batch of events was read;
    // ask the socket (one system call saved per request on busy connections).
    char probe;
    if (loop_.nowMs() - c->idleSinceMs < 1000 ||
        (recv(c->sock.fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
         (errno == EAGAIN || errno == EWOULDBLOCK))) {
      c->owner = owner;
      return c;
    }
    closeUpstream(c);
  }
  return nullptr;
}

Socket Worker::dial(uint32_t ip, uint16_t port, Via via) {
  if (!via) return Socket(connectTcp(ip, port), nullptr, Socket::Phase::Connecting);
  auto config = state_.config();
  const MeshTls& mesh = config->mesh();
  if (via == kViaPod) {
    auto it = mesh.pods().find(ip);
    if (it == mesh.pods().end()) return Socket();
    int fd = -1;
    inNetns(it->second, [&] { fd = connectTcp(ip, port); });
    return Socket(fd, nullptr, Socket::Phase::Connecting);
  }
  const Endpoint* pod = config->podByIp(ip);
  if (!pod) return Socket();
  SSL* ssl = mesh.client(via, "spiffe://" + pod->principal(mesh.trustDomain()));
  if (!ssl) return Socket();
  int fd = connectTcp(ip, port);
  if (fd < 0) {
    SSL_free(ssl);
    return Socket();
  }
  return Socket(fd, ssl, Socket::Phase::Connecting);
}

int Worker::established(Socket& s, uint32_t events) {
  bool wasHandshaking = s.tls() && !s.open();
  int r = s.establish(events);
  if (!s.tls() || !wasHandshaking || r == 0) return r;
  const char* side = SSL_is_server(s.ssl()) ? "server" : "client";
  if (r > 0)
    state_.metrics.mtlsHandshake(side);
  else
    state_.metrics.mtlsFailure(side, meshHandshakeFailure(s.ssl()));
  return r;
}

void Worker::adoptIdle(Socket s, uint32_t ip, uint16_t port, Via via) {
  auto* c = new UpstreamConn(*this, poolKey(ip, port, via), std::move(s));
  if (!loop_.add(c->sock.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, c)) {
    delete c;
    return;
  }
  giveIdle(c);
}

UpstreamConn* Worker::connectTo(uint32_t ip, uint16_t port, Via via, Watcher* owner,
                                const std::string& cluster) {
  Socket s = dial(ip, port, via);
  if (!s.valid()) return nullptr;
  auto* c = new UpstreamConn(*this, poolKey(ip, port, via), std::move(s));
  c->owner = owner;
  c->cluster = cluster;
  if (!loop_.add(c->sock.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, c)) {
    delete c;
    return nullptr;
  }
  if (!cluster.empty()) ++loads_[cluster].connections;
  return c;
}

bool Worker::closeIdleOf(const std::string& cluster) {
  for (auto& [k, list] : idle_)
    for (auto it = list.begin(); it != list.end(); ++it)
      if ((*it)->cluster == cluster) {
        UpstreamConn* c = *it;
        list.erase(it);
        closeUpstream(c);
        return true;
      }
  return false;
}

void Worker::wakePending(const std::string& cluster) {
  auto it = loads_.find(cluster);
  if (it == loads_.end()) return;
  auto& pending = it->second.pending;
  while (!pending.empty()) {
    auto [token, resume] = std::move(pending.front());
    pending.pop_front();
    if (token.expired()) continue;
    loop_.post(std::move(resume));  // after the caller's exchange is done with its connection
    return;
  }
}

void Worker::giveIdle(UpstreamConn* c) {
  auto& list = idle_[c->key];
  if (list.size() >= 64) {
    closeUpstream(c);
    return;
  }
  c->owner = nullptr;
  c->idleSinceMs = loop_.nowMs();
  list.push_back(c);
  if (!c->cluster.empty()) wakePending(c->cluster);
}

void Worker::closeUpstream(UpstreamConn* c) { detach(c); }

Socket Worker::detach(UpstreamConn* c) {
  if (!c->cluster.empty()) {
    --loads_[c->cluster].connections;
    wakePending(c->cluster);
    c->cluster.clear();
  }
  loop_.remove(c->sock.fd());
  c->owner = nullptr;
  loop_.destroyLater(c);
  return std::move(c->sock);
}

void Worker::addListener(int fd, std::function<void(int fd, const sockaddr_in& peer)> onAccept) {
  listeners_.push_back(std::make_unique<Listener>(*this, fd, std::move(onAccept)));
}

// Looks at a new connection's first bytes (without taking them) until `classify` can say what
// it is: 1 or 0 decides, -1 wants more. Silence for 100 ms, the connection's end, or 4 KiB
// without an answer decide 0 (server-first protocols send nothing first).
class Worker::Sniffer : public Watcher, public Deletable {
 public:
  using Classify = std::function<int(const std::string& seen)>;
  using Decided = std::function<void(Socket s, bool yes)>;
  static void start(Worker& w, Socket sock, Classify classify, Decided decided) {
    auto* s = new Sniffer(w, std::move(sock), std::move(classify), std::move(decided));
    if (!w.loop_.add(s->sock_.fd(), EPOLLIN | EPOLLRDHUP, s)) {
      delete s;
      return;
    }
    s->timer_ = w.loop_.after(kDetectionTimeoutMs, [s] {
      s->timer_ = 0;
      s->decide(false);
    });
    s->onEvents(EPOLLIN);
  }
  void onEvents(uint32_t events) override {
    if (done_) return;
    std::string seen(kMaxPeek, '\0');
    ssize_t n = sock_.peek(seen.data(), seen.size());
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return decide(false);  // closed or failed: whoever takes it over sees it too
    seen.resize(static_cast<size_t>(n));
    int verdict = classify_(seen);
    if (verdict >= 0) return decide(verdict == 1);
    if (seen.size() == kMaxPeek || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) decide(false);
  }

  // Istio's protocol sniffing for ports that declare no protocol: an HTTP/1.x request line or
  // HTTP/2's preface is HTTP, anything else TCP.
  static int http(const std::string& seen) {
    static constexpr std::string_view kMethods[] = {"GET ",   "POST ",         "PUT ",   "DELETE ",
                                                    "HEAD ",  "OPTIONS ",      "PATCH ", "CONNECT ",
                                                    "TRACE ", "PRI * HTTP/2.0"};
    bool undecided = false;
    for (std::string_view m : kMethods) {
      std::string_view v(seen);
      if (v.size() >= m.size() ? v.substr(0, m.size()) == m : m.substr(0, v.size()) == v) {
        if (v.size() >= m.size()) return 1;
        undecided = true;  // a prefix of a method: wait for more
      }
    }
    return undecided ? -1 : 0;
  }
  // Mesh traffic: a TLS ClientHello offering the mesh's ALPN.
  static int meshTls(const std::string& seen) {
    std::vector<std::string> alpn;
    int hello = parseClientHello(seen, &alpn);
    if (hello <= 0) return hello;
    return std::find(alpn.begin(), alpn.end(), kMeshAlpn) != alpn.end() ? 1 : 0;
  }

 private:
  static constexpr int64_t kDetectionTimeoutMs = 100;
  static constexpr size_t kMaxPeek = 4096;
  Sniffer(Worker& w, Socket s, Classify classify, Decided decided)
      : worker_(w),
        sock_(std::move(s)),
        classify_(std::move(classify)),
        decided_(std::move(decided)) {}
  void decide(bool yes) {
    if (done_) return;
    done_ = true;
    if (timer_) worker_.loop_.cancel(timer_);
    worker_.loop_.remove(sock_.fd());
    worker_.loop_.destroyLater(this);
    decided_(std::move(sock_), yes);
  }
  Worker& worker_;
  Socket sock_;
  Classify classify_;
  Decided decided_;
  uint64_t timer_ = 0;
  bool done_ = false;
};

void Worker::addServicePort(int fd, uint16_t hostPort) {
  loop_.post([this, fd, hostPort] {
    auto l =
        std::make_unique<Listener>(*this, fd, [this, hostPort](int c, const sockaddr_in& peer) {
          auto config = state_.config();
          auto it = config->exposed().find(hostPort);
          if (it == config->exposed().end()) {
            close(c);
            return;
          }
          serve(Socket(c), peer, config, it->second.service, it->second.port);
        });
    loop_.add(fd, EPOLLIN, l.get());
    servicePorts_[hostPort] = std::move(l);
  });
}

void Worker::removeServicePort(uint16_t hostPort) {
  loop_.post([this, hostPort] {
    auto it = servicePorts_.find(hostPort);
    if (it == servicePorts_.end()) return;
    loop_.remove(it->second->fd());
    loop_.destroyLater(it->second.release());  // closes the socket after this batch of events
    servicePorts_.erase(it);
  });
}

Worker::Worker(ProxyState& state, int captureFd) : state_(state) {
  capture_ = std::make_unique<Listener>(*this, captureFd);
}

Worker::~Worker() {
  stop();
  for (auto& [k, list] : idle_)
    for (UpstreamConn* c : list) delete c;
}

void Worker::start() {
  loop_.add(capture_->fd(), EPOLLIN, capture_.get());
  for (auto& l : listeners_) loop_.add(l->fd(), EPOLLIN, l.get());
  thread_ = std::thread([this] { loop_.run(); });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  loop_.stop();
  thread_.join();
}

void Worker::accepted(int fd, const sockaddr_in& peer) {
  // Where the client meant to go, before the node's redirect.
  sockaddr_in orig{};
  socklen_t len = sizeof orig;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &len) != 0) {
    close(fd);
    return;
  }
  auto config = state_.config();
  uint32_t dstIp = ntohl(orig.sin_addr.s_addr);
  uint16_t dstPort = ntohs(orig.sin_port);
  const Service* svc = config->byClusterIp(dstIp);
  const ServicePort* sp = svc ? svc->port(dstPort) : nullptr;
  if (!sp) {
    close(fd);  // nothing listens there: the client sees a reset
    return;
  }
  serve(Socket(fd), peer, config, svc, sp);
}

void Worker::serve(Socket s, const sockaddr_in& peer,
                   const std::shared_ptr<const ProxyConfig>& config, const Service* svc,
                   const ServicePort* sp) {
  uint32_t srcIp = ntohl(peer.sin_addr.s_addr);
  if (sp->protocol == Protocol::Auto) {
    // The config is held by the lambda, which keeps svc and sp alive.
    Sniffer::start(*this, std::move(s), Sniffer::http,
                   [this, srcIp, config, svc, sp](Socket s, bool http) {
                     if (http)
                       startHttpConnection(*this, std::move(s), svc, sp, srcIp);
                     else
                       relayTcp(std::move(s), srcIp, config, svc, sp);
                   });
    return;
  }
  if (sp->protocol != Protocol::Tcp) {
    startHttpConnection(*this, std::move(s), svc, sp, srcIp);
    return;
  }
  relayTcp(std::move(s), srcIp, config, svc, sp);
}

void Worker::relayTcp(Socket s, uint32_t srcIp, const std::shared_ptr<const ProxyConfig>& config,
                      const Service* svc, const ServicePort* sp) {
  // Ready endpoints, starting at this worker's round-robin position.
  std::vector<Endpoint> ready;
  for (const auto& e : sp->endpoints)
    if (e.ready) ready.push_back(e);
  if (!ready.empty()) {
    size_t start =
        nextIndex(svc->ns + "/" + svc->name + ":" + std::to_string(sp->port)) % ready.size();
    std::rotate(ready.begin(), ready.begin() + static_cast<long>(start), ready.end());
  }
  if (!ready.empty() && !authorized(*config, srcIp, ready[0], nullptr))
    return;  // Istio's L4 denial: the connection is refused (closed)
  const DestinationRule* dr = config->routes().ruleFor(svc->fqdn(config->domain()));
  const TrafficPolicy* policy = dr ? &dr->policy : nullptr;
  MetricLabels labels =
      labelsFor(*config, srcIp, svc, ready.empty() ? nullptr : &ready[0], false, policy);
  labels.requestProtocol = "tcp";
  std::optional<uint16_t> via;
  if (policy && policy->plaintext) via = 0;  // tls.mode DISABLE
  TcpRelay::start(*this, std::move(s), std::move(ready), std::move(labels), srcIp, via);
}

void Worker::addPodListeners(uint32_t podIp, int outboundFd, int inboundFd) {
  loop_.post([this, podIp, outboundFd, inboundFd] {
    auto out = std::make_unique<Listener>(*this, outboundFd);  // like the node's capture port
    auto in = std::make_unique<Listener>(
        *this, inboundFd,
        [this, podIp](int c, const sockaddr_in& peer) { acceptedInbound(c, peer, podIp); });
    loop_.add(outboundFd, EPOLLIN, out.get());
    loop_.add(inboundFd, EPOLLIN, in.get());
    podListeners_[podIp] = {std::move(out), std::move(in)};
  });
}

void Worker::removePodListeners(uint32_t podIp) {
  loop_.post([this, podIp] {
    auto it = podListeners_.find(podIp);
    if (it == podListeners_.end()) return;
    for (auto* l : {it->second.first.release(), it->second.second.release()}) {
      loop_.remove(l->fd());
      loop_.destroyLater(l);
    }
    podListeners_.erase(it);
  });
}

constexpr int64_t kConnectTimeoutMs = 5000;     // to a pod's app, for inbound mesh traffic
constexpr int64_t kHandshakeTimeoutMs = 10000;  // of mesh TLS accepted from a peer

// Waits for a connection to be established (connected, and its TLS handshake done), then hands
// it to `done`; `ok` false when it failed or `timeoutMs` passed (a handshake's timeout counted).
class Establishing : public Watcher, public Deletable {
 public:
  using Done = std::function<void(Socket s, bool ok)>;
  static void start(Worker& w, Socket s, int64_t timeoutMs, Done done) {
    auto* c = new Establishing(w, std::move(s), std::move(done));
    if (!w.loop().add(c->sock_.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, c)) {
      auto d = std::move(c->done_);
      delete c;
      return d(Socket(), false);
    }
    c->timer_ = w.loop().after(timeoutMs, [c] {
      c->timer_ = 0;
      if (c->sock_.tls())
        c->worker_.state().metrics.mtlsFailure(SSL_is_server(c->sock_.ssl()) ? "server" : "client",
                                               "timeout");
      c->finish(false);
    });
    // A handshake to accept starts at once: its ClientHello has arrived already.
    if (c->sock_.phase() == Socket::Phase::Handshaking) c->onEvents(EPOLLIN | EPOLLOUT);
  }
  void onEvents(uint32_t events) override {
    if (finished_) return;
    int r = worker_.established(sock_, events);
    if (r != 0) finish(r > 0);
  }

 private:
  Establishing(Worker& w, Socket s, Done done)
      : worker_(w), sock_(std::move(s)), done_(std::move(done)) {}
  void finish(bool ok) {
    if (finished_) return;
    finished_ = true;
    if (timer_) worker_.loop().cancel(timer_);
    worker_.loop().remove(sock_.fd());
    worker_.loop().destroyLater(this);
    done_(std::move(sock_), ok);
  }
  Worker& worker_;
  Socket sock_;
  Done done_;
  uint64_t timer_ = 0;
  bool finished_ = false;
};

void Worker::acceptedInbound(int fd, const sockaddr_in& peer, uint32_t podIp) {
  sockaddr_in orig{};
  socklen_t len = sizeof orig;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &len) != 0) {
    close(fd);
    return;
  }
  uint16_t port = ntohs(orig.sin_port);
  uint32_t srcIp = ntohl(peer.sin_addr.s_addr);
  if (port == kMeshInboundPort || port == kMeshOutboundPort) {
    close(fd);  // the proxy's own listeners are not the pod's to offer
    return;
  }
  Sniffer::start(
      *this, Socket(fd), Sniffer::meshTls, [this, srcIp, podIp, port](Socket s, bool mesh) {
        auto config = state_.config();
        const Endpoint* pod = config->podByIp(podIp);
        if (!pod) return;
        if (!mesh) {
          if (config->mesh().mode(*pod, port) == MtlsMode::Strict) {
            state_.metrics.mtlsFailure("server", "plaintext");
            return;  // STRICT: only mesh TLS comes in
          }
          serveInbound(std::move(s), srcIp, podIp, port, std::nullopt);
          return;
        }
        SSL* ssl = config->mesh().server(config->mesh().identity(pod->ns, pod->serviceAccount));
        if (!ssl) {
          state_.metrics.mtlsFailure("server", "no_identity");
          return;
        }
        if (!s.attachTls(ssl, Socket::Phase::Handshaking)) return;
        // The workload is reached first, as ztunnel does: if nothing listens there, the handshake
        // fails and the sending proxy retries elsewhere as after a connect failure. The connection
        // made is pooled for the requests to come.
        Socket app = dial(podIp, port, kViaPod);
        if (!app.valid()) return;
        auto client = std::make_shared<Socket>(std::move(s));
        Establishing::start(*this, std::move(app), kConnectTimeoutMs,
                            [this, client, srcIp, podIp, port](Socket app, bool ok) {
                              if (!ok) return;
                              adoptIdle(std::move(app), podIp, port, kViaPod);
                              Establishing::start(
                                  *this, std::move(*client), kHandshakeTimeoutMs,
                                  [this, srcIp, podIp, port](Socket tls, bool ok) {
                                    if (!ok) return;
                                    std::string peer = principalOf(peerSpiffeId(tls.ssl()));
                                    serveInbound(std::move(tls), srcIp, podIp, port, peer);
                                  });
                            });
      });
}

void Worker::serveInbound(Socket s, uint32_t srcIp, uint32_t podIp, uint16_t port,
                          std::optional<std::string> principal) {
  auto config = state_.config();
  const Endpoint* pod = config->podByIp(podIp);
  if (!pod) return;
  Endpoint target = *pod;
  target.port = port;
  // The pod's protocol on that port, from a Service that sends traffic there.
  Protocol protocol = Protocol::Auto;
  for (const auto& svc : config->services())
    for (const auto& sp : svc.ports)
      for (const auto& e : sp.endpoints)
        if (e.ip == podIp && e.port == port) protocol = sp.protocol;
  auto relay = [this, config, target, srcIp, principal](Socket s) {
    // A plaintext client has no principal (its address proves nothing here).
    std::string none;
    if (!authorized(*config, srcIp, target, nullptr, principal ? &*principal : &none))
      return;  // Istio's L4 denial (closed)
    TcpRelay::start(*this, std::move(s), {target}, MetricLabels{}, srcIp, kViaPod,
                    /*counted=*/false);
  };
  if (protocol == Protocol::Http)
    return startInboundConnection(*this, std::move(s), target, srcIp, principal);
  if (protocol != Protocol::Auto) return relay(std::move(s));
  Sniffer::start(*this, std::move(s), Sniffer::http,
                 [this, target, srcIp, principal, relay](Socket s, bool http) {
                   // HTTP/2 (prior knowledge) to a pod is relayed as bytes: its policies apply
                   // at L4.
                   char p[3];
                   bool h2 = s.peek(p, 3) == 3 && memcmp(p, "PRI", 3) == 0;
                   if (http && !h2)
                     startInboundConnection(*this, std::move(s), target, srcIp, principal);
                   else
                     relay(std::move(s));
                 });
}

}  // namespace podium::proxy
