#include "mesh.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <optional>

#include "config.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "worker.h"

namespace podium::proxy {

namespace {

using CtxPtr = std::shared_ptr<SSL_CTX>;

std::shared_ptr<X509_STORE> storeOf(const std::vector<std::string>& pems) {
  std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
  int n = 0;
  for (const auto& pem : pems) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      if (X509_STORE_add_cert(store.get(), x) == 1) ++n;
      X509_free(x);
    }
    BIO_free(bio);
  }
  ERR_clear_error();
  return n ? store : nullptr;
}

// ALPN selection on the server side: the mesh's protocol only.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned int inLen, void*) {
  for (unsigned int i = 0; i + 1 <= inLen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inLen) break;
    if (len == 5 && std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == kMeshAlpn) {
      *out = in + i + 1;
      *outLen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// One identity's context: its certificate chain and key, the mesh's roots, TLS 1.3 only, and
// a certificate required from the peer on both sides. Contexts are shared by every snapshot
// holding the same certificate, so a snapshot costs no key parsing.
CtxPtr contextFor(const std::string& chain, const std::string& key,
                  const std::shared_ptr<X509_STORE>& roots) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<SSL_CTX>> cache;
  std::string cacheKey = chain + key;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(cacheKey); it != cache.end())
    if (auto c = it->second.lock()) return c;
  CtxPtr ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  BIO* bio = BIO_new_mem_buf(chain.data(), static_cast<int>(chain.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = leaf && SSL_CTX_use_certificate(ctx.get(), leaf) == 1;
  if (leaf) X509_free(leaf);
  while (ok) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (!extra) break;
    SSL_CTX_add_extra_chain_cert(ctx.get(), extra);  // takes it
  }
  BIO_free(bio);
  bio = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ok = ok && pkey && SSL_CTX_use_PrivateKey(ctx.get(), pkey) == 1 &&
       SSL_CTX_check_private_key(ctx.get()) == 1;
  if (pkey) EVP_PKEY_free(pkey);
  ERR_clear_error();
  if (!ok) return nullptr;
  X509_STORE_up_ref(roots.get());
  SSL_CTX_set_cert_store(ctx.get(), roots.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_alpn_select_cb(ctx.get(), selectAlpn, nullptr);
  for (auto it = cache.begin(); it != cache.end();)
    it = it->second.expired() ? cache.erase(it) : std::next(it);
  cache[cacheKey] = ctx;
  return ctx;
}

MtlsMode modeOf(const std::string& s, bool* unset) {
  *unset = s.empty() || s == "UNSET";
  if (s == "STRICT") return MtlsMode::Strict;
  if (s == "DISABLE") return MtlsMode::Disable;
  return MtlsMode::Permissive;
}

}  // namespace

uint16_t MeshTls::intern(const std::string& key) {
  static std::mutex mu;
  static std::map<std::string, uint16_t> ids;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, added] = ids.emplace(key, static_cast<uint16_t>(ids.size() + 1));
  return it->second;
}

void MeshTls::build(const Json& snap, const std::string& trustDomain) {
  const Json& mesh = json::at(snap, {"mesh"});
  trustDomain_ = json::str(mesh, "trustDomain", trustDomain);
  std::vector<std::string> roots;
  for (const auto& r : json::at(mesh, {"roots"}))
    if (r.is_string()) roots.push_back(r.get<std::string>());
  roots_ = storeOf(roots);
  for (const auto& id : json::at(mesh, {"identities"})) {
    if (!roots_) break;
    std::string ns = json::str(id, "namespace"), sa = json::str(id, "serviceAccount");
    auto ctx = contextFor(json::str(id, "certChain"), json::str(id, "key"), roots_);
    if (!ctx) {
      PODIUM_LOG(Warn) << "proxy: unusable mesh certificate for " << ns << "/" << sa;
      continue;
    }
    contexts_[intern(ns + "/" + sa)] = ctx;
  }
  for (const auto& p : json::at(mesh, {"pods"})) {
    uint32_t ip;
    if (net::parseIpv4(json::str(p, "ip"), &ip) && !json::str(p, "netns").empty())
      pods_[ip] = json::str(p, "netns");
  }
  for (const auto& pa : json::at(snap, {"peerAuthentications"})) {
    PeerAuth a;
    a.ns = json::getString(pa, {"metadata", "namespace"});
    a.created = json::getString(pa, {"metadata", "creationTimestamp"});
    for (const auto& [k, v] : json::at(pa, {"spec", "selector", "matchLabels"}).items())
      if (v.is_string()) a.selector[k] = v.get<std::string>();
    a.mode = modeOf(json::getString(pa, {"spec", "mtls", "mode"}), &a.unset);
    for (const auto& [port, m] : json::at(pa, {"spec", "portLevelMtls"}).items()) {
      bool unset;
      MtlsMode pm = modeOf(json::str(m, "mode"), &unset);
      if (!unset) a.ports[static_cast<uint16_t>(std::atoi(port.c_str()))] = pm;
    }
    peerAuths_.push_back(std::move(a));
  }
  // Oldest first, as Istio resolves conflicts between policies of the same scope.
  std::stable_sort(peerAuths_.begin(), peerAuths_.end(),
                   [](const PeerAuth& a, const PeerAuth& b) { return a.created < b.created; });
}

uint16_t MeshTls::identity(const std::string& ns, const std::string& sa) const {
  uint16_t id = intern(ns + "/" + sa);
  return contexts_.count(id) ? id : 0;
}

uint16_t MeshTls::ingressIdentity() const {
  return identity("istio-system", "istio-ingressgateway-service-account");
}

SSL* MeshTls::client(uint16_t id, const std::string& expectedSpiffe) const {
  auto it = contexts_.find(id);
  if (it == contexts_.end()) return nullptr;
  SSL* ssl = SSL_new(it->second.get());
  if (!ssl) return nullptr;
  static const unsigned char alpn[] = {5, 'i', 's', 't', 'i', 'o'};
  SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
  // The endpoint must prove the identity of its pod's service account (checked once the
  // handshake is done).
  SSL_set_ex_data(ssl, 0, new std::string(expectedSpiffe));
  SSL_set_connect_state(ssl);
  return ssl;
}

SSL* MeshTls::server(uint16_t id) const {
  auto it = contexts_.find(id);
  if (it == contexts_.end()) return nullptr;
  SSL* ssl = SSL_new(it->second.get());
  if (ssl) SSL_set_accept_state(ssl);
  return ssl;
}

MtlsMode MeshTls::mode(const Endpoint& pod, uint16_t port) const {
  // The most specific policy decides: the pod's (selector), its namespace's, the mesh's
  // (root namespace istio-system). Port-level settings apply with a workload selector.
  auto matches = [&](const PeerAuth& a) {
    for (const auto& [k, v] : a.selector) {
      auto it = pod.labels.find(k);
      if (it == pod.labels.end() || it->second != v) return false;
    }
    return true;
  };
  std::optional<MtlsMode> workload, ns, mesh;
  for (const auto& a : peerAuths_) {
    if (a.ns == pod.ns && !a.selector.empty() && matches(a) && !workload) {
      if (auto p = a.ports.find(port); p != a.ports.end())
        workload = p->second;
      else if (!a.unset)
        workload = a.mode;
    } else if (a.ns == pod.ns && a.selector.empty() && !ns && !a.unset) {
      ns = a.mode;
    } else if (a.ns == "istio-system" && a.selector.empty() && !mesh && !a.unset) {
      mesh = a.mode;
    }
  }
  return workload ? *workload : ns ? *ns : mesh ? *mesh : MtlsMode::Permissive;
}

bool MeshTls::wantsMtls(const Endpoint& dest) const {
  return dest.meshed && roots_ && mode(dest, dest.port) != MtlsMode::Disable;
}

std::string peerSpiffeId(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
    out.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
               static_cast<size_t>(ASN1_STRING_length(uri)));
    if (out.rfind("spiffe://", 0) == 0) break;
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  return out;
}

int parseClientHello(const std::string& d, std::vector<std::string>* alpn) {
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(d[i]); };
  auto u16 = [&](size_t i) { return static_cast<size_t>(u8(i) << 8 | u8(i + 1)); };
  if (d.empty()) return -1;
  if (u8(0) != 0x16) return 0;  // not a handshake record
  if (d.size() < 9) return -1;
  if (u8(1) != 3 || u8(5) != 1) return 0;  // TLS, ClientHello
  size_t end = 5 + u16(3);
  if (d.size() < end) return -1;
  size_t i = 5 + 4 + 2 + 32;  // record and handshake headers, version, random
  if (i >= end) return 0;
  i += 1 + u8(i);  // session id
  if (i + 2 > end) return 0;
  i += 2 + u16(i);  // cipher suites
  if (i >= end) return 0;
  i += 1 + u8(i);  // compression methods
  if (i + 2 > end) return 1;
  size_t extEnd = std::min(end, i + 2 + u16(i));
  for (i += 2; i + 4 <= extEnd;) {
    size_t type = u16(i), len = u16(i + 2);
    size_t body = i + 4;
    if (body + len > extEnd) break;
    if (type == 16 && len >= 2) {  // application_layer_protocol_negotiation
      for (size_t j = body + 2; j < body + len && j + 1 + u8(j) <= body + len; j += 1 + u8(j))
        alpn->emplace_back(d.substr(j + 1, u8(j)));
    }
    i = body + len;
  }
  return 1;
}

bool inNetns(const std::string& path, const std::function<void()>& fn) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = self >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0;
  if (ok) {
    fn();
    if (setns(self, CLONE_NEWNET) != 0) {
      // The thread would go on in the pod's namespace: nothing sane can continue.
      PODIUM_LOG(Error) << "proxy: cannot return from network namespace " << path;
      std::abort();
    }
  }
  if (self >= 0) close(self);
  if (target >= 0) close(target);
  return ok;
}

// --- the TLS pump ----------------------------------------------------------------------------

namespace {

class TlsPump : public Deletable {
 public:
  TlsPump(Worker& w, int tcp, SSL* ssl, bool client, TlsReady ready,
          std::function<void(bool)> done = {})
      : worker_(w),
        tcp_(tcp),
        ssl_(ssl),
        client_(client),
        ready_(std::move(ready)),
        done_(std::move(done)) {}
  ~TlsPump() override {
    delete static_cast<std::string*>(SSL_get_ex_data(ssl_, 0));
    SSL_free(ssl_);
    if (tcp_ >= 0) close(tcp_);
    if (plain_ >= 0) close(plain_);
  }

  // The client's plaintext end, or -1.
  int startClient() {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return -1;
    plain_ = pair[0];
    if (!begin()) {
      close(pair[1]);
      return -1;
    }
    return pair[1];
  }
  bool begin() {
    SSL_set_fd(ssl_, tcp_);
    if (!worker_.loop().add(tcp_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &tcpSide_)) return false;
    if (plain_ >= 0 && !worker_.loop().add(plain_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &plainSide_))
      return false;
    timer_ = worker_.loop().after(kHandshakeTimeoutMs, [this] {
      timer_ = 0;
      if (handshaking_) fail("timeout");
    });
    return true;
  }

 private:
  static constexpr int64_t kHandshakeTimeoutMs = 10000;
  struct Side : Watcher {
    TlsPump* p;
    explicit Side(TlsPump* p) : p(p) {}
    void onEvents(uint32_t) override { p->pump(); }
  };

  void fail(const char* reason) {
    if (closed_) return;
    worker_.state().metrics.mtlsFailure(client_ ? "client" : "server", reason);
    finish();
  }
  void finish() {
    if (closed_) return;
    closed_ = true;
    if (handshaking_ && done_) done_(false);
    if (timer_) worker_.loop().cancel(timer_);
    worker_.loop().remove(tcp_);
    if (plain_ >= 0) worker_.loop().remove(plain_);
    worker_.loop().destroyLater(this);
  }

  // Why the peer's certificate was refused, as counted.
  const char* verifyFailure() const {
    switch (SSL_get_verify_result(ssl_)) {
      case X509_V_OK:
        return "handshake";
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return "expired";
      default:
        return "untrusted";
    }
  }

  bool handshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
      bool noCert =
          ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE;
      fail(SSL_get0_peer_certificate(ssl_) || SSL_get_verify_result(ssl_) != X509_V_OK
               ? verifyFailure()
           : noCert && !client_ ? "no_certificate"
                                : "handshake");
      return false;
    }
    std::string peer = peerSpiffeId(ssl_);
    auto* expected = static_cast<std::string*>(SSL_get_ex_data(ssl_, 0));
    const std::string& td = worker_.state().config()->mesh().trustDomain();
    if (client_ ? (!expected || peer != *expected) : peer.rfind("spiffe://" + td + "/", 0) != 0) {
      fail(peer.rfind("spiffe://" + td + "/", 0) != 0 ? "trust_domain" : "wrong_identity");
      return false;
    }
    handshaking_ = false;
    if (timer_) worker_.loop().cancel(timer_), timer_ = 0;
    worker_.state().metrics.mtlsHandshake(client_ ? "client" : "server");
    if (done_) done_(true);
    if (!client_) {
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
        finish();
        return false;
      }
      plain_ = pair[0];
      if (!worker_.loop().add(plain_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &plainSide_)) {
        close(pair[1]);
        finish();
        return false;
      }
      ready_(pair[1], peer);
    }
    return true;
  }

  void pump() {
    if (closed_) return;
    if (client_ && !connected_) {
      // The handshake starts once the connection is up.
      pollfd p{tcp_, POLLOUT, 0};
      if (poll(&p, 1, 0) <= 0) return;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(tcp_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (p.revents & (POLLERR | POLLHUP)))
        return finish();  // refused: the caller sees the pair close
      connected_ = true;
    }
    if (handshaking_ && !handshake()) return;
    char buf[16384];
    // Plaintext to TLS.
    while (!closed_) {
      if (toTls_.empty() && !plainEof_) {
        ssize_t n = read(plain_, buf, sizeof buf);
        if (n > 0) {
          toTls_.assign(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          plainEof_ = true;
        } else if (errno == EAGAIN) {
          break;
        }
      }
      if (!toTls_.empty()) {
        ERR_clear_error();
        int w = SSL_write(ssl_, toTls_.data(), static_cast<int>(toTls_.size()));
        if (w > 0) {
          toTls_.erase(0, static_cast<size_t>(w));
          continue;
        }
        int e = SSL_get_error(ssl_, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        return finish();
      }
      if (plainEof_ && !sentClose_) {
        sentClose_ = true;
        SSL_shutdown(ssl_);  // close_notify: the peer sees the end of our side
      }
      break;
    }
    // TLS to plaintext.
    while (!closed_) {
      if (toPlain_.empty() && !tlsEof_) {
        ERR_clear_error();
        int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
          toPlain_.assign(buf, static_cast<size_t>(n));
        } else {
          int e = SSL_get_error(ssl_, n);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
          tlsEof_ = true;  // close_notify, the connection's end, or an error
        }
      }
      if (!toPlain_.empty()) {
        ssize_t w = send(plain_, toPlain_.data(), toPlain_.size(), MSG_NOSIGNAL);
        if (w > 0) {
          toPlain_.erase(0, static_cast<size_t>(w));
          continue;
        }
        if (w < 0 && errno == EAGAIN) break;
        return finish();
      }
      if (tlsEof_ && !shutPlain_) {
        shutPlain_ = true;
        shutdown(plain_, SHUT_WR);
      }
      break;
    }
    if (plainEof_ && tlsEof_ && toTls_.empty() && toPlain_.empty()) finish();
  }

  Worker& worker_;
  int tcp_, plain_ = -1;
  SSL* ssl_;
  bool client_;
  TlsReady ready_;
  std::function<void(bool)> done_;
  Side tcpSide_{this}, plainSide_{this};
  uint64_t timer_ = 0;
  bool connected_ = false, handshaking_ = true, closed_ = false;
  bool plainEof_ = false, tlsEof_ = false, sentClose_ = false, shutPlain_ = false;
  std::string toTls_, toPlain_;
};

}  // namespace

int startTlsClient(Worker& worker, int tcp, SSL* ssl, std::function<void(bool ok)> done) {
  auto* p = new TlsPump(worker, tcp, ssl, true, nullptr, std::move(done));
  int fd = p->startClient();
  if (fd < 0) {
    worker.loop().destroyLater(p);
    return -1;
  }
  return fd;
}

void startTlsServer(Worker& worker, int tcp, SSL* ssl, TlsReady ready) {
  auto* p = new TlsPump(worker, tcp, ssl, false, std::move(ready));
  if (!p->begin()) worker.loop().destroyLater(p);
}

}  // namespace podium::proxy
