// The span of one request: who records it (the gateway, the sending pod or the receiving pod),
// under which Telemetry rule, and with Istio's tags.

#include <chrono>
#include <cstdlib>

#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "worker.h"

namespace podium::proxy {

int64_t wallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TraceSite traceSite(const ProxyConfig& config, uint32_t sourceIp, bool ingress,
                    const Endpoint* inboundPod) {
  TraceSite site;
  if (ingress) {
    // The node's ingress is Istio's ingress gateway, with that deployment's labels.
    site.canonicalService = "istio-ingressgateway";
    site.canonicalRevision = "latest";
    site.ns = "istio-system";
    site.rule = config.tracing().rule(
        site.ns, {{"app", "istio-ingressgateway"}, {"istio", "ingressgateway"}}, false);
  } else if (const Endpoint* pod = inboundPod ? inboundPod : config.podByIp(sourceIp)) {
    WorkloadLabels w = workloadLabels(config, *pod);
    site.canonicalService = w.canonicalService;
    site.canonicalRevision = w.canonicalRevision;
    site.ns = w.ns;
    site.server = inboundPod != nullptr;
    site.rule = config.tracing().rule(pod->ns, pod->labels, site.server);
  } else {
    // A client the proxy does not know (the node itself): the mesh-wide rule.
    site.canonicalService = "unknown";
    site.canonicalRevision = "latest";
    site.ns = "unknown";
    site.rule = config.tracing().rule("", {}, false);
  }
  site.service = site.canonicalService + "." + site.ns;
  return site;
}

void recordSpan(ProxyState& state, const TraceSite& site, const TraceContext& trace,
                const SpanFacts& f) {
  if (!trace.sampled || !site.rule.reporting || !f.request || !f.config) return;
  const http1::Head& req = *f.request;
  Span s;
  s.traceId = trace.traceId;
  s.id = trace.spanId;
  s.parentId = trace.parentId;
  s.server = site.server;
  s.service = site.service;
  s.timestampUs = f.startUs;
  s.durationUs = static_cast<int64_t>(f.ms * 1000);
  s.providers = site.rule.providers;
  s.error = f.status >= 500 || f.status == 0;
  std::string host = req.header("host");
  if (auto colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  std::string port = std::to_string(f.upstream && site.server ? f.upstream->port : f.servicePort);
  // Istio's operation name: the destination host and port, then the route's "/*".
  s.name = (f.service ? f.service->fqdn(f.config->domain()) : host) + ":" + port + "/*";
  if (f.upstream) {
    s.remoteIp = f.upstream->ip;
    s.remotePort = f.upstream->port;
  }
  std::string path(f.path);
  std::string scheme = req.header("x-forwarded-proto");
  auto& t = s.tags;
  t = {{"component", "proxy"},
       {"node_id", (site.ns == "istio-system" && site.canonicalService == "istio-ingressgateway"
                        ? "router~"
                        : "sidecar~") +
                       site.service},
       {"istio.canonical_service", site.canonicalService},
       {"istio.canonical_revision", site.canonicalRevision},
       {"istio.namespace", site.ns},
       {"istio.mesh_id", "cluster.local"},
       {"istio.cluster_id", "Kubernetes"},
       {"guid:x-request-id", req.header("x-request-id")},
       {"http.method", req.method},
       {"http.url", (scheme.empty() ? "http" : scheme) + "://" + req.header("host") + path},
       {"http.protocol", std::string(f.protocol)},
       {"http.status_code", std::to_string(f.status)},
       {"response_flags", std::string(f.flags)},
       {"request_size", std::to_string(f.requestBytes)},
       {"response_size", std::to_string(f.responseBytes)},
       {"upstream_cluster", std::string(f.cluster.empty() ? "-" : f.cluster)},
       {"upstream_cluster.name", std::string(f.cluster.empty() ? "-" : f.cluster)},
       {"downstream_cluster", "-"},
       {"user_agent", req.header("user-agent")},
       {"peer.address", net::formatIpv4(f.peerIp)}};
  if (f.upstream)
    t.emplace_back("upstream_address",
                   net::formatIpv4(f.upstream->ip) + ":" + std::to_string(f.upstream->port));
  if (!site.server) {
    // Where the request went, with Istio's metric label names: what the mesh graph's edges
    // select their traces by.
    if (f.service) {
      t.emplace_back("destination.service_name", f.service->name);
      t.emplace_back("destination.service_namespace", f.service->ns);
    }
    if (f.upstream) {
      WorkloadLabels w = workloadLabels(*f.config, *f.upstream);
      t.emplace_back("destination.workload", w.workload);
      t.emplace_back("destination.workload_namespace", w.ns);
      t.emplace_back("destination.canonical_service", w.canonicalService);
      t.emplace_back("destination.canonical_revision", w.canonicalRevision);
    }
  }
  if (s.error) t.emplace_back("error", "true");
  for (const auto& tag : site.rule.tags) {
    std::string v = tag.value;
    if (tag.kind == CustomTag::Kind::Header) {
      v = req.header(strings::toLower(tag.value));
      if (v.empty()) v = tag.defaultValue;
    } else if (tag.kind == CustomTag::Kind::Environment) {
      const char* e = getenv(tag.value.c_str());
      v = e ? e : tag.defaultValue;
    }
    t.emplace_back(tag.name, std::move(v));
  }
  state.tracer.record(std::move(s));
}

}  // namespace podium::proxy
