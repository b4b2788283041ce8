#include "podium/client/objects.h"
#include "podium/common/time.h"

#include <gtest/gtest.h>

namespace podium::client {
namespace {

Json pod(const std::string& ready, const std::string& since) {
  return {
      {"metadata", {{"name", "p"}, {"uid", "u1"}}},
      {"status",
       {{"phase", "Running"},
        {"conditions", {{{"type", "Ready"}, {"status", ready}, {"lastTransitionTime", since}}}}}}};
}

TEST(ObjectsTest, ControllerReferenceIsTheOwnerWithControllerTrue) {
  Json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata", {{"name", "web-1"}, {"uid", "rs-uid"}}}};
  Json p = {
      {"metadata", {{"ownerReferences", {{{"kind", "Other"}, {"name", "x"}}, controllerRef(rs)}}}}};
  const Json* ref = controllerOf(p);
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(json::str(*ref, "uid"), "rs-uid");
  EXPECT_TRUE(json::boolean(*ref, "blockOwnerDeletion"));
  std::string name;
  EXPECT_TRUE(controlledBy(p, "ReplicaSet", &name));
  EXPECT_EQ(name, "web-1");
  EXPECT_FALSE(controlledBy(p, "Job"));
  EXPECT_EQ(controllerOf(Json::object()), nullptr);
  EXPECT_EQ(controllerOf(Json{{"metadata", {{"ownerReferences", "junk"}}}}), nullptr);
}

TEST(ObjectsTest, AvailabilityCountsMinReadySecondsFromTheReadyTransition) {
  auto now = *timefmt::parseRfc3339("2026-01-01T00:00:30Z");
  Json p = pod("True", "2026-01-01T00:00:10Z");
  EXPECT_TRUE(isPodReady(p));
  EXPECT_TRUE(isPodAvailable(p, 20, now));
  EXPECT_FALSE(isPodAvailable(p, 21, now));
  EXPECT_EQ(secondsUntilAvailable(p, 25, now), 5);
  EXPECT_FALSE(isPodAvailable(pod("False", "2026-01-01T00:00:10Z"), 0, now));
  Json done = p;
  done["status"]["phase"] = "Succeeded";
  EXPECT_FALSE(isPodActive(done));
  Json deleting = p;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_FALSE(isPodActive(deleting));
  EXPECT_TRUE(isPodActive(p));
}

TEST(ObjectsTest, SetConditionKeepsTransitionTimeUnlessTheStatusChanges) {
  Json conds = Json::array();
  EXPECT_TRUE(setCondition(conds, {{"type", "Ready"}, {"status", "False"}}, "t1"));
  EXPECT_FALSE(setCondition(conds, {{"type", "Ready"}, {"status", "False"}}, "t2"));
  EXPECT_EQ(conds[0]["lastTransitionTime"], "t1");
  EXPECT_TRUE(setCondition(conds, {{"type", "Ready"}, {"status", "True"}}, "t3"));
  EXPECT_EQ(conds[0]["lastTransitionTime"], "t3");
  EXPECT_EQ(conds.size(), 1u);
}

}  // namespace
}  // namespace podium::client
