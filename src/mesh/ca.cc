#include "podium/mesh/ca.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>

namespace podium::mesh {

namespace {

bool valid(const std::string& s) {
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  return !s.empty() && s.size() <= 253;
}

std::chrono::system_clock::time_point notAfterOf(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return {};
  struct tm t {};
  ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t);
  X509_free(cert);
  return std::chrono::system_clock::from_time_t(timegm(&t));
}

}  // namespace

Expected<MeshCa, std::string> MeshCa::open(const std::string& dir, const std::string& trustDomain) {
  namespace fs = std::filesystem;
  using api::tls::readFile;
  using api::tls::writeFileAtomic;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unexpected("cannot create " + dir + ": " + ec.message());
  MeshCa ca;
  ca.trustDomain_ = trustDomain;
  auto has = [&](const char* f) { return fs::exists(dir + "/" + f, ec); };
  if (has("ca-cert.pem") && has("ca-key.pem") && has("root-cert.pem")) {
    // Istio's plugged-in CA: an intermediate signed by the user's root.
    auto cert = readFile(dir + "/ca-cert.pem");
    auto key = readFile(dir + "/ca-key.pem");
    auto root = readFile(dir + "/root-cert.pem");
    if (!cert || !key || !root)
      return Unexpected(std::string("unreadable plugged-in CA in " + dir));
    auto chain = has("cert-chain.pem") ? readFile(dir + "/cert-chain.pem") : cert;
    if (!chain) return Unexpected(chain.error());
    ca.signer_ = {*cert, *key};
    ca.chain_ = *chain;
    if (ca.chain_.find(*root) == std::string::npos) ca.chain_ += *root;
    ca.root_ = *root;
    ca.pluggedIn_ = true;
  } else {
    if (!has("root-cert.pem") || !has("root-key.pem")) {
      auto gen = api::tls::generateCa("podium mesh root (" + trustDomain + ")", 3650);
      if (!gen) return Unexpected(gen.error());
      if (auto w = writeFileAtomic(dir + "/root-key.pem", gen->keyPem, 0600); !w)
        return Unexpected(w.error());
      if (auto w = writeFileAtomic(dir + "/root-cert.pem", gen->certPem, 0644); !w)
        return Unexpected(w.error());
    }
    auto cert = readFile(dir + "/root-cert.pem");
    auto key = readFile(dir + "/root-key.pem");
    if (!cert || !key) return Unexpected(std::string("unreadable mesh root in " + dir));
    ca.signer_ = {*cert, *key};
    ca.chain_ = *cert;
    ca.root_ = *cert;
  }
  return ca;
}

Expected<WorkloadCertificate, std::string> MeshCa::sign(const std::string& csrPem,
                                                        const std::string& ns,
                                                        const std::string& sa,
                                                        std::chrono::seconds ttl) const {
  if (!valid(ns) || !valid(sa))
    return Unexpected("invalid namespace or service account name: " + ns + "/" + sa);
  if (ttl.count() < 1) return Unexpected(std::string("the lifetime must be positive"));
  api::tls::CertRequest req;
  req.uris = {spiffeId(ns, sa)};
  req.serverAuth = true;  // both ends of mutual TLS
  req.clientAuth = true;
  req.validSeconds = ttl.count();
  auto cert = api::tls::signCsr(signer_, csrPem, req);
  if (!cert) return Unexpected(cert.error());
  WorkloadCertificate out;
  out.certChainPem = *cert + (pluggedIn_ ? chain_ : "");
  out.rootCertPem = root_;
  out.notAfter = notAfterOf(*cert);
  return out;
}

}  // namespace podium::mesh
