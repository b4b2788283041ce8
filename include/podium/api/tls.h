#pragma once

// Certificates for the cluster: a CA, serving certificates and client certificates, generated
// with OpenSSL (ECDSA P-256, SHA-256) and stored as PEM.

#include <cstdint>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::api::tls {

struct KeyPair {
  std::string certPem;
  std::string keyPem;
};

struct CertRequest {
  std::string commonName;
  std::vector<std::string> organizations;
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;
  bool serverAuth = false;
  bool clientAuth = false;
  int validDays = 365;
  int64_t validSeconds = 0;  // when set, instead of validDays (short-lived workload certificates)
  bool isCa = false;         // an intermediate CA (signs leaves only: pathlen 0)
  // SPIFFE and other URIs (mesh identities).
  std::vector<std::string> uris;
};

// A self-signed CA certificate valid for `validDays`.
Expected<KeyPair, std::string> generateCa(const std::string& commonName, int validDays);
// A certificate for `request`, signed by `ca`.
Expected<KeyPair, std::string> issue(const KeyPair& ca, const CertRequest& request);
// A certificate for the public key of a PEM certificate signing request (whose own signature
// must verify), with the names and uses of `request` (the CSR's asked-for names are ignored).
Expected<std::string, std::string> signCsr(const KeyPair& ca, const std::string& csrPem,
                                           const CertRequest& request);
// A fresh ECDSA P-256 key and a CSR for it (no names: the signer decides them).
Expected<KeyPair, std::string> newKeyAndCsr();  // certPem holds the CSR

// The DNS names and IPv4 addresses a PEM certificate is for (empty if it does not parse).
struct SubjectAltNames {
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;
};
SubjectAltNames subjectAltNames(const std::string& certPem);

// The cluster's PKI in a directory: ca.crt/ca.key, server.crt/server.key (for the API's host
// names and addresses), admin.crt/admin.key (CN=podium-admin, O=system:masters). Missing files
// are generated; existing ones are kept, so restarts keep every credential valid (the serving
// certificate is issued again, with its old names too, when it lacks one asked for).
struct ClusterPki {
  std::string caCert, caKey, serverCert, serverKey, adminCert, adminKey;  // file paths
};
Expected<ClusterPki, std::string> ensureClusterPki(const std::string& dir,
                                                   const std::vector<std::string>& serverIps,
                                                   const std::vector<std::string>& serverDnsNames);

// Reads a whole file; error message on failure.
Expected<std::string, std::string> readFile(const std::string& path);
// Writes atomically (temp file + rename) with the given mode.
Expected<void, std::string> writeFileAtomic(const std::string& path, const std::string& data,
                                            int mode);

}  // namespace podium::api::tls
