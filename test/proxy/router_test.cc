#include "proxy/router.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <set>

#include "proxy/worker.h"

namespace podium::proxy {
namespace {

// A Service with three ready endpoints and a DestinationRule with `policy` as trafficPolicy.
std::shared_ptr<const ProxyConfig> config(const Json& policy) {
  Json snap = Json::parse(R"({
    "services": [{"metadata": {"name": "app", "namespace": "ns"},
                  "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}}],
    "endpoints": [{"metadata": {"name": "app", "namespace": "ns"},
                   "subsets": [{"addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}, {"ip": "10.42.0.3"}],
                                "ports": [{"name": "http", "port": 8080}]}]}],
    "destinationRules": [{"metadata": {"name": "app", "namespace": "ns"},
                          "spec": {"host": "app"}}]})");
  snap["destinationRules"][0]["spec"]["trafficPolicy"] = policy;
  return ProxyConfig::build(snap);
}

class RouterTest : public ::testing::Test {
 protected:
  void use(const Json& policy) {
    config_ = config(policy);
    RequestSource from{0x0a2a0009, "ns", "app", 80, 0, false};
    ASSERT_EQ(findTarget(*config_, from, nullptr, "app", 80, &target_), "");
    ASSERT_EQ(target_.endpoints.size(), 3u);
  }
  const Endpoint* pick(const http1::Head& req = {}, const std::set<const Endpoint*>& tried = {}) {
    return pickEndpoint(worker_, target_, req, 0x0a2a0009, tried);
  }
  ProxyState state_;
  Worker worker_{state_, socket(AF_INET, SOCK_STREAM, 0)};
  std::shared_ptr<const ProxyConfig> config_;
  Target target_;
};

TEST_F(RouterTest, RoundRobinVisitsEveryEndpoint) {
  use(Json::object());
  std::set<const Endpoint*> seen;
  for (int i = 0; i < 3; ++i) seen.insert(pick());
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(RouterTest, UntriedEndpointsComeFirst) {
  use(Json::object());
  std::set<const Endpoint*> tried = {target_.endpoints[0], target_.endpoints[1]};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pick({}, tried), target_.endpoints[2]);
}

TEST_F(RouterTest, ConsistentHashKeepsAKeyOnOneEndpoint) {
  use(Json::parse(R"({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}})"));
  std::set<const Endpoint*> forAlice, all;
  for (int i = 0; i < 20; ++i) {
    http1::Head h;
    h.add("x-user", "alice");
    forAlice.insert(pick(h));
    http1::Head other;
    other.add("x-user", "user-" + std::to_string(i));
    all.insert(pick(other));
  }
  EXPECT_EQ(forAlice.size(), 1u);
  EXPECT_GT(all.size(), 1u);
}

TEST_F(RouterTest, LeastRequestAvoidsBusyEndpoints) {
  use(Json::parse(R"({"loadBalancer": {"simple": "LEAST_REQUEST"}})"));
  for (int i : {0, 1}) {
    const Endpoint* e = target_.endpoints[static_cast<size_t>(i)];
    worker_.health(e->ip, e->port).active = 50;
  }
  // Two random choices: the idle one wins whenever it is drawn, 5/9 of picks (1,111 of 2,000,
  // sd 22), where a uniform pick would give it 1/3 (667, sd 21). 900 is far from both.
  int idle = 0;
  for (int i = 0; i < 2000; ++i) idle += pick() == target_.endpoints[2];
  EXPECT_GT(idle, 900);
}

TEST_F(RouterTest, OutlierDetectionEjectsAndRespectsMaxEjectionPercent) {
  use(Json::parse(R"({"outlierDetection": {"consecutive5xxErrors": 2, "interval": "1s",
                                           "baseEjectionTime": "30s", "maxEjectionPercent": 34}})"));
  const Endpoint* a = target_.endpoints[0];
  const Endpoint* b = target_.endpoints[1];
  recordOutcome(worker_, target_, *a, 503, false);
  for (int i = 0; i < 6; ++i) EXPECT_NE(pick(), nullptr);  // one 5xx is not enough
  recordOutcome(worker_, target_, *a, 503, false);
  for (int i = 0; i < 12; ++i) EXPECT_NE(pick(), a);  // ejected
  // 34 % of 3 endpoints is one: b's errors do not eject it while a is out.
  recordOutcome(worker_, target_, *b, 503, false);
  recordOutcome(worker_, target_, *b, 503, false);
  std::set<const Endpoint*> seen;
  for (int i = 0; i < 12; ++i) seen.insert(pick());
  EXPECT_TRUE(seen.count(b));
  EXPECT_FALSE(seen.count(a));
  // A success resets the count.
  const Endpoint* c = target_.endpoints[2];
  recordOutcome(worker_, target_, *c, 503, false);
  recordOutcome(worker_, target_, *c, 200, false);
  recordOutcome(worker_, target_, *c, 503, false);
  EXPECT_EQ(worker_.health(c->ip, c->port).ejectedUntilMs, 0);
}

TEST_F(RouterTest, DestinationRuleTlsDisableMeansPlaintext) {
  use(Json::parse(R"({"tls": {"mode": "DISABLE"}})"));
  EXPECT_TRUE(target_.policy->plaintext);
  // Whatever the mesh would do, a plaintext policy is reached from the node directly.
  EXPECT_EQ(meshVia(*config_, 0x0a2a0009, true, *target_.endpoints[0], target_.policy), 0);
  use(Json::parse(R"({"tls": {"mode": "ISTIO_MUTUAL"}})"));
  EXPECT_FALSE(target_.policy->plaintext);
}

TEST_F(RouterTest, AnEjectedPodIsStillReachedWithoutOutlierDetection) {
  // A sender's outlier detection ejects a; the pod's own inbound listener (a target of that one
  // endpoint, no outlier detection) still hands it its requests, and counts no errors of its own.
  use(Json::parse(R"({"outlierDetection": {"consecutive5xxErrors": 1, "baseEjectionTime": "30s",
                                           "maxEjectionPercent": 100}})"));
  const Endpoint* a = target_.endpoints[0];
  recordOutcome(worker_, target_, *a, 0, true);
  for (int i = 0; i < 6; ++i) EXPECT_NE(pick(), a);
  static const TrafficPolicy kNoOutlier;
  Target inbound;
  inbound.endpoints = {a};
  inbound.policy = &kNoOutlier;
  EXPECT_EQ(pickEndpoint(worker_, inbound, {}, 0, {}), a);
  const Endpoint* b = target_.endpoints[1];
  recordOutcome(worker_, inbound, *b, 0, true);
  EXPECT_EQ(worker_.health(b->ip, b->port).consecutive5xx, 0);
}

}  // namespace
}  // namespace podium::proxy
