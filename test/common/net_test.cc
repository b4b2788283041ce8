#include "podium/common/net.h"

#include <gtest/gtest.h>

namespace podium::net {
namespace {

TEST(NetTest, ParsesAndFormatsDottedQuads) {
  EXPECT_EQ(parseIpv4("10.43.0.1"), 0x0A2B0001u);
  EXPECT_EQ(formatIpv4(0x0A2B0001u), "10.43.0.1");
  for (const char* bad : {"", "10.43.0", "10.43.0.1.", "256.1.1.1", "1.2.3.4x", "1..2.3",
                          "0001.2.3.4", " 1.2.3.4", "-1.2.3.4"})
    EXPECT_FALSE(parseIpv4(bad)) << bad;
}

TEST(NetTest, CidrsAreMaskedAndBounded) {
  auto c = Cidr::parse("10.43.1.2/16");
  ASSERT_TRUE(c);
  EXPECT_EQ(formatIpv4(c->base), "10.43.0.0");
  EXPECT_EQ(c->size(), 65536u);
  EXPECT_TRUE(c->contains(*parseIpv4("10.43.255.255")));
  EXPECT_FALSE(c->contains(*parseIpv4("10.44.0.0")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(*parseIpv4("8.8.8.8")));
  EXPECT_EQ(Cidr::parse("10.0.0.7")->size(), 1u);
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/x", "10.0.0/8", "/8"})
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

}  // namespace
}  // namespace podium::net
