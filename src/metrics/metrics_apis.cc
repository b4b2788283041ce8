#include "metrics_apis.h"

#include <cmath>

#include "podium/api/selectors.h"
#include "podium/client/objects.h"
#include "podium/common/strings.h"

namespace podium::metrics {

namespace {

using api::ApiError;

ApiError notFoundPath() {
  return ApiError(404, "NotFound", "the server could not find the requested resource");
}

Expected<api::LabelSelector, ApiError> selectorOf(const std::string& text) {
  auto s = api::LabelSelector::parse(text);
  if (!s) return Unexpected(ApiError::badRequest("labelSelector: " + s.error()));
  return *s;
}

// The objects of `informer` in `ns` ("" = all) whose labels `selector` matches, by name.
std::vector<client::ObjectPtr> selected(const client::Informer& informer, const std::string& ns,
                                        const api::LabelSelector& selector) {
  auto items = informer.list(ns, [&](const Json& o) {
    return selector.matches(client::at(o, {"metadata", "labels"}));
  });
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return client::Informer::keyOf(*a) < client::Informer::keyOf(*b);
  });
  return items;
}

// A pod that can serve: scheduled, not finished and not being deleted.
bool live(const Json& pod) {
  std::string phase = json::getString(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" &&
         !json::getString(pod, {"spec", "nodeName"}).empty() &&
         client::at(pod, {"metadata", "deletionTimestamp"}).is_null();
}

std::string cpuQuantity(uint64_t nanoCores) { return std::to_string(nanoCores) + "n"; }
std::string memoryQuantity(uint64_t bytes) { return std::to_string(bytes / 1024) + "Ki"; }

Json objectMeta(const Json& obj, std::chrono::system_clock::time_point now) {
  Json meta = {{"name", client::nameOf(obj)}, {"creationTimestamp", timefmt::rfc3339(now)}};
  if (std::string ns = client::namespaceOf(obj); !ns.empty()) meta["namespace"] = ns;
  if (const Json& labels = client::at(obj, {"metadata", "labels"}); labels.is_object())
    meta["labels"] = labels;
  return meta;
}

class ResourceMetricsApi : public api::AggregatedApi {
 public:
  explicit ResourceMetricsApi(ClusterView view)
      : store_(*view.store), view_(std::move(view)), clock_(*view_.clock) {}

  std::string group() const override { return "metrics.k8s.io"; }
  std::string version() const override { return "v1beta1"; }
  std::vector<api::AggregatedResource> resources() const override {
    return {{"nodes", "NodeMetrics", false, {"get", "list"}},
            {"pods", "PodMetrics", true, {"get", "list"}}};
  }

  Expected<Json, ApiError> get(const std::string& path, const api::AggregatedQuery& q) override {
    auto parts = strings::split(path, '/');
    auto sel = selectorOf(q.labelSelector);
    if (!sel) return Unexpected(sel.error());
    if (parts.size() <= 2 && parts[0] == "nodes") {
      if (parts.size() == 2) return oneNode(parts[1]);
      Json items = Json::array();
      for (const auto& n : selected(view_.nodes(), "", *sel))
        if (auto m = nodeMetrics(*n)) items.push_back(std::move(*m));
      return list("NodeMetricsList", std::move(items));
    }
    std::string ns;
    if (parts.size() >= 3 && parts[0] == "namespaces" && parts[2] == "pods") {
      ns = parts[1];
      parts.erase(parts.begin(), parts.begin() + 2);
    }
    if (parts.empty() || parts[0] != "pods" || parts.size() > 2 ||
        (parts.size() == 2 && ns.empty()))
      return Unexpected(notFoundPath());
    if (parts.size() == 2) {
      auto pod = view_.pods().get(ns, parts[1]);
      auto m = pod ? podMetrics(*pod) : std::nullopt;
      if (!m) return Unexpected(ApiError::notFound("metrics.k8s.io", "pods", ns + "/" + parts[1]));
      return *m;
    }
    Json items = Json::array();
    for (const auto& p : selected(view_.pods(), ns, *sel))
      if (auto m = podMetrics(*p)) items.push_back(std::move(*m));
    return list("PodMetricsList", std::move(items));
  }

 private:
  Expected<Json, ApiError> oneNode(const std::string& name) {
    auto node = view_.nodes().get("", name);
    auto m = node ? nodeMetrics(*node) : std::nullopt;
    if (!m) return Unexpected(ApiError::notFound("metrics.k8s.io", "nodes", name));
    return *m;
  }

  std::optional<Json> nodeMetrics(const Json& node) {
    auto u = store_.node(client::nameOf(node), clock_.monotonic());
    if (!u) return std::nullopt;
    return Json{
        {"kind", "NodeMetrics"},
        {"apiVersion", "metrics.k8s.io/v1beta1"},
        {"metadata", objectMeta(node, clock_.now())},
        {"timestamp", u->timestamp},
        {"window", "1s"},
        {"usage",
         {{"cpu", cpuQuantity(u->nanoCores)}, {"memory", memoryQuantity(u->workingSetBytes)}}}};
  }

  std::optional<Json> podMetrics(const Json& pod) {
    if (!live(pod)) return std::nullopt;
    auto u = store_.pod(client::namespaceOf(pod), client::nameOf(pod), clock_.monotonic());
    if (!u) return std::nullopt;
    Json containers = Json::array();
    for (const auto& c : u->containers)
      containers.push_back(
          {{"name", c.name},
           {"usage",
            {{"cpu", cpuQuantity(c.nanoCores)}, {"memory", memoryQuantity(c.workingSetBytes)}}}});
    return Json{{"kind", "PodMetrics"},
                {"apiVersion", "metrics.k8s.io/v1beta1"},
                {"metadata", objectMeta(pod, clock_.now())},
                {"timestamp", u->timestamp},
                {"window", "1s"},
                {"containers", containers}};
  }

  static Json list(const char* kind, Json items) {
    return {{"kind", kind},
            {"apiVersion", "metrics.k8s.io/v1beta1"},
            {"metadata", Json::object()},
            {"items", std::move(items)}};
  }

  const UsageStore& store_;
  ClusterView view_;
  Clock& clock_;
};

// A metric value as prometheus-adapter writes it: a quantity in milli-units.
std::string milliQuantity(double v) {
  return std::to_string(static_cast<int64_t>(std::llround(v * 1000))) + "m";
}

class CustomMetricsApi : public api::AggregatedApi {
 public:
  explicit CustomMetricsApi(ClusterView view)
      : store_(*view.store), view_(std::move(view)), clock_(*view_.clock) {}

  std::string group() const override { return "custom.metrics.k8s.io"; }
  std::string version() const override { return "v1beta2"; }
  std::vector<api::AggregatedResource> resources() const override {
    std::vector<api::AggregatedResource> out;
    for (const char* kind : {"pods", "services"})
      for (const char* metric : {kRequestsPerSecond, kRequestDuration})
        out.push_back({std::string(kind) + "/" + metric, "MetricValueList", true, {"get"}});
    return out;
  }

  // namespaces/NS/pods/NAME|*/METRIC and namespaces/NS/services/NAME|*/METRIC.
  Expected<Json, ApiError> get(const std::string& path, const api::AggregatedQuery& q) override {
    auto parts = strings::split(path, '/');
    if (parts.size() != 5 || parts[0] != "namespaces" ||
        (parts[2] != "pods" && parts[2] != "services"))
      return Unexpected(notFoundPath());
    const std::string &ns = parts[1], &kind = parts[2], &name = parts[3], &metric = parts[4];
    if (metric != kRequestsPerSecond && metric != kRequestDuration)
      return Unexpected(ApiError::notFound("custom.metrics.k8s.io", kind + "/" + metric, name));
    if (!q.metricLabelSelector.empty())
      return Unexpected(ApiError::badRequest(
          "metricLabelSelector: the mesh metrics have no labels to select on"));
    auto sel = selectorOf(q.labelSelector);
    if (!sel) return Unexpected(sel.error());
    client::Informer& informer = kind == "pods" ? view_.pods() : view_.services();
    std::vector<client::ObjectPtr> objects;
    if (name == "*") {
      objects = selected(informer, ns, *sel);
    } else if (auto o = informer.get(ns, name)) {
      objects.push_back(o);
    } else {
      return Unexpected(ApiError::notFound("", kind, name));
    }
    Json items = Json::array();
    for (const auto& o : objects) {
      auto rate = kind == "pods" ? podRate(*o) : serviceRate(*o);
      if (!rate) continue;
      double value = metric == kRequestsPerSecond ? rate->perSecond : rate->meanMs();
      items.push_back({{"describedObject",
                        {{"kind", kind == "pods" ? "Pod" : "Service"},
                         {"namespace", ns},
                         {"name", client::nameOf(*o)},
                         {"apiVersion", "/v1"}}},
                       {"metric", {{"name", metric}, {"selector", nullptr}}},
                       {"timestamp", timefmt::rfc3339(clock_.now())},
                       {"windowSeconds", std::max<int64_t>(1, std::llround(rate->windowSeconds))},
                       {"value", milliQuantity(value)}});
    }
    if (name != "*" && items.empty())
      return Unexpected(ApiError::notFound("custom.metrics.k8s.io", kind + "/" + metric, name));
    return Json{{"kind", "MetricValueList"},
                {"apiVersion", "custom.metrics.k8s.io/v1beta2"},
                {"metadata", Json::object()},
                {"items", std::move(items)}};
  }

 private:
  std::optional<RequestRate> podRate(const Json& pod) {
    if (!live(pod)) return std::nullopt;
    return store_.requests(client::namespaceOf(pod), client::nameOf(pod), clock_.monotonic());
  }

  // The Service's pods together (what reaches the Service reaches them).
  std::optional<RequestRate> serviceRate(const Json& svc) {
    const Json& s = client::at(svc, {"spec", "selector"});
    if (!s.is_object() || s.empty()) return std::nullopt;
    auto selector = api::LabelSelector::fromObject(Json{{"matchLabels", s}});
    if (!selector) return std::nullopt;
    std::optional<RequestRate> sum;
    for (const auto& p : selected(view_.pods(), client::namespaceOf(svc), *selector)) {
      auto r = podRate(*p);
      if (!r) continue;
      if (!sum) sum = RequestRate{};
      sum->perSecond += r->perSecond;
      sum->requests += r->requests;
      sum->durationMsSum += r->durationMsSum;
      sum->windowSeconds = std::max(sum->windowSeconds, r->windowSeconds);
    }
    return sum;
  }

  const UsageStore& store_;
  ClusterView view_;
  Clock& clock_;
};

}  // namespace

api::AggregatedApiPtr newResourceMetricsApi(ClusterView view) {
  return std::make_shared<ResourceMetricsApi>(std::move(view));
}

api::AggregatedApiPtr newCustomMetricsApi(ClusterView view) {
  return std::make_shared<CustomMetricsApi>(std::move(view));
}

}  // namespace podium::metrics
