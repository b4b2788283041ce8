#pragma once

// Distributed tracing as Istio configures it and Envoy does it.
//
// Configuration: Istio's Telemetry API (telemetry.istio.io/v1 `Telemetry`, `spec.tracing`) picks,
// per workload, the providers, the sampling percentage, custom tags and whether client or server
// spans are reported; a Telemetry in the root namespace (istio-system) applies to the mesh, one
// without a selector to its namespace, one with a selector to its workloads, the more specific
// overriding field by field. Providers are MeshConfig's `extensionProviders` (the `istio`
// ConfigMap in istio-system, key `mesh`): `zipkin` (JSON v2 to `service:port` + `path`, default
// /api/v2/spans) and `opentelemetry` with `http` (OTLP/HTTP JSON, default path /v1/traces).
// Without a Telemetry, MeshConfig's `defaultProviders.tracing` and sampling apply (1 %, Istio's
// default).
//
// Context: W3C `traceparent` (and B3's x-b3-* where a caller sent them) is continued with the
// caller's sampling decision, or begun with this proxy's; every hop forwards its own span id.
//
// Spans: the ingress gateway and a pod's outbound requests record CLIENT spans, a pod's inbound
// requests SERVER spans, with Istio's tags. Sampled spans are kept in memory (the newest 4,096,
// GET /stats/traces on the metrics port) and exported once a second by one thread per proxy.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http1.h"
#include "podium/common/json.h"

namespace podium::proxy {

struct TraceProvider {
  enum class Kind { Zipkin, OpenTelemetry };
  Kind kind = Kind::Zipkin;
  std::string service;  // as MeshConfig names it
  uint32_t ip = 0;      // resolved: an endpoint of that Service (0: not resolvable now)
  uint16_t port = 0;
  std::string path;
  size_t maxTagLength = 256;
  std::string problem;  // why it cannot be used, when it cannot
};

struct CustomTag {
  enum class Kind { Literal, Environment, Header };
  std::string name;
  Kind kind = Kind::Literal;
  std::string value;  // the literal, or the variable's or header's name
  std::string defaultValue;
};

// How one side (client or server) of one workload traces.
struct TracingRule {
  double samplingPercent = 1.0;
  std::vector<std::string> providers;  // names in MeshConfig's extensionProviders
  bool reporting = true;               // false: disableSpanReporting, or the mode leaves it out
  std::vector<CustomTag> tags;
};

class TracingConfig {
 public:
  // `resolve(service, port)`: an address for a provider's service ("ns/host" or a host),
  // false if it has no endpoint.
  using Resolver = std::function<bool(const std::string& service, uint16_t port, uint32_t* ip,
                                      uint16_t* endpointPort)>;
  // From the snapshot's "telemetries" and "meshConfig" (the `istio` ConfigMap).
  void build(const Json& snapshot, const Resolver& resolve);
  // The rule of workload (ns, labels) on one side.
  TracingRule rule(const std::string& ns, const std::map<std::string, std::string>& labels,
                   bool server) const;
  const TraceProvider* provider(const std::string& name) const;
  const std::map<std::string, TraceProvider>& providers() const { return providers_; }

 private:
  struct Entry {
    std::string ns;
    bool root = false;
    std::map<std::string, std::string> selector;
    bool hasSelector = false;
    std::string created, name;
    Json tracing;  // spec.tracing
  };
  std::vector<Entry> entries_;  // oldest first
  std::map<std::string, TraceProvider> providers_;
  std::vector<std::string> defaultProviders_;
  double defaultSampling_ = 1.0;
};

// A request's place in its trace as this proxy forwards it.
struct TraceContext {
  std::string traceId;   // 32 hex digits
  std::string parentId;  // the caller's span, "" at the root
  std::string spanId;    // ours, forwarded to the next hop
  bool sampled = false;
  bool valid() const { return !traceId.empty(); }
};

// Continues the caller's trace in `req` (traceparent, else B3), or begins one sampled at
// `samplingPercent`, and writes ours back: traceparent always, x-b3-* when the caller used B3.
TraceContext continueTrace(http1::Head& req, double samplingPercent);

struct Span {
  std::string traceId, id, parentId, name;
  bool server = false;  // SERVER, else CLIENT
  std::string service;  // localEndpoint.serviceName: "<canonical service>.<namespace>"
  uint32_t localIp = 0, remoteIp = 0;
  uint16_t remotePort = 0;
  int64_t timestampUs = 0, durationUs = 0;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::string> providers;  // where it is exported
  bool error = false;
};

// Zipkin's JSON v2 form of spans (what /stats/traces and the zipkin exporter send).
Json zipkinSpans(const std::vector<const Span*>& spans, size_t maxTagLength = 0);
// OTLP/HTTP JSON (ExportTraceServiceRequest) of spans.
Json otlpSpans(const std::vector<const Span*>& spans);

class Tracer {
 public:
  static constexpr size_t kRecent = 4096;      // spans kept for GET /stats/traces
  static constexpr size_t kMaxPending = 8192;  // spans waiting for export; older ones dropped

  ~Tracer() { stop(); }
  void record(Span span);
  // The recent spans as Zipkin JSON v2 (an array), of one trace when `traceId` is not empty.
  std::string renderRecent(const std::string& traceId) const;
  // Prometheus text: podium_tracing_spans_{recorded,exported,dropped}_total,
  // podium_tracing_export_failures_total{provider}.
  std::string renderMetrics() const;
  // Starts exporting every `interval`, finding providers in `config()`'s current tracing.
  void start(std::function<std::shared_ptr<const TracingConfig>()> config,
             std::chrono::milliseconds interval);
  void stop();
  // Sends what is pending now (the exporter's one round; tests call it directly).
  void flush(const TracingConfig& config);

 private:
  mutable std::mutex mu_;
  std::deque<Span> recent_, pending_;
  uint64_t recorded_ = 0, exported_ = 0, dropped_ = 0;
  std::map<std::string, uint64_t> failures_;
  std::map<std::string, std::string> lastError_;
  std::mutex runMu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread exporter_;
};

}  // namespace podium::proxy
