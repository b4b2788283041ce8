#include "node/pod_routes.h"

#include <gtest/gtest.h>

namespace podium::node {
namespace {

Json node(const std::string& name, const std::string& cidr, const std::string& ip) {
  Json n = {{"metadata", {{"name", name}}}, {"spec", Json::object()}};
  if (!cidr.empty()) n["spec"]["podCIDR"] = cidr;
  if (!ip.empty()) n["status"]["addresses"] = {{{"type", "InternalIP"}, {"address", ip}}};
  return n;
}

TEST(PodRoutes, EveryOtherNodesRangeGoesViaItsAddress) {
  std::vector<Json> nodes = {node("a", "10.42.0.0/24", "10.99.0.11"),
                             node("b", "10.42.1.0/24", "10.99.0.12"),
                             node("c", "10.42.2.0/24", "10.99.0.13")};
  std::vector<KernelRoute> table = {{"10.42.0.0/24", "", "kernel", ""},
                                    {"10.99.0.0/24", "", "kernel", ""}};
  RoutePlan p = planPodRoutes(nodes, "a", "10.42.0.0/24", {"10.99.0.11"}, table, "10.42.0.1");
  EXPECT_EQ(p.replace, (std::map<std::string, std::string>{{"10.42.1.0/24", "10.99.0.12"},
                                                           {"10.42.2.0/24", "10.99.0.13"}}));
  EXPECT_TRUE(p.remove.empty());
  EXPECT_TRUE(p.skip.empty());
}

TEST(PodRoutes, RoutesInPlaceStayAndOnesNoNodeNeedsGo) {
  std::vector<Json> nodes = {node("a", "10.42.0.0/24", "10.99.0.11"),
                             node("b", "10.42.1.0/24", "10.99.0.22")};
  // b moved to another address; a node that had 10.42.2.0/24 is gone.
  std::vector<KernelRoute> table = {{"10.42.1.0/24", "10.99.0.12", "80", "10.42.0.1"},
                                    {"10.42.2.0/24", "10.99.0.13", "80", "10.42.0.1"}};
  RoutePlan p = planPodRoutes(nodes, "a", "10.42.0.0/24", {}, table, "10.42.0.1");
  EXPECT_EQ(p.replace, (std::map<std::string, std::string>{{"10.42.1.0/24", "10.99.0.22"}}));
  EXPECT_EQ(p.remove, std::vector<std::string>{"10.42.2.0/24"});
  table[0].gateway = "10.99.0.22";
  EXPECT_TRUE(planPodRoutes(nodes, "a", "10.42.0.0/24", {}, table, "10.42.0.1").replace.empty());
  // A route of ours without the pod gateway as its source (an older agent's) is replaced.
  table[0].prefsrc = "";
  EXPECT_EQ(planPodRoutes(nodes, "a", "10.42.0.0/24", {}, table, "10.42.0.1").replace.size(), 1u);
}

TEST(PodRoutes, NodesOfThisMachineAndRoutesOfOthersAreLeftAlone) {
  std::vector<Json> nodes = {node("a", "10.42.0.0/24", "192.168.1.5"),
                             // another agent on this machine: its bridge is here already
                             node("local", "10.42.1.0/24", "127.0.0.1"),
                             node("noaddr", "10.42.2.0/24", ""), node("norange", "", "10.99.0.14"),
                             node("static", "10.42.3.0/24", "10.99.0.15")};
  std::vector<KernelRoute> table = {{"10.42.1.0/24", "", "kernel", ""},
                                    {"10.42.3.0/24", "10.1.1.1", "static", ""}};
  RoutePlan p =
      planPodRoutes(nodes, "b", "10.42.9.0/24", {"127.0.0.1", "192.168.1.6"}, table, "10.42.9.1");
  EXPECT_EQ(p.replace, (std::map<std::string, std::string>{{"10.42.0.0/24", "192.168.1.5"}}));
  ASSERT_EQ(p.skip.size(), 2u);
  EXPECT_EQ(p.skip[0].first, "10.42.2.0/24");
  EXPECT_EQ(p.skip[1].first, "10.42.3.0/24");
  EXPECT_NE(p.skip[1].second.find("static"), std::string::npos);
}

}  // namespace
}  // namespace podium::node
