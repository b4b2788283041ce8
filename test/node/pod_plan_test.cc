#include "node/pod_plan.h"

#include <gtest/gtest.h>

namespace podium::node {
namespace {

using Kind = ContainerAction::Kind;
using State = ContainerView::State;
using std::chrono::seconds;

class PodPlanTest : public ::testing::Test {
 protected:
  std::vector<ContainerAction> plan(const Json& spec) {
    PodPlanInput in;
    in.spec = &spec;
    in.latest = [this](const std::string& n) {
      auto it = views_.find(n);
      return it == views_.end() ? nullptr : &it->second;
    };
    in.firstAttempt = [](const std::string&) { return 0u; };
    in.backoff = &backoff_;
    in.now = now_;
    return planPod(in);
  }
  ContainerView& view(const std::string& name, State state, std::optional<int32_t> exit = {},
                      uint32_t attempt = 0) {
    ContainerView& v = views_[name];
    v.id = name + "-" + std::to_string(attempt);
    v.state = state;
    v.exitCode = exit;
    v.attempt = attempt;
    return v;
  }
  static Json spec(const std::string& policy, std::vector<std::string> inits,
                   std::vector<std::string> containers) {
    Json s = {{"restartPolicy", policy}, {"containers", Json::array()}};
    for (const auto& i : inits) s["initContainers"].push_back({{"name", i}});
    for (const auto& c : containers) s["containers"].push_back({{"name", c}});
    return s;
  }
  std::map<std::string, ContainerView> views_;
  std::map<std::string, Backoff> backoff_;
  std::chrono::steady_clock::time_point now_{std::chrono::hours(100)};
};

TEST_F(PodPlanTest, InitContainersRunOneAtATimeBeforeTheRest) {
  Json s = spec("Always", {"migrate", "seed"}, {"app"});
  auto a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::Create);
  EXPECT_EQ(a[0].container, "migrate");
  EXPECT_TRUE(a[0].init);
  view("migrate", State::Running);
  EXPECT_TRUE(plan(s).empty());  // still running: nothing else starts
  view("migrate", State::Exited, 0);
  a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].container, "seed");
  view("seed", State::Exited, 0);
  a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].container, "app");
  EXPECT_FALSE(a[0].init);
}

TEST_F(PodPlanTest, AFailedContainerRestartsAtOnceThenBacksOffDoubling) {
  Json s = spec("Always", {}, {"app"});
  view("app", State::Exited, 1, 0);
  auto a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::Create);
  EXPECT_EQ(a[0].attempt, 1u);
  // It fails again at once: 10 s of CrashLoopBackOff.
  view("app", State::Exited, 1, 1);
  a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::BackOff);
  EXPECT_EQ(a[0].retryIn, seconds(10));
  now_ += seconds(10);
  a = plan(s);
  EXPECT_EQ(a[0].kind, Kind::Create);
  EXPECT_EQ(a[0].attempt, 2u);
  view("app", State::Exited, 1, 2);
  now_ += seconds(1);
  a = plan(s);
  EXPECT_EQ(a[0].kind, Kind::BackOff);
  EXPECT_EQ(a[0].retryIn, seconds(19));  // 20 s from the last restart
  // The cap is five minutes.
  for (int i = 0; i < 10; ++i) {
    now_ += seconds(301);
    (void)plan(s);
  }
  EXPECT_EQ(backoff_["app"].delay, seconds(300));
}

TEST_F(PodPlanTest, RestartPolicyDecidesWhatRunsAgain) {
  view("app", State::Exited, 0);
  EXPECT_EQ(plan(spec("Always", {}, {"app"})).size(), 1u);
  EXPECT_TRUE(plan(spec("OnFailure", {}, {"app"})).empty());
  view("app", State::Exited, 2);
  EXPECT_TRUE(plan(spec("Never", {}, {"app"})).empty());
  EXPECT_EQ(plan(spec("OnFailure", {}, {"app"}))[0].kind, Kind::BackOff);  // restarted just now
}

TEST_F(PodPlanTest, AFailedLivenessProbeKillsOnceAndTheKillCountsAsAFailure) {
  Json s = spec("OnFailure", {}, {"app"});
  ContainerView& v = view("app", State::Running);
  v.livenessFailed = true;
  auto a = plan(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::Kill);
  v.killedForLiveness = true;
  EXPECT_TRUE(plan(s).empty());
  // Stopped with exit code 0 by the kill: still restarted under OnFailure.
  v.state = State::Exited;
  v.exitCode = 0;
  EXPECT_EQ(plan(s)[0].kind, Kind::Create);
}

TEST_F(PodPlanTest, ACreatedContainerIsStartedNotCreatedAgain) {
  view("app", State::Created);
  auto a = plan(spec("Always", {}, {"app"}));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Kind::Start);
  EXPECT_EQ(a[0].id, "app-0");
}

}  // namespace
}  // namespace podium::node
