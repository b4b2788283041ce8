#include "api/conversion.h"

#include <gtest/gtest.h>

namespace podium::api {
namespace {

Json v2Hpa() {
  return {
      {"apiVersion", "autoscaling/v2"},
      {"kind", "HorizontalPodAutoscaler"},
      {"metadata", {{"name", "web"}, {"namespace", "default"}, {"resourceVersion", "7"}}},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}}},
        {"minReplicas", 1},
        {"maxReplicas", 5},
        {"metrics",
         {{{"type", "Resource"},
           {"resource",
            {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 60}}}}}},
          {{"type", "Pods"},
           {"pods",
            {{"metric", {{"name", "istio_requests_per_second"}}},
             {"target", {{"type", "AverageValue"}, {"averageValue", "20"}}}}}}}},
        {"behavior", {{"scaleDown", {{"stabilizationWindowSeconds", 30}}}}}}},
      {"status",
       {{"currentReplicas", 2},
        {"desiredReplicas", 3},
        {"currentMetrics",
         {{{"type", "Resource"},
           {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", 75}}}}}}}},
        {"conditions", {{{"type", "AbleToScale"}, {"status", "True"}}}}}}};
}

TEST(HpaConversion, V1ShowsTheCpuTargetAndCarriesTheRestInAnnotations) {
  Json v1 = kHpaV1Conversion.fromStorage(v2Hpa());
  EXPECT_EQ(v1["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(v1["spec"]["targetCPUUtilizationPercentage"], 60);
  EXPECT_FALSE(v1["spec"].contains("metrics"));
  EXPECT_EQ(v1["status"]["currentCPUUtilizationPercentage"], 75);
  EXPECT_EQ(v1["status"]["desiredReplicas"], 3);
  EXPECT_TRUE(v1["metadata"]["annotations"].contains("autoscaling.alpha.kubernetes.io/metrics"));
  EXPECT_EQ(v1["metadata"]["resourceVersion"], "7");
}

TEST(HpaConversion, RoundTripsThroughV1) {
  Json back = kHpaV1Conversion.toStorage(kHpaV1Conversion.fromStorage(v2Hpa()));
  EXPECT_EQ(back, v2Hpa());
}

TEST(HpaConversion, APlainV1ObjectBecomesACpuMetric) {
  Json v1 = {{"apiVersion", "autoscaling/v1"},
             {"kind", "HorizontalPodAutoscaler"},
             {"metadata", {{"name", "web"}}},
             {"spec",
              {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}},
               {"maxReplicas", 3},
               {"targetCPUUtilizationPercentage", 50}}}};
  Json v2 = kHpaV1Conversion.toStorage(v1);
  EXPECT_EQ(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 50);
  EXPECT_FALSE(v2["metadata"].contains("annotations"));
  // Without a target v1 leaves metrics out, and the v2 default (cpu 80 %) applies.
  v1["spec"].erase("targetCPUUtilizationPercentage");
  EXPECT_FALSE(kHpaV1Conversion.toStorage(v1)["spec"].contains("metrics"));
}

}  // namespace
}  // namespace podium::api
