#pragma once

// The HorizontalPodAutoscaler's replica calculation for one per-pod metric (a resource's
// utilization or average value, a Pods metric), with Kubernetes' semantics: the ratio of what
// the pods use to what they are meant to use, a tolerance band in which nothing changes, and
// the conservative treatment of pods without a metric (on a scale-down they count as using
// exactly their target, on a scale-up as using nothing) and of pods not yet ready (counted as
// using nothing, on a scale-up only), so that neither pushes a scale the measured pods do not
// call for. Pure: the HPA controller feeds it what it read.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace podium::controllers::hpa {

struct PodMetric {
  std::string name;
  bool ignored = false;         // being deleted, or failed: left out
  bool unready = false;         // pending (metric or not), or, for CPU, measured but not yet ready
  std::optional<double> value;  // what it uses now (none: no metric for it)
  double target = 0;  // what it is meant to use: request * utilization% / 100, or the average
};

struct Recommendation {
  int32_t replicas = 0;
  double ratio = 0;      // measured use / target, over the pods with a metric
  int32_t measured = 0;  // pods that had a metric
  std::string error;     // non-empty: no recommendation (no pod had a metric)
};

Recommendation replicasFor(int32_t currentReplicas, const std::vector<PodMetric>& pods,
                           double tolerance = 0.1);

// spec.behavior, one direction: how fast it may go (policies, chosen by selectPolicy) and over
// how long a window recommendations are weighed (stabilizationWindowSeconds).
struct ScalingPolicy {
  enum class Type { Pods, Percent } type = Type::Pods;
  int32_t value = 0;
  int64_t periodSeconds = 15;
};
struct ScalingRules {
  int64_t stabilizationSeconds = 0;
  enum class Select { Max, Min, Disabled } select = Select::Max;
  std::vector<ScalingPolicy> policies;
};
struct Behavior {
  ScalingRules up, down;
  // Kubernetes' defaults: up at once by 4 pods or 100 % per 15 s, whichever is more; down by up
  // to 100 % per 15 s after a 300 s window.
  static Behavior defaults();
};

using TimePoint = std::chrono::steady_clock::time_point;
// A past recommendation, or a past scale (its change in replicas, positive or negative).
struct Timed {
  TimePoint at;
  int32_t replicas = 0;
};

// The stabilized recommendation: up to the lowest recommendation of the scale-up window, down
// only to the highest of the scale-down window (so a dip shorter than the window never scales
// down). `history` holds earlier recommendations; the caller records `desired` after.
int32_t stabilize(int32_t current, int32_t desired, const std::vector<Timed>& history,
                  const Behavior& behavior, TimePoint now);

// `desired` held to the rate the policies allow given the scales of their periods (`scales`:
// past changes), and to [minReplicas, maxReplicas]. `*limited` says which bound applied
// ("ScaleUpLimit", "ScaleDownLimit", "TooManyReplicas", "TooFewReplicas"), or "" when none.
int32_t limitRate(int32_t current, int32_t desired, int32_t minReplicas, int32_t maxReplicas,
                  const std::vector<Timed>& scales, const Behavior& behavior, TimePoint now,
                  std::string* limited);

}  // namespace podium::controllers::hpa
