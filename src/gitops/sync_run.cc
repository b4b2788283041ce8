#include "sync_run.h"

#include <map>
#include <set>

#include "health.h"
#include "podium/common/strings.h"

namespace podium::gitops {

namespace {
// How often a running sync looks again at what it waits for.
constexpr std::chrono::milliseconds kPoll{200};
// How long a hook of an earlier sync may take to go before its new run is created anyway.
constexpr std::chrono::seconds kHookRemovalTimeout{30};

std::string phaseOf(const Target& t) { return t.hook.empty() ? std::string("Sync") : t.hook; }
}  // namespace

SyncRun::Stage SyncRun::pruneStage() {
  Stage s;
  s.prune = true;
  return s;
}

SyncRun::Task SyncRun::taskFor(const Target& t) {
  Task task;
  task.target = &t;
  return task;
}

SyncRun::SyncRun(client::Client& client, Clock& clock, Inputs inputs)
    : client_(client), clock_(clock), in_(std::move(inputs)) {
  startedAt_ = timefmt::rfc3339(clock_.now());
  std::set<int> waves;
  bool hooks = false;
  for (const auto& t : *in_.targets) {
    if (t.hook == "Skip") continue;
    hooks = hooks || !t.hook.empty();
    waves.insert(t.wave);
  }
  multiStep_ = hooks || waves.size() > 1;
  stages_ = stagesFor({"PreSync", "Sync", "PostSync"}, true);
  // The destination namespace first, when the app asks for it.
  std::string destNs = json::getString(in_.app, {"spec", "destination", "namespace"});
  if (in_.settings.has(nullptr, "CreateNamespace=true") && !destNs.empty() &&
      !client_.get(client::resources::kNamespaces, "", destNs)) {
    auto made = client_.create(
        client::resources::kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", destNs}}}});
    if (!made && made.error().code() != 409) fail(made.error().message());
  }
}

std::vector<SyncRun::Stage> SyncRun::stagesFor(const std::vector<std::string>& phases,
                                               bool withPrune) const {
  bool pruneLast = in_.settings.has(nullptr, "PruneLast=true");
  std::vector<Stage> out;
  for (const auto& phase : phases) {
    if (withPrune && phase == "PostSync" && !pruneLast) out.push_back(pruneStage());
    std::map<int, std::vector<Task>> byWave;
    for (const auto& t : *in_.targets)
      if (phaseOf(t) == phase && in_.selected(t)) byWave[t.wave].push_back(taskFor(t));
    for (auto& [wave, tasks] : byWave) {
      Stage s;
      s.phase = phase;
      s.wave = wave;
      s.tasks = std::move(tasks);
      out.push_back(std::move(s));
    }
  }
  if (withPrune && pruneLast) out.push_back(pruneStage());
  return out;
}

void SyncRun::fail(const std::string& reason) {
  if (!failed_) failReason_ = reason;
  failed_ = true;
}

SyncRun::State SyncRun::step(std::chrono::milliseconds* wait) {
  while (true) {
    // A failure stops the sync; the SyncFail hooks run, then it ends Failed.
    if (failed_ && !syncFailRun_) {
      syncFailRun_ = true;
      stages_ = stagesFor({"SyncFail"}, false);
      stage_ = 0;
    }
    if (stage_ >= stages_.size()) break;
    Stage& s = stages_[stage_];
    if (s.prune) {
      pruneExtraneous();
      ++stage_;
      continue;
    }
    if (!s.applied) {
      if (!apply(s)) {
        message_ = "waiting for a hook of the last sync to be deleted";
        *wait = kPoll;
        return State::Running;
      }
      s.applied = true;
      s.since = clock_.monotonic();
      if (failed_ && !syncFailRun_) continue;
    }
    if (multiStep_ && !settled(s)) {
      message_ = "waiting for " + s.phase + " wave " + std::to_string(s.wave) + " to be healthy";
      *wait = kPoll;
      return State::Running;
    }
    ++stage_;
  }
  std::string reason;
  for (const auto& res : results_)
    if (reason.empty() && json::str(res, "status") == "SyncFailed")
      reason = json::str(res, "message");
  if (reason.empty()) reason = failReason_;
  message_ = failed_ ? "one or more objects failed to apply, reason: " + reason
                     : "successfully synced (all tasks run)";
  return failed_ ? State::Failed : State::Succeeded;
}

bool SyncRun::apply(Stage& s) {
  bool failedHere = false;
  for (auto& task : s.tasks) {
    if (task.applied) continue;
    const Target& t = *task.target;
    auto live = client_.get(t.resource, t.ns, t.name);
    if (!t.hook.empty() && live &&
        t.deletePolicy().find("BeforeHookCreation") != std::string::npos) {
      // A hook runs anew each sync: the last run goes first.
      if (!task.recreating) {
        task.recreating = true;
        s.since = clock_.monotonic();
        removeHook(t);
        return false;
      }
      if (clock_.monotonic() - s.since < kHookRemovalTimeout) return false;
    }
    task.applied = true;
    Json res = {{"group", t.group},  {"version", t.version}, {"kind", t.kind},
                {"namespace", t.ns}, {"name", t.name},       {"syncPhase", s.phase}};
    if (!t.hook.empty()) res["hookType"] = t.hook;
    if (t.hook.empty() && live && inSync(t, *live)) continue;  // unchanged, still waited for
    bool existed = live && !task.recreating;
    auto written = write(t, existed ? &*live : nullptr);
    if (written) {
      res["status"] = "Synced";
      res["message"] =
          strings::toLower(t.kind) + "/" + t.name + (existed ? " configured" : " created");
      if (!t.hook.empty()) res["hookPhase"] = "Running";
    } else {
      res["status"] = "SyncFailed";
      res["message"] = t.file + ": " + written.error().message();
      failedHere = true;
    }
    task.result = results_.size();
    results_.push_back(std::move(res));
  }
  if (failedHere) fail("");
  return true;
}

bool SyncRun::settled(Stage& s) {
  bool pending = false;
  bool timedOut = clock_.monotonic() - s.since > kWaveTimeout;
  for (auto& task : s.tasks) {
    const Target& t = *task.target;
    if (task.removing) {
      // A hook deleted by its policy: the wave is over once it is gone.
      if (client_.get(t.resource, t.ns, t.name) &&
          clock_.monotonic() - task.removingSince < kHookRemovalTimeout)
        pending = true;
      else
        task.removing = false;
      continue;
    }
    if (task.done) continue;
    std::string outcome = "Missing";
    if (auto live = client_.get(t.resource, t.ns, t.name)) {
      auto h = healthOf(*live);
      if (!h || h->status == "Healthy")
        outcome = "Healthy";  // no health check: done once applied
      else
        outcome = h->status + (h->message.empty() ? "" : ": " + h->message);
      if (h && h->status != "Healthy" && h->status != "Degraded" && !timedOut) {
        pending = true;
        continue;
      }
    } else if (!timedOut) {
      pending = true;
      continue;
    }
    if (timedOut && outcome != "Healthy" && outcome.rfind("Degraded", 0) != 0)
      outcome = "timed out waiting to be healthy (" + outcome + ")";
    task.done = true;
    bool healthy = outcome == "Healthy";
    if (task.result && !t.hook.empty()) {
      results_[*task.result]["hookPhase"] = healthy ? "Succeeded" : "Failed";
      std::string policy = t.deletePolicy();
      if ((healthy && policy.find("HookSucceeded") != std::string::npos) ||
          (!healthy && policy.find("HookFailed") != std::string::npos)) {
        removeHook(t);
        task.removing = true;
        task.removingSince = clock_.monotonic();
        pending = true;
      }
    }
    if (!healthy) {
      if (task.result) {
        results_[*task.result]["status"] = "SyncFailed";
        results_[*task.result]["message"] = t.kind + "/" + t.name + ": " + outcome;
      }
      fail(t.kind + "/" + t.name + ": " + outcome);
    }
  }
  return !pending;
}

void SyncRun::pruneExtraneous() {
  std::string policy = "Foreground";
  for (const char* p : {"background", "orphan"})
    if (in_.settings.has(nullptr, std::string("PrunePropagationPolicy=") + p))
      policy = std::string(1, static_cast<char>(toupper(p[0]))) + (p + 1);
  bool failedHere = false;
  for (const auto& e : in_.extraneous) {
    if (!in_.only.empty() &&
        !in_.only.count(json::str(e, "group") + "/" + json::str(e, "kind") + "/" +
                        json::str(e, "namespace") + "/" + json::str(e, "name")))
      continue;
    Json res = e;
    res.erase("requiresPruning");
    res.erase("health");
    res["syncPhase"] = "Sync";
    std::string ns = json::str(e, "namespace"), name = json::str(e, "name");
    std::string group = json::str(e, "group"), version = json::str(e, "version");
    auto r =
        client_.resourceFor(group.empty() ? version : group + "/" + version, json::str(e, "kind"));
    client::Result live = Unexpected(api::ApiError(404, "NotFound", ""));
    if (r) live = client_.get(*r, ns, name);
    if (!in_.prune || (live && annotatedOption(*live, "Prune=false"))) {
      res["status"] = "PruneSkipped";
      res["message"] = in_.prune ? "ignored (Prune=false)" : "ignored (requires pruning)";
    } else if (r) {
      client::DeleteOptions d;
      d.propagationPolicy = policy;
      auto removed = client_.remove(*r, ns, name, d);
      bool ok = removed || removed.error().code() == 404;
      res["status"] = ok ? "Pruned" : "SyncFailed";
      res["message"] = ok ? "pruned" : removed.error().message();
      failedHere = failedHere || !ok;
    }
    results_.push_back(res);
  }
  if (failedHere) fail("");
}

// Writes one object as its options say: server-side apply (the default; Argo CD's
// ServerSideApply=true), or with Replace=true a PUT of the whole object (a create when it is
// missing). FailOnSharedResource=true refuses an object another app tracks.
client::Result SyncRun::write(const Target& t, const Json* live) {
  const SyncSettings& settings = in_.settings;
  std::string appName = json::getString(in_.app, {"metadata", "name"});
  if (live && settings.has(&t, "FailOnSharedResource=true")) {
    std::string owner = json::getString(*live, {"metadata", "annotations", kTrackingId});
    owner = owner.substr(0, owner.find(':'));
    if (!owner.empty() && owner != appName)
      return Unexpected(api::ApiError(
          409, "Conflict",
          "shared resource found: " + t.kind + "/" + t.name + " is part of application " + owner));
  }
  Json obj = toApply(t, live, settings);
  if (!settings.has(&t, "Replace=true")) return client_.apply(t.resource, t.ns, obj, true);
  if (!live) return client_.create(t.resource, t.ns, obj);
  obj["metadata"]["resourceVersion"] = json::getString(*live, {"metadata", "resourceVersion"});
  return client_.update(t.resource, t.ns, obj);
}

// Deletes a hook object in the foreground, so its pods go too.
void SyncRun::removeHook(const Target& t) {
  client::DeleteOptions d;
  d.propagationPolicy = "Foreground";
  (void)client_.remove(t.resource, t.ns, t.name, d);  // gone already, or going: both fine
}

}  // namespace podium::gitops
