#include "controllers/statefulset.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

client::DeleteOptions atOnce() {
  client::DeleteOptions o;
  o.gracePeriodSeconds = 0;
  return o;
}

class StatefulSetTest : public ControllerTest {
 protected:
  Json set(int replicas, Json extra = Json::object()) {
    Json spec = {{"replicas", replicas},
                 {"serviceName", "web"},
                 {"selector", {{"matchLabels", {{"app", "web"}}}}},
                 {"template",
                  {{"metadata", {{"labels", {{"app", "web"}}}}},
                   {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:1"}}}}}}}},
                 {"volumeClaimTemplates",
                  {{{"metadata", {{"name", "data"}}},
                    {"spec",
                     {{"accessModes", {"ReadWriteOnce"}},
                      {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}}}};
    spec.merge_patch(extra);
    return fake.add(res::kStatefulSets,
                    {{"metadata", {{"name", "web"}, {"namespace", "default"}, {"generation", 1}}},
                     {"spec", spec}});
  }
  Json current() { return *fake.object(res::kStatefulSets, "default", "web"); }
  void change(const Json& patch) {
    Json s = current();
    s.merge_patch(patch);
    ASSERT_TRUE(fake.update(res::kStatefulSets, "default", s, ""));
  }
  // Marks a pod the controller made Running and Ready on a node.
  void ready(const std::string& name) {
    Json p = *fake.object(res::kPods, "default", name);
    p["spec"]["nodeName"] = "n1";
    ASSERT_TRUE(fake.update(res::kPods, "default", p, ""));
    p = *fake.object(res::kPods, "default", name);
    p["status"] = {
        {"phase", "Running"},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now()}}}}};
    ASSERT_TRUE(fake.update(res::kPods, "default", p, "status"));
  }
  bool exists(const std::string& pod) { return fake.object(res::kPods, "default", pod) != nullptr; }
  bool deleting(const std::string& pod) {
    auto p = fake.object(res::kPods, "default", pod);
    return !p || client::isDeleting(*p);
  }
  std::string revisionOf(const std::string& pod) {
    return json::getString(*fake.object(res::kPods, "default", pod),
                           {"metadata", "labels", "controller-revision-hash"});
  }
  SyncResult run() {
    settle();
    auto r = controller.process("default/web");
    settle();
    return r;
  }
  // Runs and readies pods until `n` of them are up.
  void bringUp(int n) {
    for (int i = 0; i < n; ++i) {
      EXPECT_FALSE(run().failed());
      ready("web-" + std::to_string(i));
    }
    EXPECT_FALSE(run().failed());
  }
  StatefulSetController controller{informers, events};
};

TEST_F(StatefulSetTest, OrderedReadyMakesClaimThenPodOneAtATime) {
  set(3);
  start();
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(writes(),
            (std::vector<std::string>{
                "create controllerrevisions web-" + templateHash(current()["spec"]["template"], 0),
                "create persistentvolumeclaims data-web-0", "create pods web-0",
                "update statefulsets/status web"}));
  Json pod = *fake.object(res::kPods, "default", "web-0");
  EXPECT_EQ(pod["spec"]["hostname"], "web-0");
  EXPECT_EQ(pod["spec"]["subdomain"], "web");
  EXPECT_EQ(pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-0");
  EXPECT_EQ(pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "0");
  EXPECT_EQ(pod["spec"]["volumes"][0],
            Json({{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "data-web-0"}}}}));
  Json claim = *fake.object(res::kPersistentVolumeClaims, "default", "data-web-0");
  EXPECT_EQ(claim["metadata"]["labels"]["app"], "web");
  EXPECT_FALSE(claim["metadata"].contains("ownerReferences"));  // Retain by default
  // web-1 waits for web-0 to be Ready.
  fake.clearActions();
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(exists("web-1"));
  ready("web-0");
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(exists("web-1"));
  EXPECT_FALSE(exists("web-2"));
  ready("web-1");
  EXPECT_FALSE(run().failed());
  ready("web-2");
  EXPECT_FALSE(run().failed());
  Json st = current()["status"];
  EXPECT_EQ(st["replicas"], 3);
  EXPECT_EQ(st["readyReplicas"], 3);
  EXPECT_EQ(st["availableReplicas"], 3);
  EXPECT_EQ(st["updatedReplicas"], 3);
  EXPECT_EQ(st["currentRevision"], st["updateRevision"]);
}

TEST_F(StatefulSetTest, ParallelMakesAllAtOnce) {
  set(3, {{"podManagementPolicy", "Parallel"}});
  start();
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(exists("web-0") && exists("web-1") && exists("web-2"));
}

// spec.ordinals.start: replicas are numbered from it; moving it up replaces the low ordinals
// (the pods below the new start are condemned, the new high ones made).
TEST_F(StatefulSetTest, OrdinalsStartNumbersTheReplicas) {
  set(2, {{"podManagementPolicy", "Parallel"}, {"ordinals", {{"start", 5}}}});
  start();
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(exists("web-5") && exists("web-6"));
  EXPECT_FALSE(exists("web-0"));
  EXPECT_EQ(json::getString(*fake.object(res::kPods, "default", "web-5"),
                            {"metadata", "labels", "apps.kubernetes.io/pod-index"}),
            "5");
  EXPECT_TRUE(fake.object(res::kPersistentVolumeClaims, "default", "data-web-6"));
  change({{"spec", {{"ordinals", {{"start", 6}}}}}});
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-5"));
  EXPECT_TRUE(exists("web-7"));
  EXPECT_FALSE(deleting("web-6"));
}

TEST_F(StatefulSetTest, ScaleDownRemovesTheHighestOrdinalFirstOneAtATime) {
  set(3);
  start();
  bringUp(3);
  change({{"spec", {{"replicas", 1}}}});
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-2"));
  EXPECT_FALSE(deleting("web-1"));
  EXPECT_FALSE(run().failed());  // web-2 still going: web-1 waits
  EXPECT_FALSE(deleting("web-1"));
  ASSERT_TRUE(fake.remove(res::kPods, "default", "web-2", atOnce()));
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-1"));
  // Claims stay (whenScaled: Retain).
  EXPECT_TRUE(fake.object(res::kPersistentVolumeClaims, "default", "data-web-2"));
}

TEST_F(StatefulSetTest, RollingUpdateHonoursThePartitionHighestFirst) {
  set(3, {{"updateStrategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 1}}}}}});
  start();
  bringUp(3);
  std::string oldRev = revisionOf("web-0");
  change(
      {{"spec",
        {{"template", {{"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:2"}}}}}}}}}}});
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-2"));
  EXPECT_FALSE(deleting("web-1"));
  ASSERT_TRUE(fake.remove(res::kPods, "default", "web-2", atOnce()));
  EXPECT_FALSE(run().failed());  // made again at the new revision
  ASSERT_TRUE(exists("web-2"));
  EXPECT_NE(revisionOf("web-2"), oldRev);
  EXPECT_EQ(fake.object(res::kPods, "default", "web-2")->at("spec")["containers"][0]["image"],
            "nginx:2");
  EXPECT_FALSE(deleting("web-1"));  // not before web-2 is Ready
  ready("web-2");
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-1"));
  ASSERT_TRUE(fake.remove(res::kPods, "default", "web-1", atOnce()));
  EXPECT_FALSE(run().failed());
  ready("web-1");
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(deleting("web-0"));  // below the partition: kept at the old revision
  EXPECT_EQ(revisionOf("web-0"), oldRev);
  Json st = current()["status"];
  EXPECT_EQ(st["updatedReplicas"], 2);
  EXPECT_EQ(st["currentReplicas"], 1);
  EXPECT_EQ(st["currentRevision"], oldRev);
  // A pod below the partition that is lost comes back at the current (old) revision.
  ASSERT_TRUE(fake.remove(res::kPods, "default", "web-0", atOnce()));
  EXPECT_FALSE(run().failed());
  ASSERT_TRUE(exists("web-0"));
  EXPECT_EQ(revisionOf("web-0"), oldRev);
  EXPECT_EQ(fake.object(res::kPods, "default", "web-0")->at("spec")["containers"][0]["image"],
            "nginx:1");
}

TEST_F(StatefulSetTest, OnDeleteReplacesOnlyDeletedPods) {
  set(2, {{"updateStrategy", {{"type", "OnDelete"}}}});
  start();
  bringUp(2);
  change(
      {{"spec",
        {{"template", {{"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:2"}}}}}}}}}}});
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(deleting("web-0") || deleting("web-1"));
  ASSERT_TRUE(fake.remove(res::kPods, "default", "web-1", atOnce()));
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.object(res::kPods, "default", "web-1")->at("spec")["containers"][0]["image"],
            "nginx:2");
}

TEST_F(StatefulSetTest, FailedPodIsMadeAgainWithItsClaim) {
  set(1);
  start();
  bringUp(1);
  Json p = *fake.object(res::kPods, "default", "web-0");
  p["status"]["phase"] = "Failed";
  ASSERT_TRUE(fake.update(res::kPods, "default", p, "status"));
  fake.clearActions();
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.actions("delete", "pods").size(), 1u);
  EXPECT_TRUE(fake.actions("create", "persistentvolumeclaims").empty());  // the claim is kept
}

TEST_F(StatefulSetTest, RetentionPolicyMakesOwnersOfClaims) {
  set(2, {{"persistentVolumeClaimRetentionPolicy",
           {{"whenDeleted", "Delete"}, {"whenScaled", "Delete"}}}});
  start();
  bringUp(2);
  Json claim = *fake.object(res::kPersistentVolumeClaims, "default", "data-web-1");
  ASSERT_EQ(claim["metadata"]["ownerReferences"].size(), 1u);
  EXPECT_EQ(claim["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
  change({{"spec", {{"replicas", 1}}}});
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleting("web-1"));
  claim = *fake.object(res::kPersistentVolumeClaims, "default", "data-web-1");
  ASSERT_EQ(claim["metadata"]["ownerReferences"].size(), 2u);  // and the condemned pod
  EXPECT_EQ(claim["metadata"]["ownerReferences"][1]["kind"], "Pod");
  EXPECT_EQ(claim["metadata"]["ownerReferences"][1]["name"], "web-1");
}

}  // namespace
}  // namespace podium::controllers
