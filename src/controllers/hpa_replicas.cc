#include "hpa_replicas.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

Behavior Behavior::defaults() {
  Behavior b;
  b.up = {0,
          ScalingRules::Select::Max,
          {{ScalingPolicy::Type::Pods, 4, 15}, {ScalingPolicy::Type::Percent, 100, 15}}};
  b.down = {300, ScalingRules::Select::Max, {{ScalingPolicy::Type::Percent, 100, 15}}};
  return b;
}

int32_t stabilize(int32_t current, int32_t desired, const std::vector<Timed>& history,
                  const Behavior& behavior, TimePoint now) {
  int32_t up = desired, down = desired;
  auto upCutoff = now - std::chrono::seconds(behavior.up.stabilizationSeconds);
  auto downCutoff = now - std::chrono::seconds(behavior.down.stabilizationSeconds);
  for (const auto& r : history) {
    if (r.at > upCutoff) up = std::min(up, r.replicas);
    if (r.at > downCutoff) down = std::max(down, r.replicas);
  }
  int32_t out = current;
  if (out < up) out = up;
  if (out > down) out = down;
  return out;
}

namespace {

// The net change of the scales within the last `periodSeconds`, in the direction asked.
int32_t changedIn(const std::vector<Timed>& scales, int64_t periodSeconds, bool upward,
                  TimePoint now) {
  int32_t sum = 0;
  auto cutoff = now - std::chrono::seconds(periodSeconds);
  for (const auto& s : scales)
    if (s.at > cutoff && (upward ? s.replicas > 0 : s.replicas < 0))
      sum += upward ? s.replicas : -s.replicas;
  return sum;
}

int32_t upLimit(int32_t current, const std::vector<Timed>& scales, const ScalingRules& rules,
                TimePoint now) {
  if (rules.select == ScalingRules::Select::Disabled) return current;
  bool least = rules.select == ScalingRules::Select::Min;
  int64_t result =
      least ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
  for (const auto& p : rules.policies) {
    int64_t start = current - changedIn(scales, p.periodSeconds, true, now);
    int64_t proposed =
        p.type == ScalingPolicy::Type::Pods
            ? start + p.value
            : static_cast<int64_t>(std::ceil(static_cast<double>(start) * (1.0 + p.value / 100.0)));
    result = least ? std::min(result, proposed) : std::max(result, proposed);
  }
  return static_cast<int32_t>(std::clamp<int64_t>(result, 0, std::numeric_limits<int32_t>::max()));
}

int32_t downLimit(int32_t current, const std::vector<Timed>& scales, const ScalingRules& rules,
                  TimePoint now) {
  if (rules.select == ScalingRules::Select::Disabled) return current;
  bool least = rules.select == ScalingRules::Select::Min;  // the least change: the most replicas
  int64_t result =
      least ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int32_t>::max();
  for (const auto& p : rules.policies) {
    int64_t start = current + changedIn(scales, p.periodSeconds, false, now);
    int64_t proposed =
        p.type == ScalingPolicy::Type::Pods
            ? start - p.value
            : static_cast<int64_t>(static_cast<double>(start) * (1.0 - p.value / 100.0));
    result = least ? std::max(result, proposed) : std::min(result, proposed);
  }
  return static_cast<int32_t>(std::clamp<int64_t>(result, 0, std::numeric_limits<int32_t>::max()));
}

}  // namespace

int32_t limitRate(int32_t current, int32_t desired, int32_t minReplicas, int32_t maxReplicas,
                  const std::vector<Timed>& scales, const Behavior& behavior, TimePoint now,
                  std::string* limited) {
  limited->clear();
  int32_t out = desired;
  if (desired > current) {
    int32_t limit = std::max(current, upLimit(current, scales, behavior.up, now));
    if (out > limit) {
      out = limit;
      *limited = "ScaleUpLimit";
    }
  } else if (desired < current) {
    int32_t limit = std::min(current, downLimit(current, scales, behavior.down, now));
    if (out < limit) {
      out = limit;
      *limited = "ScaleDownLimit";
    }
  }
  if (out > maxReplicas) {
    out = maxReplicas;
    *limited = "TooManyReplicas";
  }
  if (out < minReplicas) {
    out = minReplicas;
    *limited = "TooFewReplicas";
  }
  return out;
}

}  // namespace podium::controllers::hpa
