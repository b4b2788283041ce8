#include "mesh.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sched.h>
#include <unistd.h>

#include <mutex>
#include <optional>

#include "config.h"
#include "podium/common/log.h"
#include "podium/common/net.h"

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

// What a session's peer must prove, checked as its certificate is verified: a client expects
// the SPIFFE ID of its endpoint's service account, a server any identity of the trust domain.
struct MeshExpect {
  std::string spiffe;  // client side
  std::string trustDomain;
  const char* failure = nullptr;  // why the peer was refused, when it was
};

void freeExpect(void*, void* p, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<MeshExpect*>(p);
}

int meshExpectIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freeExpect);
  return index;
}

std::string uriSanOf(X509* cert) {
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
  return out;
}

// The peer's leaf certificate must name the identity the session expects, so a wrong peer
// fails the handshake itself.
int verifyPeer(int ok, X509_STORE_CTX* x) {
  if (!ok || X509_STORE_CTX_get_error_depth(x) != 0) return ok;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* e = ssl ? static_cast<MeshExpect*>(SSL_get_ex_data(ssl, meshExpectIndex())) : nullptr;
  if (!e) return ok;
  std::string peer = uriSanOf(X509_STORE_CTX_get_current_cert(x));
  if (peer.rfind("spiffe://" + e->trustDomain + "/", 0) != 0)
    e->failure = "trust_domain";
  else if (!SSL_is_server(ssl) && peer != e->spiffe)
    e->failure = "wrong_identity";
  if (!e->failure) return 1;
  X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
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
  // AES-128-GCM first, as Envoy's BoringSSL offers TLS 1.3's suites: the cheapest per record.
  SSL_CTX_set_ciphersuites(
      ctx.get(), "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A peer's FIN without close_notify ends the stream as it would in plaintext (a proxy closing
  // after a body that runs until close sends no alert): HTTP's own framing finds truncation.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
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
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyPeer);
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

IdentityId MeshTls::intern(const std::string& key) {
  static std::mutex mu;
  static std::map<std::string, IdentityId> ids;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, added] = ids.emplace(key, static_cast<IdentityId>(ids.size() + 1));
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

IdentityId MeshTls::identity(const std::string& ns, const std::string& sa) const {
  IdentityId id = intern(ns + "/" + sa);
  return contexts_.count(id) ? id : 0;
}

IdentityId MeshTls::ingressIdentity() const {
  return identity("istio-system", "istio-ingressgateway-service-account");
}

SSL* MeshTls::client(IdentityId id, const std::string& expectedSpiffe) const {
  auto it = contexts_.find(id);
  if (it == contexts_.end()) return nullptr;
  SSL* ssl = SSL_new(it->second.get());
  if (!ssl) return nullptr;
  static const unsigned char alpn[] = {5, 'i', 's', 't', 'i', 'o'};
  SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
  // The endpoint must prove the identity of its pod's service account.
  SSL_set_ex_data(ssl, meshExpectIndex(), new MeshExpect{expectedSpiffe, trustDomain_});
  SSL_set_connect_state(ssl);
  return ssl;
}

SSL* MeshTls::server(IdentityId id) const {
  auto it = contexts_.find(id);
  if (it == contexts_.end()) return nullptr;
  SSL* ssl = SSL_new(it->second.get());
  if (!ssl) return nullptr;
  SSL_set_ex_data(ssl, meshExpectIndex(), new MeshExpect{"", trustDomain_});
  SSL_set_accept_state(ssl);
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
  std::string out = uriSanOf(cert);
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

// --- handshakes ------------------------------------------------------------------------------

const char* meshHandshakeFailure(SSL* ssl) {
  if (auto* e = static_cast<MeshExpect*>(SSL_get_ex_data(ssl, meshExpectIndex())); e && e->failure)
    return e->failure;
  switch (SSL_get_verify_result(ssl)) {
    case X509_V_OK:
      break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "expired";
    default:
      return "untrusted";
  }
  if (SSL_get0_peer_certificate(ssl)) return "handshake";
  bool noCert = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE;
  return noCert && SSL_is_server(ssl) ? "no_certificate" : "handshake";
}

}  // namespace podium::proxy
