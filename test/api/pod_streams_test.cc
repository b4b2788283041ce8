#include <gtest/gtest.h>

#include "podium/api/node_connector.h"

namespace podium::api {
namespace {

HttpRequest upgrade(const std::string& protocol) {
  HttpRequest r;
  r.method = "GET";
  r.headers = {{"upgrade", "websocket"}, {"sec-websocket-protocol", protocol}};
  r.rawHeaders = {{"Upgrade", "websocket"}, {"Sec-WebSocket-Protocol", protocol}};
  return r;
}

const std::string kUrl = "http://127.0.0.1:4000/exec/tok";

// kubectl's WebSocket v5 exec ends here and goes on as SPDY v4, the streams named by the
// request; the Python client's v4 goes through unchanged, as does SPDY.
TEST(PodStreams, WebSocketV5ExecIsBridgedToSpdyAndV4IsProxied) {
  ExecOptions stdinNoTty;
  stdinNoTty.stdin = stdinNoTty.stdout = stdinNoTty.stderr = true;
  auto v5 = upgradeToRuntime(upgrade("v5.channel.k8s.io"), kUrl, "exec", &stdinNoTty);
  ASSERT_TRUE(v5);
  EXPECT_EQ((*v5)->bridge, UpgradeTarget::Bridge::kRemoteCommand);
  EXPECT_EQ((*v5)->clientProtocol, "v5.channel.k8s.io");
  EXPECT_TRUE((*v5)->channels.stdin && (*v5)->channels.stderr && !(*v5)->channels.tty);
  EXPECT_EQ((*v5)->request,
            "POST /exec/tok HTTP/1.1\r\nHost: 127.0.0.1:4000\r\nConnection: Upgrade\r\n"
            "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
            "Content-Length: 0\r\n\r\n");

  auto v4 = upgradeToRuntime(upgrade("v4.channel.k8s.io"), kUrl, "exec", &stdinNoTty);
  ASSERT_TRUE(v4);
  EXPECT_EQ((*v4)->bridge, UpgradeTarget::Bridge::kBytes);
  EXPECT_NE((*v4)->request.find("Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n"),
            std::string::npos);

  HttpRequest spdy;
  spdy.method = "POST";
  spdy.headers = {{"upgrade", "SPDY/3.1"}};
  spdy.rawHeaders = {{"Upgrade", "SPDY/3.1"}, {"X-Stream-Protocol-Version", "v4.channel.k8s.io"}};
  auto proxied = upgradeToRuntime(spdy, kUrl, "exec", &stdinNoTty);
  ASSERT_TRUE(proxied);
  EXPECT_EQ((*proxied)->bridge, UpgradeTarget::Bridge::kBytes);
}

// kubectl's port-forward tunnel: SPDY inside WebSocket, unwrapped onto a SPDY upgrade.
TEST(PodStreams, PortForwardTunnelBecomesASpdyUpgrade) {
  auto t = upgradeToRuntime(upgrade("SPDY/3.1+portforward.k8s.io"),
                            "http://127.0.0.1:4000/portforward/tok", "portforward", nullptr);
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)->bridge, UpgradeTarget::Bridge::kTunnel);
  EXPECT_EQ((*t)->clientProtocol, "SPDY/3.1+portforward.k8s.io");
  EXPECT_NE((*t)->request.find("X-Stream-Protocol-Version: portforward.k8s.io\r\n"),
            std::string::npos);
  EXPECT_FALSE(upgradeToRuntime(upgrade("v4.channel.k8s.io"), "ftp://x", "exec", nullptr));
}

}  // namespace
}  // namespace podium::api
