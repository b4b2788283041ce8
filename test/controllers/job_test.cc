#include "controllers/job.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class JobTest : public ControllerTest {
 protected:
  Json job(Json spec) {
    spec["template"] = {
        {"metadata", {{"labels", {{"job-name", "work"}}}}},
        {"spec", {{"containers", {{{"name", "c"}, {"image", "x"}}}}, {"restartPolicy", "Never"}}}};
    return fake.add(res::kJobs,
                    {{"metadata", {{"name", "work"}, {"namespace", "default"}}}, {"spec", spec}});
  }
  const Json& status() {
    last_ = fake.object(res::kJobs, "default", "work");
    return client::at(*last_, {"status"});
  }
  client::ObjectPtr last_;
  JobController controller{informers, events};
};

TEST_F(JobTest, RunsUpToParallelismPodsAndRecordsTheStart) {
  job({{"completions", 5}, {"parallelism", 2}});
  start();
  EXPECT_FALSE(controller.process("default/work").failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 2u);
  EXPECT_EQ(json::str(status(), "startTime"), now());
  EXPECT_EQ(json::integer(status(), "active"), 0);  // counted before the pods were seen
}

TEST_F(JobTest, AFinishedJobRetriesDeletingThePodsItStillRuns) {
  Json j = job({{"completions", 1}, {"parallelism", 2}});
  pod("done", j, "Succeeded", false);
  pod("straggler", j, "Running", true);
  start();
  // The delete of the running pod fails once: the sync must say so, and the pod must go later.
  fake.failNext("delete", "pods", api::ApiError(500, "InternalError", "etcd timeout"));
  auto first = controller.process("default/work");
  EXPECT_TRUE(first.failed());
  EXPECT_NE(first.reason().find("straggler"), std::string::npos);
  auto stored = fake.object(res::kJobs, "default", "work");
  const Json* complete = client::findCondition(*stored, "Complete");
  ASSERT_NE(complete, nullptr);
  EXPECT_EQ(json::str(*complete, "status"), "True");
  EXPECT_NE(fake.object(res::kPods, "default", "straggler"), nullptr);
  settle();
  EXPECT_FALSE(controller.process("default/work").failed());
  EXPECT_EQ(fake.object(res::kPods, "default", "straggler"), nullptr);
}

TEST_F(JobTest, FailsPastTheBackoffLimitAndStopsItsPods) {
  Json j = job({{"completions", 3}, {"parallelism", 1}, {"backoffLimit", 1}});
  pod("f1", j, "Failed", false);
  pod("f2", j, "Failed", false);
  pod("running", j, "Running", false);
  start();
  EXPECT_FALSE(controller.process("default/work").failed());
  auto stored = fake.object(res::kJobs, "default", "work");
  const Json* failed = client::findCondition(*stored, "Failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(json::str(*failed, "reason"), "BackoffLimitExceeded");
  EXPECT_EQ(json::integer(status(), "failed"), 2);
  EXPECT_EQ(fake.object(res::kPods, "default", "running"), nullptr);
  EXPECT_TRUE(fake.actions("create", "pods").empty());
}

TEST_F(JobTest, AFinishedJobWithATtlIsDeletedOnceItPasses) {
  Json j = job({{"completions", 1}, {"ttlSecondsAfterFinished", 60}});
  pod("done", j, "Succeeded", false);
  start();
  EXPECT_FALSE(controller.process("default/work").failed());  // completes
  settle();
  auto wait = controller.process("default/work");
  EXPECT_FALSE(wait.failed());
  ASSERT_TRUE(wait.requeueAfter());
  EXPECT_EQ(wait.requeueAfter()->count(), 60100);
  clock.advance(std::chrono::seconds(60));
  EXPECT_FALSE(controller.process("default/work").failed());
  auto deletes = fake.actions("delete", "jobs");
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].object["propagationPolicy"], "Background");
}

}  // namespace
}  // namespace podium::controllers
