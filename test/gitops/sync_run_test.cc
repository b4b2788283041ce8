#include "gitops/sync_run.h"

#include <gtest/gtest.h>

#include "podium/client/objects.h"
#include "support/fake_client.h"

namespace podium::gitops {
namespace {

namespace res = client::resources;
using std::chrono::milliseconds;

class SyncRunTest : public ::testing::Test {
 protected:
  Target target(const client::Resource& r, const std::string& kind, const std::string& name,
                int wave, const std::string& hook = "", Json spec = Json::object()) {
    Target t;
    t.resource = r;
    t.group = r.group;
    t.version = r.version;
    t.kind = kind;
    t.ns = "app";
    t.name = name;
    t.wave = wave;
    t.hook = hook;
    t.file = "manifests/" + name + ".yaml";
    t.obj = {{"apiVersion", r.apiVersion()},
             {"kind", kind},
             {"metadata", {{"name", name}, {"namespace", "app"}}},
             {"spec", spec}};
    if (!hook.empty()) t.obj["metadata"]["annotations"]["argocd.argoproj.io/hook"] = hook;
    return t;
  }
  SyncRun::Inputs inputs(std::vector<Target> targets) {
    SyncRun::Inputs in;
    in.app = {{"metadata", {{"name", "demo"}, {"namespace", "argocd"}}},
              {"spec", {{"destination", {{"namespace", "app"}}}}}};
    in.targets = std::make_shared<const std::vector<Target>>(std::move(targets));
    in.commit = "abc";
    return in;
  }
  // Marks a Deployment rolled out, as its controller would.
  void rolledOut(const std::string& name) {
    Json d = *fake_.object(res::kDeployments, "app", name);
    d["status"] = {{"observedGeneration", 1},
                   {"replicas", 1},
                   {"updatedReplicas", 1},
                   {"availableReplicas", 1}};
    ASSERT_TRUE(fake_.update(res::kDeployments, "app", d, "status"));
  }
  testing::FakeClock clock_;
  testing::FakeClient fake_{clock_};
};

TEST_F(SyncRunTest, OneWaveWithoutHooksIsAppliedInOneStep) {
  SyncRun run(fake_, clock_,
              inputs({target(res::kConfigMaps, "ConfigMap", "a", 0),
                      target(res::kDeployments, "Deployment", "web", 0, "", {{"replicas", 1}})}));
  milliseconds wait{0};
  EXPECT_EQ(run.step(&wait), SyncRun::State::Succeeded);
  EXPECT_EQ(fake_.actions("apply").size(), 2u);
  EXPECT_EQ(run.results().size(), 2u);
  EXPECT_EQ(run.message(), "successfully synced (all tasks run)");
}

TEST_F(SyncRunTest, ASelectiveSyncAppliesAndPrunesOnlyTheSelectedWithoutHooks) {
  fake_.add(res::kConfigMaps, target(res::kConfigMaps, "ConfigMap", "old-a", 0).obj);
  fake_.add(res::kConfigMaps, target(res::kConfigMaps, "ConfigMap", "old-b", 0).obj);
  auto in = inputs({target(res::kConfigMaps, "ConfigMap", "a", 0),
                    target(res::kConfigMaps, "ConfigMap", "b", 0),
                    target(res::kJobs, "Job", "migrate", 0, "PreSync")});
  in.prune = true;
  for (const char* name : {"old-a", "old-b"})
    in.extraneous.push_back({{"group", ""},
                             {"version", "v1"},
                             {"kind", "ConfigMap"},
                             {"namespace", "app"},
                             {"name", name}});
  in.only = {"/ConfigMap/app/b", "/ConfigMap/app/old-b", "batch/Job/app/migrate"};
  SyncRun run(fake_, clock_, std::move(in));
  milliseconds wait{0};
  EXPECT_EQ(run.step(&wait), SyncRun::State::Succeeded);
  EXPECT_EQ(fake_.object(res::kConfigMaps, "app", "a"), nullptr);
  EXPECT_NE(fake_.object(res::kConfigMaps, "app", "b"), nullptr);
  EXPECT_TRUE(fake_.actions("apply", "jobs").empty());  // hooks do not run in a selective sync
  EXPECT_NE(fake_.object(res::kConfigMaps, "app", "old-a"), nullptr);
  EXPECT_EQ(fake_.actions("delete", "configmaps").size(), 1u);
}

TEST_F(SyncRunTest, ALaterWaveWaitsForTheEarlierOneToBeHealthyWithoutHoldingAThread) {
  SyncRun run(fake_, clock_,
              inputs({target(res::kDeployments, "Deployment", "db", 0, "", {{"replicas", 1}}),
                      target(res::kConfigMaps, "ConfigMap", "after-db", 1)}));
  milliseconds wait{0};
  // Wave 0 is applied; its Deployment is not rolled out: the step ends, asking to be called
  // again soon.
  EXPECT_EQ(run.step(&wait), SyncRun::State::Running);
  EXPECT_EQ(wait, milliseconds(200));
  EXPECT_EQ(run.message(), "waiting for Sync wave 0 to be healthy");
  EXPECT_EQ(fake_.object(res::kConfigMaps, "app", "after-db"), nullptr);
  EXPECT_EQ(run.step(&wait), SyncRun::State::Running);  // still not
  rolledOut("db");
  EXPECT_EQ(run.step(&wait), SyncRun::State::Succeeded);
  EXPECT_NE(fake_.object(res::kConfigMaps, "app", "after-db"), nullptr);
}

TEST_F(SyncRunTest, AWaveThatNeverBecomesHealthyFailsAfterItsTimeout) {
  SyncRun run(fake_, clock_,
              inputs({target(res::kDeployments, "Deployment", "db", 0, "", {{"replicas", 1}}),
                      target(res::kConfigMaps, "ConfigMap", "after-db", 1)}));
  milliseconds wait{0};
  EXPECT_EQ(run.step(&wait), SyncRun::State::Running);
  clock_.advance(SyncRun::kWaveTimeout + std::chrono::seconds(1));
  EXPECT_EQ(run.step(&wait), SyncRun::State::Failed);
  EXPECT_NE(run.message().find("timed out waiting to be healthy"), std::string::npos);
  EXPECT_EQ(fake_.object(res::kConfigMaps, "app", "after-db"), nullptr);
}

TEST_F(SyncRunTest, AHookOfTheLastSyncIsDeletedBeforeItRunsAgain) {
  // The last sync's PreSync Job is still there (BeforeHookCreation, the default policy).
  Json old = target(res::kJobs, "Job", "migrate", 0, "PreSync").obj;
  old["metadata"]["finalizers"] = {"example.com/slow"};
  fake_.add(res::kJobs, old);
  SyncRun run(fake_, clock_,
              inputs({target(res::kJobs, "Job", "migrate", 0, "PreSync"),
                      target(res::kConfigMaps, "ConfigMap", "app-config", 0)}));
  milliseconds wait{0};
  EXPECT_EQ(run.step(&wait), SyncRun::State::Running);
  EXPECT_EQ(fake_.actions("delete", "jobs").size(), 1u);
  EXPECT_TRUE(fake_.actions("apply").empty());  // nothing runs before the old hook is gone
  // It goes; the new run of the hook is created, and the sync waits for it to complete.
  Json going = *fake_.object(res::kJobs, "app", "migrate");
  going["metadata"]["finalizers"] = Json::array();
  ASSERT_TRUE(fake_.update(res::kJobs, "app", going, ""));
  EXPECT_EQ(run.step(&wait), SyncRun::State::Running);
  EXPECT_EQ(fake_.actions("apply", "jobs").size(), 1u);
  EXPECT_EQ(fake_.object(res::kConfigMaps, "app", "app-config"), nullptr);
  Json done = *fake_.object(res::kJobs, "app", "migrate");
  done["status"] = {{"conditions", {{{"type", "Complete"}, {"status", "True"}}}}};
  ASSERT_TRUE(fake_.update(res::kJobs, "app", done, "status"));
  EXPECT_EQ(run.step(&wait), SyncRun::State::Succeeded);
  EXPECT_NE(fake_.object(res::kConfigMaps, "app", "app-config"), nullptr);
  EXPECT_EQ(run.results()[0]["hookPhase"], "Succeeded");
}

TEST_F(SyncRunTest, AFailedWriteRunsTheSyncFailHooksAndFails) {
  fake_.failNext("apply", "configmaps", api::ApiError(422, "Invalid", "bad data"));
  SyncRun run(fake_, clock_,
              inputs({target(res::kConfigMaps, "ConfigMap", "broken", 0),
                      target(res::kConfigMaps, "ConfigMap", "tell-someone", 0, "SyncFail")}));
  milliseconds wait{0};
  SyncRun::State state = run.step(&wait);
  while (state == SyncRun::State::Running) state = run.step(&wait);
  EXPECT_EQ(state, SyncRun::State::Failed);
  EXPECT_NE(fake_.object(res::kConfigMaps, "app", "tell-someone"), nullptr);
  EXPECT_NE(run.message().find("bad data"), std::string::npos);
}

}  // namespace
}  // namespace podium::gitops
