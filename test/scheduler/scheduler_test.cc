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

}  // namespace
}  // namespace podium::scheduler
