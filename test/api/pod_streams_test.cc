#include <gtest/gtest.h>

#include "podium/api/node_connector.h"

namespace podium::api {
namespace {

HttpRequest upgrade(const std::string& protocol) {
  HttpRequest r;
  r.method = "GET";
  r.headers = {{"upgrade", "websocket"}, {"sec-websocket-protocol", protocol}};
  return r;
}

// WebSocket exec: v4 clients (the Python client) are served with stdin and no terminal; a v5
// client (kubectl) is sent to SPDY, where the end of stdin can be signalled to the runtime.
TEST(PodStreams, WebSocketExecWithStdinIsRefusedOnlyWhenItsEndMustBeSignalled) {
  ExecOptions stdinNoTty;
  stdinNoTty.stdin = true;
  EXPECT_FALSE(refuseWebSocket(upgrade("v4.channel.k8s.io"), "exec", &stdinNoTty));
  auto v5 = refuseWebSocket(upgrade("v5.channel.k8s.io"), "exec", &stdinNoTty);
  ASSERT_TRUE(v5);
  EXPECT_EQ(v5->code(), 400);
  ExecOptions tty = stdinNoTty;
  tty.tty = true;
  EXPECT_FALSE(refuseWebSocket(upgrade("v5.channel.k8s.io"), "exec", &tty));
  EXPECT_TRUE(refuseWebSocket(upgrade("portforward.k8s.io"), "portforward", nullptr));
  HttpRequest spdy;
  spdy.headers = {{"upgrade", "SPDY/3.1"}};
  EXPECT_FALSE(refuseWebSocket(spdy, "exec", &stdinNoTty));
}

}  // namespace
}  // namespace podium::api
