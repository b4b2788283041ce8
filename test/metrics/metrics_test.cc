#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "metrics/metrics_apis.h"
#include "metrics/traces.h"
#include "metrics/usage_store.h"
#include "podium/client/objects.h"
#include "support/fake_client.h"

namespace podium::metrics {
namespace {

namespace res = client::resources;
using std::chrono::milliseconds;

Json summary(uint64_t nodeNanoCores, const std::string& pod, uint64_t podNanoCores) {
  Json container = {{"name", "c"},
                    {"cpu", {{"time", "2026-01-01T00:00:00Z"}, {"usageNanoCores", podNanoCores}}},
                    {"memory", {{"workingSetBytes", 10 << 20}}}};
  return {{"node",
           {{"nodeName", "n1"},
            {"cpu", {{"time", "2026-01-01T00:00:00Z"}, {"usageNanoCores", nodeNanoCores}}},
            {"memory", {{"workingSetBytes", 1 << 30}}}}},
          {"pods",
           {{{"podRef", {{"name", pod}, {"namespace", "web"}}}, {"containers", {container}}},
            // A pod sampled once has no rate yet: left out.
            {{"podRef", {{"name", "new"}, {"namespace", "web"}}},
             {"containers", {{{"name", "c"}, {"cpu", {{"usageCoreNanoSeconds", 5}}}}}}}}}};
}

Json mesh(std::map<std::string, double> requests) {
  Json pods = Json::object();
  for (const auto& [k, n] : requests) pods[k] = {{"requests", n}, {"durationMsSum", n * 2}};
  return {{"pods", pods}};
}

TEST(UsageStore, KeepsTheLatestSummaryWhileItIsFresh) {
  UsageStore store(milliseconds(1000), milliseconds(5000));
  TimePoint t0{};
  store.addSummary("n1", summary(2'000'000'000, "a", 250'000'000), t0);
  auto node = store.node("n1", t0);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->nanoCores, 2'000'000'000u);
  auto pod = store.pod("web", "a", t0);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->containers[0].nanoCores, 250'000'000u);
  EXPECT_FALSE(store.pod("web", "new", t0));
  // A node that stopped answering: its numbers go stale.
  EXPECT_FALSE(store.node("n1", t0 + milliseconds(6000)));
}

TEST(UsageStore, RequestRatesSumTheProxiesOverTheWindow) {
  UsageStore store(milliseconds(1000), milliseconds(5000));
  TimePoint t0{};
  EXPECT_FALSE(store.requests("web", "a", t0));
  store.addMesh("n1", mesh({{"web/a", 100}}), t0);
  store.addMesh("n2", mesh({}), t0);
  store.addMesh("n1", mesh({{"web/a", 150}}), t0 + milliseconds(500));
  store.addMesh("n1", mesh({{"web/a", 300}}), t0 + milliseconds(1000));
  store.addMesh("n2", mesh({{"web/a", 50}}), t0 + milliseconds(1000));  // a second sender
  auto rate = store.requests("web", "a", t0 + milliseconds(1000));
  ASSERT_TRUE(rate);
  EXPECT_DOUBLE_EQ(rate->perSecond, 200 + 50);
  EXPECT_DOUBLE_EQ(rate->meanMs(), 2);
  // Nothing sent to a pod: rate 0, not unknown.
  auto idle = store.requests("web", "b", t0 + milliseconds(1000));
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->perSecond, 0);
  // A proxy restart (counters start over) is skipped, not a negative rate.
  store.addMesh("n1", mesh({{"web/a", 10}}), t0 + milliseconds(2000));
  rate = store.requests("web", "a", t0 + milliseconds(2000));
  ASSERT_TRUE(rate);
  EXPECT_GE(rate->perSecond, 0);
}

class MetricsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake.add(res::kNodes, {{"metadata", {{"name", "n1"}, {"labels", {{"zone", "a"}}}}}});
    for (const char* name : {"a", "b"})
      fake.add(res::kPods,
               {{"metadata", {{"name", name}, {"namespace", "web"}, {"labels", {{"app", name}}}}},
                {"spec", {{"nodeName", "n1"}}},
                {"status", {{"phase", "Running"}}}});
    fake.add(res::kServices, {{"metadata", {{"name", "svc"}, {"namespace", "web"}}},
                              {"spec", {{"selector", {{"app", "a"}}}}}});
    view.informers->informer(res::kNodes);
    view.informers->informer(res::kPods);
    view.informers->informer(res::kServices);
    view.informers->start();
    ASSERT_TRUE(view.informers->waitForSync(std::chrono::seconds(5)));
    store->addSummary("n1", summary(2'000'000'000, "a", 250'000'000), clock.monotonic());
    store->addMesh("n1", mesh({{"web/a", 0}}), clock.monotonic());
    clock.advance(milliseconds(1000));
    store->addMesh("n1", mesh({{"web/a", 40}}), clock.monotonic());
  }
  void TearDown() override { view.informers->stop(); }

  testing::FakeClock clock;
  testing::FakeClient fake{clock};
  std::shared_ptr<UsageStore> store =
      std::make_shared<UsageStore>(milliseconds(1000), milliseconds(5000));
  ClusterView view{store, nullptr,
                   std::make_shared<client::InformerFactory>(fake, milliseconds(0), clock), &clock};
};

TEST_F(MetricsApiTest, ServesNodeAndPodMetricsAsMetricsServerDoes) {
  auto api = newResourceMetricsApi(view);
  auto nodes = api->get("nodes", {});
  ASSERT_TRUE(nodes);
  ASSERT_EQ((*nodes)["items"].size(), 1u);
  EXPECT_EQ(json::getString((*nodes)["items"][0], {"usage", "cpu"}), "2000000000n");
  EXPECT_EQ(json::getString((*nodes)["items"][0], {"usage", "memory"}), "1048576Ki");
  auto pods = api->get("namespaces/web/pods", {"app=a", "", ""});
  ASSERT_TRUE(pods);
  ASSERT_EQ((*pods)["items"].size(), 1u);
  EXPECT_EQ(json::getString((*pods)["items"][0], {"kind"}), "PodMetrics");
  EXPECT_EQ(json::getString((*pods)["items"][0]["containers"][0], {"usage", "cpu"}), "250000000n");
  // b has no numbers yet: absent from lists, 404 by name.
  EXPECT_EQ((*api->get("namespaces/web/pods", {}))["items"].size(), 1u);
  auto b = api->get("namespaces/web/pods/b", {});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), 404);
  EXPECT_EQ(api->get("namespaces/web/pods", {"app in (", "", ""}).error().code(), 400);
  EXPECT_EQ(api->get("deployments", {}).error().code(), 404);
}

TEST_F(MetricsApiTest, ServesRequestRatesOfPodsAndServices) {
  auto api = newCustomMetricsApi(view);
  auto pods = api->get("namespaces/web/pods/*/istio_requests_per_second", {});
  ASSERT_TRUE(pods);
  ASSERT_EQ((*pods)["items"].size(), 2u);
  EXPECT_EQ(json::getString((*pods)["items"][0], {"describedObject", "name"}), "a");
  EXPECT_EQ(json::getString((*pods)["items"][0], {"value"}), "40000m");
  EXPECT_EQ(json::getString((*pods)["items"][1], {"value"}), "0m");
  auto svc = api->get("namespaces/web/services/svc/istio_requests_per_second", {});
  ASSERT_TRUE(svc);
  EXPECT_EQ(json::getString((*svc)["items"][0], {"describedObject", "kind"}), "Service");
  EXPECT_EQ(json::getString((*svc)["items"][0], {"value"}), "40000m");
  auto latency = api->get("namespaces/web/pods/a/istio_request_duration_milliseconds", {});
  ASSERT_TRUE(latency);
  EXPECT_EQ(json::getString((*latency)["items"][0], {"value"}), "2000m");
  EXPECT_EQ(api->get("namespaces/web/pods/*/no_such_metric", {}).error().code(), 404);
  EXPECT_EQ(api->get("namespaces/web/pods/zz/istio_requests_per_second", {}).error().code(), 404);
}

TEST_F(MetricsApiTest, TheMeshGraphSplitsAServiceBetweenVersions) {
  auto edge = [](const char* version, double requests, double errors) {
    return Json{{"source", "istio-ingressgateway"},
                {"sourceNamespace", "istio-system"},
                {"service", "svc"},
                {"serviceNamespace", "web"},
                {"workload", std::string("app-") + version},
                {"version", version},
                {"mtls", true},
                {"requests", requests},
                {"errors", errors},
                {"buckets", {0, requests, requests}}};
  };
  Json bounds = {1, 5};
  store->addMesh("n1",
                 {{"pods", Json::object()},
                  {"bounds", bounds},
                  {"edges", {edge("v1", 0, 0), edge("v2", 0, 0)}}},
                 clock.monotonic());
  clock.advance(milliseconds(1000));
  store->addMesh("n1",
                 {{"pods", Json::object()},
                  {"bounds", bounds},
                  {"edges", {edge("v1", 90, 0), edge("v2", 10, 1)}}},
                 clock.monotonic());
  auto graph = newMeshGraphApi(view)->get("graph", {});
  ASSERT_TRUE(graph);
  std::map<std::string, Json> edges;
  for (const auto& e : (*graph)["edges"]) edges[json::str(e, "to")] = e;
  const Json& v1 = edges["version/web/app-v1/v1"];
  EXPECT_DOUBLE_EQ(v1["share"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(edges["version/web/app-v2/v2"]["errorRatio"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(edges["service/web/svc"]["requestsPerSecond"].get<double>(), 100);
  EXPECT_TRUE(edges["service/web/svc"]["mtls"].get<bool>());
  EXPECT_GT(v1["p95Ms"].get<double>(), 1);
  EXPECT_LE(v1["p99Ms"].get<double>(), 5);
}

// Two nodes' proxies, each holding the spans it recorded (one span on both, as a retry of a
// read would show it).
class FakeSpans : public NodeSource {
 public:
  Expected<Json, std::string> get(const Json& node, const std::string& path) override {
    paths.push_back(path);
    auto span = [](const char* trace, const char* id, const char* parent, const char* service,
                   int64_t ts, const char* workload) {
      Json s = {{"traceId", trace},
                {"id", id},
                {"timestamp", ts},
                {"duration", 100},
                {"name", "x"},
                {"localEndpoint", {{"serviceName", service}}},
                {"tags", {{"destination.workload", workload}, {"http.status_code", "200"}}}};
      if (*parent) s["parentId"] = parent;
      return s;
    };
    Json all = Json::array();
    if (client::nameOf(node) == "n1") {
      all.push_back(span("aa", "1", "", "gw.istio-system", 1000, "web-v1"));
      all.push_back(span("bb", "3", "", "gw.istio-system", 2000, "web-v2"));
    } else {
      all.push_back(span("aa", "2", "1", "web.shop", 1010, ""));
      all.push_back(span("aa", "1", "", "gw.istio-system", 1000, "web-v1"));
    }
    if (auto q = path.find("?traceId="); q != std::string::npos) {
      Json some = Json::array();
      for (auto& s : all)
        if (s["traceId"] == path.substr(q + 9)) some.push_back(s);
      return some;
    }
    return all;
  }
  std::vector<std::string> paths;
};

TEST_F(MetricsApiTest, TracesJoinTheNodesSpans) {
  fake.add(res::kNodes, {{"metadata", {{"name", "n2"}}}});
  for (int i = 0; i < 500 && view.nodes().list().size() < 2; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  ASSERT_EQ(view.nodes().list().size(), 2u);
  FakeSpans source;
  view.spans = std::make_shared<SpanReader>(&source);
  auto api = newMeshGraphApi(view);
  auto list = api->get("traces", {});
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ((*list)["items"].size(), 2u);
  const Json& newest = (*list)["items"][0];
  EXPECT_EQ(newest["traceId"], "bb");
  const Json& aa = (*list)["items"][1];
  EXPECT_EQ(aa["spans"], 2);  // the span both nodes listed, once
  EXPECT_EQ(aa["durationMicros"], 110);
  EXPECT_EQ(aa["rootService"], "gw.istio-system");
  // Selected by span tags (and `service`), limited.
  auto v1 = api->get("traces", {"destination.workload=web-v1", "", "", 0});
  ASSERT_EQ((*v1)["items"].size(), 1u);
  EXPECT_EQ((*v1)["items"][0]["traceId"], "aa");
  EXPECT_EQ((*api->get("traces", {"service=web.shop", "", "", 0}))["items"].size(), 1u);
  EXPECT_EQ((*api->get("traces", {"", "", "", 1}))["items"].size(), 1u);
  // One trace, its spans oldest first; unknown ids 404, malformed ones 400.
  auto one = api->get("traces/aa", {});
  ASSERT_TRUE(one);
  ASSERT_EQ((*one)["spans"].size(), 2u);
  EXPECT_EQ((*one)["spans"][1]["parentId"], "1");
  EXPECT_EQ(source.paths.back(), "/stats/traces?traceId=aa");
  EXPECT_EQ(api->get("traces/cc", {}).error().code(), 404);
  EXPECT_EQ(api->get("traces/not-hex", {}).error().code(), 400);
  EXPECT_EQ(api->get("traces", {"a in (", "", "", 0}).error().code(), 400);
  // Once the metrics server stops, nothing is read.
  view.spans->detach();
  EXPECT_EQ((*api->get("traces", {}))["items"].size(), 0u);
}

TEST(AggregatedPath, SplitsGroupVersionRestAndQuery) {
  api::AggregatedPath p;
  ASSERT_TRUE(api::parseAggregatedPath(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/web/pods/%2A/rps?labelSelector=app%3Dweb",
      &p));
  EXPECT_EQ(p.group, "custom.metrics.k8s.io");
  EXPECT_EQ(p.version, "v1beta2");
  EXPECT_EQ(p.rest, "namespaces/web/pods/*/rps");
  EXPECT_EQ(p.query.labelSelector, "app=web");
  ASSERT_TRUE(api::parseAggregatedPath("/apis/mesh.podium.io/v1alpha1/traces?limit=20", &p));
  EXPECT_EQ(p.query.limit, 20);
  EXPECT_FALSE(api::parseAggregatedPath("/api/v1/pods", &p));
}

}  // namespace
}  // namespace podium::metrics
