#include "podium/mesh/ca.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <memory>

namespace podium::mesh {
namespace {

namespace fs = std::filesystem;

std::string tempDir() {
  std::string d = (fs::temp_directory_path() / "podium-mesh-ca-XXXXXX").string();
  return mkdtemp(d.data());
}

struct Certs {
  std::vector<X509*> list;
  ~Certs() {
    for (X509* c : list) X509_free(c);
  }
};

Certs parse(const std::string& pem) {
  Certs out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.list.push_back(c);
  BIO_free(bio);
  return out;
}

// Verifies chain[0] against `root` with the rest of the chain as intermediates.
bool verifies(const std::string& chainPem, const std::string& rootPem) {
  Certs chain = parse(chainPem), root = parse(rootPem);
  if (chain.list.empty() || root.list.empty()) return false;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.list[0]);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (size_t i = 1; i < chain.list.size(); ++i) sk_X509_push(untrusted, chain.list[i]);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, chain.list[0], untrusted);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_STORE_free(store);
  return ok;
}

std::string uriSan(const std::string& pem) {
  Certs c = parse(pem);
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(c.list.at(0), NID_subject_alt_name, nullptr, nullptr));
  std::string out;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_URI)
      out = reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.uniformResourceIdentifier));
  }
  GENERAL_NAMES_free(names);
  return out;
}

TEST(MeshCa, SignsASpiffeCertificateForTheCsrsKey) {
  std::string dir = tempDir();
  auto ca = MeshCa::open(dir);
  ASSERT_TRUE(ca) << ca.error();
  EXPECT_FALSE(ca->pluggedIn());
  EXPECT_EQ(fs::status(dir + "/root-key.pem").permissions() & fs::perms::others_read,
            fs::perms::none);
  auto kc = api::tls::newKeyAndCsr();
  ASSERT_TRUE(kc) << kc.error();
  auto before = std::chrono::system_clock::now();
  auto cert = ca->sign(kc->certPem, "my-apps", "frontend", std::chrono::hours(24));
  ASSERT_TRUE(cert) << cert.error();
  EXPECT_EQ(uriSan(cert->certChainPem), "spiffe://cluster.local/ns/my-apps/sa/frontend");
  EXPECT_TRUE(verifies(cert->certChainPem, cert->rootCertPem));
  auto lifetime = cert->notAfter - before;
  EXPECT_GT(lifetime, std::chrono::hours(24) - std::chrono::minutes(1));
  EXPECT_LT(lifetime, std::chrono::hours(24) + std::chrono::minutes(1));
  // The key in the certificate is the CSR's: the private key never went to the CA.
  Certs c = parse(cert->certChainPem);
  BIO* bio = BIO_new_mem_buf(kc->keyPem.data(), static_cast<int>(kc->keyPem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EXPECT_EQ(X509_check_private_key(c.list[0], key), 1);
  EVP_PKEY_free(key);
  // Both ends of mutual TLS.
  EXPECT_TRUE(X509_get_extended_key_usage(c.list[0]) & XKU_SSL_CLIENT);
  EXPECT_TRUE(X509_get_extended_key_usage(c.list[0]) & XKU_SSL_SERVER);
  // A second open keeps the same root.
  auto again = MeshCa::open(dir);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->rootCertPem(), ca->rootCertPem());
  fs::remove_all(dir);
}

TEST(MeshCa, ShortLifetimesAndOtherTrustDomains) {
  std::string dir = tempDir();
  auto ca = MeshCa::open(dir, "example.org");
  ASSERT_TRUE(ca);
  auto kc = api::tls::newKeyAndCsr();
  auto before = std::chrono::system_clock::now();
  auto cert = ca->sign(kc->certPem, "ns", "sa", std::chrono::seconds(60));
  ASSERT_TRUE(cert) << cert.error();
  EXPECT_EQ(uriSan(cert->certChainPem), "spiffe://example.org/ns/ns/sa/sa");
  EXPECT_LE(cert->notAfter - before, std::chrono::seconds(61));
  fs::remove_all(dir);
}

TEST(MeshCa, RefusesBadRequests) {
  std::string dir = tempDir();
  auto ca = MeshCa::open(dir);
  ASSERT_TRUE(ca);
  auto kc = api::tls::newKeyAndCsr();
  EXPECT_FALSE(ca->sign("garbage", "ns", "sa", std::chrono::hours(1)));
  EXPECT_FALSE(ca->sign(kc->certPem, "ns/../x", "sa", std::chrono::hours(1)));
  EXPECT_FALSE(ca->sign(kc->certPem, "ns", "", std::chrono::hours(1)));
  EXPECT_FALSE(ca->sign(kc->certPem, "ns", "sa", std::chrono::seconds(0)));
  // A CSR whose signature does not match its key (one byte of the signature flipped).
  std::string bad = kc->certPem;
  auto end = bad.find("-----END");
  bad[end - 10] = bad[end - 10] == 'A' ? 'B' : 'A';
  auto r = ca->sign(bad, "ns", "sa", std::chrono::hours(1));
  EXPECT_FALSE(r);
  fs::remove_all(dir);
}

TEST(MeshCa, PluggedInIntermediateChainsToTheUsersRoot) {
  // The user's root and an intermediate it signed, in Istio's file names.
  auto root = api::tls::generateCa("user root", 30);
  ASSERT_TRUE(root);
  auto interKc = api::tls::newKeyAndCsr();
  api::tls::CertRequest ir;
  ir.commonName = "podium intermediate";
  ir.isCa = true;
  auto inter = api::tls::signCsr(*root, interKc->certPem, ir);
  ASSERT_TRUE(inter) << inter.error();
  std::string dir = tempDir();
  auto w = [&](const char* f, const std::string& data) {
    ASSERT_TRUE(api::tls::writeFileAtomic(dir + "/" + f, data, 0600));
  };
  w("root-cert.pem", root->certPem);
  w("ca-key.pem", interKc->keyPem);
  w("cert-chain.pem", *inter + root->certPem);
  w("ca-cert.pem", *inter);
  auto ca = MeshCa::open(dir);
  ASSERT_TRUE(ca) << ca.error();
  EXPECT_TRUE(ca->pluggedIn());
  auto kc = api::tls::newKeyAndCsr();
  auto cert = ca->sign(kc->certPem, "ns", "sa", std::chrono::hours(1));
  ASSERT_TRUE(cert) << cert.error();
  EXPECT_EQ(cert->rootCertPem, root->certPem);
  EXPECT_EQ(parse(cert->certChainPem).list.size(), 3u);  // leaf, intermediate, root
  EXPECT_TRUE(verifies(cert->certChainPem, root->certPem));
  // A plugged-in "intermediate" that is no CA cannot make certificates peers accept.
  ir.isCa = false;
  auto notCa = api::tls::signCsr(*root, interKc->certPem, ir);
  w("ca-cert.pem", *notCa);
  w("cert-chain.pem", *notCa + root->certPem);
  auto bad = MeshCa::open(dir);
  ASSERT_TRUE(bad);
  auto leaf = bad->sign(kc->certPem, "ns", "sa", std::chrono::hours(1));
  EXPECT_FALSE(leaf && verifies(leaf->certChainPem, root->certPem));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace podium::mesh
