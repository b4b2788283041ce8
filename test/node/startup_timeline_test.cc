#include "node/startup_timeline.h"

#include <gtest/gtest.h>

namespace podium::node {
namespace {

using std::chrono::milliseconds;

TEST(StartupHistograms, AFinishedStartAddsOneObservationPerStage) {
  StartupHistograms h;
  PodTimeline t;
  PodTimeline::Time t0{};
  t.seen = t0;
  t.sandbox = t0 + milliseconds(300);
  EXPECT_EQ(h.observe(t), "");  // unfinished: ignored
  t.started = t0 + milliseconds(450);
  t.ready = t0 + milliseconds(1450);
  t.arrived = t0 - milliseconds(50);
  EXPECT_EQ(h.observe(t),
            "queued 50 ms, sandbox 300 ms, containers 150 ms, ready 1000 ms, total 1500 ms");
  std::string text = h.prometheus();
  // 0.3 s falls in le=0.5 and above, not le=0.25.
  EXPECT_NE(text.find("podium_pod_start_stage_seconds_bucket{stage=\"sandbox\",le=\"0.25\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("podium_pod_start_stage_seconds_bucket{stage=\"sandbox\",le=\"0.5\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("podium_pod_start_stage_seconds_bucket{stage=\"total\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("podium_pod_start_stage_seconds_sum{stage=\"ready\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("kubelet_pod_start_duration_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("kubelet_pod_start_duration_seconds_sum 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE podium_pod_start_stage_seconds histogram\n"), std::string::npos);
}

}  // namespace
}  // namespace podium::node
