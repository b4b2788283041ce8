#include "controllers/rollout.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

Json tmpl(const std::string& image) {
  return {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}};
}

// The seed's routing, as a Rollout takes it over: subsets v1 (stable) and v2 (canary).
Json virtualService() {
  return {{"metadata", {{"name", "web-route"}, {"namespace", "default"}}},
          {"spec",
           {{"hosts", {"web.example.com"}},
            {"http",
             {{{"name", "primary"},
               {"route",
                {{{"destination", {{"host", "web"}, {"subset", "v1"}}}, {"weight", 100}},
                 {{"destination", {{"host", "web"}, {"subset", "v2"}}}, {"weight", 0}}}}}}}}}};
}

class RolloutTest : public ControllerTest {
 protected:
  void SetUp() override {
    fake.add(res::kVirtualServices, virtualService());
    fake.add(res::kDestinationRules,
             {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
              {"spec", {{"host", "web"}, {"subsets", {{{"name", "v1"}}, {{"name", "v2"}}}}}}});
  }
  Json rollout(const std::string& image, Json steps) {
    return {{"apiVersion", "argoproj.io/v1alpha1"},
            {"kind", "Rollout"},
            {"metadata", {{"name", "web"}, {"namespace", "default"}, {"generation", 1}}},
            {"spec",
             {{"replicas", 4},
              {"selector", {{"matchLabels", {{"app", "web"}}}}},
              {"template", tmpl(image)},
              {"strategy",
               {{"canary",
                 {{"steps", steps},
                  {"scaleDownDelaySeconds", 5},
                  {"trafficRouting",
                   {{"istio",
                     {{"virtualService", {{"name", "web-route"}, {"routes", {"primary"}}}},
                      {"destinationRule",
                       {{"name", "web"},
                        {"stableSubsetName", "v1"},
                        {"canarySubsetName", "v2"}}}}}}}}}}}}}};
  }
  Json current() { return *fake.object(res::kRollouts, "default", "web"); }
  std::string hashFor(const std::string& image) { return templateHash(tmpl(image), 0); }
  ObjectPtr rs(const std::string& image) {
    return fake.object(res::kReplicaSets, "default", "web-" + hashFor(image));
  }
  int64_t replicasOf(const std::string& image) {
    auto r = rs(image);
    return r ? json::integer(client::at(*r, {"spec"}), "replicas") : -1;
  }
  // The ReplicaSet controller's part: the pods are there and available.
  void available(const std::string& image) {
    Json r = *rs(image);
    int64_t n = json::integer(r["spec"], "replicas");
    r["status"] = {{"replicas", n}, {"readyReplicas", n}, {"availableReplicas", n}};
    ASSERT_TRUE(fake.update(res::kReplicaSets, "default", r, "status"));
  }
  std::vector<int> weights() {
    auto vs = fake.object(res::kVirtualServices, "default", "web-route");
    std::vector<int> out;
    for (const auto& d : (*vs)["spec"]["http"][0]["route"]) out.push_back(d["weight"].get<int>());
    return out;
  }
  std::string subsetHash(int i) {
    auto dr = fake.object(res::kDestinationRules, "default", "web");
    return json::getString((*dr)["spec"]["subsets"][i], {"labels", kRolloutHashLabel});
  }
  void sync() {
    settle();
    auto r = controller.process("default/web");
    EXPECT_FALSE(r.failed()) << r.reason() << " after " << ::testing::PrintToString(writes());
    fake.clearActions();
    settle();
  }
  void patchStatus(const Json& s) {
    ASSERT_TRUE(fake.patch(res::kRollouts, "default", "web", {{"status", s}}, "status"));
  }
  void setImage(const std::string& image) {
    Json r = current();
    r["spec"]["template"] = tmpl(image);
    r["metadata"]["generation"] = 2;
    ASSERT_TRUE(fake.update(res::kRollouts, "default", r, ""));
  }
  RolloutController controller{informers, events};
};

const Json kSteps = Json::parse(R"([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50},
                                     {"pause": {"duration": "10s"}}])");

TEST_F(RolloutTest, TheFirstRevisionIsStableAtOnce) {
  fake.add(res::kRollouts, rollout("v1", kSteps));
  start();
  sync();
  EXPECT_EQ(replicasOf("v1"), 4);
  available("v1");
  sync();
  Json st = current()["status"];
  EXPECT_EQ(st["stableRS"], hashFor("v1"));
  EXPECT_EQ(st["phase"], "Healthy");
  EXPECT_EQ(st["currentStepIndex"], 4);
  EXPECT_EQ(weights(), (std::vector<int>{100, 0}));
  EXPECT_EQ(subsetHash(0), hashFor("v1"));
  EXPECT_EQ(subsetHash(1), hashFor("v1"));
  EXPECT_EQ(st["selector"], "app=web");
}

TEST_F(RolloutTest, ACanaryWalksItsStepsAndBecomesStable) {
  fake.add(res::kRollouts, rollout("v1", kSteps));
  start();
  sync();
  available("v1");
  sync();
  setImage("v2");
  sync();
  // setWeight 10: one canary pod (ceil 4 × 10 %), the stable ReplicaSet untouched, no traffic
  // moved until the canary is available.
  EXPECT_EQ(replicasOf("v2"), 1);
  EXPECT_EQ(replicasOf("v1"), 4);
  EXPECT_EQ(current()["status"]["phase"], "Progressing");
  EXPECT_EQ(subsetHash(1), hashFor("v2"));
  available("v2");
  sync();
  EXPECT_EQ(weights(), (std::vector<int>{90, 10}));
  Json st = current()["status"];
  EXPECT_EQ(st["phase"], "Paused");
  EXPECT_EQ(st["currentStepIndex"], 1);
  EXPECT_EQ(st["canary"]["weights"]["canary"]["weight"], 10);
  // Paused until promoted (what `podium rollout promote` writes).
  sync();
  EXPECT_EQ(current()["status"]["currentStepIndex"], 1);
  patchStatus({{"pauseConditions", nullptr}, {"controllerPause", false}, {"currentStepIndex", 2}});
  sync();
  EXPECT_EQ(replicasOf("v2"), 2);
  available("v2");
  sync();
  EXPECT_EQ(weights(), (std::vector<int>{50, 50}));
  EXPECT_EQ(current()["status"]["phase"], "Paused");
  // A timed pause ends by itself.
  clock.advance(std::chrono::seconds(11));
  sync();
  st = current()["status"];
  EXPECT_EQ(st["stableRS"], hashFor("v2"));
  EXPECT_EQ(weights(), (std::vector<int>{100, 0}));
  EXPECT_EQ(subsetHash(0), hashFor("v2"));
  EXPECT_EQ(replicasOf("v2"), 4);
  // The old stable goes after scaleDownDelaySeconds.
  EXPECT_EQ(replicasOf("v1"), 4);
  clock.advance(std::chrono::seconds(6));
  available("v2");
  sync();
  EXPECT_EQ(replicasOf("v1"), 0);
  EXPECT_EQ(current()["status"]["phase"], "Healthy");
}

TEST_F(RolloutTest, AbortSendsTrafficBackAtOnceAndRetryStartsOver) {
  fake.add(res::kRollouts, rollout("v1", kSteps));
  start();
  sync();
  available("v1");
  sync();
  setImage("v2");
  sync();
  available("v2");
  sync();
  ASSERT_EQ(weights(), (std::vector<int>{90, 10}));
  patchStatus({{"abort", true}});
  sync();
  EXPECT_EQ(weights(), (std::vector<int>{100, 0}));
  EXPECT_EQ(replicasOf("v2"), 0);
  Json st = current()["status"];
  EXPECT_EQ(st["phase"], "Degraded");
  EXPECT_EQ(st["message"], "RolloutAborted: Rollout aborted update to revision 2");
  EXPECT_EQ(st["stableRS"], hashFor("v1"));
  sync();  // stays aborted
  EXPECT_EQ(current()["status"]["phase"], "Degraded");
  patchStatus({{"abort", false}, {"currentStepIndex", 0}});
  sync();
  EXPECT_EQ(replicasOf("v2"), 1);
  EXPECT_EQ(current()["status"]["phase"], "Progressing");
}

TEST_F(RolloutTest, WhatItCannotDoIsRefusedNotIgnored) {
  Json r = rollout("v1", Json::parse(R"([{"setWeight": 10}, {"experiment": {"templates": []}}])"));
  fake.add(res::kRollouts, r);
  start();
  sync();
  Json st = current()["status"];
  EXPECT_EQ(st["phase"], "Degraded");
  EXPECT_THAT(st["message"].get<std::string>(),
              ::testing::HasSubstr("spec.strategy.canary.steps[1].experiment is not supported"));
  EXPECT_EQ(rs("v1"), nullptr);
}

TEST(RolloutRouting, WeightsAndSubsetHashes) {
  Json vs = virtualService();
  EXPECT_TRUE(setVirtualServiceWeights(vs, {}, "v1", "v2", 30));
  EXPECT_FALSE(setVirtualServiceWeights(vs, {}, "v1", "v2", 30));
  EXPECT_EQ(vs["spec"]["http"][0]["route"][1]["weight"], 30);
  EXPECT_FALSE(setVirtualServiceWeights(vs, {"other"}, "v1", "v2", 60));  // not its route
  Json dr = {{"spec", {{"subsets", {{{"name", "v1"}, {"labels", {{"version", "v1"}}}}}}}}};
  EXPECT_TRUE(setDestinationRuleHashes(dr, "v1", "v2", "aaa", "bbb"));
  EXPECT_EQ(dr["spec"]["subsets"][0]["labels"]["version"], "v1");  // kept
  EXPECT_EQ(dr["spec"]["subsets"][0]["labels"][kRolloutHashLabel], "aaa");
}

}  // namespace
}  // namespace podium::controllers
