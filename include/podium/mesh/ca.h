#pragma once

// The mesh's certificate authority: workload certificates for SPIFFE identities
// (spiffe://<trust domain>/ns/<namespace>/sa/<service account>), short-lived, signed from
// certificate signing requests so that private keys stay with the node that made them.
//
// Its signing certificate is, as with Istio, either a self-signed root the CA makes on first
// start, or an intermediate the user plugs in with Istio's file names (ca-cert.pem, ca-key.pem,
// root-cert.pem, cert-chain.pem) in the CA's directory.

#include <chrono>
#include <cstdint>
#include <string>

#include "podium/api/tls.h"
#include "podium/common/expected.h"

namespace podium::mesh {

struct WorkloadCertificate {
  std::string certChainPem;  // the workload's certificate, then the intermediates up to the root
  std::string rootCertPem;   // the trust anchor peers verify against
  std::chrono::system_clock::time_point notAfter;
};

class MeshCa {
 public:
  // Loads the CA from `dir` (generating a root there on first use, mode 0600 for the key).
  static Expected<MeshCa, std::string> open(const std::string& dir,
                                            const std::string& trustDomain = "cluster.local");

  // A certificate for the CSR's key naming the service account `sa` of namespace `ns`, valid
  // for `ttl` (capped at the signing certificate's own lifetime by the verifier, not here).
  Expected<WorkloadCertificate, std::string> sign(const std::string& csrPem, const std::string& ns,
                                                  const std::string& sa,
                                                  std::chrono::seconds ttl) const;

  std::string spiffeId(const std::string& ns, const std::string& sa) const {
    return "spiffe://" + trustDomain_ + "/ns/" + ns + "/sa/" + sa;
  }
  const std::string& rootCertPem() const { return root_; }
  const std::string& trustDomain() const { return trustDomain_; }
  bool pluggedIn() const { return pluggedIn_; }

 private:
  api::tls::KeyPair signer_;  // the certificate that signs workloads, and its key
  std::string chain_;         // from the signer up to (and including) the root
  std::string root_;
  std::string trustDomain_;
  bool pluggedIn_ = false;
};

}  // namespace podium::mesh
