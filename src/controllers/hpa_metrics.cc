// The HPA's metric readers: each turns one entry of spec.metrics into a replica proposal and
// its currentMetrics status, reading the metrics APIs through the client (as the HPA reads
// metrics-server and an adapter through the aggregator).
#include <cmath>

#include "hpa.h"
#include "podium/api/quantity.h"
#include "podium/common/strings.h"

namespace podium::controllers {

namespace {

using MetricOutcome = HpaController::MetricOutcome;

MetricOutcome failed(const std::string& reason, const std::string& error) {
  MetricOutcome o;
  o.errorReason = reason;
  o.error = error;
  return o;
}

std::string milliQuantity(double v) {
  return std::to_string(static_cast<int64_t>(std::llround(v * 1000))) + "m";
}

// A quantity in the unit the HPA compares: milli-cores for CPU, base units otherwise.
double resourceAmount(const std::string& resource, const Json& quantity) {
  return resource == "cpu" ? static_cast<double>(api::milliValue(quantity))
                           : static_cast<double>(api::value(quantity));
}

std::string resourceQuantity(const std::string& resource, double amount) {
  return resource == "cpu" ? std::to_string(std::llround(amount)) + "m"
                           : std::to_string(std::llround(amount));
}

// Kubernetes' groupPods: deleted and failed pods are left out, pending ones count as unready,
// and for CPU a pod not yet ready is unready too (its start-up burn says nothing).
hpa::PodMetric classify(const Json& pod, const std::map<std::string, double>& values, double target,
                        bool cpu) {
  hpa::PodMetric m;
  m.name = nameOf(pod);
  m.target = target;
  std::string phase = json::getString(pod, {"status", "phase"});
  if (isDeleting(pod) || phase == "Failed") {
    m.ignored = true;
    return m;
  }
  if (phase == "Pending") {
    m.unready = true;
    return m;
  }
  auto v = values.find(m.name);
  if (v == values.end()) return m;
  m.value = v->second;
  if (cpu && !isPodReady(pod)) m.unready = true;
  return m;
}

}  // namespace

HpaController::MetricOutcome HpaController::evaluate(const Json& metric, const Target& t) {
  std::string type = json::str(metric, "type");
  if (type == "Resource") return resourceMetric(at(metric, {"resource"}), "", t);
  if (type == "ContainerResource") {
    const Json& source = at(metric, {"containerResource"});
    std::string container = json::str(source, "container");
    if (container.empty())
      return failed("FailedGetContainerResourceMetric", "the metric names no container");
    return resourceMetric(source, container, t);
  }
  if (type == "Pods") return podsMetric(at(metric, {"pods"}), t);
  if (type == "Object") return objectMetric(at(metric, {"object"}), t);
  if (type == "External")
    return failed("FailedGetExternalMetric",
                  "unable to get external metric " +
                      json::getString(metric, {"external", "metric", "name"}) +
                      ": no external metrics API (external.metrics.k8s.io) is served");
  return failed("InvalidMetricSourceType", "invalid metric source type \"" + type + "\"");
}

HpaController::MetricOutcome HpaController::resourceMetric(const Json& source,
                                                           const std::string& container,
                                                           const Target& t) {
  std::string resource = json::str(source, "name");
  const Json& target = at(source, {"target"});
  bool utilization = json::str(target, "type") == "Utilization";
  std::string reason =
      container.empty() ? "FailedGetResourceMetric" : "FailedGetContainerResourceMetric";
  std::string what = "unable to get metrics for resource " + resource;
  if (resource != "cpu" && resource != "memory")
    return failed(reason, what + ": the resource metrics API serves cpu and memory only");
  auto raw = client_.getRaw("/apis/metrics.k8s.io/v1beta1/namespaces/" + t.ns +
                            "/pods?labelSelector=" + strings::urlEncode(t.selector));
  if (!raw)
    return failed(reason, what + ": unable to fetch metrics from resource metrics API: " +
                              raw.error().message());
  std::map<std::string, double> usage;
  for (const auto& item : at(*raw, {"items"})) {
    double sum = 0;
    bool found = container.empty();
    for (const auto& c : at(item, {"containers"})) {
      if (!container.empty() && json::str(c, "name") != container) continue;
      found = true;
      sum += resourceAmount(resource, at(c, {"usage", resource}));
    }
    if (found) usage[json::getString(item, {"metadata", "name"})] = sum;
  }
  if (usage.empty())
    return failed(reason, what + ": no metrics returned from resource metrics API");

  std::vector<hpa::PodMetric> pods;
  double requested = 0, used = 0;
  for (const auto& p : t.pods) {
    double perPod = 0;
    if (utilization) {
      double request = 0;
      for (const auto& c : at(*p, {"spec", "containers"})) {
        if (!container.empty() && json::str(c, "name") != container) continue;
        const Json* q = json::find(c, {"resources", "requests", resource});
        if (!q)
          return failed(reason, what + ": missing request for " + resource + " in container " +
                                    json::str(c, "name") + " of Pod " + nameOf(*p));
        request += resourceAmount(resource, *q);
      }
      perPod = request * static_cast<double>(json::integer(target, "averageUtilization")) / 100.0;
      if (auto u = usage.find(nameOf(*p)); u != usage.end()) {
        requested += request;
        used += u->second;
      }
    } else {
      perPod = resourceAmount(resource, at(target, {"averageValue"}));
    }
    pods.push_back(classify(*p, usage, perPod, resource == "cpu"));
  }
  auto rec = hpa::replicasFor(t.replicas, pods, options_.tolerance);
  if (!rec.error.empty()) return failed(reason, what + ": " + rec.error);
  MetricOutcome o;
  o.replicas = rec.replicas;
  std::string kind = container.empty() ? "resource" : "containerResource";
  Json current = Json::object();
  double measuredUse = 0;
  int measured = 0;
  for (const auto& [name, v] : usage)
    if (std::any_of(t.pods.begin(), t.pods.end(),
                    [&](const auto& p) { return nameOf(*p) == name; }))
      measuredUse += v, ++measured;
  current["averageValue"] = resourceQuantity(resource, measured ? measuredUse / measured : 0);
  if (utilization && requested > 0)
    current["averageUtilization"] = static_cast<int64_t>(std::llround(used / requested * 100));
  Json entry = {{"name", resource}, {"current", current}};
  if (!container.empty()) entry["container"] = container;
  o.status = {{"type", container.empty() ? "Resource" : "ContainerResource"}, {kind, entry}};
  o.description = resource + (container.empty() ? "" : " container") +
                  (utilization ? " resource utilization (percentage of request)" : " resource");
  return o;
}

HpaController::MetricOutcome HpaController::podsMetric(const Json& source, const Target& t) {
  std::string name = json::getString(source, {"metric", "name"});
  const Json& target = at(source, {"target"});
  std::string what = "unable to get metric " + name;
  auto targetValue = api::parseQuantity(json::getString(target, {"averageValue"}));
  if (json::str(target, "type") != "AverageValue" || !targetValue)
    return failed("FailedGetPodsMetric", what + ": a Pods metric's target must be an averageValue");
  std::string path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + t.ns + "/pods/*/" + name +
                     "?labelSelector=" + strings::urlEncode(t.selector);
  if (const Json& sel = at(source, {"metric", "selector"}); sel.is_object() && !sel.empty()) {
    auto s = api::LabelSelector::fromObject(sel, false);
    if (s) path += "&metricLabelSelector=" + strings::urlEncode(s->str());
  }
  auto raw = client_.getRaw(path);
  if (!raw)
    return failed(
        "FailedGetPodsMetric",
        what + ": unable to fetch metrics from custom metrics API: " + raw.error().message());
  std::map<std::string, double> values;
  for (const auto& item : at(*raw, {"items"}))
    if (auto v = api::parseQuantity(json::str(item, "value")))
      values[json::getString(item, {"describedObject", "name"})] = *v;
  if (values.empty())
    return failed("FailedGetPodsMetric", what + ": no metrics returned from custom metrics API");
  std::vector<hpa::PodMetric> pods;
  double sum = 0;
  int measured = 0;
  for (const auto& p : t.pods) {
    pods.push_back(classify(*p, values, *targetValue, false));
    if (pods.back().value && !pods.back().ignored) sum += *pods.back().value, ++measured;
  }
  auto rec = hpa::replicasFor(t.replicas, pods, options_.tolerance);
  if (!rec.error.empty()) return failed("FailedGetPodsMetric", what + ": " + rec.error);
  MetricOutcome o;
  o.replicas = rec.replicas;
  o.status = {{"type", "Pods"},
              {"pods",
               {{"metric", {{"name", name}}},
                {"current", {{"averageValue", milliQuantity(measured ? sum / measured : 0)}}}}}};
  o.description = "pods metric " + name;
  return o;
}

HpaController::MetricOutcome HpaController::objectMetric(const Json& source, const Target& t) {
  const Json& described = at(source, {"describedObject"});
  std::string kind = json::str(described, "kind"), object = json::str(described, "name");
  std::string name = json::getString(source, {"metric", "name"});
  std::string what = "unable to get metric " + name + ": " + kind + " on " + t.ns + " " + object;
  auto resource = client_.resourceFor(json::str(described, "apiVersion"), kind);
  if (!resource) return failed("FailedGetObjectMetric", what + ": unknown kind " + kind);
  const Json& target = at(source, {"target"});
  bool average = json::str(target, "type") == "AverageValue";
  auto targetValue =
      api::parseQuantity(json::getString(target, {average ? "averageValue" : "value"}));
  if (!targetValue || *targetValue <= 0)
    return failed("FailedGetObjectMetric",
                  what + ": an Object metric's target must be a positive value or averageValue");
  auto raw = client_.getRaw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + t.ns + "/" +
                            resource->plural + "/" + object + "/" + name);
  if (!raw)
    return failed(
        "FailedGetObjectMetric",
        what + ": unable to fetch metrics from custom metrics API: " + raw.error().message());
  const Json& items = at(*raw, {"items"});
  auto value = items.empty() ? std::nullopt : api::parseQuantity(json::str(items[0], "value"));
  if (!value)
    return failed("FailedGetObjectMetric", what + ": no metrics returned from custom metrics API");
  MetricOutcome o;
  o.replicas = t.replicas;
  if (average) {
    // The object's total over the target per pod: how many pods would carry it.
    double ratio = *value / (*targetValue * std::max(1, t.replicas));
    if (std::fabs(1.0 - ratio) > options_.tolerance)
      o.replicas = static_cast<int32_t>(std::ceil(*value / *targetValue));
  } else {
    double ratio = *value / *targetValue;
    int32_t ready = 0;
    for (const auto& p : t.pods) ready += isPodReady(*p) ? 1 : 0;
    if (t.replicas == 0)
      o.replicas = static_cast<int32_t>(std::ceil(ratio));
    else if (std::fabs(1.0 - ratio) > options_.tolerance)
      o.replicas = static_cast<int32_t>(std::ceil(ratio * ready));
  }
  Json current = average ? Json{{"averageValue", milliQuantity(*value / std::max(1, t.replicas))}}
                         : Json{{"value", milliQuantity(*value)}};
  o.status = {
      {"type", "Object"},
      {"object",
       {{"describedObject", described}, {"metric", {{"name", name}}}, {"current", current}}}};
  o.description = kind + " metric " + name;
  return o;
}

}  // namespace podium::controllers
