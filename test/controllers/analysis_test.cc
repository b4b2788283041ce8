#include "controllers/analysis.h"

#include <deque>

#include "controllers/analysis_expr.h"
#include "controllers/harness.h"
#include "controllers/rollout.h"

namespace podium::controllers {
namespace {

TEST(AnalysisExpr, ArgoRolloutsConditions) {
  EXPECT_TRUE(*evaluateCondition("result >= 0.95", 0.97));
  EXPECT_FALSE(*evaluateCondition("result >= 0.95", 0.9));
  EXPECT_TRUE(*evaluateCondition("result[0] > 1 && len(result) == 2", Json::array({2, 3})));
  EXPECT_TRUE(*evaluateCondition("result[0] < 500 or result[1] < 500", Json::array({900, 3})));
  EXPECT_TRUE(*evaluateCondition("not (result == 'down')", "up"));
  EXPECT_TRUE(*evaluateCondition("isNaN(result) || result * 100 - 5 >= 90", 0.96));
  EXPECT_TRUE(*evaluateCondition("default(result, 0) == 0", nullptr));
  EXPECT_TRUE(*evaluateCondition("result.ok == true", Json{{"ok", true}}));
  for (const char* bad : {"result >", "foo > 1", "result[5] > 1", "(result > 1", "result + 1"}) {
    auto r = evaluateCondition(bad, Json::array({1}));
    EXPECT_FALSE(r) << bad;
  }
}

TEST(AnalysisArgs, AreSubstitutedAndMissingOnesNamed) {
  Json args = Json::parse(R"([{"name": "hash", "value": "abc"}, {"name": "n", "value": "3"}])");
  auto v = substituteArgs(
      Json::parse(R"({"q": "rate{pod=~\"web-{{args.hash}}-.*\"}", "count": "{{ args.n }}"})"),
      args);
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)["q"], "rate{pod=~\"web-abc-.*\"}");
  EXPECT_EQ((*v)["count"], "3");
  auto missing = substituteArgs("{{args.other}}", args);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "argument other has no value");
}

// Measurements from a queue, in order.
class QueuedProviders : public MetricProviders {
 public:
  Measurement measure(const Json& provider, const std::string&) override {
    seen.push_back(provider);
    if (queue.empty()) return {nullptr, "Error", "no more"};
    Measurement m = queue.front();
    queue.pop_front();
    return m;
  }
  std::deque<Measurement> queue;
  std::vector<Json> seen;
};

class AnalysisRunTest : public ControllerTest {
 protected:
  Json run(const Json& metric) {
    return fake.add(
        res::kAnalysisRuns,
        {{"metadata", {{"name", "r"}, {"namespace", "default"}}},
         {"spec", {{"metrics", {metric}}, {"args", {{{"name", "w"}, {"value", "web-x"}}}}}}});
  }
  Json status() { return (*fake.object(res::kAnalysisRuns, "default", "r"))["status"]; }
  SyncResult sync() {
    settle();
    auto r = controller.process("default/r");
    settle();
    return r;
  }
  QueuedProviders providers;
  AnalysisRunController controller{informers, events, providers};
};

TEST_F(AnalysisRunTest, FailsOnceFailuresExceedTheLimit) {
  run(Json::parse(R"({"name": "success-rate", "interval": "5s", "count": 4, "failureLimit": 1,
    "successCondition": "result >= 0.95",
    "provider": {"plugin": {"podium.dev/mesh": {"workload": "{{args.w}}"}}}})"));
  providers.queue = {{0.99, "", ""}, {0.5, "", ""}, {0.4, "", ""}};
  start();
  auto r = sync();
  EXPECT_EQ(r.requeueAfter(), std::chrono::milliseconds(5000));
  EXPECT_EQ(status()["phase"], "Running");
  EXPECT_EQ(providers.seen[0]["plugin"]["podium.dev/mesh"]["workload"], "web-x");
  (void)sync();  // not due yet: no measurement
  EXPECT_EQ(providers.seen.size(), 1u);
  clock.advance(std::chrono::seconds(5));
  (void)sync();
  EXPECT_EQ(status()["phase"], "Running");  // one failure is within the limit
  clock.advance(std::chrono::seconds(5));
  (void)sync();
  Json st = status();
  EXPECT_EQ(st["phase"], "Failed");
  EXPECT_EQ(st["message"],
            "Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)");
  EXPECT_EQ(st["metricResults"][0]["measurements"].size(), 3u);
  EXPECT_EQ(st["metricResults"][0]["successful"], 1);
}

TEST_F(AnalysisRunTest, NoTrafficIsInconclusiveNotASuccess) {
  run(Json::parse(R"({"name": "success-rate", "successCondition": "result >= 0.95",
    "provider": {"plugin": {"podium.dev/mesh": {"workload": "web"}}}})"));
  providers.queue = {{nullptr, "Inconclusive", "no requests reached default/web"}};
  start();
  (void)sync();
  Json st = status();
  EXPECT_EQ(st["phase"], "Inconclusive");
  EXPECT_THAT(st["message"].get<std::string>(), ::testing::HasSubstr("no requests reached"));
}

TEST_F(AnalysisRunTest, ASingleMeasurementWithoutIntervalDecides) {
  run(Json::parse(R"({"name": "p99", "failureCondition": "result > 500",
    "provider": {"web": {"url": "http://x"}}})"));
  providers.queue = {{120, "", ""}};
  start();
  (void)sync();
  EXPECT_EQ(status()["phase"], "Successful");
}

class RolloutAnalysisTest : public ControllerTest {
 protected:
  void SetUp() override {
    fake.add(res::kAnalysisTemplates,
             Json::parse(R"({"metadata": {"name": "success-rate", "namespace": "default"},
      "spec": {"args": [{"name": "hash"}],
               "metrics": [{"name": "success-rate", "successCondition": "result >= 0.95",
                 "provider": {"plugin": {"podium.dev/mesh": {"workload": "web-{{args.hash}}"}}}}]}})"));
  }
  Json rollout(const std::string& image) {
    return {{"apiVersion", "argoproj.io/v1alpha1"},
            {"kind", "Rollout"},
            {"metadata", {{"name", "web"}, {"namespace", "default"}}},
            {"spec",
             {{"replicas", 2},
              {"selector", {{"matchLabels", {{"app", "web"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}},
              {"strategy", {{"canary", {{"steps", Json::parse(R"([{"setWeight": 50}, {"analysis": {
                      "templates": [{"templateName": "success-rate"}],
                      "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}}])")}}}}}}}};
  }
  Json current() { return *fake.object(res::kRollouts, "default", "web"); }
  void sync() {
    settle();
    auto r = controller.process("default/web");
    EXPECT_FALSE(r.failed()) << r.reason();
    settle();
  }
  void allAvailable() {
    auto sets = fake.list(res::kReplicaSets, "default", {});  // kept: the loop reads its items
    for (const auto& rs : sets->items) {
      Json r = *rs;
      int64_t n = json::integer(r["spec"], "replicas");
      r["status"] = {{"replicas", n}, {"readyReplicas", n}, {"availableReplicas", n}};
      ASSERT_TRUE(fake.update(res::kReplicaSets, "default", r, "status"));
    }
  }
  void finishRun(const std::string& phase, const std::string& message) {
    auto runs = fake.list(res::kAnalysisRuns, "default", {});
    ASSERT_EQ(runs->items.size(), 1u);
    Json run = *runs->items[0];
    run["status"] = {{"phase", phase}, {"message", message}};
    ASSERT_TRUE(fake.update(res::kAnalysisRuns, "default", run, "status"));
  }
  RolloutController controller{informers, events};
};

TEST_F(RolloutAnalysisTest, AStepRunDecidesPromotionOrAbort) {
  fake.add(res::kRollouts, rollout("v1"));
  start();
  sync();
  allAvailable();
  sync();
  Json r = current();
  r["spec"]["template"]["spec"]["containers"][0]["image"] = "v2";
  ASSERT_TRUE(fake.update(res::kRollouts, "default", r, ""));
  sync();
  allAvailable();
  sync();
  // The analysis step: a run from the template, its args resolved to the canary's hash.
  auto runs = fake.list(res::kAnalysisRuns, "default", {});
  ASSERT_EQ(runs->items.size(), 1u);
  Json run = *runs->items[0];
  std::string hash = current()["status"]["currentPodHash"];
  EXPECT_EQ(run["spec"]["args"][0]["value"], hash);
  EXPECT_EQ(run["metadata"]["ownerReferences"][0]["kind"], "Rollout");
  EXPECT_EQ(current()["status"]["canary"]["currentStepAnalysisRunStatus"]["name"],
            client::nameOf(run));
  finishRun("Failed",
            "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)");
  sync();
  Json st = current()["status"];
  EXPECT_EQ(st["phase"], "Degraded");
  EXPECT_THAT(st["message"].get<std::string>(),
              ::testing::HasSubstr("RolloutAborted: Rollout aborted update to revision 2: "
                                   "AnalysisRun " +
                                   client::nameOf(run) + " Failed"));
  EXPECT_EQ(st["canary"]["weights"]["canary"]["weight"], 0);
}

}  // namespace
}  // namespace podium::controllers
