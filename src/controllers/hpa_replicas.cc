#include "hpa_replicas.h"

#include <cmath>

namespace podium::controllers::hpa {

namespace {

// Sum of use over sum of targets: a utilization ratio, or an average value over its target.
double ratioOf(const std::vector<std::pair<double, double>>& used) {
  double value = 0, target = 0;
  for (const auto& [v, t] : used) {
    value += v;
    target += t;
  }
  return target > 0 ? value / target : 0;
}

}  // namespace

Recommendation replicasFor(int32_t currentReplicas, const std::vector<PodMetric>& pods,
                           double tolerance) {
  Recommendation out;
  std::vector<std::pair<double, double>> measured;  // (value, target) of ready pods with a metric
  std::vector<const PodMetric*> missing, unready;
  int32_t ready = 0;
  for (const auto& p : pods) {
    if (p.ignored) continue;
    if (p.unready) {
      unready.push_back(&p);
      continue;
    }
    if (!p.value) {
      missing.push_back(&p);
      continue;
    }
    ++ready;
    measured.emplace_back(*p.value, p.target);
  }
  out.measured = static_cast<int32_t>(measured.size());
  if (measured.empty()) {
    out.replicas = currentReplicas;
    out.error = "did not receive metrics for targeted pods (pods might be unready)";
    return out;
  }
  double ratio = ratioOf(measured);
  out.ratio = ratio;
  bool scaleUpWithUnready = !unready.empty() && ratio > 1.0;
  if (!scaleUpWithUnready && missing.empty()) {
    out.replicas = std::fabs(1.0 - ratio) <= tolerance
                       ? currentReplicas
                       : static_cast<int32_t>(std::ceil(ratio * ready));
    return out;
  }
  // Fill in: missing pods use their target on a scale-down and nothing on a scale-up; unready
  // ones nothing on a scale-up.
  for (const auto* p : missing) measured.emplace_back(ratio < 1.0 ? p->target : 0.0, p->target);
  if (scaleUpWithUnready)
    for (const auto* p : unready) measured.emplace_back(0.0, p->target);
  double filled = ratioOf(measured);
  // Within tolerance, or the fill-in turned the direction round: stay.
  if (std::fabs(1.0 - filled) <= tolerance || (ratio < 1.0 && filled > 1.0) ||
      (ratio > 1.0 && filled < 1.0)) {
    out.replicas = currentReplicas;
    return out;
  }
  int32_t replicas = static_cast<int32_t>(std::ceil(filled * static_cast<double>(measured.size())));
  // Never a scale the other way from what the measured pods ask.
  if ((filled < 1.0 && replicas > currentReplicas) || (filled > 1.0 && replicas < currentReplicas))
    replicas = currentReplicas;
  out.replicas = replicas;
  return out;
}

}  // namespace podium::controllers::hpa
