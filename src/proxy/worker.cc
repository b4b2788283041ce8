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
#include "tcp_relay.h"

namespace podium::proxy {

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

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

}  // namespace

MetricLabels labelsFor(const ProxyConfig& config, uint32_t sourceIp, const Service* svc,
                       const Endpoint* dest) {
  MetricLabels l;
  if (const Endpoint* src = config.podByIp(sourceIp)) {
    l.sourceWorkload = workloadOf(*src);
    l.sourceWorkloadNamespace = src->ns;
    l.sourceApp = labelOr(*src, {"app"}, "unknown");
    l.sourceVersion = labelOr(*src, {"version"}, "unknown");
    l.sourceCanonicalService =
        labelOr(*src, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"},
                l.sourceWorkload);
    l.sourceCanonicalRevision = labelOr(
        *src, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
        "latest");
    l.sourcePrincipal = "spiffe://" + config.domain() + "/ns/" + src->ns + "/sa/default";
  }
  if (svc) {
    l.destinationService = svc->fqdn(config.domain());
    l.destinationServiceName = svc->name;
    l.destinationServiceNamespace = svc->ns;
  }
  if (dest) {
    l.destinationWorkload = workloadOf(*dest);
    l.destinationWorkloadNamespace = dest->ns;
    l.destinationApp = labelOr(*dest, {"app"}, "unknown");
    l.destinationVersion = labelOr(*dest, {"version"}, "unknown");
    l.destinationCanonicalService =
        labelOr(*dest, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"},
                l.destinationWorkload);
    l.destinationCanonicalRevision = labelOr(
        *dest, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
        "latest");
    l.destinationPrincipal = "spiffe://" + config.domain() + "/ns/" + dest->ns + "/sa/default";
  }
  return l;
}

class Worker::Listener : public Watcher {
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

// A pooled keep-alive connection: if the endpoint closes it (or sends anything) while it
// waits, it is dropped.
class Worker::IdleConn : public Watcher, public Deletable {
 public:
  IdleConn(Worker& w, uint64_t key, int fd) : worker(w), key(key), fd(fd) {}
  void onEvents(uint32_t) override {
    if (fd >= 0) worker.dropIdle(this);
  }
  Worker& worker;
  uint64_t key;
  int fd;
};

int Worker::takeIdle(uint32_t ip, uint16_t port) {
  auto it = idle_.find(key(ip, port));
  if (it == idle_.end()) return -1;
  while (!it->second.empty()) {
    IdleConn* c = it->second.back();
    it->second.pop_back();
    int fd = c->fd;
    c->fd = -1;
    loop_.remove(fd);
    loop_.destroyLater(c);
    // Still open and quiet? (The peer may have closed since the last event.)
    char probe;
    ssize_t n = recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return fd;
    close(fd);
  }
  return -1;
}

void Worker::giveIdle(uint32_t ip, uint16_t port, int fd) {
  auto& list = idle_[key(ip, port)];
  if (list.size() >= 64) {
    close(fd);
    return;
  }
  auto* c = new IdleConn(*this, key(ip, port), fd);
  if (!loop_.add(fd, EPOLLIN | EPOLLRDHUP, c)) {
    delete c;
    close(fd);
    return;
  }
  list.push_back(c);
}

void Worker::dropIdle(IdleConn* c) {
  auto& list = idle_[c->key];
  std::erase(list, c);
  loop_.remove(c->fd);
  close(c->fd);
  c->fd = -1;
  loop_.destroyLater(c);
}

void Worker::addListener(int fd, std::function<void(int fd, const sockaddr_in& peer)> onAccept) {
  listeners_.push_back(std::make_unique<Listener>(*this, fd, std::move(onAccept)));
}

Worker::Worker(ProxyState& state, int captureFd) : state_(state) {
  capture_ = std::make_unique<Listener>(*this, captureFd);
}

Worker::~Worker() {
  stop();
  for (auto& [k, list] : idle_)
    for (IdleConn* c : list) {
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
  uint32_t srcIp = ntohl(peer.sin_addr.s_addr);
  if (sp->protocol != Protocol::Tcp) {
    startHttpConnection(*this, fd, config, svc, sp, srcIp);
    return;
  }
  // Ready endpoints, starting at this worker's round-robin position.
  std::vector<Endpoint> ready;
  for (const auto& e : sp->endpoints)
    if (e.ready) ready.push_back(e);
  if (!ready.empty()) {
    size_t start =
        nextIndex(svc->ns + "/" + svc->name + ":" + std::to_string(sp->port)) % ready.size();
    std::rotate(ready.begin(), ready.begin() + static_cast<long>(start), ready.end());
  }
  MetricLabels labels = labelsFor(*config, srcIp, svc, ready.empty() ? nullptr : &ready[0]);
  labels.requestProtocol = "tcp";
  TcpRelay::start(*this, fd, std::move(ready), std::move(labels));
}

}  // namespace podium::proxy
