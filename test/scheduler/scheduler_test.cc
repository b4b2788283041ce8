#include "podium/client/events.h"
#include "podium/client/objects.h"
#include "scheduler/filters.h"
#include "scheduler/scheduler_impl.h"
#include "support/fake_client.h"

#include <gtest/gtest.h>

namespace podium::scheduler {
namespace {

using client::ObjectPtr;
namespace res = client::resources;

ObjectPtr node(const std::string& name, const std::string& cpu = "2",
               const std::string& mem = "4Gi", Json extra = Json::object()) {
  Json n = {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
            {"spec", Json::object()},
            {"status",
             {{"allocatable", {{"cpu", cpu}, {"memory", mem}, {"pods", "110"}}},
              {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  n.merge_patch(extra);
  return std::make_shared<const Json>(n);
}

ObjectPtr pod(const std::string& name, const std::string& cpu = "", Json extra = Json::object()) {
  Json p = {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", name + "-uid"}}},
            {"spec",
             {{"schedulerName", "default-scheduler"},
              {"containers", {{{"name", "c"}, {"image", "x"}}}}}}};
  if (!cpu.empty()) p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = cpu;
  p.merge_patch(extra);
  return std::make_shared<const Json>(p);
}

TEST(FiltersTest, RequestsAreTheContainersSumOrTheLargestInitContainer) {
  Json p = *pod("p", "250m");
  p["spec"]["containers"].push_back(
      {{"name", "d"}, {"resources", {{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}}}}});
  p["spec"]["initContainers"] = {{{"name", "i"}, {"resources", {{"requests", {{"cpu", "1"}}}}}}};
  Requests r = requestsOf(p);
  EXPECT_EQ(r.milliCpu, 1000);
  EXPECT_EQ(r.memory, 64 * 1024 * 1024);
}

TEST(FiltersTest, NodesThatCannotTakeThePodAreFilteredWithTheirReasons) {
  std::vector<ObjectPtr> nodes = {
      node("not-ready", "2", "4Gi",
           {{"status", {{"conditions", {{{"type", "Ready"}, {"status", "False"}}}}}}}),
      node("cordoned", "2", "4Gi", {{"spec", {{"unschedulable", true}}}}),
      node(
          "tainted", "2", "4Gi",
          {{"spec", {{"taints", {{{"key", "gpu"}, {"value", "yes"}, {"effect", "NoSchedule"}}}}}}}),
      node("small", "500m"),
  };
  Decision d = choose(*pod("p", "1"), nodes, {});
  EXPECT_EQ(d.node, "");
  EXPECT_EQ(d.reasons["node(s) were not ready"], 1);
  EXPECT_EQ(d.reasons["node(s) were unschedulable"], 1);
  EXPECT_EQ(d.reasons["node(s) had untolerated taint {gpu: yes}"], 1);
  EXPECT_EQ(d.reasons["Insufficient cpu"], 1);
  EXPECT_EQ(unschedulableMessage(4, d.reasons),
            "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {gpu: "
            "yes}, 1 node(s) were not ready, 1 node(s) were unschedulable. preemption: 0/4 nodes "
            "are available: 4 Preemption is not helpful for scheduling.");
  // A toleration lets it onto the tainted node.
  Decision tolerated = choose(
      *pod("p", "1", {{"spec", {{"tolerations", {{{"key", "gpu"}, {"operator", "Exists"}}}}}}}),
      nodes, {});
  EXPECT_EQ(tolerated.node, "tainted");
}

TEST(FiltersTest, NodeSelectorPicksAmongLabelledNodes) {
  std::vector<ObjectPtr> nodes = {
      node("a"), node("b", "2", "4Gi", {{"metadata", {{"labels", {{"disk", "ssd"}}}}}})};
  EXPECT_EQ(
      choose(*pod("p", "", {{"spec", {{"nodeSelector", {{"disk", "ssd"}}}}}}), nodes, {}).node,
      "b");
}

TEST(FiltersTest, RequiredNodeAffinityIsMatched) {
  std::vector<ObjectPtr> nodes = {
      node("a", "2", "4Gi", {{"metadata", {{"labels", {{"zone", "z1"}, {"gen", "3"}}}}}}),
      node("b", "2", "4Gi", {{"metadata", {{"labels", {{"zone", "z2"}, {"gen", "5"}}}}}}),
      node("c")};
  auto affinity = [](Json terms) {
    return Json{{"spec",
                 {{"affinity",
                   {{"nodeAffinity",
                     {{"requiredDuringSchedulingIgnoredDuringExecution",
                       {{"nodeSelectorTerms", terms}}}}}}}}}};
  };
  // Terms are ORed, expressions within one ANDed.
  auto in = [](const char* k, Json v) {
    return Json{{"key", k}, {"operator", "In"}, {"values", v}};
  };
  Decision d =
      choose(*pod("p", "", affinity({{{"matchExpressions", {in("zone", {"z2"})}}}})), nodes, {});
  EXPECT_EQ(d.node, "b");
  EXPECT_EQ(d.reasons["node(s) didn't match Pod's node affinity/selector"], 2);
  EXPECT_EQ(choose(*pod("p", "",
                        affinity({{{"matchExpressions",
                                    {in("zone", {"z1", "z2"}),
                                     {{"key", "gen"}, {"operator", "Gt"}, {"values", {"4"}}}}}}})),
                   nodes, {})
                .node,
            "b");
  EXPECT_EQ(choose(*pod("p", "",
                        affinity({{{"matchExpressions",
                                    {{{"key", "zone"}, {"operator", "DoesNotExist"}}}}}})),
                   nodes, {})
                .node,
            "c");
  EXPECT_EQ(choose(*pod("p", "",
                        affinity({{{"matchFields", {in("metadata.name", {"a"})}}},
                                  {{"matchExpressions", {in("zone", {"nowhere"})}}}})),
                   nodes, {})
                .node,
            "a");
}

// A claim bound to a volume on node b, and one waiting for its first consumer.
TEST(FiltersTest, VolumesKeepAPodWhereItsClaimsCanBe) {
  std::vector<ObjectPtr> nodes = {node("a"), node("b")};
  Json affinityToB = {
      {"required",
       {{"nodeSelectorTerms",
         {{{"matchExpressions",
            {{{"key", "kubernetes.io/hostname"}, {"operator", "In"}, {"values", {"b"}}}}}}}}}}};
  auto pv = std::make_shared<const Json>(Json{{"metadata", {{"name", "pv-b"}}},
                                              {"spec",
                                               {{"nodeAffinity", affinityToB},
                                                {"capacity", {{"storage", "1Gi"}}},
                                                {"accessModes", {"ReadWriteOnce"}},
                                                {"storageClassName", "local"},
                                                {"volumeMode", "Filesystem"}}}});
  auto claim = std::make_shared<const Json>(
      Json{{"metadata", {{"name", "data"}, {"namespace", "default"}, {"uid", "c1"}}},
           {"spec",
            {{"accessModes", {"ReadWriteOnce"}},
             {"resources", {{"requests", {{"storage", "1Gi"}}}}},
             {"storageClassName", "local"},
             {"volumeMode", "Filesystem"}}}});
  PodVolumes bound;
  bound.claims.push_back({claim, pv, false});
  Decision d = choose(*pod("p"), nodes, {}, bound);
  EXPECT_EQ(d.node, "b");
  PodVolumes waiting;  // unbound: only where a free volume fits it, unless it can be provisioned
  waiting.claims.push_back({claim, nullptr, false});
  waiting.freeVolumes.push_back(pv);
  EXPECT_EQ(choose(*pod("p"), nodes, {}, waiting).node, "b");
  waiting.freeVolumes.clear();
  d = choose(*pod("p"), nodes, {}, waiting);
  EXPECT_EQ(d.node, "");
  EXPECT_EQ(d.reasons["node(s) didn't find available persistent volumes to bind"], 2);
  waiting.claims[0].provisionable = true;
  EXPECT_NE(choose(*pod("p"), nodes, {}, waiting).node, "");
  PodVolumes missing;
  missing.problem = "persistentvolumeclaim \"data\" not found";
  d = choose(*pod("p"), nodes, {}, missing);
  EXPECT_EQ(unschedulableMessage(nodes.size(), d.reasons)
                .find("0/2 nodes are available: 2 persistentvolumeclaim \"data\" not found."),
            0u);
}

TEST(FiltersTest, ThePodsOfOneOwnerSpreadAndLoadCounts) {
  Json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata", {{"name", "web"}, {"uid", "rs"}}}};
  Json owned = {{"metadata", {{"ownerReferences", {client::controllerRef(rs)}}}}};
  std::vector<ObjectPtr> nodes = {node("a"), node("b")};
  std::map<std::string, std::vector<ObjectPtr>> onNodes = {{"a", {pod("web-1", "100m", owned)}}};
  EXPECT_EQ(choose(*pod("web-2", "100m", owned), nodes, onNodes).node, "b");
  // Without an owner in common, the less loaded node wins all the same.
  onNodes = {{"b", {pod("big", "1500m")}}};
  EXPECT_EQ(choose(*pod("other", "100m"), nodes, onNodes).node, "a");
}

class SchedulerControllerTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  testing::FakeClient fake_{clock_};
  client::InformerFactory informers_{fake_, std::chrono::milliseconds(0), clock_};
  client::EventRecorder events_{fake_, "default-scheduler", "", clock_};
  SchedulerController controller_{informers_, events_};
  void TearDown() override { informers_.stop(); }
  void start() {
    informers_.start();
    ASSERT_TRUE(informers_.waitForSync(std::chrono::seconds(5)));
  }
};

TEST_F(SchedulerControllerTest, BindsAPendingPodAndRecordsIt) {
  fake_.add(res::kNodes, *node("n1"));
  fake_.add(res::kPods, *pod("p", "100m"));
  start();
  EXPECT_TRUE(controller_.queue().queued("default/p"));
  EXPECT_FALSE(controller_.process("default/p").failed());
  EXPECT_EQ(json::getString(*fake_.object(res::kPods, "default", "p"), {"spec", "nodeName"}), "n1");
  auto events = fake_.actions("create", "events");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(json::str(events.back().object, "reason"), "Scheduled");
}

TEST_F(SchedulerControllerTest, AnUnschedulablePodSaysWhyAndIsRetried) {
  fake_.add(res::kNodes, *node("n1", "500m"));
  fake_.add(res::kPods, *pod("p", "2"));
  start();
  auto r = controller_.process("default/p");
  EXPECT_TRUE(r.failed());
  auto stored = fake_.object(res::kPods, "default", "p");
  const Json* c = client::findCondition(*stored, "PodScheduled");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(json::str(*c, "reason"), "Unschedulable");
  EXPECT_NE(json::str(*c, "message").find("1 Insufficient cpu"), std::string::npos);
  EXPECT_EQ(controller_.queue().retries("default/p"), 1);
}

TEST_F(SchedulerControllerTest, APodBoundElsewhereMeanwhileIsLeftAlone) {
  fake_.add(res::kNodes, *node("n1"));
  fake_.add(res::kPods, *pod("p"));
  start();
  fake_.failNext("bind", "pods", api::ApiError(409, "Conflict", "pod p is already assigned"));
  EXPECT_FALSE(controller_.process("default/p").failed());
  fake_.failNext("bind", "pods", api::ApiError(500, "InternalError", "etcd timeout"));
  EXPECT_TRUE(controller_.process("default/p").failed());
}

// Kubernetes' PreBind: the claims of a pod get the chosen node, and the pod is bound only once
// the volume binder has bound them.
TEST_F(SchedulerControllerTest, APodWithAWaitingClaimIsBoundOnceTheClaimIs) {
  fake_.add(res::kNodes, *node("n1"));
  fake_.add(res::kStorageClasses, {{"metadata", {{"name", "local-path"}}},
                                   {"provisioner", "podium.dev/local-path"},
                                   {"volumeBindingMode", "WaitForFirstConsumer"}});
  fake_.add(res::kPersistentVolumeClaims,
            {{"metadata", {{"name", "data"}, {"namespace", "default"}}},
             {"spec",
              {{"accessModes", {"ReadWriteOnce"}},
               {"resources", {{"requests", {{"storage", "1Gi"}}}}},
               {"storageClassName", "local-path"}}}});
  fake_.add(res::kPods,
            *pod("p", "",
                 {{"spec",
                   {{"volumes",
                     {{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "data"}}}}}}}}}));
  fake_.add(res::kPods,
            *pod("orphan", "",
                 {{"spec",
                   {{"volumes",
                     {{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "nope"}}}}}}}}}));
  start();
  auto r = controller_.process("default/p");
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.requeueAfter().has_value());
  auto claim = fake_.object(res::kPersistentVolumeClaims, "default", "data");
  EXPECT_EQ(
      json::getString(*claim, {"metadata", "annotations", "volume.kubernetes.io/selected-node"}),
      "n1");
  EXPECT_EQ(json::getString(*fake_.object(res::kPods, "default", "p"), {"spec", "nodeName"}), "");
  Json c = *claim;
  c["spec"]["volumeName"] = "pvc-1";
  ASSERT_TRUE(fake_.update(res::kPersistentVolumeClaims, "default", c, ""));
  fake_.add(res::kPersistentVolumes, {{"metadata", {{"name", "pvc-1"}}}, {"spec", Json::object()}});
  ASSERT_TRUE(testing::settle(informers_, fake_));
  EXPECT_FALSE(controller_.process("default/p").failed());
  EXPECT_EQ(json::getString(*fake_.object(res::kPods, "default", "p"), {"spec", "nodeName"}), "n1");
  // A pod whose claim does not exist waits and says so.
  EXPECT_TRUE(controller_.process("default/orphan").failed());
  ObjectPtr orphan = fake_.object(res::kPods, "default", "orphan");
  const Json* cond = client::findCondition(*orphan, "PodScheduled");
  ASSERT_NE(cond, nullptr);
  EXPECT_NE(json::str(*cond, "message").find("persistentvolumeclaim \"nope\" not found"),
            std::string::npos);
}

}  // namespace
}  // namespace podium::scheduler
