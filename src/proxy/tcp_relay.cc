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

void TcpRelay::start(Worker& worker, Socket downstream, std::vector<Endpoint> candidates,
                     MetricLabels labels, uint32_t srcIp, std::optional<Via> via, bool counted) {
  auto* r = new TcpRelay(worker, std::move(downstream), std::move(candidates), std::move(labels));
  r->srcIp_ = srcIp;
  r->via_ = via;
  r->counted_ = counted;
  if (counted) worker.state().metrics.tcpOpened(r->labels_);
  worker.loop().add(r->down_.fd(), kEvents, &r->downSide_);
  r->connectNext();
}

void TcpRelay::adopt(Worker& worker, Socket downstream, Socket upstream, std::string toUpstream,
                     std::string toDownstream, MetricLabels labels, bool counted) {
  auto* r = new TcpRelay(worker, std::move(downstream), {}, std::move(labels));
  r->counted_ = counted;
  r->up_ = std::move(upstream);
  auto preload = [](Buffer& b, std::string& data) {
    if (data.size() > b.data.size()) b.data.resize(data.size());
    std::copy(data.begin(), data.end(), b.data.begin());
    b.off = 0;
    b.len = data.size();
  };
  preload(r->toUp_, toUpstream);
  preload(r->toDown_, toDownstream);
  worker.loop().add(r->down_.fd(), kEvents, &r->downSide_);
  worker.loop().add(r->up_.fd(), kEvents, &r->upSide_);
  r->onEvents(true, EPOLLIN | EPOLLOUT);
}

TcpRelay::TcpRelay(Worker& worker, Socket downstream, std::vector<Endpoint> candidates,
                   MetricLabels labels)
    : worker_(worker),
      down_(std::move(downstream)),
      candidates_(std::move(candidates)),
      labels_(std::move(labels)) {}

TcpRelay::~TcpRelay() = default;

void TcpRelay::connectNext() {
  if (up_.valid()) {
    worker_.loop().remove(up_.fd());
    up_.reset();
  }
  while (next_ < candidates_.size()) {
    const Endpoint& e = candidates_[next_++];
    up_ = worker_.dial(e.ip, e.port,
                       via_ ? *via_ : meshVia(*worker_.state().config(), srcIp_, false, e));
    if (up_.valid()) {
      worker_.loop().add(up_.fd(), kEvents, &upSide_);
      connectTimer_ = worker_.loop().after(kConnectTimeoutMs, [this] {
        connectTimer_ = 0;
        if (!up_.open() && !closed_) connectNext();
      });
      return;
    }
  }
  labels_.responseFlags = candidates_.empty() ? "UH" : "UF";
  finish();
}

void TcpRelay::onEvents(bool downstream, uint32_t events) {
  if (closed_) return;
  if (!downstream && !up_.open()) {
    int r = worker_.established(up_, events);
    if (r < 0) {
      if (connectTimer_) worker_.loop().cancel(connectTimer_);
      connectTimer_ = 0;
      connectNext();
      return;
    }
    if (r == 0) return;
    if (connectTimer_) worker_.loop().cancel(connectTimer_);
    connectTimer_ = 0;
  }
  if (!up_.open()) {
    // Data from the client waits in its buffer until the upstream connection is up.
    if (!pump(down_, nullptr, toUp_)) finish();
    return;
  }
  if (!pump(down_, &up_, toUp_) || !pump(up_, &down_, toDown_)) {
    finish();
    return;
  }
  if (toUp_.shutDown && toDown_.shutDown) finish();
}

bool TcpRelay::pump(Socket& from, Socket* to, Buffer& b) {
  for (;;) {
    if (b.len == 0 && !b.eof) {
      ssize_t n = from.read(b.data.data(), b.data.size());
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
    if (!to) return true;
    if (b.len > 0) {
      ssize_t m = to->write(b.data.data() + b.off, b.len);
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
        to->shutdownWrite();
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
  worker_.loop().remove(down_.fd());
  if (up_.valid()) worker_.loop().remove(up_.fd());
  worker_.loop().destroyLater(this);
}

}  // namespace podium::proxy
