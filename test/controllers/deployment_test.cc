#include "controllers/deployment.h"

#include "controllers/harness.h"
#include "controllers/util.h"

namespace podium::controllers {
namespace {

Json tmpl(const std::string& image) {
  return {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}};
}

class DeploymentTest : public ControllerTest {
 protected:
  Json deployment(int64_t replicas, const std::string& image, Json strategy = Json()) {
    Json d = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
              {"spec",
               {{"replicas", replicas},
                {"selector", {{"matchLabels", {{"app", "web"}}}}},
                {"template", tmpl(image)}}}};
    if (!strategy.is_null()) d["spec"]["strategy"] = strategy;
    return fake.add(res::kDeployments, d);
  }
  // A ReplicaSet the deployment made earlier, with `available` of its `replicas` available.
  Json replicaSet(const Json& d, const std::string& image, int64_t replicas, int64_t available,
                  int revision) {
    Json t = tmpl(image);
    std::string hash = templateHash(t, 0);
    t["metadata"]["labels"]["pod-template-hash"] = hash;
    Json rs = {
        {"metadata",
         {{"name", "web-" + hash},
          {"namespace", "default"},
          {"labels", {{"app", "web"}, {"pod-template-hash", hash}}},
          {"annotations",
           {{"deployment.kubernetes.io/revision", std::to_string(revision)},
            {"deployment.kubernetes.io/desired-replicas",
             std::to_string(json::integer(d["spec"], "replicas"))}}},
          {"ownerReferences", Json::array({client::controllerRef(d)})}}},
        {"spec",
         {{"replicas", replicas},
          {"selector", {{"matchLabels", {{"app", "web"}, {"pod-template-hash", hash}}}}},
          {"template", t}}},
        {"status",
         {{"replicas", replicas}, {"readyReplicas", available}, {"availableReplicas", available}}}};
    return fake.add(res::kReplicaSets, rs);
  }
  int64_t replicasOf(const std::string& name) {
    return json::integer(client::at(*fake.object(res::kReplicaSets, "default", name), {"spec"}),
                         "replicas");
  }
  DeploymentController controller{informers, events};
};

TEST_F(DeploymentTest, ARollingUpdateSurgesAndScalesDownWithinItsBounds) {
  // 10 replicas, maxSurge 25% (3, rounded up) and maxUnavailable 25% (2, rounded down).
  Json d = deployment(10, "v2",
                      {{"type", "RollingUpdate"},
                       {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}});
  Json old = replicaSet(d, "v1", 10, 10, 1);
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  // The new ReplicaSet starts at 13 - 10 = 3; the old one goes down to 13 - 8 - 3 = ... 8, so
  // that 8 (10 - maxUnavailable) stay available while the 3 new pods are not yet.
  std::string newName = "web-" + templateHash(tmpl("v2"), 0);
  auto created = fake.object(res::kReplicaSets, "default", newName);
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(replicasOf(newName), 3);
  EXPECT_EQ(replicasOf(client::nameOf(old)), 8);
  EXPECT_EQ(
      json::getString(*created, {"metadata", "annotations", "deployment.kubernetes.io/revision"}),
      "2");
  EXPECT_EQ(json::getString(*created,
                            {"metadata", "annotations", "deployment.kubernetes.io/max-replicas"}),
            "13");
  // Once the three new pods are available, the next step: new 3 -> 5, then old down to 5.
  Json updated = *created;
  updated["status"] = {{"replicas", 3}, {"readyReplicas", 3}, {"availableReplicas", 3}};
  ASSERT_TRUE(fake.update(res::kReplicaSets, "default", updated, "status"));
  Json o = *fake.object(res::kReplicaSets, "default", client::nameOf(old));
  o["status"] = {{"replicas", 8}, {"readyReplicas", 8}, {"availableReplicas", 8}};
  ASSERT_TRUE(fake.update(res::kReplicaSets, "default", o, "status"));
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(replicasOf(newName), 5);
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  // Available 11 (3 new + 8 old) against a floor of 8: three more old ones may go.
  EXPECT_EQ(replicasOf(client::nameOf(old)), 5);
}

TEST_F(DeploymentTest, RecreateScalesTheOldReplicaSetDownBeforeMakingTheNewOne) {
  Json d = deployment(2, "v2", {{"type", "Recreate"}});
  Json old = replicaSet(d, "v1", 2, 2, 1);
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(replicasOf(client::nameOf(old)), 0);
  EXPECT_EQ(fake.actions("create", "replicasets").size(), 0u);
}

TEST_F(DeploymentTest, AHashCollisionBumpsTheCollisionCountAndRetries) {
  Json d = deployment(1, "v2");
  // Someone else's ReplicaSet holds the name the new template hashes to.
  std::string name = "web-" + templateHash(tmpl("v2"), 0);
  fake.add(res::kReplicaSets,
           {{"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", "x"}}}}},
            {"spec", {{"replicas", 0}, {"template", tmpl("other")}}}});
  start();
  auto r = controller.process("default/web");
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(json::integer(client::at(*fake.object(res::kDeployments, "default", "web"), {"status"}),
                          "collisionCount"),
            1);
}

TEST_F(DeploymentTest, OldReplicaSetsBeyondTheHistoryLimitGoOldestFirst) {
  Json d = deployment(1, "v4");
  Json dd = d;
  dd["spec"]["revisionHistoryLimit"] = 1;
  d = *fake.update(res::kDeployments, "default", dd, "");
  Json r1 = replicaSet(d, "v1", 0, 0, 1);
  Json r2 = replicaSet(d, "v2", 0, 0, 2);
  Json r3 = replicaSet(d, "v3", 0, 0, 3);
  Json current = replicaSet(d, "v4", 1, 1, 4);
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  auto deletes = fake.actions("delete", "replicasets");
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].name, client::nameOf(r1));
  EXPECT_EQ(deletes[1].name, client::nameOf(r2));
  // Only as the controller saw them: one scaled up meanwhile is not deleted.
  EXPECT_EQ(deletes[0].object["preconditionResourceVersion"], client::resourceVersionOf(r1));
  EXPECT_NE(fake.object(res::kReplicaSets, "default", client::nameOf(r3)), nullptr);
}

TEST_F(DeploymentTest, AFailedScaleIsRetriedNotMistakenForNothingToDo) {
  Json d = deployment(3, "v1");
  replicaSet(d, "v1", 1, 1, 1);
  start();
  fake.failNext("update", "replicasets", api::ApiError(500, "InternalError", "disk full"));
  auto r = controller.process("default/web");
  EXPECT_TRUE(r.failed());
  EXPECT_NE(r.reason().find("scale replica set"), std::string::npos);
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(replicasOf("web-" + templateHash(tmpl("v1"), 0)), 3);
}

TEST_F(DeploymentTest, ScalingDuringARolloutIsProportional) {
  Json d = deployment(
      10, "v2",
      {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 3}, {"maxUnavailable", 2}}}});
  Json old = replicaSet(d, "v1", 8, 8, 1);
  Json fresh = replicaSet(d, "v2", 5, 0, 2);
  // kubectl scale --replicas=20 in the middle of it.
  Json bigger = d;
  bigger["spec"]["replicas"] = 20;
  ASSERT_TRUE(fake.update(res::kDeployments, "default", bigger, ""));
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  // 23 allowed (20 + surge 3) shared by size: 8/13 and 5/13 of the new total, leftover to the
  // largest.
  EXPECT_EQ(replicasOf(client::nameOf(old)) + replicasOf(client::nameOf(fresh)), 23);
  EXPECT_EQ(replicasOf(client::nameOf(old)), 14);
  EXPECT_EQ(replicasOf(client::nameOf(fresh)), 9);
}

TEST_F(DeploymentTest, AScaleWithNothingToAddStillRecordsTheSizeSoTheRolloutGoesOn) {
  // `kubectl patch` of replicas 3 -> 6 and the template at once: the first sync scaled the new
  // ReplicaSet within the surge, leaving old 3 + new 5 = 8 = 6 + maxSurge 2.
  Json d = deployment(
      3, "v2",
      {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 2}, {"maxUnavailable", 1}}}});
  Json old = replicaSet(d, "v1", 3, 3, 1);
  Json fresh = replicaSet(d, "v2", 5, 5, 2);
  Json bigger = d;
  bigger["spec"]["replicas"] = 6;
  ASSERT_TRUE(fake.update(res::kDeployments, "default", bigger, ""));
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  // Nothing to add, but both now say 6: no more a scaling event.
  for (const Json& rs : {old, fresh})
    EXPECT_EQ(
        json::getString(*fake.object(res::kReplicaSets, "default", client::nameOf(rs)),
                        {"metadata", "annotations", "deployment.kubernetes.io/desired-replicas"}),
        "6");
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  // The rollout goes on: 8 available against a floor of 5, the old ones go.
  EXPECT_EQ(replicasOf(client::nameOf(old)), 0);
}

}  // namespace
}  // namespace podium::controllers
