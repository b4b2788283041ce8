#include "api/defaults.h"

#include <gtest/gtest.h>

#include "podium/api/resources.h"

namespace podium::api {
namespace {

Json defaulted(const std::string& plural, Json obj) {
  ResourceRegistry registry;
  auto r = registry.snapshot()->find("apps", "v1", plural);
  EXPECT_TRUE(r);
  applyDefaults(*r, obj);
  return obj;
}

TEST(Defaults, StatefulSetAsKubernetes132WithItsAlphaGatesOff) {
  Json set = defaulted(
      "statefulsets",
      {{"spec",
        {{"updateStrategy",
          {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 2}}}}},
         {"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}}}});
  const Json& spec = set["spec"];
  EXPECT_EQ(spec["podManagementPolicy"], "OrderedReady");
  EXPECT_EQ(spec["revisionHistoryLimit"], 10);
  EXPECT_EQ(spec["updateStrategy"]["rollingUpdate"],
            (Json{{"partition", 0}}));  // no maxUnavailable
  EXPECT_EQ(spec["persistentVolumeClaimRetentionPolicy"],
            (Json{{"whenDeleted", "Retain"}, {"whenScaled", "Retain"}}));
  EXPECT_EQ(set["status"]["replicas"], 0);
}

TEST(Defaults, DaemonSetRollsOneNodeAtATimeWithoutSurge) {
  Json ds = defaulted("daemonsets",
                      {{"spec", {{"template", {{"spec", {{"containers", {{{"name", "c"}}}}}}}}}}});
  EXPECT_EQ(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
  EXPECT_EQ(ds["spec"]["updateStrategy"]["rollingUpdate"],
            (Json{{"maxUnavailable", 1}, {"maxSurge", 0}}));
  EXPECT_EQ(ds["status"]["desiredNumberScheduled"], 0);
}

}  // namespace
}  // namespace podium::api
