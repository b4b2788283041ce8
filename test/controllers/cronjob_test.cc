#include "controllers/cronjob.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

using std::chrono::seconds;

class CronJobTest : public ControllerTest {
 protected:
  // A CronJob made at the fake clock's start (2026-01-01T00:00:00Z, a Thursday).
  Json cronJob(Json spec) {
    spec["jobTemplate"] = {{"metadata", {{"labels", {{"team", "night"}}}}},
                           {"spec",
                            {{"template",
                              {{"spec",
                                {{"containers", {{{"name", "c"}, {"image", "busybox"}}}},
                                 {"restartPolicy", "Never"}}}}}}}};
    return fake.add(res::kCronJobs, {{"metadata", {{"name", "nightly"}, {"namespace", "default"}}},
                                     {"spec", spec}});
  }
  // The name of the Job for a scheduled time: the CronJob's, then minutes since the epoch.
  static std::string jobFor(const std::string& rfc3339) {
    return "nightly-" + std::to_string(std::chrono::duration_cast<std::chrono::minutes>(
                                           timefmt::parseRfc3339(rfc3339)->time_since_epoch())
                                           .count());
  }
  Json status() {
    return client::at(*fake.object(res::kCronJobs, "default", "nightly"), {"status"});
  }
  // Marks a Job finished as `type` (Complete or Failed) at the clock's time.
  void finish(const std::string& job, const std::string& type) {
    Json j = *fake.object(res::kJobs, "default", job);
    j["status"] = {{"conditions", {{{"type", type}, {"status", "True"}}}},
                   {"startTime", now()},
                   {"completionTime", now()}};
    ASSERT_TRUE(fake.update(res::kJobs, "default", j, "status"));
  }
  SyncResult run() {
    settle();
    return controller.process("default/nightly");
  }
  CronJobController controller{informers, events};
};

TEST_F(CronJobTest, AJobAtEachScheduledTimeAndOnlyOnce) {
  cronJob({{"schedule", "*/1 * * * *"}});
  start();
  auto first = run();
  EXPECT_TRUE(fake.actions("create", "jobs").empty());  // nothing is due yet
  EXPECT_EQ(first.requeueAfter(), std::chrono::milliseconds(60100));
  clock.advance(seconds(61));
  EXPECT_FALSE(run().failed());
  std::string name = jobFor("2026-01-01T00:01:00Z");
  auto job = fake.object(res::kJobs, "default", name);
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(json::getString(*job, {"metadata", "labels", "team"}), "night");
  EXPECT_EQ(json::getString(*job, {"metadata", "annotations",
                                   "batch.kubernetes.io/cronjob-scheduled-timestamp"}),
            "2026-01-01T00:01:00Z");
  EXPECT_EQ(json::str(*client::controllerOf(*job), "kind"), "CronJob");
  EXPECT_EQ(json::getString(*job, {"spec", "template", "spec", "restartPolicy"}), "Never");
  Json st = status();
  EXPECT_EQ(st["lastScheduleTime"], "2026-01-01T00:01:00Z");
  ASSERT_EQ(st["active"].size(), 1u);
  EXPECT_EQ(st["active"][0]["name"], name);
  // Synced again within the same minute: nothing more.
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.actions("create", "jobs").size(), 1u);
  // Finished: out of active, its completion the last successful time.
  finish(name, "Complete");
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(status().contains("active"));
  EXPECT_EQ(status()["lastSuccessfulTime"], now());
}

TEST_F(CronJobTest, ForbidWaitsForTheActiveJobAndReplaceReplacesIt) {
  cronJob({{"schedule", "* * * * *"}, {"concurrencyPolicy", "Forbid"}});
  start();
  clock.advance(seconds(61));
  EXPECT_FALSE(run().failed());
  clock.advance(seconds(60));  // 00:02 is due while 00:01's Job runs
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.actions("create", "jobs").size(), 1u);
  finish(jobFor("2026-01-01T00:01:00Z"), "Complete");
  EXPECT_FALSE(run().failed());  // the waiting time runs once nothing is active
  EXPECT_NE(fake.object(res::kJobs, "default", jobFor("2026-01-01T00:02:00Z")), nullptr);

  Json cj = *fake.object(res::kCronJobs, "default", "nightly");
  cj["spec"]["concurrencyPolicy"] = "Replace";
  ASSERT_TRUE(fake.update(res::kCronJobs, "default", cj, ""));
  clock.advance(seconds(60));
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.object(res::kJobs, "default", jobFor("2026-01-01T00:02:00Z")), nullptr);
  EXPECT_NE(fake.object(res::kJobs, "default", jobFor("2026-01-01T00:03:00Z")), nullptr);
  ASSERT_EQ(status()["active"].size(), 1u);
}

TEST_F(CronJobTest, HistoryLimitsDeleteTheOldestFinishedJobs) {
  cronJob({{"schedule", "* * * * *"},
           {"successfulJobsHistoryLimit", 2},
           {"failedJobsHistoryLimit", 1}});
  start();
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) {
    clock.advance(seconds(60));
    EXPECT_FALSE(run().failed());
    made.push_back(jobFor(timefmt::rfc3339(*timefmt::parseRfc3339("2026-01-01T00:00:00Z") +
                                           std::chrono::minutes(i + 1))));
    finish(made.back(), i == 1 || i == 3 ? "Failed" : "Complete");
  }
  EXPECT_FALSE(run().failed());
  // Complete: 0, 2, 4 -> 0 goes; Failed: 1, 3 -> 1 goes.
  for (int i : {0, 1}) EXPECT_EQ(fake.object(res::kJobs, "default", made[i]), nullptr) << i;
  for (int i : {2, 3, 4}) EXPECT_NE(fake.object(res::kJobs, "default", made[i]), nullptr) << i;
}

TEST_F(CronJobTest, LateSuspendedAndMissedTimes) {
  cronJob({{"schedule", "* * * * *"}, {"startingDeadlineSeconds", 10}});
  start();
  clock.advance(seconds(90));  // 00:01 was 30 s ago, past its 10 s deadline
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(fake.actions("create", "jobs").empty());

  Json cj = *fake.object(res::kCronJobs, "default", "nightly");
  cj["spec"].erase("startingDeadlineSeconds");
  cj["spec"]["suspend"] = true;
  ASSERT_TRUE(fake.update(res::kCronJobs, "default", cj, ""));
  clock.advance(seconds(60));
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(fake.actions("create", "jobs").empty());

  // Resumed after three hours away: only the most recent time runs.
  cj = *fake.object(res::kCronJobs, "default", "nightly");
  cj["spec"]["suspend"] = false;
  ASSERT_TRUE(fake.update(res::kCronJobs, "default", cj, ""));
  clock.advance(std::chrono::hours(3));
  EXPECT_FALSE(run().failed());
  auto created = fake.actions("create", "jobs");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].name, jobFor("2026-01-01T03:02:00Z"));
}

TEST_F(CronJobTest, SchedulesInATimeZone) {
  cronJob({{"schedule", "0 9 * * *"}, {"timeZone", "America/New_York"}});
  start();
  auto first = run();
  EXPECT_EQ(first.requeueAfter(), std::chrono::milliseconds(14 * 3600 * 1000 + 100));  // 9 EST
  clock.advance(std::chrono::hours(14) + seconds(5));
  EXPECT_FALSE(run().failed());
  EXPECT_NE(fake.object(res::kJobs, "default", jobFor("2026-01-01T14:00:00Z")), nullptr);
}

}  // namespace
}  // namespace podium::controllers
