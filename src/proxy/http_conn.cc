#include "http_conn.h"

#include "http_conn_impl.h"

namespace podium::proxy {

namespace detail {

bool gAccessLog = true;

void UpstreamSide::onEvents(uint32_t events) { conn->onUpstream(events); }
void DownstreamSide::onEvents(uint32_t events) { conn->onDownstream(events); }

void Conn::onDownstream(uint32_t events) {
  if (closed_) return;
  // While the HTTPS listener's handshake runs inside reads and writes, either may need the
  // socket readable or writable.
  if (client_.tls() && !SSL_is_init_finished(client_.ssl())) events |= EPOLLIN | EPOLLOUT;
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
    ssize_t n = client_.read(buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      if (drained(client_, n, sizeof buf, events)) return;
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

bool Conn::writeOut() {
  while (!out_.empty()) {
    ssize_t n = client_.write(out_.data(), out_.size());
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
      startedUs_ = wallMicros();
      trace_ = TraceContext{};
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
  worker_.loop().remove(client_.fd());
  if (upConn_) {
    worker_.closeUpstream(upConn_);
    upConn_ = nullptr;
    upSock_ = nullptr;
  }
  worker_.loop().destroyLater(this);
}

}  // namespace detail

using detail::Conn;
using detail::gAccessLog;

void setAccessLog(bool on) { gAccessLog = on; }

void startHttpConnection(Worker& worker, Socket s, const Service* svc, const ServicePort* sp,
                         uint32_t sourceIp) {
  auto* c = new Conn(worker, std::move(s), sourceIp, svc->ns, svc->name, sp->port, 0);
  c->begin();
}

void startInboundConnection(Worker& worker, Socket s, const Endpoint& pod, uint32_t sourceIp,
                            std::optional<std::string> principal) {
  auto* c = new Conn(worker, std::move(s), sourceIp, pod.ns, "", pod.port, 0);
  c->setInbound(pod, std::move(principal));
  c->begin();
}

void startIngressConnection(Worker& worker, int fd, uint16_t port, uint32_t sourceIp,
                            SSL_CTX* tls) {
  auto* c = new Conn(worker, Socket(fd), sourceIp, "", "", 0, port);
  if (tls && !c->startTls(tls)) {
    delete c;  // closes fd
    return;
  }
  c->begin();
}

}  // namespace podium::proxy
