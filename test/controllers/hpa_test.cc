#include "controllers/hpa.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

class HpaTest : public ControllerTest {
 protected:
  void SetUp() override {
    fake.setRaw([this](const std::string& path) -> client::Result {
      std::lock_guard<std::mutex> lock(mu);
      paths.push_back(path);
      if (path.rfind("/apis/metrics.k8s.io/", 0) == 0) return podMetrics();
      if (path.find("/pods/*/istio_requests_per_second") != std::string::npos) return perPod();
      return Unexpected(api::ApiError(404, "NotFound", "the server could not find the metric"));
    });
  }

  void deployment(int replicas) {
    fake.add(res::kDeployments, {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
                                 {"spec",
                                  {{"replicas", replicas},
                                   {"selector", {{"matchLabels", {{"app", "web"}}}}},
                                   {"template", {{"metadata", {{"labels", {{"app", "web"}}}}}}}}},
                                 {"status", {{"replicas", replicas}}}});
  }
  void webPod(const std::string& name, const std::string& cpuRequest = "100m") {
    Json c = {{"name", "c"}, {"image", "x"}};
    if (!cpuRequest.empty()) c["resources"] = {{"requests", {{"cpu", cpuRequest}}}};
    fake.add(
        res::kPods,
        {{"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
         {"spec", {{"nodeName", "n1"}, {"containers", {c}}}},
         {"status",
          {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
  }
  void hpa(const Json& metric, int minReplicas = 1, int maxReplicas = 10,
           const Json& behavior = Json()) {
    Json spec = {
        {"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}}},
        {"minReplicas", minReplicas},
        {"maxReplicas", maxReplicas},
        {"metrics", Json::array({metric})}};
    if (!behavior.is_null()) spec["behavior"] = behavior;
    fake.add(res::kHorizontalPodAutoscalers,
             {{"metadata", {{"name", "web"}, {"namespace", "default"}}}, {"spec", spec}});
  }
  static Json cpuUtilization(int percent) {
    return {{"type", "Resource"},
            {"resource",
             {{"name", "cpu"},
              {"target", {{"type", "Utilization"}, {"averageUtilization", percent}}}}}};
  }
  static Json requestRate(const std::string& perPod) {
    return {{"type", "Pods"},
            {"pods",
             {{"metric", {{"name", "istio_requests_per_second"}}},
              {"target", {{"type", "AverageValue"}, {"averageValue", perPod}}}}}};
  }
  client::Result podMetrics() {
    Json items = Json::array();
    for (const auto& [name, cpu] : cpu)
      items.push_back({{"metadata", {{"name", name}, {"namespace", "default"}}},
                       {"containers", {{{"name", "c"}, {"usage", {{"cpu", cpu}}}}}}});
    return Json{{"kind", "PodMetricsList"}, {"items", items}};
  }
  client::Result perPod() {
    Json items = Json::array();
    for (const auto& [name, v] : rps)
      items.push_back({{"describedObject", {{"kind", "Pod"}, {"name", name}}}, {"value", v}});
    return Json{{"kind", "MetricValueList"}, {"items", items}};
  }
  int replicas() {
    return static_cast<int>(json::integer(
        client::at(*fake.object(res::kDeployments, "default", "web"), {"spec"}), "replicas"));
  }
  Json status() {
    return client::at(*fake.object(res::kHorizontalPodAutoscalers, "default", "web"), {"status"});
  }
  std::string condition(const std::string& type, std::string* reason = nullptr) {
    Json st = status();
    for (const auto& c : client::at(st, {"conditions"}))
      if (json::str(c, "type") == type) {
        if (reason) *reason = json::str(c, "reason");
        return json::str(c, "status");
      }
    return "";
  }
  void sync() {
    settle();
    (void)controller.process("default/web");
    settle();
  }
  std::vector<std::string> eventReasons() {
    std::vector<std::string> out;
    for (const auto& e : fake.objects(res::kEvents)) out.push_back(json::str(*e, "reason"));
    return out;
  }

  std::mutex mu;
  std::vector<std::string> paths;
  std::map<std::string, std::string> cpu, rps;
  HpaController controller{informers, events};
};

TEST_F(HpaTest, CpuUtilizationAboveTargetScalesUpAtTheDefaultRate) {
  deployment(2);
  webPod("a");
  webPod("b");
  cpu = {{"a", "200m"}, {"b", "200m"}};  // 200 % of the request against a 50 % target
  hpa(cpuUtilization(50));
  start();
  sync();
  // The algorithm wants 8; Kubernetes' default scale-up allows max(+4 pods, +100 %) = 6.
  EXPECT_EQ(replicas(), 6);
  Json st = status();
  EXPECT_EQ(json::integer(st, "desiredReplicas"), 6);
  EXPECT_EQ(json::integer(st, "currentReplicas"), 2);
  Json current = client::at(st, {"currentMetrics"})[0];
  EXPECT_EQ(json::getString(current, {"type"}), "Resource");
  EXPECT_EQ(json::integer(client::at(current, {"resource", "current"}), "averageUtilization"), 200);
  EXPECT_EQ(json::getString(current, {"resource", "current", "averageValue"}), "200m");
  std::string reason;
  EXPECT_EQ(condition("ScalingLimited", &reason), "True");
  EXPECT_EQ(reason, "ScaleUpLimit");
  EXPECT_EQ(condition("ScalingActive", &reason), "True");
  EXPECT_EQ(reason, "ValidMetricFound");
  EXPECT_THAT(eventReasons(), Contains("SuccessfulRescale"));
  // The metrics were asked for the scale's selector.
  EXPECT_THAT(paths, Contains("/apis/metrics.k8s.io/v1beta1/namespaces/default/"
                              "pods?labelSelector=app%3Dweb"));
}

TEST_F(HpaTest, RequestRateScalesUpThenDownOnlyAfterTheWindowAndNotBelowMin) {
  deployment(1);
  webPod("a");
  rps = {{"a", "30"}};
  hpa(requestRate("10"), 1, 10, {{"scaleDown", {{"stabilizationWindowSeconds", 5}}}});
  start();
  sync();
  EXPECT_EQ(replicas(), 3);
  EXPECT_EQ(json::getString(client::at(status(), {"currentMetrics"})[0],
                            {"pods", "current", "averageValue"}),
            "30000m");
  // The load stops: the window's earlier recommendation (3) holds the scale.
  webPod("b");
  webPod("c");
  rps = {{"a", "0"}, {"b", "0"}, {"c", "0"}};
  clock.advance(std::chrono::seconds(1));
  sync();
  EXPECT_EQ(replicas(), 3);
  std::string reason;
  condition("AbleToScale", &reason);
  EXPECT_EQ(reason, "ScaleDownStabilized");
  // Once the window has passed it goes down, to minReplicas and no lower.
  clock.advance(std::chrono::seconds(6));
  sync();
  EXPECT_EQ(replicas(), 1);
  EXPECT_EQ(condition("ScalingLimited", &reason), "True");
  EXPECT_EQ(reason, "TooFewReplicas");
}

TEST_F(HpaTest, AMissingTargetCannotScale) {
  hpa(cpuUtilization(50));
  start();
  sync();
  std::string reason;
  EXPECT_EQ(condition("AbleToScale", &reason), "False");
  EXPECT_EQ(reason, "FailedGetScale");
  EXPECT_THAT(eventReasons(), Contains("FailedGetScale"));
  EXPECT_EQ(writes(), std::vector<std::string>{"update horizontalpodautoscalers/status web"});
}

TEST_F(HpaTest, AnUnknownMetricOrMissingRequestsLeaveTheScaleAlone) {
  deployment(2);
  webPod("a", "");
  webPod("b", "");
  cpu = {{"a", "900m"}, {"b", "900m"}};
  hpa(cpuUtilization(50));
  start();
  sync();
  std::string reason;
  EXPECT_EQ(condition("ScalingActive", &reason), "False");
  EXPECT_EQ(reason, "FailedGetResourceMetric");
  EXPECT_THAT(json::str(client::at(status(), {"conditions"})[1], "message"),
              HasSubstr("missing request for cpu in container c of Pod a"));
  EXPECT_EQ(replicas(), 2);

  Json h = *fake.object(res::kHorizontalPodAutoscalers, "default", "web");
  h["spec"]["metrics"] =
      Json::array({{{"type", "Pods"},
                    {"pods",
                     {{"metric", {{"name", "no_such_metric"}}},
                      {"target", {{"type", "AverageValue"}, {"averageValue", "1"}}}}}}});
  ASSERT_TRUE(fake.update(res::kHorizontalPodAutoscalers, "default", h, ""));
  sync();
  EXPECT_EQ(condition("ScalingActive", &reason), "False");
  EXPECT_EQ(reason, "FailedGetPodsMetric");
  EXPECT_EQ(replicas(), 2);
}

TEST_F(HpaTest, ATargetScaledToZeroIsLeftThere) {
  deployment(0);
  rps = {};
  hpa(requestRate("10"));
  start();
  sync();
  std::string reason;
  EXPECT_EQ(condition("ScalingActive", &reason), "False");
  EXPECT_EQ(reason, "ScalingDisabled");
  EXPECT_EQ(replicas(), 0);
}

TEST(HpaBehavior, SpecFieldsOverrideKubernetesDefaults) {
  hpa::Behavior b =
      behaviorFrom({{"scaleUp", {{"selectPolicy", "Disabled"}}},
                    {"scaleDown",
                     {{"stabilizationWindowSeconds", 10},
                      {"policies", {{{"type", "Pods"}, {"value", 1}, {"periodSeconds", 60}}}}}}});
  EXPECT_EQ(b.up.select, hpa::ScalingRules::Select::Disabled);
  EXPECT_EQ(b.up.policies.size(), 2u);  // kept from the defaults
  EXPECT_EQ(b.down.stabilizationSeconds, 10);
  ASSERT_EQ(b.down.policies.size(), 1u);
  EXPECT_EQ(b.down.policies[0].periodSeconds, 60);
  EXPECT_EQ(behaviorFrom(Json()).down.stabilizationSeconds, 300);
}

}  // namespace
}  // namespace podium::controllers
