#include "hpa.h"

#include "podium/api/selectors.h"

namespace podium::controllers {

using client::Informer;

namespace {

const client::Resource& kHpas = client::resources::kHorizontalPodAutoscalers;

hpa::ScalingRules rulesFrom(const Json& rules, hpa::ScalingRules out) {
  if (!rules.is_object()) return out;
  if (rules.contains("stabilizationWindowSeconds"))
    out.stabilizationSeconds = json::integer(rules, "stabilizationWindowSeconds");
  std::string select = json::str(rules, "selectPolicy");
  if (select == "Min") out.select = hpa::ScalingRules::Select::Min;
  if (select == "Disabled") out.select = hpa::ScalingRules::Select::Disabled;
  if (select == "Max") out.select = hpa::ScalingRules::Select::Max;
  if (const Json* ps = json::find(rules, {"policies"}); ps && ps->is_array()) {
    out.policies.clear();
    for (const auto& p : *ps)
      out.policies.push_back({json::str(p, "type") == "Percent" ? hpa::ScalingPolicy::Type::Percent
                                                                : hpa::ScalingPolicy::Type::Pods,
                              static_cast<int32_t>(json::integer(p, "value")),
                              json::integer(p, "periodSeconds", 15)});
  }
  return out;
}

int64_t longestPeriod(const hpa::Behavior& b) {
  int64_t out = 0;
  for (const auto* r : {&b.up, &b.down})
    for (const auto& p : r->policies) out = std::max(out, p.periodSeconds);
  return out;
}

}  // namespace

hpa::Behavior behaviorFrom(const Json& behavior) {
  hpa::Behavior b = hpa::Behavior::defaults();
  if (!behavior.is_object()) return b;
  b.up = rulesFrom(at(behavior, {"scaleUp"}), b.up);
  b.down = rulesFrom(at(behavior, {"scaleDown"}), b.down);
  return b;
}

HpaController::HpaController(client::InformerFactory& f, client::EventRecorder& events,
                             HpaOptions options)
    : Controller("horizontal-pod-autoscaler", f.client(), f.clock()),
      hpas_(f.informer(kHpas)),
      pods_(f.informer(client::resources::kPods)),
      events_(events),
      options_(options) {
  hpas_.addHandlers(enqueueHandlers(true));
}

SyncResult HpaController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr h = hpas_.get(ns, name);
  if (!h || isDeleting(*h)) {
    std::lock_guard<std::mutex> lock(mu_);
    history_.erase(key);
    return SyncResult::ok();
  }
  const Json& spec = at(*h, {"spec"});
  Json next = at(*h, {"status"}).is_object() ? (*h)["status"] : Json::object();
  if (!next.contains("conditions")) next["conditions"] = Json::array();
  std::string stamp = timefmt::rfc3339(clock_.now());
  auto monotonic = clock_.monotonic();
  auto condition = [&](const char* type, bool ok, const std::string& reason,
                       const std::string& message) {
    setCondition(next["conditions"],
                 {{"type", type},
                  {"status", ok ? "True" : "False"},
                  {"reason", reason},
                  {"message", message}},
                 stamp);
  };
  auto finish = [&](SyncResult r) {
    return r.merge(updateStatus(kHpas, *h, next)).merge(SyncResult::after(options_.syncPeriod));
  };
  next["observedGeneration"] = json::integer(at(*h, {"metadata"}), "generation", 1);

  // The target, through its scale subresource.
  const Json& ref = at(spec, {"scaleTargetRef"});
  std::string kind = json::str(ref, "kind"), target = json::str(ref, "name");
  auto resource = client_.resourceFor(json::str(ref, "apiVersion"), kind);
  client::Result scale = Unexpected(api::ApiError(
      404, "NotFound",
      "no matches for kind \"" + kind + "\" in group \"" + json::str(ref, "apiVersion") + "\""));
  if (resource) scale = client_.getScale(*resource, ns, target);
  if (!scale) {
    events_.record(*h, "Warning", "FailedGetScale", scale.error().message());
    condition("AbleToScale", false, "FailedGetScale",
              "the HPA controller was unable to get the target's current scale: " +
                  scale.error().message());
    return finish(SyncResult::ok());
  }
  condition("AbleToScale", true, "SucceededGetScale",
            "the HPA controller was able to get the target's current scale");
  int32_t current = static_cast<int32_t>(json::integer(at(*scale, {"spec"}), "replicas"));
  next["currentReplicas"] = json::integer(at(*scale, {"status"}), "replicas");
  int32_t minReplicas = static_cast<int32_t>(json::integer(spec, "minReplicas", 1));
  int32_t maxReplicas = static_cast<int32_t>(json::integer(spec, "maxReplicas", minReplicas));

  int32_t desired = current;
  std::string reason;
  if (current == 0 && minReplicas != 0) {
    condition("ScalingActive", false, "ScalingDisabled",
              "scaling is disabled since the replica count of the target is zero");
  } else if (current > maxReplicas) {
    desired = maxReplicas;
    reason = "Current number of replicas above Spec.MaxReplicas";
  } else if (current < minReplicas) {
    desired = minReplicas;
    reason = "Current number of replicas below Spec.MinReplicas";
  } else {
    Target t{ns, json::getString(*scale, {"status", "selector"}), current, {}};
    auto selector = api::LabelSelector::parse(t.selector);
    if (t.selector.empty() || !selector) {
      std::string why = t.selector.empty() ? "the HPA target's scale is missing a selector"
                                           : "couldn't convert selector into a corresponding "
                                             "internal selector object: " +
                                                 selector.error();
      events_.record(*h, "Warning", "InvalidSelector", why);
      condition("ScalingActive", false, "InvalidSelector", why);
      return finish(SyncResult::ok());
    }
    t.pods = pods_.list(ns, [&](const Json& p) {
      return selector->matches(at(p, {"metadata", "labels"}));
    });
    // Every metric's proposal; the largest wins. A failed metric blocks scaling down.
    int32_t proposal = 0;
    int invalid = 0;
    std::string metricName, firstReason, firstError;
    Json currentMetrics = Json::array();
    const Json& metrics = at(spec, {"metrics"});
    for (const auto& m : metrics.is_array() ? metrics : Json::array()) {
      MetricOutcome o = evaluate(m, t);
      if (!o.errorReason.empty()) {
        if (invalid++ == 0) firstReason = o.errorReason, firstError = o.error;
        events_.record(*h, "Warning", o.errorReason, o.error);
        currentMetrics.push_back({{"type", json::str(m, "type")}});
        continue;
      }
      currentMetrics.push_back(o.status);
      if (o.replicas > proposal || metricName.empty()) {
        proposal = o.replicas;
        metricName = o.description;
      }
    }
    next["currentMetrics"] = currentMetrics;
    size_t count = metrics.is_array() ? metrics.size() : 0;
    if (count == 0 || invalid >= static_cast<int>(count) || (invalid > 0 && proposal < current)) {
      if (count == 0)
        firstReason = "InvalidMetricSourceType", firstError = "no metrics to scale on";
      condition("ScalingActive", false, firstReason,
                "the HPA was unable to compute the replica count: " + firstError);
      return finish(SyncResult::ok());
    }
    condition("ScalingActive", true, "ValidMetricFound",
              "the HPA was able to successfully calculate a replica count from " + metricName);
    hpa::Behavior behavior = behaviorFrom(at(spec, {"behavior"}));
    std::string limited;
    {
      std::lock_guard<std::mutex> lock(mu_);
      History& past = history_[key];
      int32_t stabilized =
          hpa::stabilize(current, proposal, past.recommendations, behavior, monotonic);
      auto keep = std::chrono::seconds(
          std::max(behavior.up.stabilizationSeconds, behavior.down.stabilizationSeconds));
      std::erase_if(past.recommendations,
                    [&](const hpa::Timed& r) { return monotonic - r.at > keep; });
      past.recommendations.push_back({monotonic, proposal});
      if (stabilized == proposal)
        condition("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size");
      else if (stabilized > proposal)
        condition("AbleToScale", true, "ScaleDownStabilized",
                  "recent recommendations were higher than current one, applying the highest "
                  "recent recommendation");
      else
        condition("AbleToScale", true, "ScaleUpStabilized",
                  "recent recommendations were lower than current one, applying the lowest "
                  "recent recommendation");
      auto period = std::chrono::seconds(longestPeriod(behavior));
      std::erase_if(past.scales, [&](const hpa::Timed& s) { return monotonic - s.at > period; });
      desired = hpa::limitRate(current, stabilized, minReplicas, maxReplicas, past.scales, behavior,
                               monotonic, &limited);
    }
    static const std::map<std::string, std::string> kLimits = {
        {"ScaleUpLimit",
         "the desired replica count is increasing faster than the maximum scale rate"},
        {"ScaleDownLimit",
         "the desired replica count is decreasing faster than the maximum scale rate"},
        {"TooManyReplicas", "the desired replica count is more than the maximum replica count"},
        {"TooFewReplicas", "the desired replica count is less than the minimum replica count"}};
    if (limited.empty())
      condition("ScalingLimited", false, "DesiredWithinRange",
                "the desired count is within the acceptable range");
    else
      condition("ScalingLimited", true, limited, kLimits.count(limited) ? kLimits.at(limited) : "");
    reason = desired > current ? metricName + " above target" : "All metrics below target";
  }

  if (desired != current) {
    Json s = *scale;
    s["spec"]["replicas"] = desired;
    auto written = client_.update(*resource, ns, s, "scale");
    if (!written) {
      std::string err = written.error().message();
      events_.record(
          *h, "Warning", "FailedRescale",
          "New size: " + std::to_string(desired) + "; reason: " + reason + "; error: " + err);
      condition("AbleToScale", false, "FailedUpdateScale",
                "the HPA controller was unable to update the target scale: " + err);
      return finish(SyncResult::retry("scale " + kind + " " + ns + "/" + target + ": " + err));
    }
    events_.record(*h, "Normal", "SuccessfulRescale",
                   "New size: " + std::to_string(desired) + "; reason: " + reason);
    {
      std::lock_guard<std::mutex> lock(mu_);
      history_[key].scales.push_back({monotonic, desired - current});
    }
    next["lastScaleTime"] = stamp;
  }
  next["desiredReplicas"] = desired;
  return finish(SyncResult::ok());
}

}  // namespace podium::controllers
