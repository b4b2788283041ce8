#include "api/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace podium::api::spdy {
namespace {

// The dictionary is part of the wire format: a header block compressed by spdystream names it
// by this Adler-32 checksum, and decompressing with anything else fails.
TEST(Spdy, HeaderDictionaryIsSpdy3s) {
  const std::string& d = headerDictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(Spdy, FramesRoundTripAcrossAnyReadBoundaries) {
  Codec client, server;
  // Appended one by one: the operands of + may be evaluated in any order, and header blocks
  // must be compressed in wire order.
  std::string wire = client.synStream(1, {{"streamType", "error"}});
  wire += client.synStream(3, {{"streamtype", "stdin"}, {"x", std::string("a\0b", 3)}});
  wire += client.data(3, "hello");
  wire += client.data(3, "", true);
  wire += client.ping(2);
  wire += client.rstStream(5, kRefusedStream);
  wire += client.goAway(3);
  std::vector<Frame> frames;
  for (char c : wire) {  // one byte at a time: frames complete only when whole
    auto got = server.feed(std::string_view(&c, 1));
    ASSERT_TRUE(got) << got.error();
    for (auto& f : *got) frames.push_back(std::move(f));
  }
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(frames[0].type, FrameType::kSynStream);
  EXPECT_EQ(frames[0].streamId, 1u);
  EXPECT_EQ(frames[0].headers, (Headers{{"streamtype", "error"}}));  // names go lower-case
  EXPECT_EQ(frames[1].headers, (Headers{{"streamtype", "stdin"}, {"x", std::string("a\0b", 3)}}));
  EXPECT_EQ(frames[2].type, FrameType::kData);
  EXPECT_EQ(frames[2].streamId, 3u);
  EXPECT_EQ(frames[2].data, "hello");
  EXPECT_FALSE(frames[2].fin());
  EXPECT_TRUE(frames[3].fin());
  EXPECT_TRUE(frames[3].data.empty());
  EXPECT_EQ(frames[4].type, FrameType::kPing);
  EXPECT_EQ(frames[4].value, 2u);
  EXPECT_EQ(frames[5].type, FrameType::kRstStream);
  EXPECT_EQ(frames[5].streamId, 5u);
  EXPECT_EQ(frames[5].value, kRefusedStream);
  EXPECT_EQ(frames[6].type, FrameType::kGoAway);
  EXPECT_EQ(frames[6].streamId, 3u);
}

// Both directions keep one compression context for the whole session: a reply decodes only
// after the frames before it.
TEST(Spdy, HeaderCompressionSpansTheSession) {
  Codec client, server;
  for (uint32_t id = 1; id < 20; id += 2) {
    auto got = server.feed(client.synStream(id, {{"streamtype", "stdout"}}));
    ASSERT_TRUE(got) << got.error();
    ASSERT_EQ(got->size(), 1u);
    auto reply = client.feed(server.synReply(id, {}));
    ASSERT_TRUE(reply) << reply.error();
    ASSERT_EQ(reply->size(), 1u);
    EXPECT_EQ((*reply)[0].type, FrameType::kSynReply);
    EXPECT_EQ((*reply)[0].streamId, id);
  }
}

TEST(Spdy, MalformedInputIsAnErrorNotACrash) {
  Codec a;
  // A control frame of version 2.
  EXPECT_FALSE(a.feed(std::string("\x80\x02\x00\x01\x00\x00\x00\x00", 8)));
  Codec b;
  // A SYN_STREAM whose header block is not zlib data.
  std::string bad("\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00junk",
                  22);
  EXPECT_FALSE(b.feed(bad));
  Codec c;
  // Truncated control frames.
  EXPECT_FALSE(c.feed(std::string("\x80\x03\x00\x06\x00\x00\x00\x02\x00\x00", 10)));
  // A frame not yet complete is kept, not an error.
  Codec d;
  auto partial = d.feed(std::string("\x00\x00\x00\x01\x00\x00\x00\x05he", 10));
  ASSERT_TRUE(partial);
  EXPECT_TRUE(partial->empty());
}

}  // namespace
}  // namespace podium::api::spdy
