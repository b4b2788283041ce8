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
#include "podium/common/log.h"
#include "podium/dns/message.h"
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
std::string workloadOf(const Endpoint& pod) {
  std::string name = pod.pod;
  if (pod.labels.count("pod-template-hash")) {
    std::string hash = "-" + pod.labels.at("pod-template-hash") + "-";
    auto at = name.rfind(hash);
    if (at != std::string::npos) return name.substr(0, at);
  }
  return name;
}

std::string labelOr(const Endpoint& e, std::initializer_list<const char*> keys,
                    const std::string& dflt) {
  for (const char* k : keys)
    if (auto it = e.labels.find(k); it != e.labels.end()) return it->second;
  return dflt;
}

// Istio's labels for one side of a request, from its pod.
struct WorkloadLabels {
  std::string workload, ns, app, version, canonicalService, canonicalRevision, principal;
};

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

}  // namespace

MetricLabels labelsFor(const ProxyConfig& config, uint32_t sourceIp, const Service* svc,
                       const Endpoint* dest) {
  MetricLabels l;
  if (const Endpoint* src = config.podByIp(sourceIp)) {
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
  if (fd < 0) return;  // closed earlier in this batch of events
  if (owner) {
    owner->onEvents(events);
    return;
  }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;  // an ACK freed space
  auto& list = worker.idle_[key];
  std::erase(list, this);
  worker.closeUpstream(this);
}

UpstreamConn* Worker::takeIdle(uint32_t ip, uint16_t port, Watcher* owner) {
  auto it = idle_.find(endpointKey(ip, port));
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    UpstreamConn* c = it->second.back();
    it->second.pop_back();
    // Still open and quiet? An endpoint's close raises an event that drops the connection, but
    // one that has idled a while may have been closed since this batch of events was read;
    // ask the socket (one system call saved per request on busy connections).
    char probe;
    if (loop_.nowMs() - c->idleSinceMs < 1000 ||
        (recv(c->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
         (errno == EAGAIN || errno == EWOULDBLOCK))) {
      c->owner = owner;
      return c;
    }
    closeUpstream(c);
  }
  return nullptr;
}

UpstreamConn* Worker::connectTo(uint32_t ip, uint16_t port, Watcher* owner,
                                const std::string& cluster) {
  int fd = connectTcp(ip, port);
  if (fd < 0) return nullptr;
  auto* c = new UpstreamConn(*this, endpointKey(ip, port), fd);
  c->owner = owner;
  c->cluster = cluster;
  if (!loop_.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, c)) {
    close(fd);
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

void Worker::closeUpstream(UpstreamConn* c) { close(detach(c)); }

int Worker::detach(UpstreamConn* c) {
  int fd = c->fd;
  if (!c->cluster.empty()) {
    --loads_[c->cluster].connections;
    wakePending(c->cluster);
    c->cluster.clear();
  }
  loop_.remove(fd);
  c->fd = -1;
  c->owner = nullptr;
  loop_.destroyLater(c);
  return fd;
}

void Worker::addListener(int fd, std::function<void(int fd, const sockaddr_in& peer)> onAccept) {
  listeners_.push_back(std::make_unique<Listener>(*this, fd, std::move(onAccept)));
}

// Istio's protocol sniffing for ports that declare no protocol: a client that opens with an
// HTTP/1.x request line or HTTP/2's preface gets the HTTP side; one that sends anything else,
// or nothing for a moment (server-first protocols), is relayed as TCP.
class Worker::Sniffer : public Watcher, public Deletable {
 public:
  static void start(Worker& w, int fd, const sockaddr_in& peer,
                    const std::shared_ptr<const ProxyConfig>& config, const Service* svc,
                    const ServicePort* sp) {
    auto* s = new Sniffer(w, fd, peer, config, svc, sp);
    if (!w.loop_.add(fd, EPOLLIN | EPOLLRDHUP, s)) {
      close(fd);
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
    char buf[24];
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return decide(false);  // closed or failed: the relay sees it too
    std::string_view seen(buf, static_cast<size_t>(n));
    static constexpr std::string_view kMethods[] = {"GET ",   "POST ",         "PUT ",   "DELETE ",
                                                    "HEAD ",  "OPTIONS ",      "PATCH ", "CONNECT ",
                                                    "TRACE ", "PRI * HTTP/2.0"};
    bool undecided = false;
    for (std::string_view m : kMethods) {
      if (seen.size() >= m.size() ? seen.substr(0, m.size()) == m
                                  : m.substr(0, seen.size()) == seen) {
        if (seen.size() >= m.size()) return decide(true);
        undecided = true;  // a prefix of a method: wait for more
      }
    }
    if (!undecided || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) decide(false);
  }

 private:
  static constexpr int64_t kDetectionTimeoutMs = 100;
  Sniffer(Worker& w, int fd, const sockaddr_in& peer, std::shared_ptr<const ProxyConfig> config,
          const Service* svc, const ServicePort* sp)
      : worker_(w), fd_(fd), peer_(peer), config_(std::move(config)), svc_(svc), sp_(sp) {}
  void decide(bool http) {
    if (done_) return;
    done_ = true;
    if (timer_) worker_.loop_.cancel(timer_);
    worker_.loop_.remove(fd_);
    worker_.loop_.destroyLater(this);
    if (http)
      startHttpConnection(worker_, fd_, svc_, sp_, ntohl(peer_.sin_addr.s_addr));
    else
      worker_.relayTcp(fd_, ntohl(peer_.sin_addr.s_addr), config_, svc_, sp_);
  }
  Worker& worker_;
  int fd_;
  sockaddr_in peer_;
  std::shared_ptr<const ProxyConfig> config_;  // keeps svc_ and sp_ alive
  const Service* svc_;
  const ServicePort* sp_;
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
          serve(c, peer, config, it->second.service, it->second.port);
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
    for (UpstreamConn* c : list) {
      close(c->fd);
      delete c;
    }
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
  serve(fd, peer, config, svc, sp);
}

void Worker::serve(int fd, const sockaddr_in& peer,
                   const std::shared_ptr<const ProxyConfig>& config, const Service* svc,
                   const ServicePort* sp) {
  uint32_t srcIp = ntohl(peer.sin_addr.s_addr);
  if (sp->protocol == Protocol::Auto) {
    Sniffer::start(*this, fd, peer, config, svc, sp);
    return;
  }
  if (sp->protocol != Protocol::Tcp) {
    startHttpConnection(*this, fd, svc, sp, srcIp);
    return;
  }
  relayTcp(fd, srcIp, config, svc, sp);
}

void Worker::relayTcp(int fd, uint32_t srcIp, const std::shared_ptr<const ProxyConfig>& config,
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
  if (!ready.empty() && !authorized(*config, srcIp, ready[0], nullptr)) {
    close(fd);  // Istio's L4 denial: the connection is refused
    return;
  }
  MetricLabels labels = labelsFor(*config, srcIp, svc, ready.empty() ? nullptr : &ready[0]);
  labels.requestProtocol = "tcp";
  TcpRelay::start(*this, fd, std::move(ready), std::move(labels));
}

}  // namespace podium::proxy
