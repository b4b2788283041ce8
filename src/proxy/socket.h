#pragma once

// One connection's bytes as the proxy moves them: a non-blocking socket read and written
// directly, or a TLS session on that same socket (the HTTPS ingress listener's, or the mesh's
// mutual TLS between node proxies) — no second socket, no copy through a pump. Reads and writes
// behave like read() and send(): bytes, 0 at the end (the peer's FIN or close_notify), or -1
// with errno EAGAIN (wait for the next edge-triggered event) or another error.
//
// Owners read until EAGAIN or until `drained()` says the kernel had nothing more (a TLS read
// stops at a record, so a short read alone does not say it). Bytes a sniffer looked at (peek)
// wait in the socket object until read; `pending()` says so, and a new owner reads them
// without waiting for an event.

#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace podium::proxy {

class Socket {
 public:
  enum class Phase { Connecting, Handshaking, Open };

  Socket() = default;
  // Takes `fd` (and `ssl`, set on fd). A connection this proxy opened starts Connecting; a TLS
  // session accepted here that must be proven first starts Handshaking.
  explicit Socket(int fd, SSL* ssl = nullptr, Phase phase = Phase::Open);
  Socket(Socket&& o) noexcept;
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { reset(); }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }
  bool tls() const { return ssl_ != nullptr; }
  bool valid() const { return fd_ >= 0; }
  Phase phase() const { return phase_; }
  bool open() const { return fd_ >= 0 && phase_ == Phase::Open; }
  // Puts a TLS session (taken) on this plaintext socket: `phase` Handshaking when the caller
  // drives the handshake through establish(), Open when reads and writes may drive it.
  bool attachTls(SSL* ssl, Phase phase);

  // Moves a connection along (connect, then the TLS handshake) on an event: 1 open, 0 wait for
  // the next event, -1 failed (refused, or the handshake failed).
  int establish(uint32_t events);

  ssize_t read(char* buf, size_t n);
  ssize_t write(const char* buf, size_t n);
  // Up to `n` of the bytes that have arrived, left to be read again; -1/EAGAIN when none.
  ssize_t peek(char* buf, size_t n);
  bool pending() const;
  // After a read that gave `got` of `asked` bytes: whether the socket is known to be empty, so
  // the next arrival raises a new edge-triggered event (no read that would say EAGAIN needed).
  bool drained(ssize_t got, size_t asked) const;
  // Ends this side's writing (a FIN, or TLS's close_notify); reading goes on.
  void shutdownWrite();
  // Closes the socket (and frees the TLS session).
  void reset();

 private:
  struct Bio;
  bool bind();  // puts ssl_ on fd_ through a Bio
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  Bio* bio_ = nullptr;  // owned by ssl_
  Phase phase_ = Phase::Open;
  std::string peeked_;  // TLS bytes a peek decrypted, read before the session's
  size_t peekedOff_ = 0;
};

}  // namespace podium::proxy
