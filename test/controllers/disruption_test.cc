#include "controllers/disruption.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class DisruptionTest : public ControllerTest {
 protected:
  void budget(Json spec) {
    spec["selector"] = {{"matchLabels", {{"app", "web"}}}};
    fake.add(res::kPodDisruptionBudgets,
             {{"metadata", {{"name", "web"}, {"namespace", "default"}}}, {"spec", spec}});
  }
  Json status() {
    return client::at(*fake.object(res::kPodDisruptionBudgets, "default", "web"), {"status"});
  }
  DisruptionController controller{informers};
};

TEST_F(DisruptionTest, MinAvailableLeavesTheSurplusOfReadyPodsToDisrupt) {
  budget({{"minAvailable", 2}});
  pod("a", Json(), "Running", true, {{"app", "web"}});
  pod("b", Json(), "Running", true, {{"app", "web"}});
  pod("c", Json(), "Running", true, {{"app", "web"}});
  pod("d", Json(), "Pending", false, {{"app", "web"}});
  pod("other", Json(), "Running", true, {{"app", "db"}});
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  Json st = status();
  EXPECT_EQ(json::integer(st, "expectedPods"), 4);
  EXPECT_EQ(json::integer(st, "currentHealthy"), 3);
  EXPECT_EQ(json::integer(st, "desiredHealthy"), 2);
  EXPECT_EQ(json::integer(st, "disruptionsAllowed"), 1);
  EXPECT_EQ(json::integer(st, "observedGeneration"), 1);
}

TEST_F(DisruptionTest, MaxUnavailableAsAPercentageRoundsUp) {
  budget({{"maxUnavailable", "50%"}});
  for (const char* n : {"a", "b", "c"}) pod(n, Json(), "Running", true, {{"app", "web"}});
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  // 50% of 3 rounds up to 2 that may be unavailable: 1 must stay.
  EXPECT_EQ(json::integer(status(), "desiredHealthy"), 1);
  EXPECT_EQ(json::integer(status(), "disruptionsAllowed"), 2);
}

TEST_F(DisruptionTest, APodAnEvictionTookIsCountedOutUntilItGoes) {
  budget({{"minAvailable", 1}});
  pod("a", Json(), "Running", true, {{"app", "web"}});
  pod("b", Json(), "Running", true, {{"app", "web"}});
  start();
  // The API's eviction of "a" took the one disruption and recorded it.
  Json b = *fake.object(res::kPodDisruptionBudgets, "default", "web");
  b["status"] = {{"disruptedPods", {{"a", now()}}}, {"disruptionsAllowed", 0}};
  ASSERT_TRUE(fake.update(res::kPodDisruptionBudgets, "default", b, "status"));
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(json::integer(status(), "currentHealthy"), 1);
  EXPECT_EQ(json::integer(status(), "disruptionsAllowed"), 0);
  ASSERT_TRUE(fake.remove(res::kPods, "default", "a", {}));
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_FALSE(status().contains("disruptedPods"));
  EXPECT_EQ(json::integer(status(), "expectedPods"), 1);
}

}  // namespace
}  // namespace podium::controllers
