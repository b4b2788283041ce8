#include "job.h"

#include "podium/common/log.h"
#include "podium/common/time.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

JobController::JobController(client::InformerFactory& f, client::EventRecorder& events, int workers)
    : Controller("job", f.client(), f.clock(), workers),
      events_(events),
      jobs_(f.informer(res::kJobs)),
      pods_(f.informer(res::kPods)),
      expectations_(f.clock()) {
  auto handlers = enqueueHandlers(false);
  handlers.onDelete = [this](const ObjectPtr& o) { expectations_.clear(Informer::keyOf(*o)); };
  jobs_.addHandlers(handlers);
  pods_.addHandlers(ownedPodHandlers("Job", expectations_, queue()));
}

SyncResult JobController::deleteActive(const Json& job, std::vector<ObjectPtr>& active) {
  SyncResult result = SyncResult::ok();
  for (const auto& p : active) {
    auto gone = client_.remove(res::kPods, namespaceOf(job), nameOf(*p));
    result.merge(SyncResult::of(gone, "delete active pod " + nameOf(*p)));
  }
  active.clear();
  return result;
}

SyncResult JobController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr jobPtr = jobs_.get(ns, name);
  if (!jobPtr) {
    expectations_.clear(key);
    return SyncResult::ok();
  }
  const Json& job = *jobPtr;
  if (isDeleting(job)) return SyncResult::ok();
  auto nowTp = clock_.now();
  std::string now = timefmt::rfc3339(nowTp);
  const Json& spec = at(job, {"spec"});
  std::string uid = uidOf(job);
  std::vector<ObjectPtr> active;
  int64_t succeeded = 0, failed = 0;
  for (const auto& pod : pods_.list(ns)) {
    const Json* ref = controllerOf(*pod);
    if (!ref || json::str(*ref, "uid") != uid) continue;
    std::string phase = json::getString(*pod, {"status", "phase"});
    if (phase == "Succeeded")
      ++succeeded;
    else if (phase == "Failed")
      ++failed;
    else if (!isDeleting(*pod))
      active.push_back(pod);
  }
  Json st = at(job, {"status"}).is_object() ? at(job, {"status"}) : Json::object();
  Json old = st;
  if (!jobFinishedAs(job).empty()) {
    // A finished job runs nothing: pods a failed delete left behind go now.
    SyncResult result = deleteActive(job, active);
    int64_t ttl = json::integer(spec, "ttlSecondsAfterFinished", -1);
    if (ttl < 0) return result;
    auto done = timefmt::parseRfc3339(json::str(st, "completionTime", json::str(st, "startTime")));
    if (done && nowTp < *done + std::chrono::seconds(ttl))
      return result.merge(SyncResult::after(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                *done + std::chrono::seconds(ttl) - nowTp) +
                                            std::chrono::milliseconds(100)));
    client::DeleteOptions background;
    background.propagationPolicy = "Background";
    return result.merge(
        SyncResult::of(client_.remove(res::kJobs, ns, name, background), "delete finished job"));
  }
  bool suspended = json::boolean(spec, "suspend");
  if (!st.contains("startTime") && !suspended) st["startTime"] = now;
  int64_t completions = json::integer(spec, "completions", 1);
  int64_t parallelism = json::integer(spec, "parallelism", 1);
  int64_t backoffLimit = json::integer(spec, "backoffLimit", 6);
  Json& conds = st["conditions"];
  if (!conds.is_array()) conds = Json::array();
  bool failedJob = false;
  std::string failReason, failMessage;
  if (failed > backoffLimit) {
    failedJob = true;
    failReason = "BackoffLimitExceeded";
    failMessage = "Job has reached the specified backoff limit";
  }
  SyncResult result = SyncResult::ok();
  int64_t deadline = json::integer(spec, "activeDeadlineSeconds", 0);
  if (!failedJob && deadline > 0) {
    auto started = timefmt::parseRfc3339(json::str(st, "startTime"));
    if (started && nowTp >= *started + std::chrono::seconds(deadline)) {
      failedJob = true;
      failReason = "DeadlineExceeded";
      failMessage = "Job was active longer than specified deadline";
    } else if (started) {
      result = SyncResult::after(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     *started + std::chrono::seconds(deadline) - nowTp) +
                                 std::chrono::milliseconds(100));
    }
  }
  bool complete = succeeded >= completions;
  if (failedJob || complete || suspended) {
    result.merge(deleteActive(job, active));
  } else if (expectations_.satisfied(key)) {
    int64_t want =
        std::min(parallelism, completions - succeeded) - static_cast<int64_t>(active.size());
    if (want > 0) {
      expectations_.expect(key, static_cast<int>(want), 0);
      for (int64_t i = 0; i < want; ++i) {
        Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
        Json meta = at(spec, {"template", "metadata"}).is_object()
                        ? at(spec, {"template", "metadata"})
                        : Json::object();
        meta["generateName"] = name + "-";
        meta["namespace"] = ns;
        meta["ownerReferences"] = Json::array({controllerRef(job)});
        pod["metadata"] = meta;
        pod["spec"] = at(spec, {"template", "spec"});
        auto made = client_.create(res::kPods, ns, pod);
        if (!made) {
          expectations_.lower(key, static_cast<int>(want - i), 0);
          events_.record(job, "Warning", "FailedCreate",
                         "Error creating: " + made.error().message());
          result.merge(SyncResult::retry("create pod: " + made.error().message()));
          break;
        }
        events_.record(job, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*made));
      }
    }
  }
  st["active"] = static_cast<int64_t>(active.size());
  st["succeeded"] = succeeded;
  st["failed"] = failed;
  st["ready"] = static_cast<int64_t>(std::count_if(
      active.begin(), active.end(), [](const ObjectPtr& p) { return isPodReady(*p); }));
  for (const char* f : {"active", "succeeded", "failed"})
    if (st[f] == 0) st.erase(f);
  if (complete) {
    setCondition(conds,
                 {{"type", "SuccessCriteriaMet"},
                  {"status", "True"},
                  {"reason", "CompletionsReached"},
                  {"message", "Reached expected number of succeeded pods"},
                  {"lastProbeTime", now}},
                 now);
    setCondition(conds,
                 {{"type", "Complete"},
                  {"status", "True"},
                  {"reason", "CompletionsReached"},
                  {"message", "Reached expected number of succeeded pods"},
                  {"lastProbeTime", now}},
                 now);
    st["completionTime"] = now;
    events_.record(job, "Normal", "Completed", "Job completed");
  } else if (failedJob) {
    setCondition(conds,
                 {{"type", "FailureTarget"},
                  {"status", "True"},
                  {"reason", failReason},
                  {"message", failMessage},
                  {"lastProbeTime", now}},
                 now);
    setCondition(conds,
                 {{"type", "Failed"},
                  {"status", "True"},
                  {"reason", failReason},
                  {"message", failMessage},
                  {"lastProbeTime", now}},
                 now);
    events_.record(job, "Warning", failReason, failMessage);
  } else if (suspended) {
    setCondition(conds,
                 {{"type", "Suspended"},
                  {"status", "True"},
                  {"reason", "JobSuspended"},
                  {"message", "Job suspended"},
                  {"lastProbeTime", now}},
                 now);
  }
  if (conds.empty()) st.erase("conditions");
  if (st == old) return result;
  return result.merge(updateStatus(res::kJobs, job, st));
}

}  // namespace podium::controllers
