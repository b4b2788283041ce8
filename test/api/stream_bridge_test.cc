#include "api/stream_bridge.h"

#include <gtest/gtest.h>

namespace podium::api {
namespace {

// The streaming server's side of the session, played with the same framing.
struct Server {
  spdy::Codec codec;
  std::map<std::string, uint32_t> streams;  // streamtype → id
  std::vector<spdy::Frame> frames;

  void read(const std::string& bytes) {
    auto got = codec.feed(bytes);
    ASSERT_TRUE(got) << got.error();
    for (auto& f : *got) {
      if (f.type == spdy::FrameType::kSynStream)
        for (const auto& [k, v] : f.headers)
          if (k == "streamtype") streams[v] = f.streamId;
      frames.push_back(std::move(f));
    }
  }
};

std::string msg(uint8_t channel, const std::string& payload) {
  return std::string(1, static_cast<char>(channel)) + payload;
}

TEST(RemoteCommandBridge, OpensTheStreamsTheServerWaitsFor) {
  Server noTty, tty;
  RemoteCommandBridge a({.stdin = true, .stdout = true, .stderr = true, .tty = false});
  noTty.read(a.open());
  EXPECT_EQ(noTty.streams, (std::map<std::string, uint32_t>{
                               {"error", 1}, {"stdin", 3}, {"stdout", 5}, {"stderr", 7}}));
  // With a terminal: no stderr (merged into stdout), a resize stream.
  RemoteCommandBridge b({.stdin = true, .stdout = true, .stderr = true, .tty = true});
  tty.read(b.open());
  EXPECT_EQ(tty.streams, (std::map<std::string, uint32_t>{
                             {"error", 1}, {"stdin", 3}, {"stdout", 5}, {"resize", 7}}));
}

// kubectl exec -i: stdin bytes, then v5's close message ff 00, which becomes a half-closed
// stdin stream; the server's output comes back on the client's channels.
TEST(RemoteCommandBridge, CarriesChannelsAndTheEndOfStdin) {
  Server server;
  RemoteCommandBridge bridge({.stdin = true, .stdout = true, .stderr = true, .tty = false});
  server.read(bridge.open());
  size_t before = server.frames.size();
  server.read(bridge.fromClient(msg(0, "abc\n")).upstream);
  server.read(bridge.fromClient(std::string("\xff\x00", 2)).upstream);
  // Anything after the close, and channels the client may not write, go nowhere.
  EXPECT_TRUE(bridge.fromClient(msg(0, "late")).upstream.empty());
  EXPECT_TRUE(bridge.fromClient(msg(1, "not mine")).upstream.empty());
  EXPECT_TRUE(bridge.fromClient("").upstream.empty());
  ASSERT_EQ(server.frames.size(), before + 2);
  EXPECT_EQ(server.frames[before].streamId, server.streams["stdin"]);
  EXPECT_EQ(server.frames[before].data, "abc\n");
  EXPECT_TRUE(server.frames[before + 1].fin());
  EXPECT_TRUE(server.frames[before + 1].data.empty());

  std::string status = R"({"metadata":{},"status":"Success"})";
  std::string wire = server.codec.synReply(server.streams["stdout"], {});
  wire += server.codec.data(server.streams["stdout"], "abc\n");
  wire += server.codec.data(server.streams["stderr"], "oops");
  wire += server.codec.data(server.streams["error"], status, true);
  auto out = bridge.fromUpstream(wire);
  EXPECT_TRUE(out.error.empty());
  EXPECT_EQ(out.client,
            (std::vector<std::string>{msg(1, "abc\n"), msg(2, "oops"), msg(3, status)}));
}

TEST(RemoteCommandBridge, ResizeGoesToItsStreamAndPingsAreAnswered) {
  Server server;
  RemoteCommandBridge bridge({.stdin = true, .stdout = true, .stderr = false, .tty = true});
  server.read(bridge.open());
  size_t before = server.frames.size();
  server.read(bridge.fromClient(msg(4, R"({"Width":100,"Height":30})")).upstream);
  ASSERT_EQ(server.frames.size(), before + 1);
  EXPECT_EQ(server.frames[before].streamId, server.streams["resize"]);

  std::string wire = server.codec.ping(2);
  wire += server.codec.synStream(2, {});
  auto out = bridge.fromUpstream(wire);
  server.read(out.upstream);
  ASSERT_EQ(server.frames.size(), before + 3);
  EXPECT_EQ(server.frames[before + 1].type, spdy::FrameType::kPing);  // the echo
  EXPECT_EQ(server.frames[before + 1].value, 2u);
  EXPECT_EQ(server.frames[before + 2].type, spdy::FrameType::kRstStream);  // no server streams
}

TEST(RemoteCommandBridge, GarbageFromTheServerEndsTheSession) {
  RemoteCommandBridge bridge({.stdin = false, .stdout = true, .stderr = true, .tty = false});
  bridge.open();
  EXPECT_FALSE(
      bridge.fromUpstream(std::string("\x80\x07\x00\x01\x00\x00\x00\x00", 8)).error.empty());
}

}  // namespace
}  // namespace podium::api
