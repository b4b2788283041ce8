#pragma once

// TLS termination on the node's HTTPS ingress listener. Certificates come from Kubernetes TLS
// Secrets named by Gateway servers (tls.credentialName, mode SIMPLE; the Secret in the Gateway's
// namespace or in istio-system, as Istio looks for it) and by Ingress spec.tls. A connection
// starts on a front context whose SNI callback switches it to the certificate whose hosts name
// the requested server best (the first one when the client sends no SNI or nothing matches).

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::proxy {

class TlsCerts {
 public:
  // Reads the certificates the snapshot's Gateways and Ingresses name from its "secrets".
  // Problems (a missing Secret, a key that does not match) are logged and skipped.
  void build(const Json& snapshot);
  SSL_CTX* forHost(const std::string& serverName) const;
  bool empty() const { return certs_.empty(); }

 private:
  struct Cert {
    std::vector<std::string> hosts;  // "*" and "*.suffix" patterns allowed; empty: any
    std::shared_ptr<SSL_CTX> ctx;
  };
  void add(const std::vector<std::string>& hosts, const std::string& ns, const std::string& secret,
           const Json& snapshot, const std::string& usedBy);
  std::vector<Cert> certs_;
};

// The context every HTTPS ingress connection starts with; `certs` is asked on each handshake for
// the current certificates (it must outlive the context).
using CertsSource = std::shared_ptr<const TlsCerts> (*)(void* arg);
SSL_CTX* newFrontContext(CertsSource source, void* arg);

// An SSL_read/SSL_write result `r` of `ssl` as read()/send() would give it: bytes, 0 at the
// peer's close_notify, or -1 with errno EAGAIN (retry when ready) or ECONNRESET (a failed
// handshake, a bad record, or the peer vanished).
ssize_t sslIoResult(SSL* ssl, int r);

}  // namespace podium::proxy
