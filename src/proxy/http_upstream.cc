// The upstream side of a connection: pooled connections, attempts and retries, outlier
// reports, the response relayed to the client, and the access log line.
#include "http_conn_impl.h"

namespace podium::proxy::detail {

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
  Via via =
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
  upSock_ = &upConn_->sock;
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
  if (closed_ || !upSock_) return;
  if (!upConnected_) {
    // The pooled connection reports its connect (and mesh handshake) as EPOLLOUT or EPOLLERR.
    if (events & (EPOLLERR | EPOLLHUP)) {
      upstreamFailed("connection failure", true);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    upConnected_ = true;
    if (tryTimer_ && !(route_ && route_->retries.perTryTimeoutMs > 0)) cancelTimer(tryTimer_);
  }
  while (!upOut_.empty()) {
    ssize_t n = upSock_->write(upOut_.data(), upOut_.size());
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
    ssize_t n = upSock_->read(buf, sizeof buf);
    if (n > 0) {
      upIn_.append(buf, static_cast<size_t>(n));
      if (state_ == State::Streaming && upIn_.size() > kMaxPendingOutput) break;
      if (drained(*upSock_, n, sizeof buf, events)) break;
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
    worker_.loop().remove(client_.fd());
    Socket upstream = worker_.detach(upConn_);
    upConn_ = nullptr;
    upSock_ = nullptr;
    MetricLabels labels =
        labelsFor(*config_, src_, target_.service, endpoint_, false, target_.policy);
    worker_.state().metrics.request(labels.render(), 101, flags_, 0, requestBytes_, 0);
    TcpRelay::adopt(worker_, std::move(client_), std::move(upstream), std::move(in_),
                    std::move(upIn_), labels);
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
  if (out_.size() < kMaxPendingOutput && upSock_ && upIn_.empty() && !upEof_ && !upPaused_) {
    // Resume reading after backpressure.
    char buf[65536];
    for (;;) {
      ssize_t n = upSock_->read(buf, sizeof buf);
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
    upSock_ = nullptr;
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
  if (upSock_ || endpoint_) releaseUpstream(upstreamReusable);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
                  .count();
  if (status_ != 0 && !inbound_) {
    Metrics::Answerer answerer;
    if (dest) answerer = {dest->ns, dest->pod};
    worker_.state().metrics.request(labels, status_, flags_, ms, requestBytes_, responseBytes_, "",
                                    answerer);
  }
  if (trace_.sampled) {
    SpanFacts f;
    f.config = config_.get();
    f.request = &req_;
    f.protocol = req_.minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    f.path = originalPath_;
    f.status = status_;
    f.flags = flags_;
    f.cluster = target_.cluster;
    f.requestBytes = requestBytes_;
    f.responseBytes = responseBytes_;
    f.service = target_.service;
    f.servicePort = target_.port ? target_.port->port : svcPort_;
    f.upstream = inbound_ ? &inboundPod_ : dest;
    f.peerIp = src_;
    f.startUs = startedUs_;
    f.ms = ms;
    recordSpan(worker_.state(), site(), trace_, f);
  }
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

}  // namespace podium::proxy::detail
