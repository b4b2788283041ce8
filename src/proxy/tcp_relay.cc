#include "tcp_relay.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "podium/common/net.h"

namespace podium::proxy {

namespace {
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
constexpr int64_t kConnectTimeoutMs = 5000;
}  // namespace

void TcpRelay::start(Worker& worker, int downstream, std::vector<Endpoint> candidates,
                     MetricLabels labels, uint32_t srcIp, std::optional<uint16_t> via,
                     bool counted) {
  auto* r = new TcpRelay(worker, downstream, std::move(candidates), std::move(labels));
  r->srcIp_ = srcIp;
  r->via_ = via;
  r->counted_ = counted;
  if (counted) worker.state().metrics.tcpOpened(r->labels_);
  worker.loop().add(downstream, kEvents, &r->downSide_);
  r->connectNext();
}

void TcpRelay::adopt(Worker& worker, int downstream, int upstream, std::string toUpstream,
                     std::string toDownstream, MetricLabels labels, bool counted) {
  auto* r = new TcpRelay(worker, downstream, {}, std::move(labels));
  r->counted_ = counted;
  r->up_ = upstream;
  r->connected_ = true;
  auto preload = [](Buffer& b, std::string& data) {
    if (data.size() > b.data.size()) b.data.resize(data.size());
    std::copy(data.begin(), data.end(), b.data.begin());
    b.off = 0;
    b.len = data.size();
  };
  preload(r->toUp_, toUpstream);
  preload(r->toDown_, toDownstream);
  worker.loop().add(downstream, kEvents, &r->downSide_);
  worker.loop().add(upstream, kEvents, &r->upSide_);
  r->onEvents(true, EPOLLIN | EPOLLOUT);
}

TcpRelay::TcpRelay(Worker& worker, int downstream, std::vector<Endpoint> candidates,
                   MetricLabels labels)
    : worker_(worker),
      down_(downstream),
      candidates_(std::move(candidates)),
      labels_(std::move(labels)) {}

TcpRelay::~TcpRelay() {
  if (up_ >= 0) close(up_);
  if (down_ >= 0) close(down_);
}

void TcpRelay::connectNext() {
  if (up_ >= 0) {
    worker_.loop().remove(up_);
    close(up_);
    up_ = -1;
  }
  while (next_ < candidates_.size()) {
    const Endpoint& e = candidates_[next_++];
    up_ = worker_.dial(e.ip, e.port,
                       via_ ? *via_ : meshVia(*worker_.state().config(), srcIp_, false, e));
    if (up_ >= 0) {
      worker_.loop().add(up_, kEvents, &upSide_);
      connectTimer_ = worker_.loop().after(kConnectTimeoutMs, [this] {
        connectTimer_ = 0;
        if (!connected_ && !closed_) connectNext();
      });
      return;
    }
  }
  labels_.responseFlags = candidates_.empty() ? "UH" : "UF";
  finish();
}

void TcpRelay::onEvents(bool downstream, uint32_t events) {
  if (closed_) return;
  if (!downstream && !connected_) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(up_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      if (connectTimer_) worker_.loop().cancel(connectTimer_);
      connectTimer_ = 0;
      connectNext();
      return;
    }
    if (!(events & EPOLLOUT)) return;
    connected_ = true;
    if (connectTimer_) worker_.loop().cancel(connectTimer_);
    connectTimer_ = 0;
  }
  if (!connected_) {
    // Data from the client waits in its buffer until the upstream connection is up.
    if (!pump(down_, -1, toUp_)) finish();
    return;
  }
  if (!pump(down_, up_, toUp_) || !pump(up_, down_, toDown_)) {
    finish();
    return;
  }
  if (toUp_.shutDown && toDown_.shutDown) finish();
}

bool TcpRelay::pump(int from, int to, Buffer& b) {
  for (;;) {
    if (b.len == 0 && !b.eof) {
      ssize_t n = read(from, b.data.data(), b.data.size());
      if (n > 0) {
        b.off = 0;
        b.len = static_cast<size_t>(n);
      } else if (n == 0) {
        b.eof = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return true;
      } else if (errno != EINTR) {
        return false;
      } else {
        continue;
      }
    }
    if (to < 0) return true;
    if (b.len > 0) {
      ssize_t m = send(to, b.data.data() + b.off, b.len, MSG_NOSIGNAL);
      if (m > 0) {
        b.off += static_cast<size_t>(m);
        b.len -= static_cast<size_t>(m);
        b.total += static_cast<uint64_t>(m);
        continue;
      }
      if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // EPOLLOUT resumes
      if (m < 0 && errno == EINTR) continue;
      return false;
    }
    if (b.eof) {
      if (!b.shutDown) {
        shutdown(to, SHUT_WR);
        b.shutDown = true;
      }
      return true;
    }
  }
}

void TcpRelay::finish() {
  if (closed_) return;
  closed_ = true;
  if (connectTimer_) worker_.loop().cancel(connectTimer_);
  if (counted_) worker_.state().metrics.tcpClosed(labels_, toDown_.total, toUp_.total);
  worker_.loop().remove(down_);
  if (up_ >= 0) worker_.loop().remove(up_);
  worker_.loop().destroyLater(this);
}

}  // namespace podium::proxy
