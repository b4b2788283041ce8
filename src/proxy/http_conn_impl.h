#pragma once

// One HTTP/1.1 connection through the proxy, shared by its source files: the downstream side
// (reading requests, local replies, keep-alive: http_conn.cc), routing and dispatch (mirrors,
// trace headers, HTTP/2 hand-off: http_dispatch.cc), and the upstream side (connection pool,
// attempts, retries, response relay, access log: http_upstream.cc). Shadowed (mirrored)
// requests are the Shadow class below.

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <random>
#include <set>

#include "h2_conn.h"
#include "http_conn.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "router.h"
#include "tcp_relay.h"

namespace podium::proxy::detail {

// Whether requests are written to the access log (stdout).
extern bool gAccessLog;

inline constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

// A read that returned less than asked for emptied the socket: with edge-triggered epoll the
// next arrival raises a new event, so the read that would only say EAGAIN is skipped. Unless
// the peer has shut down (its FIN may sit behind the data, and no new edge would announce it).
inline bool drained(const Socket& s, ssize_t got, size_t asked, uint32_t events) {
  return s.drained(got, asked) && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}
inline constexpr int64_t kHeaderTimeoutMs = 10000;   // a slow client gets 408 after this
inline constexpr int64_t kIdleTimeoutMs = 60000;     // keep-alive connections with no request
inline constexpr size_t kMaxBufferedBody = 8 << 20;  // bodies are buffered (for retries) up to this
inline constexpr size_t kMaxPendingOutput = 4 << 20;

// One shadowed request: connects, sends, reads the status line, counts it, closes. Gives up
// after a few seconds; never touches the client's exchange.
class Shadow : public Watcher, public Deletable {
 public:
  static void start(Worker& w, const Endpoint& e, Via via, std::string request, std::string labels,
                    uint64_t requestBytes) {
    auto* s = new Shadow(w, std::move(request), std::move(labels), requestBytes);
    s->sock_ = w.dial(e.ip, e.port, via);
    if (!s->sock_.valid() || !w.loop().add(s->sock_.fd(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, s)) {
      delete s;
      return;
    }
    s->started_ = std::chrono::steady_clock::now();
    s->timer_ = w.loop().after(5000, [s] {
      s->timer_ = 0;
      s->finish();
    });
  }
  void onEvents(uint32_t events) override {
    if (done_) return;
    if (!sock_.open()) {
      int r = worker_.established(sock_, events);
      if (r < 0) return finish();
      if (r == 0) return;
      events |= EPOLLOUT;
    }
    while (!out_.empty() && (events & EPOLLOUT)) {
      ssize_t n = sock_.write(out_.data(), out_.size());
      if (n <= 0) break;
      out_.erase(0, static_cast<size_t>(n));
    }
    char buf[16384];
    for (;;) {
      ssize_t n = sock_.read(buf, sizeof buf);
      if (n > 0) {
        if (in_.size() < 65536) in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return finish();  // EOF or error
    }
    http1::Head resp;
    if (status_ == 0 && http1::parseResponse(in_, "GET", &resp).status == http1::ParseStatus::Done)
      status_ = resp.status;
    if (status_ != 0) finish();
  }

 private:
  Shadow(Worker& w, std::string request, std::string labels, uint64_t requestBytes)
      : worker_(w), out_(std::move(request)), labels_(std::move(labels)), reqBytes_(requestBytes) {}
  ~Shadow() override = default;
  void finish() {
    if (done_) return;
    done_ = true;
    if (timer_) worker_.loop().cancel(timer_);
    worker_.loop().remove(sock_.fd());
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    // Istio counts what the mirror's destination reports: its answer, or a reset (0).
    worker_.state().metrics.request(labels_, status_, status_ ? "-" : "UC", ms, reqBytes_,
                                    in_.size());
    worker_.loop().destroyLater(this);
  }
  Worker& worker_;
  Socket sock_;
  std::string out_, in_;
  bool countedRequest_ = false;                            // in the cluster's requests in flight
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this connection
  std::string labels_;
  uint64_t reqBytes_;
  int status_ = 0;
  bool done_ = false;
  uint64_t timer_ = 0;
  std::chrono::steady_clock::time_point started_;
};

class Conn;

struct UpstreamSide : Watcher {
  Conn* conn = nullptr;
  void onEvents(uint32_t events) override;
};

struct DownstreamSide : Watcher {
  Conn* conn = nullptr;
  void onEvents(uint32_t events) override;
};

class Conn : public Deletable {
 public:
  Conn(Worker& w, Socket client, uint32_t src, std::string svcNs, std::string svcName,
       uint16_t svcPort, uint16_t ingressPort)
      : worker_(w),
        client_(std::move(client)),
        src_(src),
        svcNs_(std::move(svcNs)),
        svcName_(std::move(svcName)),
        svcPort_(svcPort),
        ingressPort_(ingressPort),
        source_{src, svcNs_, svcName_, svcPort, ingressPort, false} {
    down_.conn = this;
    up_.conn = this;
  }
  ~Conn() override = default;
  // Terminates TLS on this connection with `front` (the HTTPS ingress listener's context).
  bool startTls(SSL_CTX* front) {
    SSL* ssl = SSL_new(front);
    if (!ssl) return false;
    SSL_set_accept_state(ssl);
    source_.tls = true;
    return client_.attachTls(ssl, Socket::Phase::Open);
  }

  // The last hop of mesh traffic to `pod` (its port set): every request goes to it, from
  // inside the pod, once the pod's AuthorizationPolicies let the client (`principal`, proven
  // by its certificate; none for plaintext) through. Counted by the sending proxy, not here.
  void setInbound(const Endpoint& pod, std::optional<std::string> principal) {
    inbound_ = true;
    inboundPod_ = pod;
    principal_ = std::move(principal);
  }

  void begin() {
    worker_.loop().add(client_.fd(), kEvents, &down_);
    armHeadTimer(kHeaderTimeoutMs);
    onDownstream(EPOLLIN);
  }

  void onDownstream(uint32_t events);
  void onUpstream(uint32_t events);

 private:
  enum class State { ReadHead, ReadBody, Waiting, Upstream, Streaming, Closing };

  // --- downstream ------------------------------------------------------------------------
  void readDownstream(uint32_t events);
  void flushDownstream();
  bool writeOut();  // false: the connection was closed
  void process();
  void dispatch();
  void localReply(int status, const std::string& body, const std::string& flags, bool closeAfter,
                  const std::vector<std::pair<std::string, std::string>>& extra = {});
  void timedOutReadingHead();
  void finishRequest();
  void closeNow();
  void handOffToH2();
  // The deadline for a request's head (or the idle keep-alive time before it). Moving it is
  // just a store: the loop's timer is re-armed only when it fires early.
  void armHeadTimer(int64_t ms) {
    headDeadline_ = worker_.loop().nowMs() + ms;
    if (!timer_) timer_ = worker_.loop().after(ms, [this] { headTimerFired(); });
  }
  void headTimerFired() {
    timer_ = 0;
    if (!headDeadline_) return;
    int64_t left = headDeadline_ - worker_.loop().nowMs();
    if (left > 0)
      timer_ = worker_.loop().after(left, [this] { headTimerFired(); });
    else
      timedOutReadingHead();
  }
  void cancelTimer(uint64_t& t) {
    if (t) worker_.loop().cancel(t);
    t = 0;
  }

  // --- routing -----------------------------------------------------------------------------
  bool routeRequest();  // false: answered locally
  const RequestSource& source() const { return source_; }
  // A fire-and-forget copy of the request to the route's mirror (its answer is only counted).
  void mirror(const RouteDestination& m);

  // --- upstream ------------------------------------------------------------------------------
  void attempt();
  void upstreamFailed(const std::string& reason, bool connectFailure);
  void upstreamResponseHead();
  void pumpUpstreamBody();
  void releaseUpstream(bool reuse);
  void connectAttempt();  // a connection for the attempt, or a place among the pending
  void overflow();
  // The rendered metric labels of a request to `dest`, kept while the same config, Service and
  // endpoint serve this connection's requests.
  const std::string& metricLabels(const Endpoint* dest) {
    if (labelsConfig_ != config_ || labelsService_ != target_.service || labelsEndpoint_ != dest ||
        labels_.empty()) {
      labels_ = labelsFor(*config_, src_, target_.service, dest, ingressPort_ != 0, target_.policy)
                    .render();
      labelsConfig_ = config_;  // held, so its Services and endpoints stay where they are
      labelsService_ = target_.service;
      labelsEndpoint_ = dest;
    }
    return labels_;
  }
  bool retriable(int status) const;
  // Who records this connection's spans, kept while the same config serves it.
  const TraceSite& site() {
    if (siteConfig_ != config_) {
      site_ = traceSite(*config_, src_, ingressPort_ != 0, inbound_ ? &inboundPod_ : nullptr);
      siteConfig_ = config_;
    }
    return site_;
  }

  Worker& worker_;
  Socket client_;  // TLS on the HTTPS ingress listener and for inbound mesh traffic
  uint32_t src_;
  std::string svcNs_, svcName_;
  uint16_t svcPort_;
  uint16_t ingressPort_;  // 0 for mesh traffic
  bool inbound_ = false;  // see setInbound
  Endpoint inboundPod_;
  std::optional<std::string> principal_;
  RequestSource source_;    // the above, for the router
  Routed routed_;           // reused from request to request
  bool servedAny_ = false;  // HTTP/2's preface can only open a connection
  DownstreamSide down_;
  UpstreamSide up_;
  State state_ = State::ReadHead;
  std::string in_, out_;
  bool downEof_ = false;
  bool closed_ = false;
  int64_t headDeadline_ = 0;  // 0: not reading a head
  uint64_t timer_ = 0, routeTimer_ = 0, tryTimer_ = 0, delayTimer_ = 0, nextTimer_ = 0;

  // The request in progress.
  std::shared_ptr<const ProxyConfig> config_;
  http1::Head req_;
  std::string body_;
  http1::ChunkedScanner reqChunks_;
  std::chrono::steady_clock::time_point started_;
  int64_t startedUs_ = 0;  // wall clock, for the span
  TraceContext trace_;
  uint64_t requestBytes_ = 0, responseBytes_ = 0;
  const HttpRoute* route_ = nullptr;
  const RouteDestination* dest_ = nullptr;
  Target target_;
  std::string gateway_ = "mesh";
  int attempts_ = 0;
  std::set<const Endpoint*> tried_;
  const Endpoint* endpoint_ = nullptr;
  std::string flags_ = "-";
  int status_ = 0;
  std::string upstreamHost_ = "-";
  std::string originalPath_;

  bool countedRequest_ = false;                            // in the cluster's requests in flight
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with this connection
  std::string labels_;
  std::shared_ptr<const ProxyConfig> labelsConfig_;
  const Service* labelsService_ = nullptr;
  const Endpoint* labelsEndpoint_ = nullptr;
  std::shared_ptr<const ProxyConfig> siteConfig_;
  TraceSite site_;

  // The upstream exchange in progress.
  UpstreamConn* upConn_ = nullptr;
  Socket* upSock_ = nullptr;  // upConn_'s
  bool upConnected_ = false;
  bool upReused_ = false;
  std::string upOut_;  // request bytes not yet written
  std::string upIn_;
  http1::Head resp_;
  bool respHead_ = false;
  http1::ChunkedScanner respChunks_;
  uint64_t respRemaining_ = 0;
  bool respDone_ = false;
  bool upEof_ = false;
  bool upPaused_ = false;  // not reading the upstream until the client catches up
};

}  // namespace podium::proxy::detail
