#include "podium/api/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace podium::api::tls {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

std::string sslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return what + ": " + buf;
}

PkeyPtr newKey() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bioString(bio.get());
}

std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bioString(bio.get());
}

X509Ptr parseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr parseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return true;
}

X509Ptr newCert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& orgs,
                int validDays, int64_t validSeconds = 0) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  // Tolerate small clock skew; a short-lived certificate only a minute of it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), validSeconds ? -60 : -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), validSeconds
                                                      ? static_cast<long>(validSeconds)
                                                      : static_cast<long>(validDays) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& o : orgs)
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  if (!cn.empty())  // workload certificates carry their identity in the SAN only
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

Expected<KeyPair, std::string> generateCa(const std::string& commonName, int validDays) {
  PkeyPtr key = newKey();
  if (!key) return Unexpected(sslError("generate CA key"));
  X509Ptr cert = newCert(key.get(), commonName, {}, validDays);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (!addExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !addExt(cert.get(), cert.get(), NID_key_usage,
              "critical,keyCertSign,cRLSign,digitalSignature") ||
      !addExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"))
    return Unexpected(sslError("CA extensions"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return Unexpected(sslError("sign CA"));
  return KeyPair{certPem(cert.get()), keyPem(key.get())};
}

namespace {

// A certificate for `key` (its public half) with the names and uses of `req`, signed by `ca`.
Expected<std::string, std::string> certify(const KeyPair& ca, EVP_PKEY* key,
                                           const CertRequest& req) {
  X509Ptr caCert = parseCert(ca.certPem);
  PkeyPtr caKey = parseKey(ca.keyPem);
  if (!caCert || !caKey) return Unexpected(std::string("unreadable CA certificate or key"));
  X509Ptr cert = newCert(key, req.commonName, req.organizations, req.validDays, req.validSeconds);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(caCert.get()));
  std::string eku;
  if (req.serverAuth) eku = "serverAuth";
  if (req.clientAuth) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
  std::string san;
  for (const auto& d : req.dnsNames) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : req.ipAddresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& u : req.uris) san += (san.empty() ? "" : ",") + std::string("URI:") + u;
  bool ok = addExt(cert.get(), caCert.get(), NID_basic_constraints,
                   req.isCa ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") &&
            addExt(cert.get(), caCert.get(), NID_key_usage,
                   req.isCa ? "critical,keyCertSign,cRLSign,digitalSignature"
                            : "critical,digitalSignature,keyEncipherment") &&
            (!req.isCa || addExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash")) &&
            addExt(cert.get(), caCert.get(), NID_authority_key_identifier, "keyid:always") &&
            (eku.empty() || addExt(cert.get(), caCert.get(), NID_ext_key_usage, eku)) &&
            (san.empty() || addExt(cert.get(), caCert.get(), NID_subject_alt_name, san));
  if (!ok) return Unexpected(sslError("certificate extensions"));
  if (!X509_sign(cert.get(), caKey.get(), EVP_sha256()))
    return Unexpected(sslError("sign certificate"));
  return certPem(cert.get());
}

}  // namespace

Expected<KeyPair, std::string> issue(const KeyPair& ca, const CertRequest& req) {
  PkeyPtr key = newKey();
  if (!key) return Unexpected(sslError("generate key"));
  auto cert = certify(ca, key.get(), req);
  if (!cert) return Unexpected(cert.error());
  return KeyPair{*cert, keyPem(key.get())};
}

Expected<std::string, std::string> signCsr(const KeyPair& ca, const std::string& csrPem,
                                           const CertRequest& req) {
  BioPtr bio(BIO_new_mem_buf(csrPem.data(), static_cast<int>(csrPem.size())));
  std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>> csr(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!csr) return ERR_clear_error(), Unexpected(std::string("not a PEM certificate request"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (!key || X509_REQ_verify(csr.get(), key) != 1)
    return ERR_clear_error(), Unexpected(std::string("the request's signature does not verify"));
  int bits = EVP_PKEY_get_bits(key);
  bool ec = EVP_PKEY_is_a(key, "EC"), rsa = EVP_PKEY_is_a(key, "RSA");
  if ((!ec && !rsa) || (rsa && bits < 2048) || (ec && bits < 256))
    return Unexpected(std::string("the request's key must be ECDSA P-256 or better, or RSA 2048+"));
  return certify(ca, key, req);
}

Expected<KeyPair, std::string> newKeyAndCsr() {
  PkeyPtr key = newKey();
  if (!key) return Unexpected(sslError("generate key"));
  std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>> csr(X509_REQ_new());
  X509_REQ_set_version(csr.get(), 0);
  X509_REQ_set_pubkey(csr.get(), key.get());
  if (!X509_REQ_sign(csr.get(), key.get(), EVP_sha256())) return Unexpected(sslError("sign CSR"));
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), csr.get());
  return KeyPair{bioString(bio.get()), keyPem(key.get())};
}

Expected<std::string, std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unexpected("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Expected<void, std::string> writeFileAtomic(const std::string& path, const std::string& data,
                                            int mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Unexpected("cannot write " + tmp + ": " + strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Unexpected("write " + tmp + ": " + strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Unexpected("rename " + tmp + ": " + strerror(errno));
  return {};
}

SubjectAltNames subjectAltNames(const std::string& certPem) {
  SubjectAltNames out;
  X509Ptr cert = parseCert(certPem);
  if (!cert) return out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const ASN1_IA5STRING* s = n->d.dNSName;
      out.dnsNames.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == 4) {
      const unsigned char* b = ASN1_STRING_get0_data(n->d.iPAddress);
      out.ipAddresses.push_back(std::to_string(b[0]) + "." + std::to_string(b[1]) + "." +
                                std::to_string(b[2]) + "." + std::to_string(b[3]));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

Expected<ClusterPki, std::string> ensureClusterPki(const std::string& dir,
                                                   const std::vector<std::string>& serverIps,
                                                   const std::vector<std::string>& serverDnsNames) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unexpected("create " + dir + ": " + ec.message());
  ClusterPki p{dir + "/ca.crt",     dir + "/ca.key",    dir + "/server.crt",
               dir + "/server.key", dir + "/admin.crt", dir + "/admin.key"};
  auto exists = [](const std::string& f) { return std::filesystem::exists(f); };
  KeyPair ca;
  if (exists(p.caCert) && exists(p.caKey)) {
    auto c = readFile(p.caCert);
    auto k = readFile(p.caKey);
    if (!c || !k) return Unexpected(!c ? c.error() : k.error());
    ca = {*c, *k};
  } else {
    auto gen = generateCa("podium-ca", 3650);
    if (!gen) return Unexpected(gen.error());
    ca = *gen;
    if (auto w = writeFileAtomic(p.caKey, ca.keyPem, 0600); !w) return Unexpected(w.error());
    if (auto w = writeFileAtomic(p.caCert, ca.certPem, 0644); !w) return Unexpected(w.error());
  }
  auto ensure = [&](const std::string& certPath, const std::string& keyPath,
                    const CertRequest& req) -> Expected<void, std::string> {
    if (exists(certPath) && exists(keyPath)) return {};
    auto kp = issue(ca, req);
    if (!kp) return Unexpected(kp.error());
    if (auto w = writeFileAtomic(keyPath, kp->keyPem, 0600); !w) return w;
    return writeFileAtomic(certPath, kp->certPem, 0644);
  };
  CertRequest server;
  server.commonName = "podium-apiserver";
  server.dnsNames = serverDnsNames;
  server.ipAddresses = serverIps;
  server.serverAuth = true;
  server.validDays = 3650;
  // A serving certificate that lacks a name or address asked for now (a new --address or
  // --tls-san) is issued again with all of its old ones and the new ones.
  if (exists(p.serverCert)) {
    auto pem = readFile(p.serverCert);
    if (!pem) return Unexpected(pem.error());
    SubjectAltNames had = subjectAltNames(*pem);
    auto missing = [](const std::vector<std::string>& want, std::vector<std::string>& have) {
      bool any = false;
      for (const auto& w : want)
        if (std::find(have.begin(), have.end(), w) == have.end()) {
          have.push_back(w);
          any = true;
        }
      return any;
    };
    bool newIps = missing(serverIps, had.ipAddresses);
    bool newNames = missing(serverDnsNames, had.dnsNames);
    if (newIps || newNames) {
      server.ipAddresses = had.ipAddresses;
      server.dnsNames = had.dnsNames;
      std::filesystem::remove(p.serverCert, ec);
    }
  }
  if (auto r = ensure(p.serverCert, p.serverKey, server); !r) return Unexpected(r.error());
  CertRequest admin;
  admin.commonName = "podium-admin";
  admin.organizations = {"system:masters"};
  admin.clientAuth = true;
  admin.validDays = 3650;
  if (auto r = ensure(p.adminCert, p.adminKey, admin); !r) return Unexpected(r.error());
  return p;
}

}  // namespace podium::api::tls
