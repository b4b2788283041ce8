#include "controllers/node_lifecycle.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class NodeLifecycleTest : public ControllerTest {
 protected:
  void node(const std::string& readyStatus = "True") {
    fake.add(res::kNodes,
             {{"metadata", {{"name", "n1"}}},
              {"spec", Json::object()},
              {"status", {{"conditions", {{{"type", "Ready"}, {"status", readyStatus}}}}}}});
    renew();
  }
  void renew() {
    Json lease = {
        {"metadata", {{"name", "n1"}, {"namespace", "kube-node-lease"}}},
        {"spec", {{"holderIdentity", "n1"}, {"renewTime", timefmt::rfc3339Micro(clock.now())}}}};
    ASSERT_TRUE(
        fake.apply(res::kLeases, "kube-node-lease", lease, true, client::Client::DryRun::No));
  }
  Json boundPod(const std::string& name, std::optional<int64_t> tolerationSeconds) {
    Json p = pod(name, Json(), "Running", true);
    p["spec"]["nodeName"] = "n1";
    if (tolerationSeconds)
      p["spec"]["tolerations"] = {{{"key", NodeLifecycleController::kUnreachable},
                                   {"operator", "Exists"},
                                   {"effect", "NoExecute"},
                                   {"tolerationSeconds", *tolerationSeconds}}};
    return *fake.update(res::kPods, "default", p, "");
  }
  Json stored() { return *fake.object(res::kNodes, "", "n1"); }
  NodeLifecycleController controller{informers, events, seconds(20)};
};

TEST_F(NodeLifecycleTest, ANodeThatStopsRenewingIsUnknownTaintedAndItsPodsNotReady) {
  node();
  boundPod("web", 300);
  start();
  auto first = controller.process("n1");
  EXPECT_FALSE(first.failed());
  ASSERT_TRUE(first.requeueAfter());  // looked at again when the grace would run out
  EXPECT_LE(*first.requeueAfter(), seconds(21));
  clock.advance(seconds(19));
  (void)controller.process("n1");
  EXPECT_EQ(json::str(*client::findCondition(stored(), "Ready"), "status"), "True");
  clock.advance(seconds(2));
  EXPECT_FALSE(controller.process("n1").failed());
  Json n = stored();
  const Json* ready = client::findCondition(n, "Ready");
  EXPECT_EQ(json::str(*ready, "status"), "Unknown");
  EXPECT_EQ(json::str(*ready, "reason"), "NodeStatusUnknown");
  std::set<std::string> effects;
  for (const auto& t : n["spec"]["taints"])
    if (json::str(t, "key") == NodeLifecycleController::kUnreachable)
      effects.insert(json::str(t, "effect"));
  EXPECT_EQ(effects, (std::set<std::string>{"NoExecute", "NoSchedule"}));
  auto p = fake.object(res::kPods, "default", "web");
  EXPECT_EQ(json::str(*client::findCondition(*p, "Ready"), "status"), "False");
}

TEST_F(NodeLifecycleTest, PodsGoWhenTheirTolerationRunsOut) {
  node();
  boundPod("untolerated", std::nullopt);
  boundPod("patient", 5);
  boundPod("forever", std::nullopt);
  Json forever = *fake.object(res::kPods, "default", "forever");
  forever["spec"]["tolerations"] = {{{"operator", "Exists"}}};
  ASSERT_TRUE(fake.update(res::kPods, "default", forever, ""));
  start();
  (void)controller.process("n1");  // the controller has seen the node renewing
  clock.advance(seconds(21));
  (void)controller.process("n1");  // taints the node
  settle();
  auto r = controller.process("n1");
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(client::isDeleting(*fake.object(res::kPods, "default", "untolerated")));
  EXPECT_FALSE(client::isDeleting(*fake.object(res::kPods, "default", "patient")));
  ASSERT_TRUE(r.requeueAfter());
  EXPECT_LE(*r.requeueAfter(), milliseconds(5010));
  clock.advance(seconds(5));
  settle();
  (void)controller.process("n1");
  EXPECT_TRUE(client::isDeleting(*fake.object(res::kPods, "default", "patient")));
  EXPECT_FALSE(client::isDeleting(*fake.object(res::kPods, "default", "forever")));
}

TEST_F(NodeLifecycleTest, TheTaintsGoWhenTheNodeIsBack) {
  node();
  start();
  (void)controller.process("n1");
  clock.advance(seconds(21));
  (void)controller.process("n1");
  settle();
  ASSERT_FALSE(client::at(stored(), {"spec", "taints"}).is_null());
  // The agent renews and reports Ready again.
  renew();
  Json n = stored();
  n["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
  ASSERT_TRUE(fake.update(res::kNodes, "", n, "status"));
  settle();
  EXPECT_FALSE(controller.process("n1").failed());
  EXPECT_TRUE(client::at(stored(), {"spec", "taints"}).is_null());
}

}  // namespace
}  // namespace podium::controllers
