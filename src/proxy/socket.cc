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

// The socket under a TLS session, as a BIO that also remembers whether its last read returned
// less than asked: the kernel had nothing more then, so (as for a plaintext socket) the owner
// need not make the read that would only say EAGAIN. With read-ahead, one read() takes every
// record that has arrived instead of a header and a body per record.
struct Socket::Bio {
  int fd;
  bool shortRead = false;

  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "podium socket");
      BIO_meth_set_read(m, read);
      BIO_meth_set_write(m, write);
      BIO_meth_set_ctrl(m, ctrl);
      BIO_meth_set_destroy(m, destroy);
      return m;
    }();
    return m;
  }
  static int read(BIO* b, char* buf, int len) {
    auto* self = static_cast<Bio*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    ssize_t n = ::read(self->fd, buf, static_cast<size_t>(len));
    if (n < 0) {
      self->shortRead = true;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
      return -1;
    }
    self->shortRead = n < len;
    return static_cast<int>(n);
  }
  static int write(BIO* b, const char* buf, int len) {
    auto* self = static_cast<Bio*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    ssize_t n = send(self->fd, buf, static_cast<size_t>(len), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      BIO_set_retry_write(b);
    return n < 0 ? -1 : static_cast<int>(n);
  }
  static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int destroy(BIO* b) {
    delete static_cast<Bio*>(BIO_get_data(b));
    BIO_set_data(b, nullptr);
    return 1;
  }
};

bool Socket::bind() {
  BIO* b = BIO_new(Bio::method());
  if (!b) return false;
  bio_ = new Bio{fd_};
  BIO_set_data(b, bio_);
  BIO_set_init(b, 1);
  SSL_set_bio(ssl_, b, b);
  SSL_set_read_ahead(ssl_, 1);
  return true;
}

Socket::Socket(int fd, SSL* ssl, Phase phase) : fd_(fd), ssl_(ssl), phase_(phase) {
  if (ssl_ && fd_ >= 0) bind();
}

bool Socket::attachTls(SSL* ssl, Phase phase) {
  if (ssl_) SSL_free(ssl_);
  ssl_ = ssl;
  phase_ = phase;
  return ssl_ && fd_ >= 0 && bind();
}

Socket::Socket(Socket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      bio_(std::exchange(o.bio_, nullptr)),
      phase_(o.phase_),
      peeked_(std::move(o.peeked_)),
      peekedOff_(std::exchange(o.peekedOff_, 0)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    ssl_ = std::exchange(o.ssl_, nullptr);
    bio_ = std::exchange(o.bio_, nullptr);
    phase_ = o.phase_;
    peeked_ = std::move(o.peeked_);
    peekedOff_ = std::exchange(o.peekedOff_, 0);
  }
  return *this;
}

void Socket::reset() {
  if (ssl_ && fd_ >= 0 && phase_ == Phase::Open && SSL_is_init_finished(ssl_)) {
    // An orderly end: close_notify before the FIN, so the peer reads the end of the stream and
    // not a truncation.
    ERR_clear_error();
    SSL_shutdown(ssl_);
  }
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
  ssl_ = nullptr;
  bio_ = nullptr;
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
  return sslIoResult(ssl_, SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX))));
}

ssize_t Socket::write(const char* buf, size_t n) {
  if (!ssl_) return send(fd_, buf, n, MSG_NOSIGNAL);
  ERR_clear_error();
  return sslIoResult(ssl_, SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 20))));
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

bool Socket::drained(ssize_t got, size_t asked) const {
  if (peekedOff_ < peeked_.size()) return false;
  if (!ssl_) return got >= 0 && static_cast<size_t>(got) < asked;
  return bio_ && bio_->shortRead && !SSL_has_pending(ssl_);
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
