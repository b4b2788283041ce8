// Traces: the node proxies' recent sampled spans, read from every node when asked (a trace's
// spans are recorded by the proxies it crossed, on whichever nodes they run) and joined by
// trace id, as a Zipkin or Jaeger query service joins what its collectors stored.

#include "traces.h"

#include <algorithm>
#include <map>
#include <set>

#include "podium/api/selectors.h"
#include "podium/client/objects.h"
#include "podium/common/strings.h"

namespace podium::metrics {

void SpanReader::detach() {
  std::lock_guard<std::mutex> lock(mu_);
  source_ = nullptr;
}

std::vector<Json> SpanReader::read(const std::vector<client::ObjectPtr>& nodes,
                                   const std::string& traceId) {
  std::lock_guard<std::mutex> lock(mu_);  // one query at a time: it asks every node
  std::vector<Json> out;
  if (!source_) return out;
  std::string path = "/stats/traces";
  if (!traceId.empty()) path += "?traceId=" + traceId;
  std::set<std::pair<std::string, std::string>> seen;  // (trace, span)
  for (const auto& node : nodes) {
    auto spans = source_->get(*node, path);
    if (!spans || !spans->is_array()) continue;  // a node that does not answer adds nothing
    for (auto& s : *spans)
      if (seen.insert({json::str(s, "traceId"), json::str(s, "id")}).second)
        out.push_back(std::move(s));
  }
  return out;
}

namespace {

bool isTraceId(const std::string& s) { return s.size() <= 32 && strings::isLowerHex(s); }

// What a selector looks at in a span: its tags, and its serviceName as `service`.
Json spanLabels(const Json& span) {
  Json labels = Json::object();
  if (const Json* tags = json::find(span, {"tags"}); tags && tags->is_object()) labels = *tags;
  labels["service"] = json::getString(span, {"localEndpoint", "serviceName"});
  return labels;
}

int64_t num(const Json& span, const char* key) { return json::integer(span, key); }

}  // namespace

Expected<Json, api::ApiError> getTraces(SpanReader& reader, const ClusterView& view,
                                        const std::string& path, const api::AggregatedQuery& q) {
  std::vector<client::ObjectPtr> nodes = view.nodes().list();
  if (path.rfind("traces/", 0) == 0) {
    std::string id = path.substr(7);
    if (!isTraceId(id))
      return Unexpected(api::ApiError::badRequest("trace id must be hexadecimal: " + id));
    auto spans = reader.read(nodes, id);
    if (spans.empty()) return Unexpected(api::ApiError::notFound("mesh.podium.io", "traces", id));
    std::sort(spans.begin(), spans.end(), [](const Json& a, const Json& b) {
      return num(a, "timestamp") < num(b, "timestamp");
    });
    return Json{{"kind", "Trace"},
                {"apiVersion", "mesh.podium.io/v1alpha1"},
                {"metadata", {{"name", id}}},
                {"traceId", id},
                {"spans", spans}};
  }
  if (path != "traces")
    return Unexpected(
        api::ApiError(404, "NotFound", "the server could not find the requested resource"));
  auto selector = api::LabelSelector::parse(q.labelSelector);
  if (!selector) return Unexpected(api::ApiError::badRequest("labelSelector: " + selector.error()));
  if (q.limit < 0) return Unexpected(api::ApiError::badRequest("limit must be a positive number"));
  struct Summary {
    int64_t start = INT64_MAX, end = 0;
    size_t spans = 0, errors = 0;
    std::set<std::string> services;
    bool matched = false;
    const Json* root = nullptr;
  };
  auto spans = reader.read(nodes, "");
  std::set<std::string> ids;
  for (const auto& s : spans) ids.insert(json::str(s, "id"));
  std::map<std::string, Summary> traces;
  for (const auto& s : spans) {
    Summary& t = traces[json::str(s, "traceId")];
    int64_t ts = num(s, "timestamp");
    t.start = std::min(t.start, ts);
    t.end = std::max(t.end, ts + num(s, "duration"));
    ++t.spans;
    t.errors += json::getString(s, {"tags", "error"}) == "true";
    t.services.insert(json::getString(s, {"localEndpoint", "serviceName"}));
    t.matched = t.matched || selector->matches(spanLabels(s));
    // The root: no parent, or a parent no proxy recorded (a caller outside the mesh).
    std::string parent = json::str(s, "parentId");
    if (parent.empty() || !ids.count(parent))
      if (!t.root || num(*t.root, "timestamp") > ts) t.root = &s;
  }
  std::vector<std::pair<const std::string*, const Summary*>> order;
  for (const auto& [id, t] : traces)
    if (t.matched) order.emplace_back(&id, &t);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.second->start > b.second->start; });
  size_t limit = q.limit > 0 ? static_cast<size_t>(q.limit) : 100;
  Json items = Json::array();
  for (const auto& [id, t] : order) {
    if (items.size() >= limit) break;
    Json item = {
        {"traceId", *id},    {"startMicros", t->start}, {"durationMicros", t->end - t->start},
        {"spans", t->spans}, {"errors", t->errors},     {"services", t->services}};
    if (t->root) {
      item["rootService"] = json::getString(*t->root, {"localEndpoint", "serviceName"});
      item["rootName"] = json::str(*t->root, "name");
      item["statusCode"] = json::getString(*t->root, {"tags", "http.status_code"});
      item["url"] = json::getString(*t->root, {"tags", "http.url"});
    }
    items.push_back(std::move(item));
  }
  return Json{{"kind", "TraceList"},
              {"apiVersion", "mesh.podium.io/v1alpha1"},
              {"metadata", Json::object()},
              {"items", items}};
}

}  // namespace podium::metrics
