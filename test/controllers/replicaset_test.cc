#include "controllers/replicaset.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

using ::testing::ElementsAre;

class ReplicaSetTest : public ControllerTest {
 protected:
  Json replicaSet(int64_t replicas, int64_t minReady = 0) {
    return fake.add(res::kReplicaSets,
                    {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
                     {"spec",
                      {{"replicas", replicas},
                       {"minReadySeconds", minReady},
                       {"selector", {{"matchLabels", {{"app", "web"}}}}},
                       {"template",
                        {{"metadata", {{"labels", {{"app", "web"}}}}},
                         {"spec", {{"containers", {{{"name", "c"}, {"image", "x"}}}}}}}}}}});
  }
  ReplicaSetController controller{informers, events};
};

TEST_F(ReplicaSetTest, CreatesTheMissingPodsAndWaitsToSeeThemBeforeCountingAgain) {
  replicaSet(3);
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  auto creates = fake.actions("create", "pods");
  ASSERT_EQ(creates.size(), 3u);
  for (const auto& c : creates) {
    EXPECT_EQ(json::getString(c.object, {"metadata", "generateName"}), "web-");
    EXPECT_EQ(json::getString(c.object, {"metadata", "labels", "app"}), "web");
    EXPECT_EQ(json::str(*client::controllerOf(c.object), "name"), "web");
  }
  // The cache has not shown the new pods yet: expectations stop a second round of creates (the
  // status write may meet a conflict: the cache is behind the status just written).
  (void)controller.process("default/web");
  EXPECT_EQ(fake.actions("create", "pods").size(), 3u);
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 3u);
  EXPECT_EQ(json::integer(client::at(*fake.object(res::kReplicaSets, "default", "web"), {"status"}),
                          "replicas"),
            3);
}

TEST_F(ReplicaSetTest, SlowStartStopsAtTheFirstFailedCreateAndRetries) {
  replicaSet(8);
  start();
  fake.failNext("create", "pods", api::ApiError(403, "Forbidden", "exceeded quota"));
  auto r = controller.process("default/web");
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 1u);  // the first batch of one failed
  EXPECT_EQ(controller.queue().retries("default/web"), 1);
  bool warned = false;
  for (const auto& e : fake.actions("create", "events"))
    warned = warned || json::str(e.object, "reason") == "FailedCreate";
  EXPECT_TRUE(warned);
}

TEST_F(ReplicaSetTest, DeletesTheLeastValuablePodsFirst) {
  Json rs = replicaSet(1);
  Json labels = {{"app", "web"}};
  Json ready = pod("ready", rs, "Running", true, labels);
  ready["spec"]["nodeName"] = "n1";
  ASSERT_TRUE(fake.update(res::kPods, "default", ready, ""));
  Json pending = pod("pending", rs, "Pending", false, labels);
  pending["spec"]["nodeName"] = "n1";
  ASSERT_TRUE(fake.update(res::kPods, "default", pending, ""));
  pod("unscheduled", rs, "Pending", false, labels);
  start();
  fake.clearActions();
  EXPECT_FALSE(controller.process("default/web").failed());
  auto deletes = fake.actions("delete", "pods");
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].name, "unscheduled");
  EXPECT_EQ(deletes[1].name, "pending");
}

TEST_F(ReplicaSetTest, APodMarkedForDeletionIsReplacedWithoutWaitingForItsGracePeriod) {
  Json rs = replicaSet(2);
  for (const char* name : {"a", "b"}) {
    Json p = pod(name, rs, "Running", true, {{"app", "web"}});
    p["spec"]["nodeName"] = "n1";
    ASSERT_TRUE(fake.update(res::kPods, "default", p, ""));
  }
  start();
  // Scaled down: one pod deleted, which the fake (as a kubelet) keeps while it terminates.
  rs = *fake.object(res::kReplicaSets, "default", "web");
  rs["spec"]["replicas"] = 1;
  ASSERT_TRUE(fake.update(res::kReplicaSets, "default", rs, ""));
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  ASSERT_EQ(fake.actions("delete", "pods").size(), 1u);
  settle();
  // Scaled up again within the grace period (a Rollout's retry after its abort): the
  // terminating pod's deletion was seen when it was marked, so a new pod comes at once.
  rs = *fake.object(res::kReplicaSets, "default", "web");
  rs["spec"]["replicas"] = 2;
  ASSERT_TRUE(fake.update(res::kReplicaSets, "default", rs, ""));
  settle();
  fake.clearActions();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 1u);
}

TEST_F(ReplicaSetTest, ReleasesARelabelledPodWithAPreconditionAndRetriesWhenThatFails) {
  Json rs = replicaSet(1);
  Json moved = pod("moved", rs, "Running", true, {{"app", "other"}});
  pod("kept", rs, "Running", true, {{"app", "web"}});
  start();
  fake.clearActions();
  fake.failNext("patch", "pods", api::ApiError(409, "Conflict", "the object has been modified"));
  EXPECT_TRUE(controller.process("default/web").failed());
  auto patches = fake.actions("patch", "pods");
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].name, "moved");
  EXPECT_EQ(json::getString(patches[0].object, {"metadata", "resourceVersion"}),
            client::resourceVersionOf(moved));
  // The retry gets through.
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(fake.object(res::kPods, "default", "moved")->at("metadata")["ownerReferences"],
            Json::array());
}

TEST_F(ReplicaSetTest, CountsAvailablePodsAfterMinReadySecondsAndLooksAgainThen) {
  Json rs = replicaSet(1, 30);
  pod("p", rs, "Running", true, {{"app", "web"}});
  start();
  auto r = controller.process("default/web");
  EXPECT_FALSE(r.failed());
  EXPECT_EQ(r.requeueAfter(), std::chrono::seconds(30));
  Json st = client::at(*fake.object(res::kReplicaSets, "default", "web"), {"status"});
  EXPECT_EQ(json::integer(st, "readyReplicas"), 1);
  EXPECT_EQ(json::integer(st, "availableReplicas"), 0);
  settle();
  clock.advance(std::chrono::seconds(30));
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(json::integer(client::at(*fake.object(res::kReplicaSets, "default", "web"), {"status"}),
                          "availableReplicas"),
            1);
}

TEST_F(ReplicaSetTest, AFailedStatusWriteIsRetried) {
  replicaSet(0);
  start();
  fake.failNext("update", "replicasets", api::ApiError(500, "InternalError", "disk full"));
  EXPECT_TRUE(controller.process("default/web").failed());
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_THAT(writes(),
              ElementsAre("update replicasets/status web", "update replicasets/status web"));
}

}  // namespace
}  // namespace podium::controllers

namespace podium::controllers {
namespace {

// A ReplicationController runs on the same code: its selector is a plain map of labels, its
// pods name it as their controller, and matching orphans are adopted.
TEST_F(ControllerTest, AReplicationControllerKeepsItsPodsAndAdoptsOrphans) {
  ReplicaSetController rc{informers, events, 1, ReplicaSetController::kReplicationController};
  Json owner = fake.add(res::kReplicationControllers,
                        {{"metadata", {{"name", "old"}, {"namespace", "default"}}},
                         {"spec",
                          {{"replicas", 2},
                           {"selector", {{"app", "old"}}},
                           {"template",
                            {{"metadata", {{"labels", {{"app", "old"}}}}},
                             {"spec", {{"containers", {{{"name", "c"}, {"image", "x"}}}}}}}}}}});
  pod("orphan", nullptr, "Running", true, {{"app", "old"}});
  start();
  EXPECT_FALSE(rc.process("default/old").failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 1u);  // the orphan counts once adopted
  ObjectPtr orphan = fake.object(res::kPods, "default", "orphan");
  const Json* ref = client::controllerOf(*orphan);
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(json::str(*ref, "kind"), "ReplicationController");
  EXPECT_EQ(json::str(*ref, "uid"), client::uidOf(owner));
  settle();
  EXPECT_FALSE(rc.process("default/old").failed());
  auto st = client::at(*fake.object(res::kReplicationControllers, "default", "old"), {"status"});
  EXPECT_EQ(st["replicas"], 2);
  rc.stop();
}

}  // namespace
}  // namespace podium::controllers
