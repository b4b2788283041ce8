#include "proxy/tracing.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "proxy/config.h"
#include "proxy/worker.h"

namespace podium::proxy {
namespace {

const char* kMesh = R"(extensionProviders:
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
- name: otel
  opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}
- name: otel-http
  opentelemetry:
    service: otel.observability.svc.cluster.local
    port: 4318
    http: {path: /custom/traces}
defaultConfig:
  tracing: {sampling: 5}
)";

Json snapshot() {
  Json snap = Json::parse(R"({
    "services": [
      {"metadata": {"name": "zipkin", "namespace": "istio-system"},
       "spec": {"clusterIP": "10.43.0.30", "ports": [{"name": "http", "port": 9411}]}},
      {"metadata": {"name": "otel", "namespace": "observability"},
       "spec": {"clusterIP": "10.43.0.31", "ports": [{"name": "grpc", "port": 4317},
                                                     {"name": "http", "port": 4318}]}}],
    "endpoints": [
      {"metadata": {"name": "zipkin", "namespace": "istio-system"},
       "subsets": [{"notReadyAddresses": [{"ip": "10.42.0.8"}], "addresses": [{"ip": "10.42.0.9"}],
                    "ports": [{"name": "http", "port": 19411}]}]}],
    "telemetries": [
      {"metadata": {"name": "mesh-default", "namespace": "istio-system",
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
       "spec": {"tracing": [{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 10,
                             "customTags": {"team": {"literal": {"value": "core"}}}}]}},
      {"metadata": {"name": "ns", "namespace": "shop",
                    "creationTimestamp": "2026-01-02T00:00:00Z"},
       "spec": {"tracing": [{"randomSamplingPercentage": 50}]}},
      {"metadata": {"name": "web", "namespace": "shop",
                    "creationTimestamp": "2026-01-03T00:00:00Z"},
       "spec": {"selector": {"matchLabels": {"app": "web"}},
                "tracing": [{"match": {"mode": "SERVER"}, "randomSamplingPercentage": 100,
                             "customTags": {"user": {"header": {"name": "X-User",
                                                                 "defaultValue": "anon"}}}},
                            {"match": {"mode": "CLIENT"}, "disableSpanReporting": true}]}}]})");
  snap["meshConfig"] =
      Json::array({{{"metadata", {{"name", "istio"}}}, {"data", {{"mesh", kMesh}}}}});
  return snap;
}

TEST(Tracing, TelemetryLevelsOverrideFieldByField) {
  auto c = ProxyConfig::build(snapshot());
  const TracingConfig& t = c->tracing();
  // No Telemetry of its own: the mesh-wide one.
  TracingRule other = t.rule("default", {{"app", "x"}}, false);
  EXPECT_EQ(other.samplingPercent, 10);
  EXPECT_EQ(other.providers, std::vector<std::string>{"zipkin"});
  ASSERT_EQ(other.tags.size(), 1u);
  EXPECT_EQ(other.tags[0].value, "core");
  // The namespace's sampling over the mesh's providers.
  TracingRule api = t.rule("shop", {{"app", "api"}}, true);
  EXPECT_EQ(api.samplingPercent, 50);
  EXPECT_EQ(api.providers, std::vector<std::string>{"zipkin"});
  // The workload's, per side.
  TracingRule webServer = t.rule("shop", {{"app", "web"}}, true);
  EXPECT_EQ(webServer.samplingPercent, 100);
  EXPECT_TRUE(webServer.reporting);
  EXPECT_EQ(webServer.tags.size(), 2u);
  TracingRule webClient = t.rule("shop", {{"app", "web"}}, false);
  EXPECT_EQ(webClient.samplingPercent, 50);
  EXPECT_FALSE(webClient.reporting);
}

TEST(Tracing, ProvidersResolveToAReadyEndpoint) {
  auto c = ProxyConfig::build(snapshot());
  const TraceProvider* z = c->tracing().provider("zipkin");
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(z->problem.empty()) << z->problem;
  EXPECT_EQ(z->ip, 0x0A2A0009u);  // 10.42.0.9: the ready one
  EXPECT_EQ(z->port, 19411);
  EXPECT_EQ(z->path, "/api/v2/spans");
  const TraceProvider* grpc = c->tracing().provider("otel");
  ASSERT_NE(grpc, nullptr);
  EXPECT_NE(grpc->problem.find("opentelemetry.http"), std::string::npos);
  const TraceProvider* http = c->tracing().provider("otel-http");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->path, "/custom/traces");
  EXPECT_NE(http->problem.find("no ready endpoint"), std::string::npos);  // none listed
}

TEST(Tracing, MeshDefaultsApplyWithoutTelemetry) {
  Json snap = snapshot();
  snap.erase("telemetries");
  auto c = ProxyConfig::build(snap);
  TracingRule r = c->tracing().rule("default", {}, false);
  EXPECT_EQ(r.samplingPercent, 5);
  EXPECT_TRUE(r.providers.empty());
  EXPECT_EQ(ProxyConfig::build(Json::object())->tracing().rule("a", {}, true).samplingPercent, 1);
}

TEST(Tracing, ContinuesTheCallersTraceWithItsDecision) {
  http1::Head req;
  req.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  TraceContext c = continueTrace(req, 0);
  EXPECT_EQ(c.traceId, "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c.parentId, "b7ad6b7169203331");
  EXPECT_TRUE(c.sampled);  // the caller's flag, not our 0 %
  EXPECT_EQ(req.header("traceparent"), "00-0af7651916cd43dd8448eb211c80319c-" + c.spanId + "-01");
  EXPECT_FALSE(req.has("x-b3-traceid"));

  http1::Head b3;
  b3.set("x-b3-traceid", "463ac35c9f6413ad");
  b3.set("x-b3-spanid", "a2fb4a1d1a96d312");
  b3.set("x-b3-sampled", "0");
  TraceContext d = continueTrace(b3, 100);
  EXPECT_EQ(d.traceId, "0000000000000000463ac35c9f6413ad");
  EXPECT_FALSE(d.sampled);
  EXPECT_EQ(b3.header("x-b3-parentspanid"), "a2fb4a1d1a96d312");
  EXPECT_EQ(b3.header("x-b3-spanid"), d.spanId);
  EXPECT_EQ(b3.header("traceparent").substr(53), "00");

  // Malformed or all-zero contexts begin a new trace at our sampling.
  for (const char* bad : {"00-00000000000000000000000000000000-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-zzzzzzzzzzzzzzzz-01", "garbage"}) {
    http1::Head r;
    r.set("traceparent", bad);
    TraceContext n = continueTrace(r, 100);
    EXPECT_TRUE(n.sampled);
    EXPECT_TRUE(n.parentId.empty());
    EXPECT_EQ(n.traceId.size(), 32u);
    EXPECT_NE(r.header("traceparent"), bad);
  }
  http1::Head none;
  EXPECT_FALSE(continueTrace(none, 0).sampled);
  EXPECT_EQ(none.header("traceparent").substr(53), "00");
}

Span span(const std::string& trace, const std::string& id, const std::string& parent) {
  Span s;
  s.traceId = trace;
  s.id = id;
  s.parentId = parent;
  s.name = "web.shop.svc.cluster.local:80/*";
  s.service = "web.shop";
  s.timestampUs = 1700000000000000;
  s.durationUs = 1500;
  s.tags = {{"http.status_code", "503"}, {"long", std::string(300, 'x')}};
  s.error = true;
  return s;
}

TEST(Tracing, ZipkinAndOtlpForms) {
  Span s = span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "");
  s.server = true;
  s.remoteIp = 0x0A2A0009;
  s.remotePort = 8080;
  Json z = zipkinSpans({&s}, 256);
  ASSERT_EQ(z.size(), 1u);
  EXPECT_EQ(z[0]["kind"], "SERVER");
  EXPECT_FALSE(z[0].contains("parentId"));
  EXPECT_EQ(z[0]["duration"], 1500);
  EXPECT_EQ(z[0]["localEndpoint"]["serviceName"], "web.shop");
  EXPECT_EQ(z[0]["remoteEndpoint"]["ipv4"], "10.42.0.9");
  EXPECT_EQ(z[0]["tags"]["long"].get<std::string>().size(), 256u);  // maxTagLength
  Json o = otlpSpans({&s});
  const Json& os = o["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(o["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "web.shop");
  EXPECT_EQ(os["kind"], 2);
  EXPECT_EQ(os["startTimeUnixNano"], "1700000000000000000");
  EXPECT_EQ(os["endTimeUnixNano"], "1700000000001500000");
  EXPECT_EQ(os["status"]["code"], 2);
}

// A collector on a loopback port that answers `status` and keeps what it was sent.
struct Collector {
  int fd = -1;
  uint16_t port = 0;
  std::string received;
  std::thread thread;
  explicit Collector(int status) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 4);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this, status] {
      int c = accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[65536];
      for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        received.append(buf, static_cast<size_t>(n));
        auto head = received.find("\r\n\r\n");
        auto cl = received.find("Content-Length: ");
        if (head != std::string::npos && cl != std::string::npos &&
            received.size() >= head + 4 + std::stoul(received.substr(cl + 16)))
          break;
      }
      std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
      (void)!write(c, r.data(), r.size());
      close(c);
    });
  }
  ~Collector() {
    shutdown(fd, SHUT_RDWR);
    if (thread.joinable()) thread.join();
    close(fd);
  }
};

TEST(Tracing, FlushPostsToTheProvidersAndCountsFailures) {
  Collector collector(202);
  Json snap = snapshot();
  snap["endpoints"][0]["subsets"][0]["addresses"][0]["ip"] = "127.0.0.1";
  snap["endpoints"][0]["subsets"][0]["ports"][0]["port"] = collector.port;
  auto c = ProxyConfig::build(snap);
  Tracer tracer;
  Span a = span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "");
  a.providers = {"zipkin"};
  Span b = span("0af7651916cd43dd8448eb211c80319c", "c7ad6b7169203331", "b7ad6b7169203331");
  b.providers = {"zipkin", "missing"};
  Span kept = span("1af7651916cd43dd8448eb211c80319c", "d7ad6b7169203331", "");  // no provider
  tracer.record(a);
  tracer.record(b);
  tracer.record(kept);
  tracer.flush(c->tracing());
  collector.thread.join();  // it took one request
  EXPECT_EQ(collector.received.rfind("POST /api/v2/spans HTTP/1.1\r\n", 0), 0u);
  auto body = Json::parse(collector.received.substr(collector.received.find("\r\n\r\n") + 4));
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body[1]["parentId"], "b7ad6b7169203331");
  std::string m = tracer.renderMetrics();
  EXPECT_NE(m.find("podium_tracing_spans_recorded_total 3"), std::string::npos) << m;
  EXPECT_NE(m.find("podium_tracing_spans_exported_total 2"), std::string::npos) << m;
  EXPECT_NE(m.find("podium_tracing_export_failures_total{provider=\"missing\"} 1"),
            std::string::npos)
      << m;
  // Every recorded span is kept for the UI, exported or not.
  EXPECT_EQ(Json::parse(tracer.renderRecent("")).size(), 3u);
  EXPECT_EQ(Json::parse(tracer.renderRecent("1af7651916cd43dd8448eb211c80319c")).size(), 1u);
}

TEST(Tracing, SpansOfTheGatewayAndOfPodsCarryIstiosTags) {
  Json snap = snapshot();
  snap["pods"] = Json::parse(R"([{"metadata": {"name": "web-1", "namespace": "shop",
      "labels": {"app": "web", "version": "v2"}}, "status": {"podIP": "10.42.0.5"}}])");
  ProxyState state;
  state.setConfig(ProxyConfig::build(snap));
  auto c = state.config();
  TraceSite gw = traceSite(*c, 0, true, nullptr);
  EXPECT_EQ(gw.service, "istio-ingressgateway.istio-system");
  EXPECT_FALSE(gw.server);
  const Endpoint* pod = c->podByIp(0x0A2A0005);
  ASSERT_NE(pod, nullptr);
  TraceSite in = traceSite(*c, 0, false, pod);
  EXPECT_EQ(in.service, "web.shop");
  EXPECT_TRUE(in.server);
  EXPECT_EQ(in.rule.samplingPercent, 100);

  http1::Head req;
  req.method = "GET";
  req.set("host", "web.shop:80");
  req.set("x-request-id", "r-1");
  req.set("x-user", "ada");
  TraceContext t = continueTrace(req, 100);
  SpanFacts f;
  f.config = c.get();
  f.request = &req;
  f.protocol = "HTTP/1.1";
  f.path = "/cart?id=1";
  f.status = 200;
  f.flags = "-";
  Endpoint target = *pod;
  target.port = 8080;
  f.upstream = &target;
  f.startUs = 5;
  f.ms = 2.5;
  recordSpan(state, in, t, f);
  TraceContext unsampled = t;
  unsampled.sampled = false;
  recordSpan(state, in, unsampled, f);
  Json spans = Json::parse(state.tracer.renderRecent(""));
  ASSERT_EQ(spans.size(), 1u);
  const Json& s = spans[0];
  EXPECT_EQ(s["kind"], "SERVER");
  EXPECT_EQ(s["duration"], 2500);
  EXPECT_EQ(s["name"], "web.shop:8080/*");
  EXPECT_EQ(s["tags"]["istio.canonical_revision"], "v2");
  EXPECT_EQ(s["tags"]["guid:x-request-id"], "r-1");
  EXPECT_EQ(s["tags"]["http.url"], "http://web.shop:80/cart?id=1");
  EXPECT_EQ(s["tags"]["user"], "ada");   // the workload's header tag
  EXPECT_EQ(s["tags"]["team"], "core");  // the mesh's literal
  EXPECT_FALSE(s["tags"].contains("error"));
}

}  // namespace
}  // namespace podium::proxy
