#include "socket.h"

#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "tls.h"

namespace podium::proxy {

Socket::Socket(int fd, SSL* ssl, Phase phase) : fd_(fd), ssl_(ssl), phase_(phase) {
  if (ssl_) SSL_set_fd(ssl_, fd_);
}

bool Socket::attachTls(SSL* ssl, Phase phase) {
  if (ssl_) SSL_free(ssl_);
  ssl_ = ssl;
  phase_ = phase;
  return ssl_ && fd_ >= 0 && SSL_set_fd(ssl_, fd_) == 1;
}

Socket::Socket(Socket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      phase_(o.phase_),
      peeked_(std::move(o.peeked_)),
      peekedOff_(std::exchange(o.peekedOff_, 0)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    ssl_ = std::exchange(o.ssl_, nullptr);
    phase_ = o.phase_;
    peeked_ = std::move(o.peeked_);
    peekedOff_ = std::exchange(o.peekedOff_, 0);
  }
  return *this;
}

void Socket::reset() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
  ssl_ = nullptr;
  fd_ = -1;
  peeked_.clear();
  peekedOff_ = 0;
}

int Socket::establish(uint32_t events) {
  if (fd_ < 0) return -1;
  if (phase_ == Phase::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) return -1;
    if (!(events & EPOLLOUT)) return 0;
    phase_ = ssl_ ? Phase::Handshaking : Phase::Open;
  }
  if (phase_ == Phase::Handshaking) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    phase_ = Phase::Open;
  }
  return 1;
}

ssize_t Socket::read(char* buf, size_t n) {
  if (peekedOff_ < peeked_.size()) {
    size_t k = std::min(n, peeked_.size() - peekedOff_);
    memcpy(buf, peeked_.data() + peekedOff_, k);
    peekedOff_ += k;
    if (peekedOff_ == peeked_.size()) peeked_.clear(), peekedOff_ = 0;
    return static_cast<ssize_t>(k);
  }
  if (!ssl_) return ::read(fd_, buf, n);
  ERR_clear_error();
  int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  return r > 0 ? r : sslIoResult(ssl_, r);
}

ssize_t Socket::write(const char* buf, size_t n) {
  if (!ssl_) return send(fd_, buf, n, MSG_NOSIGNAL);
  ERR_clear_error();
  int r = SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 20)));
  return r > 0 ? r : sslIoResult(ssl_, r);
}

ssize_t Socket::peek(char* buf, size_t n) {
  if (!ssl_) return recv(fd_, buf, n, MSG_PEEK | MSG_DONTWAIT);
  // A TLS session cannot leave bytes in the kernel: what it decrypts is kept here.
  while (peeked_.size() - peekedOff_ < n) {
    char chunk[16384];
    ERR_clear_error();
    int r = SSL_read(ssl_, chunk, sizeof chunk);
    if (r <= 0) {
      ssize_t res = sslIoResult(ssl_, r);
      if (peeked_.size() > peekedOff_) break;
      return res;
    }
    peeked_.append(chunk, static_cast<size_t>(r));
  }
  size_t k = std::min(n, peeked_.size() - peekedOff_);
  memcpy(buf, peeked_.data() + peekedOff_, k);
  return static_cast<ssize_t>(k);
}

bool Socket::pending() const {
  return peekedOff_ < peeked_.size() || (ssl_ && SSL_has_pending(ssl_));
}

void Socket::shutdownWrite() {
  if (fd_ < 0) return;
  if (ssl_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify: the peer reads its end; our reading goes on
  } else {
    shutdown(fd_, SHUT_WR);
  }
}

}  // namespace podium::proxy
