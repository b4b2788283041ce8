#include "tracing.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

#include "config.h"
#include "podium/common/http_client.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "router.h"

namespace podium::proxy {

namespace {

using json::at;

std::string hexDigits(uint64_t v, int digits) {
  static const char* d = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = d[v & 15];
  return out;
}

// An id of `n` hex digits; all-zero ids are invalid in both W3C and B3.
bool isHex(std::string_view s, size_t n) {
  return s.size() == n && strings::isLowerHex(s) && s.find_first_not_of('0') != s.npos;
}

// One `spec.tracing` entry laid over `r` for `server` (or client) spans: what it says replaces
// what a less specific Telemetry said; custom tags are merged by name.
void overlay(TracingRule& r, const Json& tracing, bool server) {
  if (!tracing.is_array()) return;
  for (const auto& t : tracing) {
    std::string mode = json::getString(t, {"match", "mode"});
    if ((mode == "CLIENT" && server) || (mode == "SERVER" && !server)) continue;
    if (at(t, {"providers"}).is_array()) {
      r.providers.clear();
      for (const auto& p : at(t, {"providers"})) r.providers.push_back(json::str(p, "name"));
    }
    if (const Json* pct = json::find(t, {"randomSamplingPercentage"}); pct && pct->is_number())
      r.samplingPercent = pct->get<double>();
    if (const Json* d = json::find(t, {"disableSpanReporting"}); d && d->is_boolean())
      r.reporting = !d->get<bool>();
    const Json& tags = at(t, {"customTags"});
    if (!tags.is_object()) continue;
    for (const auto& item : tags.items()) {
      const std::string& name = item.key();  // named: the lambda below captures it
      const Json& spec = item.value();
      CustomTag tag;
      tag.name = name;
      if (spec.contains("literal")) {
        tag.value = json::getString(spec, {"literal", "value"});
      } else {
        const char* kind = spec.contains("header") ? "header" : "environment";
        tag.kind = spec.contains("header") ? CustomTag::Kind::Header : CustomTag::Kind::Environment;
        tag.value = json::getString(spec, {kind, "name"});
        tag.defaultValue = json::getString(spec, {kind, "defaultValue"});
      }
      std::erase_if(r.tags, [&](const CustomTag& t) { return t.name == name; });
      r.tags.push_back(std::move(tag));
    }
  }
}

}  // namespace

void TracingConfig::build(const Json& snap, const Resolver& resolve) {
  Json mesh = Json::object();
  for (const auto& cm : at(snap, {"meshConfig"})) {
    auto parsed = json::parseYaml(json::getString(cm, {"data", "mesh"}));
    if (parsed && parsed->value.is_object()) mesh = parsed->value;
  }
  for (const auto& p : at(mesh, {"extensionProviders"})) {
    TraceProvider tp;
    const Json* body = json::find(p, {"zipkin"});
    tp.path = "/api/v2/spans";
    if (!body) {
      body = json::find(p, {"opentelemetry"});
      if (!body) continue;  // not a tracing provider (envoyFileAccessLog, prometheus, ...)
      tp.kind = TraceProvider::Kind::OpenTelemetry;
      tp.path = "/v1/traces";
      if (!json::find(*body, {"http"}))
        tp.problem = "only OTLP over HTTP is supported: set opentelemetry.http";
      else if (auto path = json::getString(*body, {"http", "path"}); !path.empty())
        tp.path = path[0] == '/' ? path : "/" + path;
    } else if (auto path = json::str(*body, "path"); !path.empty()) {
      tp.path = path[0] == '/' ? path : "/" + path;
    }
    tp.service = json::str(*body, "service");
    auto port = json::integer(*body, "port");
    if (auto m = json::integer(*body, "maxTagLength"); m > 0)
      tp.maxTagLength = static_cast<size_t>(m);
    if (tp.problem.empty() && (tp.service.empty() || port <= 0 || port > 65535))
      tp.problem = "service and port are required";
    if (tp.problem.empty() && !resolve(tp.service, static_cast<uint16_t>(port), &tp.ip, &tp.port))
      tp.problem = "no ready endpoint for " + tp.service + ":" + std::to_string(port);
    providers_[json::str(p, "name")] = std::move(tp);
  }
  for (const auto& n : at(mesh, {"defaultProviders", "tracing"}))
    if (n.is_string()) defaultProviders_.push_back(n.get<std::string>());
  if (const Json* s = json::find(mesh, {"defaultConfig", "tracing", "sampling"});
      s && s->is_number())
    defaultSampling_ = s->get<double>();
  for (const auto& t : at(snap, {"telemetries"})) {
    Entry e;
    e.ns = json::getString(t, {"metadata", "namespace"});
    e.name = json::getString(t, {"metadata", "name"});
    e.created = json::getString(t, {"metadata", "creationTimestamp"});
    e.root = e.ns == "istio-system";
    if (const Json* sel = json::find(t, {"spec", "selector", "matchLabels"})) {
      e.hasSelector = true;
      e.selector = labelsOf(*sel);
    }
    e.tracing = at(t, {"spec", "tracing"});
    entries_.push_back(std::move(e));
  }
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return a.created != b.created ? a.created < b.created : a.name < b.name;
  });
}

TracingRule TracingConfig::rule(const std::string& ns,
                                const std::map<std::string, std::string>& labels,
                                bool server) const {
  TracingRule r;
  r.samplingPercent = defaultSampling_;
  r.providers = defaultProviders_;
  // Mesh, then namespace, then workload; the oldest Telemetry of a level wins, as Istio picks.
  const Entry* levels[3] = {nullptr, nullptr, nullptr};
  for (const auto& e : entries_) {
    int level = -1;
    if (e.root && !e.hasSelector) level = 0;
    if (e.ns == ns && !e.hasSelector && !e.root) level = 1;
    if (e.ns == ns && e.hasSelector &&
        std::all_of(e.selector.begin(), e.selector.end(), [&](const auto& kv) {
          auto it = labels.find(kv.first);
          return it != labels.end() && it->second == kv.second;
        }))
      level = 2;
    if (level >= 0 && !levels[level]) levels[level] = &e;
  }
  for (const Entry* e : levels)
    if (e) overlay(r, e->tracing, server);
  return r;
}

const TraceProvider* TracingConfig::provider(const std::string& name) const {
  auto it = providers_.find(name);
  return it == providers_.end() ? nullptr : &it->second;
}

TraceContext continueTrace(http1::Head& req, double samplingPercent) {
  TraceContext c;
  c.spanId = hexDigits(randomU64(), 16);
  std::string tp = req.header("traceparent");
  bool b3 = false;
  if (tp.size() == 55 && tp[2] == '-' && tp[35] == '-' && tp[52] == '-' &&
      isHex(std::string_view(tp).substr(3, 32), 32) &&
      isHex(std::string_view(tp).substr(36, 16), 16)) {
    c.traceId = tp.substr(3, 32);
    c.parentId = tp.substr(36, 16);
    c.sampled = tp.substr(53, 2) == "01";
  } else if (std::string id = req.header("x-b3-traceid"), span = req.header("x-b3-spanid");
             (isHex(id, 32) || isHex(id, 16)) && isHex(span, 16)) {
    b3 = true;
    c.traceId = id.size() == 16 ? std::string(16, '0') + id : id;
    c.parentId = span;
    std::string s = req.header("x-b3-sampled");
    c.sampled = s.empty() ? uniform(100) < samplingPercent : s == "1" || s == "true";
  } else {
    c.traceId = hexDigits(randomU64(), 16) + hexDigits(randomU64(), 16);
    c.sampled = samplingPercent > 0 && uniform(100) < samplingPercent;
  }
  req.set("traceparent", "00-" + c.traceId + "-" + c.spanId + (c.sampled ? "-01" : "-00"));
  if (b3) {
    req.set("x-b3-traceid", c.traceId);
    req.set("x-b3-spanid", c.spanId);
    req.set("x-b3-parentspanid", c.parentId);
    req.set("x-b3-sampled", c.sampled ? "1" : "0");
  }
  return c;
}

Json zipkinSpans(const std::vector<const Span*>& spans, size_t maxTagLength) {
  Json out = Json::array();
  for (const Span* s : spans) {
    Json tags = Json::object();
    for (const auto& [k, v] : s->tags)
      tags[k] = maxTagLength && v.size() > maxTagLength ? v.substr(0, maxTagLength) : v;
    Json z = {{"traceId", s->traceId},
              {"id", s->id},
              {"name", s->name},
              {"kind", s->server ? "SERVER" : "CLIENT"},
              {"timestamp", s->timestampUs},
              {"duration", std::max<int64_t>(s->durationUs, 1)},
              {"localEndpoint", {{"serviceName", s->service}}},
              {"tags", std::move(tags)}};
    if (!s->parentId.empty()) z["parentId"] = s->parentId;
    if (s->localIp) z["localEndpoint"]["ipv4"] = net::formatIpv4(s->localIp);
    if (s->remoteIp)
      z["remoteEndpoint"] = {{"ipv4", net::formatIpv4(s->remoteIp)}, {"port", s->remotePort}};
    out.push_back(std::move(z));
  }
  return out;
}

Json otlpSpans(const std::vector<const Span*>& spans) {
  std::map<std::string, Json> byService;
  for (const Span* s : spans) {
    Json attrs = Json::array();
    for (const auto& [k, v] : s->tags)
      attrs.push_back({{"key", k}, {"value", {{"stringValue", v}}}});
    Json o = {{"traceId", s->traceId},
              {"spanId", s->id},
              {"name", s->name},
              {"kind", s->server ? 2 : 3},  // SPAN_KIND_SERVER, SPAN_KIND_CLIENT
              {"startTimeUnixNano", std::to_string(s->timestampUs * 1000)},
              {"endTimeUnixNano", std::to_string((s->timestampUs + s->durationUs) * 1000)},
              {"attributes", std::move(attrs)},
              {"status", {{"code", s->error ? 2 : 0}}}};
    if (!s->parentId.empty()) o["parentSpanId"] = s->parentId;
    Json& list = byService[s->service];
    if (list.is_null()) list = Json::array();
    list.push_back(std::move(o));
  }
  Json resourceSpans = Json::array();
  for (auto& [service, list] : byService)
    resourceSpans.push_back(
        {{"resource",
          {{"attributes", {{{"key", "service.name"}, {"value", {{"stringValue", service}}}}}}}},
         {"scopeSpans", {{{"scope", {{"name", "podium-proxy"}}}, {"spans", std::move(list)}}}}});
  return {{"resourceSpans", std::move(resourceSpans)}};
}

void Tracer::record(Span span) {
  std::lock_guard<std::mutex> lock(mu_);
  ++recorded_;
  if (!span.providers.empty()) {
    if (pending_.size() >= kMaxPending) {
      pending_.pop_front();
      ++dropped_;
    }
    pending_.push_back(span);
  }
  if (recent_.size() >= kRecent) recent_.pop_front();
  recent_.push_back(std::move(span));
}

std::string Tracer::renderRecent(const std::string& traceId) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Span*> list;
  for (const auto& s : recent_)
    if (traceId.empty() || s.traceId == traceId) list.push_back(&s);
  return json::dump(zipkinSpans(list)) + "\n";
}

std::string Tracer::renderMetrics() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
  };
  counter("podium_tracing_spans_recorded_total", "Sampled spans recorded by this proxy.",
          recorded_);
  counter("podium_tracing_spans_exported_total", "Spans a tracing provider accepted.", exported_);
  counter("podium_tracing_spans_dropped_total",
          "Spans not exported: the queue was full or the provider failed.", dropped_);
  if (!failures_.empty())
    out +=
        "# HELP podium_tracing_export_failures_total Failed exports, by provider.\n"
        "# TYPE podium_tracing_export_failures_total counter\n";
  for (const auto& [provider, n] : failures_)
    out += "podium_tracing_export_failures_total{provider=\"" + provider + "\"} " +
           std::to_string(n) + "\n";
  return out;
}

void Tracer::flush(const TracingConfig& config) {
  std::deque<Span> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return;
  std::map<std::string, std::vector<const Span*>> byProvider;
  for (const auto& s : batch)
    for (const auto& p : s.providers) byProvider[p].push_back(&s);
  for (const auto& [name, spans] : byProvider) {
    const TraceProvider* p = config.provider(name);
    std::string error;
    if (!p)
      error = "no extensionProvider named " + name + " in MeshConfig";
    else if (!p->problem.empty())
      error = p->problem;
    if (error.empty()) {
      bool zipkin = p->kind == TraceProvider::Kind::Zipkin;
      std::string body =
          json::dump(zipkin ? zipkinSpans(spans, p->maxTagLength) : otlpSpans(spans));
      auto r = net::httpRequest(
          "POST", net::formatIpv4(p->ip), p->port, p->path, body, std::chrono::seconds(2),
          {{"Content-Type", "application/json"}, {"User-Agent", "podium-proxy"}});
      if (!r)
        error = r.error();
      else if (r->status < 200 || r->status >= 300)
        error = "HTTP " + std::to_string(r->status) + " from " + p->service;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (error.empty()) {
      exported_ += spans.size();
      lastError_.erase(name);
      continue;
    }
    failures_[name] += 1;
    dropped_ += spans.size();
    if (lastError_[name] != error)
      PODIUM_LOG(Warn) << "tracing: exporting " << spans.size() << " spans to " << name << ": "
                       << error;
    lastError_[name] = error;
  }
}

void Tracer::start(std::function<std::shared_ptr<const TracingConfig>()> config,
                   std::chrono::milliseconds interval) {
  exporter_ = std::thread([this, config = std::move(config), interval] {
    std::unique_lock<std::mutex> lock(runMu_);
    while (!stopping_) {
      cv_.wait_for(lock, interval, [this] { return stopping_; });
      lock.unlock();
      auto c = config();
      if (c) flush(*c);
      lock.lock();
    }
  });
}

void Tracer::stop() {
  {
    std::lock_guard<std::mutex> lock(runMu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (exporter_.joinable()) exporter_.join();
}

}  // namespace podium::proxy
