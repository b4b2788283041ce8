#pragma once

// The HorizontalPodAutoscaler's replica calculation for one per-pod metric (a resource's
// utilization or average value, a Pods metric), with Kubernetes' semantics: the ratio of what
// the pods use to what they are meant to use, a tolerance band in which nothing changes, and
// the conservative treatment of pods without a metric (on a scale-down they count as using
// exactly their target, on a scale-up as using nothing) and of pods not yet ready (counted as
// using nothing, on a scale-up only), so that neither pushes a scale the measured pods do not
// call for. Pure: the HPA controller feeds it what it read.

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

}  // namespace podium::controllers::hpa
