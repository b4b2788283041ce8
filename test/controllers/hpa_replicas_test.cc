#include "controllers/hpa_replicas.h"

#include <gtest/gtest.h>

namespace podium::controllers::hpa {
namespace {

PodMetric pod(std::optional<double> value, double target = 100, bool unready = false) {
  return {"p", false, unready, value, target};
}

TEST(HpaReplicas, TheRatioOfUseToTargetScalesTheReadyPods) {
  // Three pods at 200 m against a 100 m target: six.
  EXPECT_EQ(replicasFor(3, {pod(200), pod(200), pod(200)}).replicas, 6);
  // Half the target: ceil(0.5 * 4) = 2.
  EXPECT_EQ(replicasFor(4, {pod(50), pod(50), pod(50), pod(50)}).replicas, 2);
  // Utilization over differing requests: (150 + 150) / (100 + 200) = 1.0, nothing to do.
  EXPECT_EQ(replicasFor(2, {pod(150, 100), pod(150, 200)}).replicas, 2);
}

TEST(HpaReplicas, WithinTheToleranceNothingChanges) {
  EXPECT_EQ(replicasFor(10, std::vector<PodMetric>(10, pod(109))).replicas, 10);
  EXPECT_EQ(replicasFor(10, std::vector<PodMetric>(10, pod(91))).replicas, 10);
  EXPECT_EQ(replicasFor(10, std::vector<PodMetric>(10, pod(111))).replicas, 12);
  EXPECT_EQ(replicasFor(10, std::vector<PodMetric>(10, pod(111)), 0.2).replicas, 10);
}

TEST(HpaReplicas, MissingMetricsHoldBackEitherWay) {
  // Scale-down: the pod without a metric counts as at its target, (25+25+100)/300 = 0.5 -> 2.
  EXPECT_EQ(replicasFor(3, {pod(25), pod(25), pod(std::nullopt)}).replicas, 2);
  // Scale-up: it counts as idle, (300+300+0)/300 = 2 -> 6 rather than 9 for three.
  EXPECT_EQ(replicasFor(3, {pod(300), pod(300), pod(std::nullopt)}).replicas, 6);
  // Filled in, it would turn the direction round: stay.
  EXPECT_EQ(replicasFor(2, {pod(120), pod(std::nullopt)}).replicas, 2);
}

TEST(HpaReplicas, UnreadyPodsCountAsIdleOnAScaleUpOnly) {
  // (400 + 0) / 200 = 2 -> 4.
  EXPECT_EQ(replicasFor(2, {pod(400), pod(900, 100, true)}).replicas, 4);
  // On a scale-down they are left out: 20/100 -> ceil(0.2 * 1) = 1.
  EXPECT_EQ(replicasFor(2, {pod(20), pod(900, 100, true)}).replicas, 1);
  // Pending pods count as unready with or without a metric.
  EXPECT_EQ(replicasFor(2, {pod(300), pod(std::nullopt, 100, true)}).replicas, 3);
}

TEST(HpaReplicas, NoMetricAtAllIsAnErrorNotAScale) {
  auto r = replicasFor(3, {pod(std::nullopt), pod(500, 100, true)});
  EXPECT_EQ(r.replicas, 3);
  EXPECT_NE(r.error.find("did not receive metrics"), std::string::npos);
  PodMetric gone = pod(1000);
  gone.ignored = true;
  EXPECT_FALSE(replicasFor(3, {gone}).error.empty());
}

const TimePoint kNow = TimePoint() + std::chrono::hours(1);
TimePoint ago(int seconds) { return kNow - std::chrono::seconds(seconds); }

TEST(HpaBehavior, ScaleDownWaitsOutItsWindowScaleUpDoesNot) {
  Behavior b = Behavior::defaults();
  // A dip to 3 after 8 and 6 within the last 300 s: stay at 8.
  EXPECT_EQ(stabilize(8, 3, {{ago(100), 8}, {ago(10), 6}}, b, kNow), 8);
  // Once they are older than the window, down it goes.
  EXPECT_EQ(stabilize(8, 3, {{ago(400), 8}, {ago(301), 6}}, b, kNow), 3);
  // Up at once (no window by default)...
  EXPECT_EQ(stabilize(2, 10, {{ago(5), 4}}, b, kNow), 10);
  // ...or to the lowest of a window's recommendations.
  b.up.stabilizationSeconds = 60;
  EXPECT_EQ(stabilize(2, 10, {{ago(30), 4}, {ago(90), 3}}, b, kNow), 4);
}

TEST(HpaBehavior, PoliciesLimitTheRatePerPeriod) {
  Behavior b = Behavior::defaults();
  std::string why;
  // 2 -> 20: 4 pods or 100 % per 15 s, the more of the two: 6.
  EXPECT_EQ(limitRate(2, 20, 1, 100, {}, b, kNow, &why), 6);
  EXPECT_EQ(why, "ScaleUpLimit");
  // 5 s later, having added 4 in this period: still 6.
  EXPECT_EQ(limitRate(6, 20, 1, 100, {{ago(5), 4}}, b, kNow, &why), 6);
  // The period over: 6 doubles to 12.
  EXPECT_EQ(limitRate(6, 20, 1, 100, {{ago(16), 4}}, b, kNow, &why), 12);
  // maxReplicas bounds it all.
  EXPECT_EQ(limitRate(9, 20, 1, 10, {}, b, kNow, &why), 10);
  EXPECT_EQ(why, "TooManyReplicas");
  // Down by up to 100 %, but not below minReplicas.
  EXPECT_EQ(limitRate(8, 1, 2, 10, {}, b, kNow, &why), 2);
  EXPECT_EQ(why, "TooFewReplicas");
  EXPECT_EQ(limitRate(8, 3, 1, 10, {}, b, kNow, &why), 3);
  EXPECT_EQ(why, "");
  // One pod a minute down, one gone 10 s ago: none now.
  b.down.policies = {{ScalingPolicy::Type::Pods, 1, 60}};
  EXPECT_EQ(limitRate(5, 1, 1, 10, {{ago(10), -1}}, b, kNow, &why), 5);
  EXPECT_EQ(why, "ScaleDownLimit");
  // selectPolicy Min takes the smaller step; Disabled none.
  b.up.select = ScalingRules::Select::Min;
  EXPECT_EQ(limitRate(10, 40, 1, 100, {}, b, kNow, &why), 14);
  b.up.select = ScalingRules::Select::Disabled;
  EXPECT_EQ(limitRate(10, 40, 1, 100, {}, b, kNow, &why), 10);
}

}  // namespace
}  // namespace podium::controllers::hpa
