#pragma once

// Mutual TLS between node proxies (the mesh's zero trust), in the shape of Istio's ambient mode:
//
// - Each pod of the node that is in the mesh gets two listeners the proxy opens inside the pod's
//   network namespace: 15001 takes the pod's own TCP traffic to ClusterIPs (an nftables redirect
//   in the pod's output hook), 15006 everything sent to the pod (a redirect in its prerouting
//   hook). No plaintext from or to a pod crosses the pod network: it stays inside the pod.
// - The proxy reaches a meshed endpoint over TLS 1.3 with ALPN "istio", presenting the source
//   workload's certificate and checking that the endpoint presents the SPIFFE ID of its pod's
//   service account. The endpoint pod's 15006 listener terminates it (`MeshInbound`), checks the
//   client's certificate against the mesh's roots and trust domain, and hands the plaintext on
//   inside the pod, with the peer's principal for AuthorizationPolicies.
// - PeerAuthentication decides what a pod's port takes without mesh TLS: STRICT nothing,
//   PERMISSIVE (the default) and DISABLE plaintext too.
//
// Certificates and keys come from the node agent through the snapshot (memory only); they are
// never logged.

#include <openssl/ssl.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::proxy {

struct Endpoint;

inline constexpr uint16_t kMeshOutboundPort = 15001;
inline constexpr uint16_t kMeshInboundPort = 15006;
inline constexpr const char* kMeshAlpn = "istio";

enum class MtlsMode { Permissive, Strict, Disable };

// A number naming a service account's identity ("ns/sa") for the life of the process; 0 is
// none. 32 bits: numbers are never reused, so a pooled connection never serves another identity.
using IdentityId = uint32_t;

class MeshTls {
 public:
  // From the snapshot's "mesh" ({trustDomain, roots, identities[], pods[]}) and its
  // "peerAuthentications".
  void build(const Json& snapshot, const std::string& trustDomain);
  const std::string& trustDomain() const { return trustDomain_; }
  // The identity of a service account (connection pools are keyed by it); 0 when this node
  // holds no certificate for it.
  IdentityId identity(const std::string& ns, const std::string& sa) const;
  IdentityId ingressIdentity() const;
  // TLS sessions for identity `id`: a client that accepts only `expectedSpiffe` as its peer, a
  // server that requires a client certificate of the trust domain. nullptr if `id` is unknown.
  SSL* client(IdentityId id, const std::string& expectedSpiffe) const;
  SSL* server(IdentityId id) const;
  // This node's meshed pods: IP (host order) -> network namespace path.
  const std::map<uint32_t, std::string>& pods() const { return pods_; }
  // PeerAuthentication's mode for `pod`'s port `port`.
  MtlsMode mode(const Endpoint& pod, uint16_t port) const;
  // What mesh TLS is used towards `dest` (its DestinationRule's trafficPolicy.tls.mode DISABLE
  // and a DISABLE PeerAuthentication turn it off).
  bool wantsMtls(const Endpoint& dest) const;

  // Interns "ns/sa" (thread-safe).
  static IdentityId intern(const std::string& key);

 private:
  struct PeerAuth {
    std::string ns;
    std::map<std::string, std::string> selector;  // empty: the whole namespace
    MtlsMode mode = MtlsMode::Permissive;
    bool unset = true;  // mode UNSET/absent: inherit
    std::map<uint16_t, MtlsMode> ports;
    std::string created;
  };
  std::string trustDomain_ = "cluster.local";
  std::shared_ptr<X509_STORE> roots_;
  std::map<IdentityId, std::shared_ptr<SSL_CTX>> contexts_;
  std::map<uint32_t, std::string> pods_;
  std::vector<PeerAuth> peerAuths_;
};

// The URI SAN of the peer's certificate ("spiffe://..."), or "".
std::string peerSpiffeId(SSL* ssl);
// Istio's principal of a SPIFFE ID: "cluster.local/ns/a/sa/b".
inline std::string principalOf(const std::string& spiffe) {
  return spiffe.rfind("spiffe://", 0) == 0 ? spiffe.substr(9) : spiffe;
}

// Whether `data` starts with a TLS ClientHello, and its ALPN protocols: 1 yes, 0 no (not TLS),
// -1 not enough bytes yet.
int parseClientHello(const std::string& data, std::vector<std::string>* alpn);

// Runs `fn` with the calling thread inside the network namespace at `path` (sockets made there
// stay there); false if the namespace cannot be entered.
bool inNetns(const std::string& path, const std::function<void()>& fn);

// Why a mesh TLS handshake on `ssl` failed, as podium_mtls_rejected_total counts it: expired,
// untrusted, trust_domain, wrong_identity (a certificate for someone else), no_certificate,
// handshake.
const char* meshHandshakeFailure(SSL* ssl);

}  // namespace podium::proxy
