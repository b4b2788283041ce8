#include "proxy/mesh.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "podium/common/net.h"
#include "podium/dns/message.h"
#include "proxy/config.h"

namespace podium::proxy {
namespace {

// The first flight of a real OpenSSL client offering `alpn`.
std::string clientHello(const std::vector<std::string>& alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  std::string wire;
  for (const auto& p : alpn) wire += static_cast<char>(p.size()) + p;
  if (!wire.empty())
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char buf[16384];
  int n = BIO_read(out, buf, sizeof buf);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

TEST(ClientHello, FindsTheMeshAlpn) {
  std::vector<std::string> alpn;
  std::string hello = clientHello({"h2", "istio"});
  ASSERT_GT(hello.size(), 100u);
  EXPECT_EQ(parseClientHello(hello, &alpn), 1);
  EXPECT_EQ(alpn, (std::vector<std::string>{"h2", "istio"}));
  alpn.clear();
  EXPECT_EQ(parseClientHello(clientHello({}), &alpn), 1);
  EXPECT_TRUE(alpn.empty());
  // Partial: more bytes are needed; plaintext: not TLS at all.
  EXPECT_EQ(parseClientHello(hello.substr(0, 40), &alpn), -1);
  EXPECT_EQ(parseClientHello("", &alpn), -1);
  EXPECT_EQ(parseClientHello("GET / HTTP/1.1\r\n\r\n", &alpn), 0);
  // A handshake record that is not a ClientHello (a ServerHello).
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9), &alpn), 0);
  // Lengths that lie never read past the data.
  for (size_t cut = 0; cut < hello.size(); cut += 7) {
    std::string broken = hello;
    broken[cut] = '\xff';
    std::vector<std::string> seen;
    parseClientHello(broken, &seen);
  }
}

Json pod(const std::string& name, const std::string& ip, Json labels) {
  return {{"metadata", {{"name", name}, {"namespace", "my-apps"}, {"labels", labels}}},
          {"spec", {{"serviceAccountName", "default"}}},
          {"status", {{"podIP", ip}}}};
}

Json peerAuth(const std::string& ns, const std::string& name, const std::string& mode,
              Json selector = nullptr, Json ports = nullptr) {
  Json pa = {{"metadata", {{"name", name}, {"namespace", ns}}},
             {"spec", {{"mtls", {{"mode", mode}}}}}};
  if (!selector.is_null()) pa["spec"]["selector"] = {{"matchLabels", selector}};
  if (!ports.is_null()) pa["spec"]["portLevelMtls"] = ports;
  return pa;
}

TEST(PeerAuthentication, TheMostSpecificPolicyDecides) {
  Json snap = {
      {"pods",
       {pod("web", "10.42.0.5", {{"app", "web"}}), pod("db", "10.42.0.6", {{"app", "db"}})}}};
  auto mode = [&](const std::string& ip, uint16_t port) {
    auto c = ProxyConfig::build(snap);
    uint32_t addr = 0;
    net::parseIpv4(ip, &addr);
    return c->mesh().mode(*c->podByIp(addr), port);
  };
  EXPECT_EQ(mode("10.42.0.5", 80), MtlsMode::Permissive);  // Istio's default
  snap["peerAuthentications"] = {peerAuth("istio-system", "mesh", "STRICT")};
  EXPECT_EQ(mode("10.42.0.5", 80), MtlsMode::Strict);
  snap["peerAuthentications"].push_back(peerAuth("my-apps", "ns", "PERMISSIVE"));
  EXPECT_EQ(mode("10.42.0.5", 80), MtlsMode::Permissive);  // the namespace over the mesh
  snap["peerAuthentications"].push_back(
      peerAuth("my-apps", "web", "STRICT", {{"app", "web"}}, {{"8080", {{"mode", "DISABLE"}}}}));
  EXPECT_EQ(mode("10.42.0.5", 80), MtlsMode::Strict);      // the workload over the namespace
  EXPECT_EQ(mode("10.42.0.5", 8080), MtlsMode::Disable);   // and its port over the workload
  EXPECT_EQ(mode("10.42.0.6", 80), MtlsMode::Permissive);  // the selector does not take db
  // UNSET inherits.
  snap["peerAuthentications"] = {peerAuth("istio-system", "mesh", "STRICT"),
                                 peerAuth("my-apps", "ns", "UNSET")};
  EXPECT_EQ(mode("10.42.0.6", 80), MtlsMode::Strict);
}

TEST(Mesh, PodsOptOutAsIstioLetsThem) {
  Json snap = {{"pods",
                {pod("in", "10.42.0.5", Json::object()),
                 pod("out", "10.42.0.6", {{"istio.io/dataplane-mode", "none"}})}}};
  snap["pods"][1]["metadata"]["labels"] = {{"istio.io/dataplane-mode", "none"}};
  Json skip = pod("skip", "10.42.0.7", Json::object());
  skip["metadata"]["annotations"] = {{"sidecar.istio.io/inject", "false"}};
  snap["pods"].push_back(skip);
  auto c = ProxyConfig::build(snap);
  uint32_t a, b, d;
  net::parseIpv4("10.42.0.5", &a);
  net::parseIpv4("10.42.0.6", &b);
  net::parseIpv4("10.42.0.7", &d);
  EXPECT_TRUE(c->podByIp(a)->meshed);
  EXPECT_FALSE(c->podByIp(b)->meshed);
  EXPECT_FALSE(c->podByIp(d)->meshed);
  // Without the mesh's roots nobody is reached over mesh TLS.
  EXPECT_FALSE(c->mesh().wantsMtls(*c->podByIp(a)));
}

}  // namespace
}  // namespace podium::proxy
