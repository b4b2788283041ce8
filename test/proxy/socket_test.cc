// The proxy's connections: plaintext and mesh TLS on the same socket (no pump, no second
// socket), the handshake proving each side's SPIFFE identity, peeks that leave bytes to read.

#include "proxy/socket.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "podium/api/tls.h"
#include "proxy/mesh.h"

namespace podium::proxy {
namespace {

namespace pki = api::tls;

std::pair<int, int> socketPair() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  return {sv[0], sv[1]};
}

// A mesh of one trust domain whose root signed the identities named ("ns/sa").
struct Mesh {
  explicit Mesh(const std::vector<std::string>& ids, const std::string& domain = "cluster.local",
                const pki::KeyPair* signer = nullptr) {
    ca = signer ? *signer : pki::generateCa("mesh root", 1).value();
    Json snap = {{"mesh", {{"trustDomain", "cluster.local"}, {"roots", {ca.certPem}}}}};
    for (const auto& id : ids) {
      auto slash = id.find('/');
      pki::CertRequest r;
      r.commonName = id;
      r.clientAuth = r.serverAuth = true;
      r.uris = {"spiffe://" + domain + "/ns/" + id.substr(0, slash) + "/sa/" +
                id.substr(slash + 1)};
      auto leaf = pki::issue(ca, r).value();
      snap["mesh"]["identities"].push_back({{"namespace", id.substr(0, slash)},
                                            {"serviceAccount", id.substr(slash + 1)},
                                            {"certChain", leaf.certPem},
                                            {"key", leaf.keyPem}});
    }
    tls.build(snap, "cluster.local");
  }
  IdentityId id(const std::string& ns, const std::string& sa) const { return tls.identity(ns, sa); }
  pki::KeyPair ca;
  MeshTls tls;
};

// Drives both handshakes to their ends; returns {client, server} results.
std::pair<int, int> handshake(Socket& client, Socket& server) {
  int c = 0, s = 0;
  for (int i = 0; i < 100 && (c == 0 || s == 0); ++i) {
    if (c == 0) c = client.establish(EPOLLIN | EPOLLOUT);
    if (s == 0) s = server.establish(EPOLLIN | EPOLLOUT);
  }
  return {c, s};
}

std::string readAll(Socket& s) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = s.read(buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(Socket, PlaintextReadsWritesPeeksAndHalfCloses) {
  auto [a, b] = socketPair();
  Socket x(a), y(b);
  ASSERT_EQ(x.write("hello", 5), 5);
  char buf[8];
  ASSERT_EQ(y.peek(buf, 3), 3);
  EXPECT_EQ(std::string(buf, 3), "hel");
  EXPECT_EQ(readAll(y), "hello");  // the peek took nothing
  x.shutdownWrite();
  EXPECT_EQ(y.read(buf, sizeof buf), 0);
  EXPECT_EQ(y.write("back", 4), 4);  // the other direction still flows
  EXPECT_EQ(readAll(x), "back");
}

TEST(Socket, MeshTlsOnTheSocketItselfProvesBothSides) {
  Mesh mesh({"shop/web", "shop/db"});
  auto [a, b] = socketPair();
  Socket client(a, mesh.tls.client(mesh.id("shop", "web"), "spiffe://cluster.local/ns/shop/sa/db"),
                Socket::Phase::Handshaking);
  Socket server(b);
  ASSERT_TRUE(server.attachTls(mesh.tls.server(mesh.id("shop", "db")), Socket::Phase::Handshaking));
  EXPECT_EQ(handshake(client, server), std::make_pair(1, 1));
  EXPECT_EQ(peerSpiffeId(server.ssl()), "spiffe://cluster.local/ns/shop/sa/web");

  // A request in two records: a peek sees both and leaves them to be read.
  ASSERT_EQ(client.write("GET / HTTP/1.1\r\n", 16), 16);
  ASSERT_EQ(client.write("Host: db\r\n\r\n", 12), 12);
  char seen[64];
  ASSERT_EQ(server.peek(seen, 20), 20);
  EXPECT_EQ(std::string(seen, 4), "GET ");
  EXPECT_TRUE(server.pending());
  EXPECT_EQ(readAll(server), "GET / HTTP/1.1\r\nHost: db\r\n\r\n");
  EXPECT_FALSE(server.pending());
  char buf[8];
  EXPECT_EQ(server.read(buf, sizeof buf), -1);
  EXPECT_EQ(errno, EAGAIN);

  // Two records taken by one read(): the first read is not the last, the second drains it.
  ASSERT_EQ(client.write("one", 3), 3);
  ASSERT_EQ(client.write("two", 3), 3);
  ASSERT_EQ(server.read(buf, sizeof buf), 3);
  EXPECT_FALSE(server.drained(3, sizeof buf));
  ASSERT_EQ(server.read(buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "two");
  EXPECT_TRUE(server.drained(3, sizeof buf));

  // close_notify ends one direction; the answer still comes back.
  client.shutdownWrite();
  EXPECT_EQ(server.read(buf, sizeof buf), 0);
  ASSERT_EQ(server.write("ok", 2), 2);
  EXPECT_EQ(readAll(client), "ok");
}

TEST(Socket, AClientRefusesAnEndpointWithAnotherIdentity) {
  Mesh mesh({"shop/web", "shop/db", "shop/cache"});
  auto [a, b] = socketPair();
  // The endpoint should be db; cache answers.
  Socket client(a, mesh.tls.client(mesh.id("shop", "web"), "spiffe://cluster.local/ns/shop/sa/db"),
                Socket::Phase::Handshaking);
  Socket server(b, mesh.tls.server(mesh.id("shop", "cache")), Socket::Phase::Handshaking);
  auto [c, s] = handshake(client, server);
  EXPECT_EQ(c, -1);
  EXPECT_STREQ(meshHandshakeFailure(client.ssl()), "wrong_identity");
  EXPECT_EQ(s, -1);  // the client's alert ends the server's side too
}

TEST(Socket, AServerRefusesAnotherTrustDomainAndUntrustedRoots) {
  Mesh mesh({"shop/db"});
  // Signed by the mesh's own root, but for another trust domain.
  Mesh foreign({"shop/web"}, "evil.example", &mesh.ca);
  auto [a, b] = socketPair();
  Socket client(
      a, foreign.tls.client(foreign.id("shop", "web"), "spiffe://cluster.local/ns/shop/sa/db"),
      Socket::Phase::Handshaking);
  Socket server(b, mesh.tls.server(mesh.id("shop", "db")), Socket::Phase::Handshaking);
  auto [c, s] = handshake(client, server);
  EXPECT_EQ(s, -1);
  EXPECT_STREQ(meshHandshakeFailure(server.ssl()), "trust_domain");
  // TLS 1.3: the client is done before the server judges its certificate; the server's alert
  // ends the connection at the client's first read.
  EXPECT_EQ(c, 1);
  char buf[4];
  EXPECT_EQ(client.read(buf, sizeof buf), -1);
  EXPECT_EQ(errno, ECONNRESET);

  Mesh other({"shop/web"});  // another root altogether
  auto [d, e] = socketPair();
  Socket client2(d,
                 other.tls.client(other.id("shop", "web"), "spiffe://cluster.local/ns/shop/sa/db"),
                 Socket::Phase::Handshaking);
  Socket server2(e, mesh.tls.server(mesh.id("shop", "db")), Socket::Phase::Handshaking);
  auto [c2, s2] = handshake(client2, server2);
  EXPECT_EQ(c2, -1);  // the client does not trust the server's root either
  EXPECT_EQ(s2, -1);
  EXPECT_STREQ(meshHandshakeFailure(client2.ssl()), "untrusted");
}

TEST(Socket, ARefusedConnectionFailsWhileConnecting) {
  auto [a, b] = socketPair();
  close(b);
  Socket s(a, nullptr, Socket::Phase::Connecting);
  EXPECT_EQ(s.establish(EPOLLOUT | EPOLLHUP), -1);
  auto [c, d] = socketPair();
  Socket ok(c, nullptr, Socket::Phase::Connecting), peer(d);
  EXPECT_EQ(ok.establish(EPOLLIN), 0);  // not writable yet: wait
  EXPECT_EQ(ok.establish(EPOLLOUT), 1);
  EXPECT_TRUE(ok.open());
}

}  // namespace
}  // namespace podium::proxy
