#include "h2_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "podium/common/net.h"
#include "podium/common/strings.h"

namespace podium::proxy {

namespace {

constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

class Session;
class Downstream;
class Upstream;

// Sessions with frames to send. Sending happens after the event that produced them, never
// from inside a session's own callbacks (nghttp2 forbids that re-entry).
thread_local std::vector<Session*> tDirty;
// This worker's HTTP/2 connections to endpoints, by address.
thread_local std::unordered_map<PoolKey, Upstream*, PoolKeyHash> tPool;

// Envoy's mapping of an HTTP status to a gRPC status, for the proxy's own answers.
int grpcStatusFor(int http) {
  switch (http) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;  // UNAVAILABLE
    default:
      return 2;  // UNKNOWN
  }
}

bool connectionSpecific(const std::string& name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "host" || name == "te";
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// nghttp2's view of header pairs that live in `h` while the call lasts.
std::vector<nghttp2_nv> nvs(const Headers& h) {
  std::vector<nghttp2_nv> out;
  out.reserve(h.size());
  for (const auto& [k, v] : h)
    out.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                   NGHTTP2_NV_FLAG_NONE});
  return out;
}

class Session : public Watcher, public Deletable {
 public:
  Session(Worker& w, Socket s) : worker_(w), sock_(std::move(s)) {}
  ~Session() override {
    if (session_) nghttp2_session_del(session_);
  }
  void markDirty() {
    if (dirty_ || closed_) return;
    dirty_ = true;
    tDirty.push_back(this);
  }
  static void flushDirty() {
    while (!tDirty.empty()) {
      auto batch = std::move(tDirty);
      tDirty.clear();
      for (Session* s : batch) {
        s->dirty_ = false;
        if (!s->closed_) s->flush();
      }
    }
  }
  bool closed() const { return closed_; }
  nghttp2_session* session() { return session_; }
  Worker& worker() { return worker_; }

  void onEvents(uint32_t events) override {
    if (closed_) return;
    if (!ready(events)) return flushDirty();
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[65536];
      for (;;) {
        ssize_t n = sock_.read(buf, sizeof buf);
        if (n > 0) {
          if (!receive(buf, static_cast<size_t>(n))) break;
          if (sock_.drained(n, sizeof buf) && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) break;
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0 && errno == EINTR) continue;
        close();  // end of stream or an error
        break;
      }
    }
    markDirty();
    flushDirty();
  }

  // Feeds bytes to nghttp2; false (and closed) on a protocol error.
  bool receive(const char* data, size_t n) {
    if (closed_) return false;
    ssize_t r = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), n);
    if (r < 0) {
      close();
      return false;
    }
    return true;
  }

  virtual void close() {
    if (closed_) return;
    closed_ = true;
    worker_.loop().remove(sock_.fd());
    worker_.loop().destroyLater(this);
  }

 protected:
  // false while the socket is not usable yet (an upstream still connecting).
  virtual bool ready(uint32_t) { return true; }

  void flush() {
    if (!sock_.open()) return;  // an upstream still connecting
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return close();
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    while (!out_.empty()) {
      ssize_t n = sock_.write(out_.data(), out_.size());
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      return close();
    }
    if (out_.empty() && !nghttp2_session_want_read(session_) &&
        !nghttp2_session_want_write(session_))
      close();
  }

  Worker& worker_;
  Socket sock_;  // TLS: the HTTPS ingress listener's session (ALPN h2), or mesh TLS upstream
  nghttp2_session* session_ = nullptr;
  std::string out_;
  bool dirty_ = false;
  bool closed_ = false;
};

// One client stream: the request as it arrives, the upstream stream carrying it, the response
// as it comes back.
struct Stream {
  Downstream* down = nullptr;
  int32_t id = 0;
  http1::Head req;
  std::string scheme = "http";
  bool grpc = false;
  std::string reqBody;
  bool reqEnd = false;
  bool upDeferred = false;  // the upstream's data source waits for request bytes
  Upstream* up = nullptr;
  int32_t upId = -1;
  int status = 0;
  Headers respHeaders, trailers;
  std::string respBody;
  bool respStarted = false, respEnd = false;
  bool downDeferred = false;
  std::shared_ptr<const ProxyConfig> config;
  Routed routed;
  const Endpoint* endpoint = nullptr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t startedUs = wallMicros();
  TraceContext trace;
  std::string path;  // as the client sent it
  uint64_t reqBytes = 0, respBytes = 0;
  size_t headerBytes = 0;  // the request's header list, as HTTP/2 counts it (RFC 9113 6.5.2)
  std::string flags = "-", grpcStatus;
  uint64_t timer = 0, delayTimer = 0;
  std::set<const Endpoint*> tried;                        // endpoints this stream was sent to
  std::shared_ptr<int> alive = std::make_shared<int>(0);  // expires with the stream
};

const RetryPolicy kDefaultRetries;

class Upstream : public Session {
 public:
  static Upstream* get(Worker& w, const Endpoint& e, Via via);
  // Sends `st`'s request as a new stream; false if this connection takes no more streams.
  bool submit(Stream* st);
  void forget(Stream* st, bool reset);
  void resume(Stream* st) {
    if (st->upDeferred && st->upId > 0) {
      st->upDeferred = false;
      nghttp2_session_resume_data(session_, st->upId);
      markDirty();
    }
  }
  void close() override;

 private:
  Upstream(Worker& w, Socket s, PoolKey key) : Session(w, std::move(s)), key_(key) {}
  bool ready(uint32_t events) override;
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrame(nghttp2_session*, const nghttp2_frame*, void*);
  static int onData(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                          nghttp2_data_source*, void*);
  PoolKey key_;
  std::map<int32_t, Stream*> streams_;
};

class Downstream : public Session {
 public:
  Downstream(Worker& w, Socket s, RequestSource from)
      : Session(w, std::move(s)), from_(std::move(from)) {}
  bool start(const std::string& received);
  void respond(Stream* st);  // the upstream's response head is in st
  void forward(Stream* st);  // to an endpoint (another one on a retry)
  void localReply(Stream* st, int status, const std::string& body, const std::string& flags,
                  const Headers& extra = {});
  void resume(Stream* st) {
    if (st->downDeferred) {
      st->downDeferred = false;
      nghttp2_session_resume_data(session_, st->id);
    }
    markDirty();
  }
  void reset(Stream* st) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    markDirty();
  }
  void close() override {
    for (auto& [id, st] : streams_) finish(st.get());
    streams_.clear();
    Session::close();
  }

 private:
  void dispatch(Stream* st);
  void finish(Stream* st);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrame(nghttp2_session*, const nghttp2_frame*, void*);
  static int onData(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                          nghttp2_data_source*, void*);
  // Who records this connection's spans, kept while the same config serves it.
  const TraceSite& site(const std::shared_ptr<const ProxyConfig>& config) {
    if (siteConfig_ != config) {
      site_ = traceSite(*config, from_.ip, from_.ingressPort != 0, nullptr);
      siteConfig_ = config;
    }
    return site_;
  }
  RequestSource from_;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  std::shared_ptr<const ProxyConfig> siteConfig_;
  TraceSite site_;
};

Stream* streamOf(nghttp2_session* s, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, id));
}

// --- downstream ----------------------------------------------------------------------------

bool Downstream::start(const std::string& received) {
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, onClose);
  int rv = nghttp2_session_server_new(&session_, cb, this);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return false;
  // No SETTINGS_MAX_HEADER_LIST_SIZE: nghttp2 would refuse a longer header list with a bare
  // REFUSED_STREAM; the stream is answered 431 instead (dispatch), as an HTTP/1.1 head is.
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  if (!worker_.loop().add(sock_.fd(), kEvents, this)) return false;
  if (!received.empty() && !receive(received.data(), received.size())) return true;
  markDirty();
  onEvents(EPOLLIN);  // more may have arrived; this also sends our SETTINGS
  return true;
}

int Downstream::onBeginHeaders(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<Downstream*>(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto st = std::make_unique<Stream>();
  st->down = self;
  st->id = f->hd.stream_id;
  nghttp2_session_set_stream_user_data(s, st->id, st.get());
  self->streams_[st->id] = std::move(st);
  return 0;
}

int Downstream::onHeader(nghttp2_session* s, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                         const uint8_t* v, size_t vl, uint8_t, void*) {
  Stream* st = streamOf(s, f->hd.stream_id);
  if (!st || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  std::string name(reinterpret_cast<const char*>(n), nl),
      value(reinterpret_cast<const char*>(v), vl);
  st->reqBytes += nl + vl;
  st->headerBytes += nl + vl + 32;
  if (st->headerBytes > http1::Limits{}.maxHeadBytes) return 0;  // answered 431 at dispatch
  if (name == ":method")
    st->req.method = value;
  else if (name == ":path")
    st->req.target = value;
  else if (name == ":authority")
    st->req.set("host", value);
  else if (name == ":scheme")
    st->scheme = value;
  else if (!name.empty() && name[0] != ':')
    st->req.add(name, value);
  return 0;
}

int Downstream::onFrame(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<Downstream*>(ud);
  Stream* st = streamOf(s, f->hd.stream_id);
  if (!st) return 0;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    st->reqEnd = end;
    self->dispatch(st);
  } else if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && end) {
    st->reqEnd = true;
    if (st->up) st->up->resume(st);
  }
  return 0;
}

int Downstream::onData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                       void*) {
  Stream* st = streamOf(s, id);
  if (!st) return 0;
  st->reqBody.append(reinterpret_cast<const char*>(data), len);
  st->reqBytes += len;
  if (st->up) st->up->resume(st);
  return 0;
}

int Downstream::onClose(nghttp2_session*, int32_t id, uint32_t, void* ud) {
  auto* self = static_cast<Downstream*>(ud);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  self->finish(it->second.get());
  self->streams_.erase(it);
  return 0;
}

ssize_t Downstream::readBody(nghttp2_session* s, int32_t id, uint8_t* buf, size_t len,
                             uint32_t* flags, nghttp2_data_source* src, void*) {
  auto* st = static_cast<Stream*>(src->ptr);
  size_t n = std::min(len, st->respBody.size());
  memcpy(buf, st->respBody.data(), n);
  st->respBody.erase(0, n);
  if (n == 0 && !st->respEnd) {
    st->downDeferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (st->respEnd && st->respBody.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!st->trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      auto nv = nvs(st->trailers);
      nghttp2_submit_trailer(s, id, nv.data(), nv.size());
    }
  }
  return static_cast<ssize_t>(n);
}

void Downstream::dispatch(Stream* st) {
  st->config = worker_.state().config();
  // The same bound as an HTTP/1.1 head, before anything looks at the headers.
  if (st->headerBytes > http1::Limits{}.maxHeadBytes)
    return localReply(st, 431, "request header fields too large", "DPE");
  st->grpc = st->req.header("content-type").rfind("application/grpc", 0) == 0;
  if (!st->req.has("host")) st->req.set("host", from_.svcName + "." + from_.svcNs);
  if (!st->req.has("x-request-id")) st->req.set("x-request-id", strings::uuid4());
  st->path = st->req.target;
  st->trace = continueTrace(st->req, site(st->config).rule.samplingPercent);
  routeRequest(*st->config, st->req, from_, &st->routed);
  if (st->routed.localStatus)
    return localReply(st, st->routed.localStatus, st->routed.localBody, st->routed.localFlags,
                      st->routed.localHeaders);
  const HttpRoute* r = st->routed.route;
  if (r && r->abortPercent > 0 && uniform(100) < r->abortPercent)
    return localReply(st, r->abortStatus, "fault filter abort", "FI");
  if (r) {
    applyOps(st->req, r->requestHeaders);
    if (st->routed.dest) applyOps(st->req, st->routed.dest->requestHeaders);
  }
  std::string xff = st->req.header("x-forwarded-for");
  std::string client = net::formatIpv4(from_.ip);
  st->req.set("x-forwarded-for", xff.empty() ? client : xff + ", " + client);
  if (r && r->timeoutMs > 0)
    st->timer = worker_.loop().after(r->timeoutMs, [this, st] {
      st->timer = 0;
      if (st->respStarted) return;
      if (st->up) st->up->forget(st, true);
      localReply(st, 504, "upstream request timeout", "UT");
      Session::flushDirty();
    });
  if (r && r->delayPercent > 0 && r->delayMs > 0 && uniform(100) < r->delayPercent) {
    st->flags = "DI";
    st->delayTimer = worker_.loop().after(r->delayMs, [this, st] {
      st->delayTimer = 0;
      forward(st);
      Session::flushDirty();
    });
    return;
  }
  forward(st);
}

void Downstream::forward(Stream* st) {
  if (closed_ || st->respStarted) return;
  // A port declaring HTTP/1.1 (or TCP) cannot take HTTP/2; an undeclared one gets what the
  // client speaks, as Istio's sniffing does.
  if (st->routed.target.port && (st->routed.target.port->protocol == Protocol::Http ||
                                 st->routed.target.port->protocol == Protocol::Tcp))
    return localReply(st, 502,
                      "HTTP/2 clients reach only ports declared http2 or grpc (by name or "
                      "appProtocol); this one is " +
                          st->routed.target.port->name,
                      "-");
  st->endpoint = pickEndpoint(worker_, st->routed.target, st->req, from_.ip, st->tried);
  if (!st->endpoint) return localReply(st, 503, "no healthy upstream", "UH");
  if (st->tried.empty() && !authorized(*st->config, from_.ip, *st->endpoint, &st->req))
    return localReply(st, 403, "RBAC: access denied", "-");
  st->tried.insert(st->endpoint);
  Via via = meshVia(*st->config, from_.ip, from_.ingressPort != 0, *st->endpoint,
                    st->routed.target.policy);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Upstream* up = Upstream::get(worker_, *st->endpoint, via);
    if (!up) break;
    if (up->submit(st)) return;
    up->close();  // it refuses new streams (GOAWAY): a new connection takes the stream
  }
  localReply(st, 503, "upstream connect error", "UF");
}

void Downstream::respond(Stream* st) {
  if (st->respStarted) return;
  if (st->timer) worker_.loop().cancel(st->timer), st->timer = 0;
  st->respStarted = true;
  Headers h = {{":status", std::to_string(st->status)}};
  for (const auto& kv : st->respHeaders) h.push_back(kv);
  if (st->routed.route) applyOps(h, st->routed.route->responseHeaders);
  if (st->routed.dest) applyOps(h, st->routed.dest->responseHeaders);
  for (const auto& [k, v] : h)
    if (k == "grpc-status") st->grpcStatus = v;
  auto nv = nvs(h);
  if (st->respEnd && st->respBody.empty()) {
    nghttp2_submit_response(session_, st->id, nv.data(), nv.size(), nullptr);  // trailers-only
  } else {
    nghttp2_data_provider prd;
    prd.source.ptr = st;
    prd.read_callback = readBody;
    nghttp2_submit_response(session_, st->id, nv.data(), nv.size(), &prd);
  }
  markDirty();
}

void Downstream::localReply(Stream* st, int status, const std::string& body,
                            const std::string& flags, const Headers& extra) {
  if (st->respStarted) return;
  st->flags = flags;
  st->respHeaders.clear();
  st->trailers.clear();
  if (st->grpc) {
    // A trailers-only gRPC answer, as Envoy gives.
    st->status = 200;
    st->respHeaders = {{"content-type", "application/grpc"},
                       {"grpc-status", std::to_string(grpcStatusFor(status))},
                       {"grpc-message", body}};
    st->respBody.clear();
  } else {
    st->status = status;
    st->respHeaders = {{"content-type", "text/plain"},
                       {"content-length", std::to_string(body.size())},
                       {"server", "podium"}};
    st->respBody = body;
  }
  for (const auto& kv : extra) st->respHeaders.push_back(kv);
  st->respEnd = true;
  st->respBytes = body.size();
  respond(st);
}

void Downstream::finish(Stream* st) {
  if (st->timer) worker_.loop().cancel(st->timer), st->timer = 0;
  if (st->delayTimer) worker_.loop().cancel(st->delayTimer), st->delayTimer = 0;
  if (st->up) st->up->forget(st, true);
  if (!st->config || st->status == 0) return;
  MetricLabels l = labelsFor(*st->config, from_.ip, st->routed.target.service, st->endpoint,
                             from_.ingressPort != 0, st->routed.target.policy);
  l.requestProtocol = st->grpc ? "grpc" : "http";
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - st->started)
          .count();
  Metrics::Answerer answerer;
  if (st->endpoint) answerer = {st->endpoint->ns, st->endpoint->pod};
  worker_.state().metrics.request(l.render(), st->status, st->flags, ms, st->reqBytes,
                                  st->respBytes, st->grpcStatus, answerer);
  if (!st->trace.sampled) return;
  SpanFacts f;
  f.config = st->config.get();
  f.request = &st->req;
  f.protocol = "HTTP/2";
  f.path = st->path;
  f.status = st->status;
  f.flags = st->flags;
  f.cluster = st->routed.target.cluster;
  f.requestBytes = st->reqBytes;
  f.responseBytes = st->respBytes;
  f.service = st->routed.target.service;
  f.servicePort = st->routed.target.port ? st->routed.target.port->port : from_.svcPort;
  f.upstream = st->endpoint;
  f.peerIp = from_.ip;
  f.startUs = st->startedUs;
  f.ms = ms;
  recordSpan(worker_.state(), site(st->config), st->trace, f);
}

// --- upstream ------------------------------------------------------------------------------

Upstream* Upstream::get(Worker& w, const Endpoint& e, Via via) {
  PoolKey key = poolKey(e.ip, e.port, via);
  if (auto it = tPool.find(key); it != tPool.end() && !it->second->closed()) return it->second;
  Socket s = w.dial(e.ip, e.port, via);
  if (!s.valid()) return nullptr;
  int fd = s.fd();
  auto* up = new Upstream(w, std::move(s), key);
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, onClose);
  int rv = nghttp2_session_client_new(&up->session_, cb, up);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0 || !w.loop().add(fd, kEvents, up)) {
    delete up;
    return nullptr;
  }
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  nghttp2_submit_settings(up->session_, NGHTTP2_FLAG_NONE, settings, 1);
  tPool[key] = up;
  return up;
}

bool Upstream::ready(uint32_t events) {
  if (sock_.open()) return true;
  int r = worker_.established(sock_, events);  // a failed handshake is a connect failure
  if (r < 0) close();
  if (r <= 0) return false;
  markDirty();
  return true;
}

bool Upstream::submit(Stream* st) {
  Headers h = {{":method", st->req.method},
               {":scheme", "http"},
               {":path", st->req.target},
               {":authority", st->req.header("host")}};
  for (const auto& f : st->req.headers) {
    std::string name = strings::toLower(f.name);
    if (!connectionSpecific(name)) h.emplace_back(name, f.value);
  }
  if (st->req.header("te") == "trailers") h.emplace_back("te", "trailers");  // gRPC needs it
  auto nv = nvs(h);
  nghttp2_data_provider prd;
  prd.source.ptr = st;
  prd.read_callback = readBody;
  bool body = !(st->reqEnd && st->reqBody.empty());
  int32_t id =
      nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), body ? &prd : nullptr, st);
  if (id < 0) return false;
  st->up = this;
  st->upId = id;
  streams_[id] = st;
  ++worker_.health(st->endpoint->ip, st->endpoint->port).active;
  markDirty();
  return true;
}

void Upstream::forget(Stream* st, bool reset) {
  if (st->up != this) return;
  if (reset && !closed_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st->upId, NGHTTP2_CANCEL);
    nghttp2_session_set_stream_user_data(session_, st->upId, nullptr);
    markDirty();
  }
  streams_.erase(st->upId);
  --worker_.health(st->endpoint->ip, st->endpoint->port).active;
  st->up = nullptr;
  st->upId = -1;
}

void Upstream::close() {
  if (closed_) return;
  if (auto it = tPool.find(key_); it != tPool.end() && it->second == this) tPool.erase(it);
  // Streams still waiting fail: before their response with 503, after it with a reset.
  auto streams = streams_;
  for (auto& entry : streams) {
    Stream* st = entry.second;  // named: lambdas below capture it (clang has no binding captures)
    forget(st, false);
    if (!st->respStarted) {
      recordOutcome(worker_, st->routed.target, *st->endpoint, 0, true);
      // A connection that never came up sent nothing: the stream tries another endpoint, as
      // Istio's default retry policy (connect-failure, 2 retries) says.
      const RetryPolicy& rp = st->routed.route ? st->routed.route->retries : kDefaultRetries;
      if (!sock_.open() && rp.retryOn.count("connect-failure") &&
          static_cast<int>(st->tried.size()) <= rp.attempts) {
        worker_.loop().post([down = st->down, st, token = std::weak_ptr<int>(st->alive)] {
          if (token.expired()) return;
          down->forward(st);
          Session::flushDirty();
        });
        continue;
      }
      st->down->localReply(st, 503, "upstream connect error or disconnect/reset before headers",
                           sock_.open() ? "UC" : (st->tried.size() > 1 ? "UF,URX" : "UF"));
    } else if (!st->respEnd) {
      st->flags = "UR";
      st->down->reset(st);
    }
  }
  Session::close();
}

int Upstream::onHeader(nghttp2_session* s, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                       const uint8_t* v, size_t vl, uint8_t, void*) {
  Stream* st = streamOf(s, f->hd.stream_id);
  if (!st || f->hd.type != NGHTTP2_HEADERS) return 0;
  std::string name(reinterpret_cast<const char*>(n), nl),
      value(reinterpret_cast<const char*>(v), vl);
  st->respBytes += nl + vl;
  if (f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (name == ":status")
      st->status = atoi(value.c_str());
    else if (!connectionSpecific(name))
      st->respHeaders.emplace_back(std::move(name), std::move(value));
  } else if (f->headers.cat == NGHTTP2_HCAT_HEADERS) {
    if (name == "grpc-status") st->grpcStatus = value;
    st->trailers.emplace_back(std::move(name), std::move(value));
  }
  return 0;
}

int Upstream::onFrame(nghttp2_session* s, const nghttp2_frame* f, void*) {
  Stream* st = streamOf(s, f->hd.stream_id);
  if (!st) return 0;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (st->status >= 100 && st->status < 200) {  // interim: wait for the real one
      st->respHeaders.clear();
      return 0;
    }
    st->respEnd = end;
    recordOutcome(st->down->worker(), st->routed.target, *st->endpoint, st->status, false);
    st->down->respond(st);
  } else if (end) {
    st->respEnd = true;
    st->down->resume(st);
  }
  return 0;
}

int Upstream::onData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                     void*) {
  Stream* st = streamOf(s, id);
  if (!st) return 0;
  st->respBody.append(reinterpret_cast<const char*>(data), len);
  st->respBytes += len;
  st->down->resume(st);
  return 0;
}

int Upstream::onClose(nghttp2_session* s, int32_t id, uint32_t error, void* ud) {
  auto* self = static_cast<Upstream*>(ud);
  Stream* st = streamOf(s, id);
  if (!st) return 0;
  self->forget(st, false);
  if (!st->respStarted) {
    recordOutcome(self->worker_, st->routed.target, *st->endpoint, 0, true);
    st->down->localReply(st, 503, "upstream reset before headers", "UR");
  } else if (!st->respEnd) {
    if (error == NGHTTP2_NO_ERROR) {
      st->respEnd = true;
      st->down->resume(st);
    } else {
      st->flags = "UR";
      st->down->reset(st);
    }
  }
  return 0;
}

ssize_t Upstream::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void*) {
  auto* st = static_cast<Stream*>(src->ptr);
  size_t n = std::min(len, st->reqBody.size());
  memcpy(buf, st->reqBody.data(), n);
  st->reqBody.erase(0, n);
  if (n == 0 && !st->reqEnd) {
    st->upDeferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (st->reqEnd && st->reqBody.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

void startH2Connection(Worker& worker, Socket s, std::string received, const RequestSource& from) {
  auto* d = new Downstream(worker, std::move(s), from);
  if (!d->start(received)) {
    delete d;  // closes the connection
    return;
  }
  Session::flushDirty();
}

}  // namespace podium::proxy
