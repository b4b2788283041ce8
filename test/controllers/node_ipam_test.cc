#include "controllers/node_ipam.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class NodeIpamTest : public ControllerTest {
 protected:
  void node(const std::string& name, const std::string& podCidr = "") {
    Json n = {{"metadata", {{"name", name}}}};
    if (!podCidr.empty()) n["spec"] = {{"podCIDR", podCidr}, {"podCIDRs", {podCidr}}};
    fake.add(res::kNodes, n);
  }
  std::string podCidr(const std::string& name) {
    return json::getString(*fake.object(res::kNodes, "", name), {"spec", "podCIDR"});
  }
  NodeIpamController controller{informers, events, *net::Cidr::parse("10.42.0.0/16"), 24};
};

TEST_F(NodeIpamTest, ANewNodeGetsTheLowestFreeBlock) {
  node("server", "10.42.0.0/24");  // a node with a range of its own keeps it
  node("a");
  start();
  EXPECT_FALSE(controller.process("a").failed());
  EXPECT_EQ(podCidr("a"), "10.42.1.0/24");
  EXPECT_EQ(client::at(*fake.object(res::kNodes, "", "a"), {"spec", "podCIDRs"}),
            Json::array({"10.42.1.0/24"}));
  EXPECT_EQ(podCidr("server"), "10.42.0.0/24");
  fake.clearActions();
  EXPECT_FALSE(controller.process("server").failed());
  EXPECT_TRUE(writes().empty());
}

TEST_F(NodeIpamTest, TwoNodesInARowGetDifferentBlocksBeforeTheCacheShowsTheFirst) {
  node("a");
  node("b");
  start();
  // No settle between them: the second sync still sees "a" without a range in its cache.
  EXPECT_FALSE(controller.process("a").failed());
  EXPECT_FALSE(controller.process("b").failed());
  EXPECT_EQ(podCidr("a"), "10.42.0.0/24");
  EXPECT_EQ(podCidr("b"), "10.42.1.0/24");
}

TEST_F(NodeIpamTest, ADeletedNodesBlockIsHandedOutAgain) {
  node("a");
  node("b", "10.42.1.0/24");
  start();
  EXPECT_FALSE(controller.process("a").failed());
  EXPECT_EQ(podCidr("a"), "10.42.0.0/24");
  ASSERT_TRUE(fake.remove(res::kNodes, "", "a", {}));
  settle();
  EXPECT_FALSE(controller.process("a").failed());
  node("c");
  settle();
  EXPECT_FALSE(controller.process("c").failed());
  EXPECT_EQ(podCidr("c"), "10.42.0.0/24");
}

TEST_F(NodeIpamTest, AnExhaustedRangeSaysSoAndTriesAgainLater) {
  NodeIpamController small{informers, events, *net::Cidr::parse("10.42.0.0/23"), 24};
  node("a", "10.42.0.0/24");
  node("b", "10.42.0.0/23");  // a wide range takes every block it covers
  node("c");
  start();
  SyncResult r = small.process("c");
  EXPECT_FALSE(r.failed());
  ASSERT_TRUE(r.requeueAfter().has_value());
  EXPECT_EQ(podCidr("c"), "");
  bool said = false;
  for (const auto& e : fake.actions("create", "events"))
    said = said || json::str(e.object, "reason") == "CIDRNotAvailable";
  EXPECT_TRUE(said);
}

}  // namespace
}  // namespace podium::controllers
