#include "http_conn.h"

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
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "router.h"
#include "tcp_relay.h"

namespace podium::proxy {

namespace {

bool gAccessLog = true;

constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

// A read that returned less than asked for emptied the socket: with edge-triggered epoll the
// next arrival raises a new event, so the read that would only say EAGAIN is skipped. Unless
// the peer has shut down (its FIN may sit behind the data, and no new edge would announce it).
bool drained(ssize_t got, size_t asked, uint32_t events) {
  return static_cast<size_t>(got) < asked && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}
constexpr int64_t kHeaderTimeoutMs = 10000;   // a slow client gets 408 after this
constexpr int64_t kIdleTimeoutMs = 60000;     // keep-alive connections with no request
constexpr size_t kMaxBufferedBody = 8 << 20;  // bodies are buffered (for retries) up to this
constexpr size_t kMaxPendingOutput = 4 << 20;

std::string hex(uint64_t v, int digits) {
  static const char* d = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = d[v & 15];
  return out;
}

// One shadowed request: connects, sends, reads the status line, counts it, closes. Gives up
// after a few seconds; never touches the client's exchange.
class Shadow : public Watcher, public Deletable {
 public:
  static void start(Worker& w, const Endpoint& e, uint16_t via, std::string request,
                    std::string labels, uint64_t requestBytes) {
    auto* s = new Shadow(w, std::move(request), std::move(labels), requestBytes);
    s->fd_ = w.dial(e.ip, e.port, via);
    if (s->fd_ < 0 || !w.loop().add(s->fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, s)) {
      if (s->fd_ >= 0) close(s->fd_);
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
    while (!out_.empty() && (events & EPOLLOUT)) {
      ssize_t n = send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      out_.erase(0, static_cast<size_t>(n));
    }
    char buf[16384];
    for (;;) {
      ssize_t n = read(fd_, buf, sizeof buf);
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
  ~Shadow() override {
    if (fd_ >= 0) close(fd_);
  }
  void finish() {
    if (done_) return;
    done_ = true;
    if (timer_) worker_.loop().cancel(timer_);
    worker_.loop().remove(fd_);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    // Istio counts what the mirror's destination reports: its answer, or a reset (0).
    worker_.state().metrics.request(labels_, status_, status_ ? "-" : "UC", ms, reqBytes_,
                                    in_.size());
    worker_.loop().destroyLater(this);
  }
  Worker& worker_;
  int fd_ = -1;
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
  Conn(Worker& w, int fd, uint32_t src, std::string svcNs, std::string svcName, uint16_t svcPort,
       uint16_t ingressPort)
      : worker_(w),
        fd_(fd),
        src_(src),
        svcNs_(std::move(svcNs)),
        svcName_(std::move(svcName)),
        svcPort_(svcPort),
        ingressPort_(ingressPort),
        source_{src, svcNs_, svcName_, svcPort, ingressPort, false} {
    down_.conn = this;
    up_.conn = this;
  }
  ~Conn() override {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
  }
  // Terminates TLS on this connection with `front` (the HTTPS ingress listener's context).
  bool startTls(SSL_CTX* front) {
    ssl_ = SSL_new(front);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return false;
    source_.tls = true;
    SSL_set_accept_state(ssl_);
    return true;
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
    worker_.loop().add(fd_, kEvents, &down_);
    armHeadTimer(kHeaderTimeoutMs);
    onDownstream(EPOLLIN);
  }

  void onDownstream(uint32_t events);
  void onUpstream(uint32_t events);

 private:
  enum class State { ReadHead, ReadBody, Waiting, Upstream, Streaming, Closing };

  // --- downstream ------------------------------------------------------------------------
  void readDownstream(uint32_t events);
  // The client's bytes, through TLS when the listener terminates it; -1 with errno EAGAIN
  // when nothing can move now, 0 at the end.
  ssize_t downRead(char* buf, size_t n);
  ssize_t downWrite(const char* buf, size_t n);
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

  Worker& worker_;
  int fd_;
  uint32_t src_;
  std::string svcNs_, svcName_;
  uint16_t svcPort_;
  uint16_t ingressPort_;  // 0 for mesh traffic
  SSL* ssl_ = nullptr;    // on the HTTPS ingress listener
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

  // The upstream exchange in progress.
  UpstreamConn* upConn_ = nullptr;
  int upFd_ = -1;  // upConn_'s
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

void UpstreamSide::onEvents(uint32_t events) { conn->onUpstream(events); }
void DownstreamSide::onEvents(uint32_t events) { conn->onDownstream(events); }

void Conn::onDownstream(uint32_t events) {
  if (closed_) return;
  // A TLS read may need the socket writable and a write readable (handshakes, key updates).
  if (ssl_) events |= EPOLLIN | EPOLLOUT;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readDownstream(events);
  if (closed_) return;
  if (events & EPOLLOUT) flushDownstream();
  if (closed_) return;
  if (state_ == State::ReadHead || state_ == State::ReadBody) process();
  if (closed_) return;
  if (downEof_ && (state_ == State::ReadHead) && in_.empty() && out_.empty()) closeNow();
}

void Conn::readDownstream(uint32_t events) {
  char buf[65536];
  for (;;) {
    // Pipelined requests wait in the buffer; stop reading when too much is queued.
    if (in_.size() > 2 * (1 << 20) + kMaxBufferedBody) return;
    ssize_t n = downRead(buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      if (!ssl_ && drained(n, sizeof buf, events)) return;  // TLS reads stop at a record
      continue;
    }
    if (n == 0) {
      downEof_ = true;
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    closeNow();
    return;
  }
}

void Conn::flushDownstream() {
  if (!writeOut()) return;
  if (out_.empty() && state_ == State::Closing) {
    closeNow();
    return;
  }
  // Response bytes held back while the client was slow can flow again.
  if (state_ == State::Streaming && upPaused_ && out_.size() < kMaxPendingOutput) {
    upPaused_ = false;
    pumpUpstreamBody();
  }
}

ssize_t Conn::downRead(char* buf, size_t n) {
  if (!ssl_) return read(fd_, buf, n);
  int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
  if (r > 0) return r;
  return sslIoResult(ssl_, r);
}

ssize_t Conn::downWrite(const char* buf, size_t n) {
  if (!ssl_) return send(fd_, buf, n, MSG_NOSIGNAL);
  int r = SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
  if (r > 0) return r;
  return sslIoResult(ssl_, r);
}

bool Conn::writeOut() {
  while (!out_.empty()) {
    ssize_t n = downWrite(out_.data(), out_.size());
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    closeNow();
    return false;
  }
  return true;
}

void Conn::timedOutReadingHead() {
  if (state_ != State::ReadHead && state_ != State::ReadBody) return;
  if (in_.empty() && state_ == State::ReadHead) {
    closeNow();  // an idle keep-alive connection: close quietly
    return;
  }
  localReply(408, "request timeout", "-", true);
}

void Conn::process() {
  while (!closed_) {
    if (state_ == State::ReadHead) {
      if (in_.empty()) return;
      if (!servedAny_ && in_[0] == 'P' && !inbound_) {
        // HTTP/2 with prior knowledge (h2c, gRPC): the connection goes to the HTTP/2 side.
        size_t n = std::min(in_.size(), kH2Preface.size());
        if (in_.compare(0, n, kH2Preface.substr(0, n)) == 0) {
          if (n < kH2Preface.size()) return;  // wait for the rest of the preface
          handOffToH2();
          return;
        }
      }
      auto r = http1::parseRequest(in_, &req_);
      if (r.status == http1::ParseStatus::NeedMore) {
        if (downEof_) closeNow();
        return;
      }
      started_ = std::chrono::steady_clock::now();
      requestBytes_ = 0;
      responseBytes_ = 0;
      if (r.status == http1::ParseStatus::Error) {
        req_.method = req_.method.empty() ? "-" : req_.method;
        localReply(r.errorCode, r.error, "DPE", true);
        return;
      }
      requestBytes_ = req_.headSize;
      in_.erase(0, req_.headSize);
      if (strings::iequals(req_.header("expect"), "100-continue")) {
        // The body is read here (retries need it), so the client may send it now.
        req_.remove("expect");
        if (req_.body != http1::BodyKind::None && in_.empty()) {
          out_ += "HTTP/1.1 100 Continue\r\n\r\n";
          flushDownstream();
          if (closed_) return;
        }
      }
      body_.clear();
      reqChunks_ = http1::ChunkedScanner();
      state_ = State::ReadBody;
    }
    if (state_ == State::ReadBody) {
      if (req_.body == http1::BodyKind::Length) {
        if (req_.contentLength > kMaxBufferedBody) {
          localReply(413, "payload too large", "-", true);
          return;
        }
        if (in_.size() < req_.contentLength) {
          if (downEof_) closeNow();
          return;
        }
        body_ = in_.substr(0, req_.contentLength);
        in_.erase(0, req_.contentLength);
      } else if (req_.body == http1::BodyKind::Chunked) {
        int64_t used = reqChunks_.feed(in_);
        if (used < 0) {
          localReply(400, "malformed chunked body", "DPE", true);
          return;
        }
        body_.append(in_, 0, static_cast<size_t>(used));
        in_.erase(0, static_cast<size_t>(used));
        if (body_.size() > kMaxBufferedBody) {
          localReply(413, "payload too large", "-", true);
          return;
        }
        if (!reqChunks_.done()) {
          if (downEof_) closeNow();
          return;
        }
      }
      requestBytes_ += body_.size();
      headDeadline_ = 0;
      state_ = State::Waiting;
      dispatch();
      return;  // the next request is parsed once this one is finished
    }
    return;
  }
}

void Conn::localReply(int status, const std::string& body, const std::string& flags,
                      bool closeAfter,
                      const std::vector<std::pair<std::string, std::string>>& extra) {
  cancelTimer(routeTimer_);
  cancelTimer(tryTimer_);
  cancelTimer(delayTimer_);
  releaseUpstream(false);
  status_ = status;
  flags_ = flags;
  http1::Head h;
  h.status = status;
  h.add("content-length", std::to_string(body.size()));
  h.add("content-type", "text/plain");
  for (const auto& [k, v] : extra) h.add(k, v);
  {
    char date[64];
    time_t t = time(nullptr);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tmv);
    h.add("date", date);
  }
  h.add("server", "podium");
  bool close = closeAfter || !req_.keepAlive;
  if (close) h.add("connection", "close");
  if (route_) applyOps(h, route_->responseHeaders);
  std::string head = http1::serializeResponse(h);
  responseBytes_ = head.size() + body.size();
  out_ += head;
  if (req_.method != "HEAD") out_ += body;
  state_ = close ? State::Closing : State::Streaming;
  respDone_ = true;
  finishRequest();
}

void Conn::closeNow() {
  if (closed_) return;
  closed_ = true;
  cancelTimer(timer_);
  cancelTimer(routeTimer_);
  cancelTimer(tryTimer_);
  cancelTimer(delayTimer_);
  cancelTimer(nextTimer_);
  if (endpoint_) --worker_.health(endpoint_->ip, endpoint_->port).active, endpoint_ = nullptr;
  worker_.loop().remove(fd_);
  if (upConn_) {
    worker_.closeUpstream(upConn_);
    upConn_ = nullptr;
    upFd_ = -1;
  }
  worker_.loop().destroyLater(this);
}

// --- routing -------------------------------------------------------------------------------

void Conn::mirror(const RouteDestination& m) {
  Target t;
  if (!findTarget(*config_, source(), &m, m.host, m.port, &t).empty() || t.endpoints.empty())
    return;
  const Endpoint* e =
      t.endpoints[static_cast<size_t>(uniform(t.endpoints.size())) % t.endpoints.size()];
  http1::Head h = req_;
  h.set("host", hostOnly(req_.header("host")) + "-shadow");  // Envoy's mark on shadowed requests
  h.set("connection", "close");
  bool ingress = ingressPort_ != 0;
  Shadow::start(worker_, *e, meshVia(*config_, src_, ingress, *e, t.policy),
                http1::serializeRequest(h) + body_,
                labelsFor(*config_, src_, t.service, e, ingress, t.policy).render(), requestBytes_);
}

bool Conn::routeRequest() {
  originalPath_ = req_.target;
  proxy::routeRequest(*config_, req_, source_, &routed_);
  route_ = routed_.route;
  dest_ = routed_.dest;
  target_ = std::move(routed_.target);
  gateway_ = routed_.gateway;
  if (routed_.localStatus == 0) return true;
  localReply(routed_.localStatus, routed_.localBody, routed_.localFlags, false,
             routed_.localHeaders);
  return false;
}

void Conn::handOffToH2() {
  closed_ = true;
  cancelTimer(timer_);
  worker_.loop().remove(fd_);
  int fd = fd_;
  fd_ = -1;
  SSL* ssl = ssl_;  // goes with the connection
  ssl_ = nullptr;
  worker_.loop().destroyLater(this);
  startH2Connection(worker_, fd, ssl, std::move(in_), source());
}

void Conn::dispatch() {
  servedAny_ = true;
  config_ = worker_.state().config();  // a new snapshot applies from the next request
  target_ = Target{};
  resp_ = http1::Head{};
  flags_ = "-";
  status_ = 0;
  attempts_ = 0;
  tried_.clear();
  upstreamHost_ = "-";
  gateway_ = ingressPort_ ? "" : "mesh";
  if (!req_.has("x-request-id")) req_.set("x-request-id", strings::uuid4());
  // HTTP/1.0 may leave Host out; it is forwarded as HTTP/1.1, which needs one.
  if (!req_.has("host")) req_.set("host", svcName_.empty() ? "localhost" : svcName_ + "." + svcNs_);
  std::string tp = req_.header("traceparent");
  std::string spanId = hex(randomU64(), 16);
  if (tp.size() == 55 && tp[2] == '-' && tp[35] == '-') {
    req_.set("traceparent", tp.substr(0, 36) + spanId + tp.substr(52));  // same trace, our span
  } else {
    req_.set("traceparent",
             "00-" + hex(randomU64(), 16) + hex(randomU64(), 16) + "-" + spanId + "-01");
  }
  if (ssl_ && req_.upgrade) {
    // The raw relay an upgrade becomes speaks to sockets, not TLS sessions.
    localReply(501, "protocol upgrades are not supported on the HTTPS ingress listener\n", "-",
               true);
    return;
  }
  if (inbound_) {
    // STRICT is checked when a connection comes in, and again on each request: a plaintext
    // connection accepted under PERMISSIVE (and pooled by the sender) ends with the policy, as
    // Envoy drains a changed listener's connections.
    if (!principal_ && config_->mesh().mode(inboundPod_, inboundPod_.port) == MtlsMode::Strict) {
      worker_.state().metrics.mtlsFailure("server", "plaintext");
      closeNow();
      return;
    }
    static const TrafficPolicy kInboundPolicy;
    originalPath_ = req_.target;
    target_.endpoints = {&inboundPod_};
    target_.policy = &kInboundPolicy;
    target_.cluster = "inbound|" + std::to_string(inboundPod_.port) + "||";
    route_ = nullptr;
    dest_ = nullptr;
    // Envoy's record of the client's proven identity, for the workload.
    if (principal_)
      req_.set("x-forwarded-client-cert", "By=spiffe://" +
                                              inboundPod_.principal(config_->mesh().trustDomain()) +
                                              ";URI=spiffe://" + *principal_);
    else
      req_.remove("x-forwarded-client-cert");
  } else if (!routeRequest()) {
    return;
  }
  const HttpRoute* r = route_;
  auto go = [this] {
    const HttpRoute* r = route_;
    if (r && r->abortPercent > 0 && uniform(100) < r->abortPercent) {
      localReply(r->abortStatus, "fault filter abort", "FI", false);
      return;
    }
    if (r) {
      applyOps(req_, r->requestHeaders);
      if (dest_) applyOps(req_, dest_->requestHeaders);
    }
    std::string xff = req_.header("x-forwarded-for");
    std::string client = net::formatIpv4(src_);
    req_.set("x-forwarded-for", xff.empty() ? client : xff + ", " + client);
    if (!req_.has("x-forwarded-proto")) req_.set("x-forwarded-proto", ssl_ ? "https" : "http");
    if (r && r->timeoutMs > 0)
      routeTimer_ = worker_.loop().after(r->timeoutMs, [this] {
        routeTimer_ = 0;
        if (state_ == State::Upstream) localReply(504, "upstream request timeout", "UT", false);
      });
    if (r && r->mirror && uniform(100) < r->mirrorPercent) mirror(*r->mirror);
    state_ = State::Upstream;
    attempt();
  };
  if (r && r->delayPercent > 0 && r->delayMs > 0 && uniform(100) < r->delayPercent) {
    flags_ = "DI";
    delayTimer_ = worker_.loop().after(r->delayMs, [this, go] {
      delayTimer_ = 0;
      std::string keep = flags_;
      go();
      if (flags_ == "-") flags_ = keep;
    });
    return;
  }
  go();
}

// --- upstream -------------------------------------------------------------------------------

void Conn::attempt() {
  ++attempts_;
  endpoint_ = pickEndpoint(worker_, target_, req_, src_, tried_);
  if (!endpoint_) {
    localReply(503, "no healthy upstream", "UH", false);
    return;
  }
  tried_.insert(endpoint_);
  ++worker_.health(endpoint_->ip, endpoint_->port).active;
  // Inbound, the client's certificate names it; outbound (the same check, earlier, for pods
  // outside the mesh) the pod at its address.
  std::string none;
  const std::string* principal = inbound_ ? (principal_ ? &*principal_ : &none) : nullptr;
  if (attempts_ == 1 && !authorized(*config_, src_, *endpoint_, &req_, principal)) {
    localReply(403, "RBAC: access denied", "-", false);  // Envoy's RBAC filter's answer
    return;
  }
  if (gAccessLog)
    upstreamHost_ = net::formatIpv4(endpoint_->ip) + ":" + std::to_string(endpoint_->port);
  req_.set("x-envoy-attempt-count", std::to_string(attempts_));
  if (!req_.upgrade) {
    // Hop-by-hop: the client's wish to close its connection is not the upstream's, which
    // stays pooled (as Envoy's does).
    req_.remove("connection");
    req_.remove("keep-alive");
    req_.remove("proxy-connection");
  }
  upOut_ = http1::serializeRequest(req_) + body_;
  upIn_.clear();
  respHead_ = false;
  respDone_ = false;
  upEof_ = false;
  upPaused_ = false;
  respChunks_ = http1::ChunkedScanner();
  ClusterLoad& load = worker_.load(target_.cluster);
  if (load.requests >= target_.policy->maxRequests) {
    overflow();
    return;
  }
  ++load.requests;
  countedRequest_ = true;
  connectAttempt();
}

void Conn::overflow() {
  // Envoy's circuit breaker answer (response flag UO).
  localReply(503,
             "upstream connect error or disconnect/reset before headers. reset reason: overflow",
             "UO", false, {{"x-envoy-overloaded", "true"}});
}

void Conn::connectAttempt() {
  if (closed_ || state_ != State::Upstream || !endpoint_ || upConn_) return;  // a stale wake-up
  uint16_t via =
      inbound_ ? kViaPod : meshVia(*config_, src_, ingressPort_ != 0, *endpoint_, target_.policy);
  upConn_ = worker_.takeIdle(endpoint_->ip, endpoint_->port, via, &up_);
  upReused_ = upConn_ != nullptr;
  upConnected_ = upReused_;
  if (!upConn_) {
    // At the cluster's maxConnections a request waits for one (http1MaxPendingRequests), unless
    // an idle connection to another of its endpoints can make room.
    ClusterLoad& load = worker_.load(target_.cluster);
    if (load.connections >= target_.policy->maxConnections &&
        !worker_.closeIdleOf(target_.cluster)) {
      if (static_cast<int>(load.pending.size()) >= target_.policy->maxPendingRequests) {
        overflow();
        return;
      }
      load.pending.emplace_back(alive_, [this] { connectAttempt(); });
      return;
    }
    upConn_ = worker_.connectTo(endpoint_->ip, endpoint_->port, via, &up_, target_.cluster);
  }
  if (!upConn_) {
    upstreamFailed("connection failure", true);
    return;
  }
  upFd_ = upConn_->fd;
  int64_t perTry = route_ ? route_->retries.perTryTimeoutMs : 0;
  int64_t connectTimeout = target_.policy->connectTimeoutMs;
  if (perTry > 0 || !upConnected_)
    tryTimer_ = worker_.loop().after(perTry > 0 ? perTry : connectTimeout, [this, perTry] {
      tryTimer_ = 0;
      if (state_ != State::Upstream) return;
      if (!upConnected_)
        upstreamFailed("connection timeout", true);
      else if (perTry > 0 && !respHead_)
        upstreamFailed("per-try timeout", false);
    });
  if (upConnected_) onUpstream(EPOLLOUT);
}

void Conn::onUpstream(uint32_t events) {
  if (closed_ || upFd_ < 0) return;
  if (!upConnected_) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(upFd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      upstreamFailed("connection failure", true);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    upConnected_ = true;
    if (tryTimer_ && !(route_ && route_->retries.perTryTimeoutMs > 0)) cancelTimer(tryTimer_);
  }
  while (!upOut_.empty()) {
    ssize_t n = send(upFd_, upOut_.data(), upOut_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      upOut_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    upstreamFailed("connection reset", false);
    return;
  }
  if (state_ == State::Streaming && (upPaused_ || out_.size() >= kMaxPendingOutput)) {
    upPaused_ = true;  // the client is slow: resume when its buffer drains
    return;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(upFd_, buf, sizeof buf);
    if (n > 0) {
      upIn_.append(buf, static_cast<size_t>(n));
      if (state_ == State::Streaming && upIn_.size() > kMaxPendingOutput) break;
      if (drained(n, sizeof buf, events)) break;
      continue;
    }
    if (n == 0) {
      upEof_ = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    if (!respHead_) {
      upstreamFailed("connection reset", false);
      return;
    }
    upEof_ = true;
    break;
  }
  if (state_ == State::Upstream && !respHead_) {
    auto r = http1::parseResponse(upIn_, req_.method, &resp_);
    if (r.status == http1::ParseStatus::NeedMore) {
      if (upEof_) upstreamFailed(upIn_.empty() ? "connection reset" : "truncated response", false);
      return;
    }
    if (r.status == http1::ParseStatus::Error) {
      upstreamFailed("protocol error", false);
      return;
    }
    if (resp_.status == 100) {  // interim response: pass on, wait for the real one
      out_ += std::string(upIn_, 0, resp_.headSize);
      upIn_.erase(0, resp_.headSize);
      flushDownstream();
      return;
    }
    respHead_ = true;
    upstreamResponseHead();
    return;
  }
  if (state_ == State::Streaming) pumpUpstreamBody();
}

bool Conn::retriable(int status) const {
  int maxAttempts = 1 + (route_ ? route_->retries.attempts : 2);
  if (attempts_ >= maxAttempts) return false;
  static const RetryPolicy kDefault;
  const RetryPolicy& rp = route_ ? route_->retries : kDefault;
  if (status == 0) return true;  // decided by the caller for connection-level failures
  if (rp.retryOn.count("5xx") && status >= 500) return true;
  if (rp.retryOn.count("gateway-error") && (status == 502 || status == 503 || status == 504))
    return true;
  if (rp.retryOn.count("retriable-4xx") && status == 409) return true;
  if (rp.retryOn.count("retriable-status-codes") && rp.statusCodes.count(status)) return true;
  return false;
}

void Conn::upstreamFailed(const std::string& reason, bool connectFailure) {
  cancelTimer(tryTimer_);
  const Endpoint* e = endpoint_;
  if (e) recordOutcome(worker_, target_, *e, 0, true);
  releaseUpstream(false);
  // A reused keep-alive connection the endpoint had closed: try again at once, it is not the
  // endpoint's fault.
  static const RetryPolicy kDefault;
  const RetryPolicy& rp = route_ ? route_->retries : kDefault;
  bool idempotent = req_.method == "GET" || req_.method == "HEAD" || req_.method == "OPTIONS";
  bool canRetry =
      retriable(0) &&
      ((connectFailure && rp.retryOn.count("connect-failure")) ||
       (!connectFailure && (idempotent || rp.retryOn.count("reset") || rp.retryOn.count("5xx"))));
  if (inbound_ && (connectFailure || !canRetry)) {
    // The workload in this pod cannot answer: the mesh connection is reset, so the sending
    // proxy retries elsewhere as its policy allows (as with ztunnel). A pooled connection the
    // app closed is retried here first, like any other.
    closeNow();
    return;
  }
  if (canRetry) {
    int64_t backoff = static_cast<int64_t>(uniform(25.0 * ((1 << std::min(attempts_, 4)) - 1)));
    if (backoff <= 0) {
      attempt();
    } else {
      tryTimer_ = worker_.loop().after(backoff, [this] {
        tryTimer_ = 0;
        if (state_ == State::Upstream) attempt();
      });
    }
    return;
  }
  localReply(503,
             "upstream connect error or disconnect/reset before headers. reset reason: " + reason,
             connectFailure ? "UF" : "UC", false);
  if (attempts_ > 1) flags_ = connectFailure ? "UF,URX" : "UC,URX";
}

void Conn::upstreamResponseHead() {
  cancelTimer(tryTimer_);
  if (endpoint_) recordOutcome(worker_, target_, *endpoint_, resp_.status, false);
  if (retriable(resp_.status)) {
    releaseUpstream(false);
    attempt();
    return;
  }
  cancelTimer(routeTimer_);
  status_ = resp_.status;
  upIn_.erase(0, resp_.headSize);
  if (req_.upgrade && resp_.status == 101) {
    // WebSocket and friends: from here on, bytes both ways.
    http1::Head h = resp_;
    out_ += http1::serializeResponse(h);
    flushDownstream();
    worker_.loop().remove(fd_);
    worker_.detach(upConn_);
    upConn_ = nullptr;
    MetricLabels labels =
        labelsFor(*config_, src_, target_.service, endpoint_, false, target_.policy);
    worker_.state().metrics.request(labels.render(), 101, flags_, 0, requestBytes_, 0);
    TcpRelay::adopt(worker_, fd_, upFd_, std::move(in_), std::move(upIn_), labels);
    fd_ = -1;
    upFd_ = -1;
    if (endpoint_) --worker_.health(endpoint_->ip, endpoint_->port).active;
    endpoint_ = nullptr;
    closed_ = true;
    cancelTimer(timer_);
    worker_.loop().destroyLater(this);
    return;
  }
  http1::Head h = resp_;
  int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started_)
                     .count();
  h.set("x-envoy-upstream-service-time", std::to_string(took));  // route ops may remove it
  if (route_) applyOps(h, route_->responseHeaders);
  if (dest_) applyOps(h, dest_->responseHeaders);
  h.remove("connection");
  h.remove("keep-alive");
  if (!req_.keepAlive || resp_.body == http1::BodyKind::UntilClose) h.add("connection", "close");
  std::string head = http1::serializeResponse(h);
  responseBytes_ = head.size();
  out_ += head;
  respRemaining_ = resp_.contentLength;
  state_ = State::Streaming;
  pumpUpstreamBody();
}

void Conn::pumpUpstreamBody() {
  if (state_ != State::Streaming || respDone_) return;
  if (out_.size() < kMaxPendingOutput && upFd_ >= 0 && upIn_.empty() && !upEof_ && !upPaused_) {
    // Resume reading after backpressure.
    char buf[65536];
    for (;;) {
      ssize_t n = read(upFd_, buf, sizeof buf);
      if (n > 0) {
        upIn_.append(buf, static_cast<size_t>(n));
        if (upIn_.size() > kMaxPendingOutput) break;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) upEof_ = true;
      break;
    }
  }
  size_t take = 0;
  switch (resp_.body) {
    case http1::BodyKind::None:
      respDone_ = true;
      break;
    case http1::BodyKind::Length:
      take = static_cast<size_t>(std::min<uint64_t>(respRemaining_, upIn_.size()));
      respRemaining_ -= take;
      if (respRemaining_ == 0) respDone_ = true;
      break;
    case http1::BodyKind::Chunked: {
      int64_t used = respChunks_.feed(upIn_);
      if (used < 0) {
        flags_ = "UPE";
        state_ = State::Closing;
        respDone_ = true;
        break;
      }
      take = static_cast<size_t>(used);
      if (respChunks_.done()) respDone_ = true;
      break;
    }
    case http1::BodyKind::UntilClose:
      take = upIn_.size();
      if (upEof_) respDone_ = true;
      break;
  }
  out_.append(upIn_, 0, take);
  upIn_.erase(0, take);
  responseBytes_ += take;
  if (!respDone_ && upEof_) {
    // The endpoint went away mid-body: nothing to do but end the connection.
    flags_ = "UC";
    state_ = State::Closing;
    respDone_ = true;
  }
  if (!writeOut()) return;
  if (respDone_) {
    finishRequest();
    return;
  }
  if (out_.size() >= kMaxPendingOutput) upPaused_ = true;
}

void Conn::releaseUpstream(bool reuse) {
  if (endpoint_) {
    --worker_.health(endpoint_->ip, endpoint_->port).active;
  }
  if (countedRequest_) {
    --worker_.load(target_.cluster).requests;
    countedRequest_ = false;
  }
  if (upConn_) {
    int perConnection = target_.policy ? target_.policy->maxRequestsPerConnection : 0;
    if (reuse && endpoint_ && upIn_.empty() &&
        (perConnection <= 0 || ++upConn_->requests < perConnection))
      worker_.giveIdle(upConn_);
    else
      worker_.closeUpstream(upConn_);
    upConn_ = nullptr;
    upFd_ = -1;
  }
  endpoint_ = nullptr;
  upConnected_ = false;
}

void Conn::finishRequest() {
  if (!config_) config_ = worker_.state().config();  // a request refused before routing
  bool upstreamReusable = resp_.keepAlive && resp_.body != http1::BodyKind::UntilClose &&
                          status_ != 0 && flags_.find("UC") == std::string::npos &&
                          flags_.find("UPE") == std::string::npos;
  const Endpoint* dest = endpoint_;
  const std::string& labels = metricLabels(dest);
  if (upFd_ >= 0 || endpoint_) releaseUpstream(upstreamReusable);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
                  .count();
  if (status_ != 0 && !inbound_)
    worker_.state().metrics.request(labels, status_, flags_, ms, requestBytes_, responseBytes_);
  if (gAccessLog) {
    char when[64];
    time_t t = time(nullptr);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    std::string line =
        std::string("[") + when + "] \"" + req_.method + " " + originalPath_ + " HTTP/1." +
        std::to_string(req_.minor) + "\" " + std::to_string(status_) + " " + flags_ + " " +
        std::to_string(requestBytes_) + " " + std::to_string(responseBytes_) + " " +
        std::to_string(static_cast<int64_t>(ms)) + " \"" + req_.header("x-forwarded-for") +
        "\" \"" + req_.header("user-agent") + "\" \"" + req_.header("x-request-id") + "\" \"" +
        req_.header("host") + "\" \"" + upstreamHost_ + "\" " +
        (target_.cluster.empty() ? "-" : target_.cluster);
    // Who talked to whom, and how: the peer's proven identity where mesh TLS arrives.
    MetricLabels l =
        labelsFor(*config_, src_, target_.service, dest, ingressPort_ != 0, target_.policy);
    if (inbound_) {
      l.sourcePrincipal = principal_ ? "spiffe://" + *principal_ : "-";
      l.destinationPrincipal = "spiffe://" + inboundPod_.principal(config_->mesh().trustDomain());
      l.connectionSecurityPolicy = principal_ ? "mutual_tls" : "none";
    }
    line += " \"" + l.sourcePrincipal + "\" \"" + l.destinationPrincipal + "\" " +
            l.connectionSecurityPolicy + "\n";
    fwrite(line.data(), 1, line.size(), stdout);
  }
  route_ = nullptr;
  dest_ = nullptr;
  bool upstreamAnswered = resp_.status != 0 && status_ == resp_.status;
  if (state_ == State::Closing || !req_.keepAlive ||
      (upstreamAnswered && resp_.body == http1::BodyKind::UntilClose)) {
    state_ = State::Closing;
    flushDownstream();
    return;
  }
  resp_ = http1::Head{};
  state_ = State::ReadHead;
  flushDownstream();
  if (closed_) return;
  armHeadTimer(in_.empty() ? kIdleTimeoutMs : kHeaderTimeoutMs);
  // A pipelined request may already be waiting: parse it from the loop, not from here.
  if (!in_.empty())
    nextTimer_ = worker_.loop().after(0, [this] {
      nextTimer_ = 0;
      if (!closed_ && state_ == State::ReadHead) process();
    });
}

}  // namespace

void setAccessLog(bool on) { gAccessLog = on; }

void startHttpConnection(Worker& worker, int fd, const Service* svc, const ServicePort* sp,
                         uint32_t sourceIp) {
  auto* c = new Conn(worker, fd, sourceIp, svc->ns, svc->name, sp->port, 0);
  c->begin();
}

void startInboundConnection(Worker& worker, int fd, const Endpoint& pod, uint32_t sourceIp,
                            std::optional<std::string> principal) {
  auto* c = new Conn(worker, fd, sourceIp, pod.ns, "", pod.port, 0);
  c->setInbound(pod, std::move(principal));
  c->begin();
}

void startIngressConnection(Worker& worker, int fd, uint16_t port, uint32_t sourceIp,
                            SSL_CTX* tls) {
  auto* c = new Conn(worker, fd, sourceIp, "", "", 0, port);
  if (tls && !c->startTls(tls)) {
    delete c;  // closes fd
    return;
  }
  c->begin();
}

}  // namespace podium::proxy
