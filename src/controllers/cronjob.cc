#include "cronjob.h"

#include <algorithm>

#include "podium/common/cron.h"
#include "podium/common/log.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;
using std::chrono::milliseconds;

CronJobController::CronJobController(client::InformerFactory& f, client::EventRecorder& events,
                                     int workers)
    : Controller("cronjob", f.client(), f.clock(), workers),
      events_(events),
      cronJobs_(f.informer(res::kCronJobs)),
      jobs_(f.informer(res::kJobs)) {
  cronJobs_.addHandlers(enqueueHandlers(false));
  auto owner = [this](const ObjectPtr& job) {
    std::string name;
    if (controlledBy(*job, "CronJob", &name)) queue().add(namespaceOf(*job) + "/" + name);
  };
  jobs_.addHandlers({owner, [owner](const ObjectPtr&, const ObjectPtr& n) { owner(n); }, owner});
}

namespace {

constexpr const char* kScheduledAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp";

Json referenceTo(const Json& job) {
  return {
      {"apiVersion", "batch/v1"}, {"kind", "Job"},     {"namespace", namespaceOf(job)},
      {"name", nameOf(job)},      {"uid", uidOf(job)}, {"resourceVersion", resourceVersionOf(job)}};
}

// When a finished Job finished (else started, else was made), for the history's order.
std::string finishedAt(const Json& job) {
  for (const char* f : {"completionTime", "startTime"})
    if (auto t = json::getString(job, {"status", f}); !t.empty()) return t;
  return json::getString(job, {"metadata", "creationTimestamp"});
}

milliseconds until(cron::TimePoint t, cron::TimePoint now) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(t - now)) +
         milliseconds(100);
}

}  // namespace

SyncResult CronJobController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr cjPtr = cronJobs_.get(ns, name);
  if (!cjPtr || isDeleting(*cjPtr)) return SyncResult::ok();
  const Json& cj = *cjPtr;
  const Json& spec = at(cj, {"spec"});
  auto now = clock_.now();
  Json st = at(cj, {"status"}).is_object() ? at(cj, {"status"}) : Json::object();
  SyncResult result = SyncResult::ok();

  // The Jobs it owns: the running ones are its `active`; finished ones are history.
  std::vector<ObjectPtr> running;
  std::map<std::string, std::vector<ObjectPtr>> finished;  // by Complete / Failed
  std::set<std::string> ownedNames;
  for (const auto& job : jobs_.list(ns)) {
    const Json* ref = controllerOf(*job);
    if (!ref || json::str(*ref, "uid") != uidOf(cj)) continue;
    ownedNames.insert(nameOf(*job));
    std::string as = jobFinishedAs(*job);
    if (!as.empty()) {
      finished[as].push_back(job);
      if (as == "Complete") {
        std::string done = json::getString(*job, {"status", "completionTime"});
        if (done > json::str(st, "lastSuccessfulTime")) st["lastSuccessfulTime"] = done;
      }
    } else if (!isDeleting(*job)) {
      running.push_back(job);
    }
  }
  for (const auto& ref : at(st, {"active"}))
    for (const auto& [as, jobs] : finished)
      for (const auto& job : jobs)
        if (json::str(ref, "uid") == uidOf(*job))
          events_.record(cj, "Normal", "SawCompletedJob",
                         "Saw completed job: " + nameOf(*job) + ", condition: " + as);

  // History limits: the oldest finished Jobs beyond them go, with their pods.
  for (const auto& [as, limitField, dflt] :
       {std::tuple<const char*, const char*, int64_t>{"Complete", "successfulJobsHistoryLimit", 3},
        {"Failed", "failedJobsHistoryLimit", 1}}) {
    auto& jobs = finished[as];
    int64_t limit = json::integer(spec, limitField, dflt);
    if (static_cast<int64_t>(jobs.size()) <= limit) continue;
    std::sort(jobs.begin(), jobs.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
      return finishedAt(*a) < finishedAt(*b);
    });
    client::DeleteOptions background;
    background.propagationPolicy = "Background";
    for (size_t i = 0; i + limit < jobs.size(); ++i) {
      if (isDeleting(*jobs[i])) continue;
      auto gone = client_.remove(res::kJobs, ns, nameOf(*jobs[i]), background);
      if (gone || gone.error().code() == 404)
        events_.record(cj, "Normal", "SuccessfulDelete", "Deleted job " + nameOf(*jobs[i]));
      else
        result.merge(SyncResult::of(gone, "delete job " + nameOf(*jobs[i])));
    }
  }

  auto writeStatus = [&]() {
    Json active = Json::array();
    for (const auto& job : running) active.push_back(referenceTo(*job));
    if (active.empty())
      st.erase("active");
    else
      st["active"] = active;
    return updateStatus(res::kCronJobs, cj, st);
  };

  auto schedule = cron::Schedule::parse(json::str(spec, "schedule"));
  std::string tz = json::str(spec, "timeZone");
  if (!schedule || !cron::knownTimeZone(tz)) {
    // The API refuses both; one stored before that is reported, not run.
    events_.record(
        cj, "Warning", schedule ? "UnknownTimeZone" : "UnparseableSchedule",
        schedule ? "unknown time zone " + tz : "unparseable schedule: " + schedule.error());
    return result.merge(writeStatus());
  }
  if (json::boolean(spec, "suspend")) return result.merge(writeStatus());
  auto nextRun = [&] {
    auto next = schedule->next(now, tz);
    return next ? SyncResult::after(until(*next, now)) : SyncResult::ok();
  };

  // The most recent scheduled time not yet run: after the last one run (or the CronJob's
  // creation), and within the starting deadline.
  auto last = timefmt::parseRfc3339(json::str(st, "lastScheduleTime"));
  if (!last) last = timefmt::parseRfc3339(json::getString(cj, {"metadata", "creationTimestamp"}));
  cron::TimePoint earliest = last ? *last : now;
  int64_t deadline = json::integer(spec, "startingDeadlineSeconds", -1);
  if (deadline >= 0) earliest = std::max(earliest, now - std::chrono::seconds(deadline));
  int missed = 0;
  for (auto t = schedule->next(earliest, tz); t && *t <= now && missed <= 100;
       t = schedule->next(*t, tz))
    ++missed;
  if (missed == 0) return result.merge(writeStatus()).merge(nextRun());
  if (missed > 100)
    events_.record(cj, "Warning", "TooManyMissedTimes",
                   "too many missed start times: more than 100; only the most recent is run");
  // Found from a window before now (the runs of the last hour, day, month, ...), not by
  // walking every missed time.
  std::optional<cron::TimePoint> recent;
  using std::chrono::hours;
  for (auto window : {hours(1), hours(25), hours(24 * 32), hours(24 * 367), hours(24 * 1830)}) {
    cron::TimePoint from = std::max(earliest, now - window);
    for (auto t = schedule->next(from, tz); t && *t <= now; t = schedule->next(*t, tz)) recent = t;
    if (recent || from == earliest) break;
  }
  if (!recent) return result.merge(writeStatus()).merge(nextRun());
  std::string when = timefmt::rfc3339(*recent);
  if (deadline >= 0 && *recent < now - std::chrono::seconds(deadline)) {
    events_.record(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: " + when);
    return result.merge(writeStatus()).merge(nextRun());
  }
  std::string jobName =
      name + "-" +
      std::to_string(
          std::chrono::duration_cast<std::chrono::minutes>(recent->time_since_epoch()).count());
  std::string policy = json::str(spec, "concurrencyPolicy", "Allow");
  if (ownedNames.count(jobName) || json::str(st, "lastScheduleTime") == when)
    return result.merge(writeStatus()).merge(nextRun());  // this time has run
  if (policy == "Forbid" && !running.empty()) {
    // Waits: the time runs when the active Job ends, if still within the deadline.
    PODIUM_LOG(Debug) << "cronjob " << key << ": " << when << " waits for the active job";
    return result.merge(writeStatus()).merge(nextRun());
  }
  if (policy == "Replace") {
    client::DeleteOptions background;
    background.propagationPolicy = "Background";
    for (const auto& job : running) {
      auto gone = client_.remove(res::kJobs, ns, nameOf(*job), background);
      if (!gone && gone.error().code() != 404)
        return result.merge(SyncResult::of(gone, "delete active job " + nameOf(*job)));
      events_.record(cj, "Normal", "SuccessfulDelete", "Deleted job " + nameOf(*job));
    }
    running.clear();
  }
  const Json& tmpl = at(spec, {"jobTemplate"});
  Json meta = at(tmpl, {"metadata"}).is_object() ? at(tmpl, {"metadata"}) : Json::object();
  meta["name"] = jobName;
  meta["namespace"] = ns;
  meta["annotations"][kScheduledAnnotation] = when;
  meta["ownerReferences"] = Json::array({controllerRef(cj)});
  Json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", meta},
              {"spec", at(tmpl, {"spec"})}};
  auto made = client_.create(res::kJobs, ns, job);
  if (!made && made.error().code() != 409) {
    events_.record(cj, "Warning", "FailedCreate", "Error creating job: " + made.error().message());
    return result.merge(writeStatus()).merge(SyncResult::of(made, "create job " + jobName));
  }
  if (made) {
    events_.record(cj, "Normal", "SuccessfulCreate", "Created job " + jobName);
    running.push_back(std::make_shared<const Json>(std::move(*made)));
  }
  st["lastScheduleTime"] = when;
  return result.merge(writeStatus()).merge(nextRun());
}

}  // namespace podium::controllers
