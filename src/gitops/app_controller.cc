#include "app_controller_impl.h"

#include <algorithm>

#include "health.h"
#include "podium/client/objects.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::gitops {

using client::SyncResult;

namespace {

// The application without its status (a copy of the small parts only).
Json withoutStatus(const Json& app) {
  Json out = Json::object();
  for (auto it = app.begin(); it != app.end(); ++it)
    if (it.key() != "status") out[it.key()] = it.value();
  return out;
}

// An app's status, or an empty object.
const Json& statusOf(const Json& app) {
  static const Json kNoStatus = Json::object();
  const Json& status = json::at(app, {"status"});
  return status.is_object() ? status : kNoStatus;
}

// A copy of an app's status without its list of resources, which every status a reconcile
// writes replaces (it is the large part of a status).
Json statusWithoutResources(const Json& app) {
  Json out = Json::object();
  const Json& status = statusOf(app);
  for (auto it = status.begin(); it != status.end(); ++it)
    if (it.key() != "resources") out[it.key()] = it.value();
  return out;
}

// Whether `b` differs from `a` only in what the controller's own status write changes: the
// status, what every write changes, and the refresh annotation or the done operation it takes
// off (a refresh or operation asked for is a change). The reconcile that wrote it decided what
// comes next.
bool onlyStatusChanged(const Json& a, const Json& b) {
  if (json::getString(a, {"metadata", "resourceVersion"}) ==
      json::getString(b, {"metadata", "resourceVersion"}))
    return false;
  auto owned = [&](const Json& o, bool before) {
    Json out = withoutStatus(o);
    if (before && !b.contains("operation")) out.erase("operation");
    if (!out.contains("metadata")) return out;
    Json& meta = out["metadata"];
    for (const char* k : {"resourceVersion", "managedFields", "generation"}) meta.erase(k);
    if (!meta.contains("annotations") || !meta["annotations"].is_object()) return out;
    if (before && !json::find(b, {"metadata", "annotations", kRefresh}))
      meta["annotations"].erase(kRefresh);
    if (meta["annotations"].empty()) meta.erase("annotations");
    return out;
  };
  return owned(a, true) == owned(b, false);
}

// Whether two statuses say the same, the time of the reconcile and of each condition's last
// transition aside (compared in place: a status lists every resource of the app).
bool sameStatus(const Json& a, const Json& b) {
  auto count = [](const Json& s) {
    size_t n = 0;
    for (auto it = s.begin(); it != s.end(); ++it) n += it.key() != "reconciledAt";
    return n;
  };
  if (!a.is_object() || !b.is_object() || count(a) != count(b)) return a == b;
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (it.key() == "reconciledAt") continue;
    auto other = a.find(it.key());
    if (other == a.end()) return false;
    if (it.key() != "conditions" || !it->is_array() || !other->is_array()) {
      if (*other != *it) return false;
      continue;
    }
    if (other->size() != it->size()) return false;
    for (size_t i = 0; i < it->size(); ++i) {
      Json x = (*it)[i], y = (*other)[i];
      if (x.is_object()) x.erase("lastTransitionTime");
      if (y.is_object()) y.erase("lastTransitionTime");
      if (x != y) return false;
    }
  }
  return true;
}

}  // namespace

AppController::AppController(client::Client& client, GitOpsOptions options)
    : Controller("gitops", client, *options.clock, std::max(1, options.workers)),
      opts_(std::move(options)),
      sources_(client, opts_.dataDir),
      apps_(client, kApplications) {
  auto handlers = enqueueHandlers(false);
  handlers.onUpdate = [this](const client::ObjectPtr& o, const client::ObjectPtr& n) {
    if (!onlyStatusChanged(*o, *n)) enqueue(*n);
  };
  apps_.addHandlers(handlers);
  apps_.start();
  if (!apps_.waitForSync(std::chrono::seconds(10)))
    PODIUM_LOG(Warn) << "gitops: the Applications cache did not sync in 10s";
  // Several apps reconcile at once; one app is never reconciled twice at once (the queue hands
  // a key to one worker at a time), and a sync waiting for its waves holds no worker.
  start();
  images_ = std::make_unique<ImageBuilds>(client, sources_, opts_);
  images_->start();
  if (opts_.refCheckInterval.count() > 0) refWatcher_ = std::thread([this] { watchRefs(); });
}

void AppController::stop() {
  {
    std::lock_guard<std::mutex> lock(refMu_);
    if (stopped_) return;
    stopped_ = true;
  }
  refCv_.notify_all();
  if (refWatcher_.joinable()) refWatcher_.join();
  if (images_) images_->stop();
  Controller::stop();
  apps_.stop();
}

// A push is noticed within refCheckInterval: the remote is asked for its refs (cheap, for a
// local repository a file read), and an app whose revision moved past what it last compared is
// reconciled now. The full poll (fetch, render, compare) stays at pollInterval.
void AppController::watchRefs() {
  std::unique_lock<std::mutex> lock(refMu_);
  while (!stopped_) {
    refCv_.wait_for(lock, opts_.refCheckInterval, [this] { return stopped_; });
    if (stopped_) return;
    lock.unlock();
    // Edge-triggered: a commit not seen before, that the app has not compared yet (an app
    // whose comparison keeps failing is not reconciled at this rate).
    std::vector<RefWatch::Item> items;
    for (const auto& app : apps_.list())
      items.push_back({client::Informer::keyOf(*app),
                       json::getString(*app, {"spec", "source", "repoURL"}),
                       json::getString(*app, {"spec", "source", "targetRevision"}),
                       json::getString(*app, {"status", "sync", "revision"})});
    for (const auto& k : refs_.moved(items, [this](const std::string&url, const std::string&rev) {
           auto c = sources_.remoteCommit(url, rev);
           return c ? *c : std::string();
         }))
      queue().add(k);
    images_->checkRefs();
    lock.lock();
  }
}

// Every Application is refreshed each poll interval, with up to a quarter of it as jitter.
SyncResult AppController::pollAgain() {
  auto jitter = opts_.random->below(static_cast<uint64_t>(opts_.pollInterval.count() / 4) + 1);
  return SyncResult::after(opts_.pollInterval +
                           std::chrono::milliseconds(static_cast<int64_t>(jitter)));
}

std::optional<Resource> AppController::resourceOf(const Json& res) {
  std::string group = json::str(res, "group"), version = json::str(res, "version");
  return client_.resourceFor(group.empty() ? version : group + "/" + version,
                             json::str(res, "kind"));
}

SyncResult AppController::sync(const std::string& key) {
  auto [appNs, appName] = client::Informer::splitKey(key);
  client::ObjectPtr appPtr = apps_.get(appNs, appName);
  if (!appPtr) {
    {
      std::lock_guard<std::mutex> lock(stateMu_);
      runs_.erase(key);
      retries_.erase(key);
    }
    std::lock_guard<std::mutex> lock(comparedMu_);
    compared_.erase(key);
    return SyncResult::ok();
  }
  // An operation is run from the API server's copy, as Argo CD does: the cache can still hold
  // one that a sync just finished (the removal not seen yet), and running it again would
  // replace the sync's result with an empty one.
  if (json::find(*appPtr, {"operation"})) {
    auto fresh = client_.get(kApplications, appNs, appName);
    if (!fresh) return SyncResult::of(fresh, "get application " + key);
    appPtr = std::make_shared<const Json>(std::move(*fresh));
  }
  if (client::isDeleting(*appPtr)) return finalize(*appPtr, key);
  bool running;
  {
    std::lock_guard<std::mutex> lock(stateMu_);
    running = runs_.count(key) > 0;
  }
  if (running) return continueRun(key, *appPtr);
  return reconcile(key, *appPtr).merge(pollAgain());
}

namespace {

// Whether a target syncs with Validate=false (the app's option or its own annotation): its
// objects then depend on the server's schemas too.
bool anyLenient(const std::vector<Target>& targets, const SyncSettings& settings) {
  return std::any_of(targets.begin(), targets.end(),
                     [&](const Target& t) { return settings.has(&t, "Validate=false"); });
}

// What git's side of a compare is made from: the commit, the source and destination it was
// rendered for, and the settings that shape the comparison; "" (nothing reused) when lenient.
std::string basisOf(const Json& app, const std::string& commit, const SyncSettings& settings,
                    bool lenient) {
  if (lenient) return "";
  const Json& spec = json::at(app, {"spec"});
  return commit + "\n" + json::dump(json::at(spec, {"source"})) + "\n" +
         json::dump(json::at(spec, {"destination"})) + "\n" +
         json::dump(json::at(spec, {"ignoreDifferences"})) + "\n" + json::dump(settings.options);
}

}  // namespace

AppController::Compared AppController::compare(const std::string& key, const std::string& basis,
                                               const std::vector<Target>& targets,
                                               const std::vector<Json>& extraneous) {
  Verdicts previous, next;
  {
    std::lock_guard<std::mutex> lock(comparedMu_);
    auto it = compared_.find(key);
    if (it != compared_.end() && !basis.empty() && it->second.basis == basis)
      previous = std::move(it->second);
  }
  next.basis = basis;
  Compared out;
  std::string health = "Healthy", healthMessage;
  int missing = 0;
  size_t managed = 0;
  for (const auto& t : targets) {
    if (!t.hook.empty()) continue;  // hooks run with syncs; they are not the app's state
    ++managed;
    auto live = client_.getShared(t.resource, t.ns, t.name);
    std::string rv = live ? json::getString(**live, {"metadata", "resourceVersion"}) : "";
    std::string tk = t.key();
    auto seen = previous.byTarget.find(tk);
    Verdict v;
    if (seen != previous.byTarget.end() && seen->second.resourceVersion == rv && !rv.empty()) {
      v = std::move(seen->second);
    } else {
      v.resourceVersion = rv;
      v.synced = live && inSync(t, **live);
      v.entry = {{"group", t.group}, {"version", t.version},
                 {"kind", t.kind},   {"namespace", t.ns},
                 {"name", t.name},   {"status", v.synced ? "Synced" : "OutOfSync"}};
      if (!live) {
        v.entry["health"] = {{"status", "Missing"}};
      } else if (auto h = healthOf(**live)) {
        v.entry["health"] = {{"status", h->status}};
        if (!h->message.empty()) v.entry["health"]["message"] = h->message;
      }
    }
    if (!live) {
      ++missing;
    } else if (std::string h = json::getString(v.entry, {"health", "status"});
               !h.empty() && healthRank(h) > healthRank(health)) {
      health = h;
      healthMessage = json::getString(v.entry, {"health", "message"});
    }
    out.outOfSync = out.outOfSync || !v.synced;
    out.resources.push_back(v.entry);
    if (live) next.byTarget.emplace(std::move(tk), std::move(v));
  }
  for (const auto& e : extraneous) {
    Json res = e;
    res["status"] = "OutOfSync";
    res["requiresPruning"] = true;
    res.erase("health");
    out.resources.push_back(std::move(res));
    out.outOfSync = true;
  }
  if (managed > 0 && missing == static_cast<int>(managed)) health = "Missing";
  out.health = {{"status", health}};
  if (!healthMessage.empty()) out.health["message"] = healthMessage;
  std::lock_guard<std::mutex> lock(comparedMu_);
  compared_[key] = std::move(next);
  return out;
}

std::string AppController::dryRun(const Json& app, const std::vector<Target>& targets,
                                  const std::string& commit, const SyncSettings& settings) {
  const Json& src = json::at(app, {"spec", "source"});
  std::string checkKey = json::str(src, "repoURL") + "\n" + commit + "\n" + json::dump(src) +
                         json::dump(settings.options);
  {
    std::lock_guard<std::mutex> lock(stateMu_);
    if (checked_.count(checkKey)) return "";
  }
  for (const auto& t : targets) {
    if (settings.has(&t, "Validate=false")) continue;
    auto dry = client_.apply(t.resource, t.ns, t.obj, true, client::Client::DryRun::Strict);
    // A namespace that a sync would create is not the manifest's fault.
    if (!dry && (dry.error().code() == 400 || dry.error().code() == 422))
      return "Failed to load target state: failed to generate manifest for source 1 of 1: " +
             t.file + ": " + t.kind + " " + t.name + ": " + dry.error().message();
  }
  std::lock_guard<std::mutex> lock(stateMu_);
  if (checked_.size() > 256) checked_.clear();
  checked_.insert(checkKey);
  return "";
}

SyncResult AppController::reconcile(const std::string& key, const Json& app) {
  const Json& spec = json::at(app, {"spec"});
  const Json& src = json::at(spec, {"source"});
  const Json& dest = json::at(spec, {"destination"});
  const Json& previous = statusOf(app);
  Json status = statusWithoutResources(app);
  std::string now = timefmt::rfc3339(clock_.now());
  Json conditions = Json::array();
  // A refresh asked for with Argo CD's annotation is done now, recorded (reconciledAt) and the
  // annotation taken off, as Argo CD does.
  bool refresh = !json::getString(app, {"metadata", "annotations", kRefresh}).empty();
  auto fail = [&](const std::string& type, const std::string& message) {
    conditions.push_back({{"type", type}, {"message", message}, {"lastTransitionTime", now}});
    status["sync"] = {{"status", "Unknown"},
                      {"comparedTo", {{"source", src}, {"destination", dest}}}};
    if (!status.contains("health")) status["health"] = {{"status", "Unknown"}};
    if (previous.contains("resources")) status["resources"] = previous["resources"];
    return writeStatus(app, previous, std::move(status), conditions, now, refresh);
  };
  std::string server = json::str(dest, "server"), cluster = json::str(dest, "name");
  if (!(server == "https://kubernetes.default.svc" || cluster == "in-cluster" ||
        (server.empty() && cluster.empty())))
    return fail("InvalidSpecError", "application destination server '" + server + cluster +
                                        "' is not the in-cluster destination "
                                        "(https://kubernetes.default.svc or name in-cluster)");
  if (json::str(src, "repoURL").empty())
    return fail("InvalidSpecError", "spec.source.repoURL is required");
  // A requested operation (`podium app sync`/`rollback`, Argo CD's `operation` field) syncs
  // once to its revision, automated or not.
  const Json* operation = json::find(app, {"operation", "sync"});
  std::string opRevision = operation ? json::str(*operation, "revision") : "";
  auto loaded = sources_.load(
      app, !opRevision.empty() ? opRevision : json::str(src, "targetRevision", "HEAD"));
  if (!loaded) return fail("ComparisonError", loaded.error());
  std::string commit = loaded->commit;
  SyncSettings settings;
  auto rules = parseIgnoreRules(json::at(spec, {"ignoreDifferences"}));
  if (!rules) return fail("InvalidSpecError", rules.error());
  settings.ignore = std::move(*rules);
  for (const Json* list : {&json::at(spec, {"syncPolicy", "syncOptions"}),
                           &json::at(app, {"operation", "sync", "syncOptions"})})
    for (const auto& o : *list) settings.options.push_back(o);
  // The rendered targets are shared; an app whose settings change them gets its own copy. Its
  // targets point into settings.ignore, which moves (with its storage) into the sync run.
  TargetList shared = loaded->targets;
  bool lenient = anyLenient(*shared, settings);
  std::shared_ptr<std::vector<Target>> own;
  if (!settings.ignore.empty() || lenient) {
    own = std::make_shared<std::vector<Target>>(*shared);
    attachRules(*own, settings.ignore);
    shared = own;
  }
  const std::vector<Target>& targets = *shared;
  // Each object of a new commit is checked by the API server (a strict dry run) before anything
  // of it is applied: a wrong field stops the whole commit, naming its file.
  if (auto bad = dryRun(app, targets, commit, settings); !bad.empty())
    return fail("ComparisonError", bad);
  // With Validate=false, fields the server does not know are dropped on write (as by `kubectl
  // apply --validate=false`): what git says is what the server would keep of it, or the app
  // would never be Synced.
  if (lenient)
    for (auto& t : *own)
      if (settings.has(&t, "Validate=false"))
        if (auto dry =
                client_.apply(t.resource, t.ns, t.obj, true, client::Client::DryRun::Lenient))
          t.obj = knownFields(t.obj, *dry);

  // Compare: each desired object with its live one; objects of earlier syncs no longer in git
  // are extraneous (to prune).
  std::set<std::string> wanted;
  for (const auto& t : targets) wanted.insert(t.key());
  std::vector<Json> extraneous;
  for (const auto& res : json::at(previous, {"resources"})) {
    std::string k = json::str(res, "group") + "/" + json::str(res, "kind") + "/" +
                    json::str(res, "namespace") + "/" + json::str(res, "name");
    if (!wanted.count(k) && !json::boolean(res, "hook")) extraneous.push_back(res);
  }
  Compared now_ = compare(key, basisOf(app, commit, settings, lenient), targets, extraneous);

  // Automated sync: a new revision, or drift with selfHeal.
  const Json* automated = json::find(spec, {"syncPolicy", "automated"});
  bool autoSync = automated && automated->is_object() &&
                  !(automated->contains("enabled") && (*automated)["enabled"] == false);
  bool prune = autoSync && json::boolean(*automated, "prune");
  bool selfHeal = autoSync && json::boolean(*automated, "selfHeal");
  bool allowEmpty = autoSync && json::boolean(*automated, "allowEmpty");
  std::string lastSynced = json::getString(status, {"operationState", "syncResult", "revision"});
  std::string lastPhase = json::getString(status, {"operationState", "phase"});
  // A failed automated sync is retried with back-off (phase Running meanwhile); once the
  // retries are spent, the commit is not synced again, with or without selfHeal (a new commit
  // or a manual sync is the way on), as in Argo CD.
  bool retrying = lastPhase == "Running" && lastSynced == commit;
  bool retryDue = false;
  if (retrying) {
    std::lock_guard<std::mutex> lock(stateMu_);
    auto it = retries_.find(key);
    if (it == retries_.end() || it->second.revision != commit)  // outlived a restart
      it = retries_
               .insert_or_assign(key, RetryState{commit,
                                                 static_cast<int>(json::integer(
                                                     status["operationState"], "retryCount")),
                                                 {}})
               .first;
    retryDue = clock_.monotonic() >= it->second.nextAt;
  }
  bool gaveUp = lastPhase == "Failed" && lastSynced == commit;
  bool onlyPruning =
      !extraneous.empty() &&
      std::all_of(now_.resources.begin(), now_.resources.end(), [](const Json& r) {
        return json::str(r, "status") == "Synced" || json::boolean(r, "requiresPruning");
      });
  SyncRun::Inputs run;
  run.app = withoutStatus(app);  // what a sync reads of it (its status can be large)
  run.settings = std::move(settings);
  run.targets = std::move(shared);
  run.extraneous = std::move(extraneous);
  run.commit = commit;
  run.subject = loaded->subject;
  if (operation) {
    Json by = json::at(app, {"operation", "initiatedBy"});
    run.prune = json::boolean(*operation, "prune");
    for (const auto& r : json::at(*operation, {"resources"}))
      run.only.insert(json::str(r, "group") + "/" + json::str(r, "kind") + "/" +
                      json::str(r, "namespace") + "/" + json::str(r, "name"));
    run.initiatedBy = by.is_object() ? by : Json{{"username", "admin"}};
    run.requested = true;
    return startRun(key, app, std::move(run), std::move(status), previous, conditions, refresh);
  }
  if (autoSync && now_.outOfSync && commit == lastSynced && (gaveUp || (retrying && !retryDue))) {
    if (gaveUp)
      conditions.push_back({{"type", "SyncError"},
                            {"message", "Failed last sync attempt to " + commit + ": " +
                                            json::getString(status, {"operationState", "message"})},
                            {"lastTransitionTime", now}});
  } else if (autoSync && now_.outOfSync && (commit != lastSynced || selfHeal || retryDue) &&
             !(onlyPruning && !prune)) {
    if (prune && !allowEmpty && run.targets->empty() && !run.extraneous.empty()) {
      conditions.push_back({{"type", "SyncError"},
                            {"message", "auto-sync will wipe out all resources"},
                            {"lastTransitionTime", now}});
    } else {
      run.prune = prune;
      run.initiatedBy = {{"automated", true}};
      return startRun(key, app, std::move(run), std::move(status), previous, conditions, refresh);
    }
  }
  status["sync"] = {{"status", now_.outOfSync ? "OutOfSync" : "Synced"},
                    {"revision", commit},
                    {"comparedTo", {{"source", src}, {"destination", dest}}}};
  status["health"] = now_.health;
  status["resources"] = std::move(now_.resources);
  status["sourceType"] =
      run.targets->empty() ? "Directory" : sourceTypeOf(run.targets->front().file);
  return writeStatus(app, previous, std::move(status), conditions, now, refresh);
}

SyncResult AppController::startRun(const std::string& key, const Json& app, SyncRun::Inputs inputs,
                                   Json status, const Json& previous, Json conditions,
                                   bool refresh) {
  auto run = std::make_shared<SyncRun>(client_, clock_, std::move(inputs));
  return advance(key, app, std::move(run), std::move(status), previous, conditions, refresh);
}

SyncResult AppController::continueRun(const std::string& key, const Json& app) {
  std::shared_ptr<SyncRun> run;
  {
    std::lock_guard<std::mutex> lock(stateMu_);
    run = runs_[key].run;
  }
  const Json& previous = statusOf(app);
  bool refresh = !json::getString(app, {"metadata", "annotations", kRefresh}).empty();
  return advance(key, app, std::move(run), statusWithoutResources(app), previous, Json::array(),
                 refresh);
}

namespace {

// The operation a finished sync reports (operationState.operation.sync).
Json syncOperation(const SyncRun::Inputs& in) {
  Json sync = {{"revision", in.commit}, {"prune", in.prune}};
  for (const auto& key : in.only) {
    auto parts = strings::split(key, '/');
    if (parts.size() == 4)
      sync["resources"].push_back(
          {{"group", parts[0]}, {"kind", parts[1]}, {"namespace", parts[2]}, {"name", parts[3]}});
  }
  return sync;
}

}  // namespace

SyncResult AppController::advance(const std::string& key, const Json& app,
                                  std::shared_ptr<SyncRun> run, Json status, const Json& previous,
                                  const Json& conditions, bool refresh) {
  std::chrono::milliseconds wait{0};
  SyncRun::State state = run->step(&wait);
  if (state == SyncRun::State::Running) {
    {
      std::lock_guard<std::mutex> lock(stateMu_);
      runs_[key].run = run;
    }
    writeProgress(app, *run);
    return SyncResult::after(wait);
  }
  {
    std::lock_guard<std::mutex> lock(stateMu_);
    runs_.erase(key);
  }
  const SyncRun::Inputs& in = run->inputs();
  bool failed = state == SyncRun::State::Failed;
  std::string finished = timefmt::rfc3339(clock_.now());
  Json source = json::at(in.app, {"spec", "source"});
  status["operationState"] = {
      {"operation",
       {{"sync", syncOperation(in)}, {"initiatedBy", in.initiatedBy}, {"retry", Json::object()}}},
      {"phase", failed ? "Failed" : "Succeeded"},
      {"message", run->message()},
      {"syncResult", {{"revision", in.commit}, {"resources", run->results()}, {"source", source}}},
      {"startedAt", run->startedAt()},
      {"finishedAt", finished}};
  if (!failed && in.only.empty()) {  // a selective sync is not a deployment of the revision
    Json history = json::at(status, {"history"}).is_array() ? status["history"] : Json::array();
    int64_t id = history.empty() ? 0 : json::integer(history.back(), "id") + 1;
    history.push_back({{"id", id},
                       {"revision", in.commit},
                       {"deployStartedAt", run->startedAt()},
                       {"deployedAt", finished},
                       {"source", source},
                       {"initiatedBy", in.initiatedBy}});
    int64_t limit = json::integer(json::at(in.app, {"spec"}), "revisionHistoryLimit", 10);
    while (static_cast<int64_t>(history.size()) > std::max<int64_t>(limit, 1))
      history.erase(history.begin());
    status["history"] = history;
    PODIUM_LOG(Info) << "gitops: " << key << " synced to " << in.commit.substr(0, 7) << " ("
                     << in.subject << "), " << run->results().size() << " changes";
  }
  SyncResult result = SyncResult::ok();
  if (!in.requested)
    if (auto delay = retryIfFailed(key, json::at(in.app, {"spec"}), in.commit, &status))
      result.merge(SyncResult::after(*delay));
  // The state after the sync: what it pruned is gone.
  Compared after =
      compare(key, basisOf(in.app, in.commit, in.settings, anyLenient(*in.targets, in.settings)),
              *in.targets, {});
  const Json& spec = json::at(in.app, {"spec"});
  status["sync"] = {
      {"status", after.outOfSync ? "OutOfSync" : "Synced"},
      {"revision", in.commit},
      {"comparedTo",
       {{"source", json::at(spec, {"source"})}, {"destination", json::at(spec, {"destination"})}}}};
  status["health"] = after.health;
  status["resources"] = std::move(after.resources);
  status["sourceType"] = in.targets->empty() ? "Directory" : sourceTypeOf(in.targets->front().file);
  return result
      .merge(writeStatus(app, previous, std::move(status), conditions,
                         timefmt::rfc3339(clock_.now()), refresh, in.requested))
      .merge(pollAgain());
}

// A sync's progress, for `podium app sync` and `argocd app get` to show while it runs: the
// results so far under phase Running (the final status follows when it ends). Written when it
// changed.
void AppController::writeProgress(const Json& app, const SyncRun& run) {
  std::string key = client::Informer::keyOf(app);
  std::string progress = run.message() + json::dump(run.results());
  {
    std::lock_guard<std::mutex> lock(stateMu_);
    auto& r = runs_[key];
    if (r.lastProgress == progress) return;
    r.lastProgress = progress;
  }
  auto fresh = client_.get(kApplications, client::namespaceOf(app), client::nameOf(app));
  if (!fresh) return;
  Json op = json::at(app, {"operation"}).is_object() ? app["operation"] : Json::object();
  (*fresh)["status"]["operationState"] = {
      {"operation", op},
      {"phase", "Running"},
      {"message", run.message()},
      {"syncResult", {{"revision", run.inputs().commit}, {"resources", run.results()}}},
      {"startedAt", run.startedAt()}};
  // Best effort: the final status follows anyway.
  if (auto r = client_.update(kApplications, client::namespaceOf(app), *fresh); !r)
    PODIUM_LOG(Debug) << "gitops: progress of " << key << ": " << r.error().message();
}

// Argo CD's retry of a failed automated sync: spec.syncPolicy.retry (limit, default 5 for
// auto-sync, negative for no limit; backoff duration 5s, factor 2, maxDuration 3m). While a
// retry waits, operationState.phase is Running with retryCount and when it comes.
std::optional<std::chrono::milliseconds> AppController::retryIfFailed(const std::string& key,
                                                                      const Json& spec,
                                                                      const std::string& commit,
                                                                      Json* status) {
  Json& op = (*status)["operationState"];
  std::lock_guard<std::mutex> lock(stateMu_);
  if (json::str(op, "phase") != "Failed") {
    retries_.erase(key);
    return std::nullopt;
  }
  RetryState& st = retries_[key];
  if (st.revision != commit) st = {commit, 0, {}};
  const Json& retry = json::at(spec, {"syncPolicy", "retry"});
  int64_t limit = json::integer(retry, "limit", 5);
  op["retryCount"] = st.count;
  if (limit >= 0 && st.count >= limit) return std::nullopt;
  ++st.count;
  const Json& backoff = json::at(retry, {"backoff"});
  auto base =
      timefmt::parseGoDuration(json::str(backoff, "duration")).value_or(std::chrono::seconds(5));
  auto cap =
      timefmt::parseGoDuration(json::str(backoff, "maxDuration")).value_or(std::chrono::minutes(3));
  double factor = static_cast<double>(std::max<int64_t>(1, json::integer(backoff, "factor", 2)));
  auto delay = std::min<std::chrono::milliseconds>(
      cap, std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) *
                                                          std::pow(factor, st.count - 1))));
  st.nextAt = clock_.monotonic() + delay;
  op["phase"] = "Running";
  op["retryCount"] = st.count;
  op["message"] =
      json::str(op, "message") + ". Retrying attempt #" + std::to_string(st.count) + " at " +
      timefmt::rfc3339(clock_.now() + std::chrono::duration_cast<std::chrono::seconds>(delay));
  return delay;
}

// Argo CD's cascading delete: an Application deleted with its finalizer
// resources-finalizer.argocd.argoproj.io (`podium app delete`, `argocd app delete`) first
// deletes the resources it tracks (foreground, or background with the finalizer's "/background"
// form), and lets go once they are gone. Without it, they stay.
SyncResult AppController::finalize(const Json& app, const std::string& key) {
  std::string name = client::nameOf(app);
  std::string mine;
  Json others = Json::array();
  for (const auto& f : json::at(app, {"metadata", "finalizers"})) {
    if (f.is_string() && f.get<std::string>().rfind(kFinalizer, 0) == 0)
      mine = f.get<std::string>();
    else
      others.push_back(f);
  }
  if (mine.empty()) return SyncResult::ok();
  client::DeleteOptions d;
  d.propagationPolicy =
      mine == std::string(kFinalizer) + "/background" ? "Background" : "Foreground";
  bool remaining = false;
  SyncResult result = SyncResult::ok();
  for (const auto& res : json::at(app, {"status", "resources"})) {
    auto r = resourceOf(res);
    if (!r) continue;
    auto live = client_.get(*r, json::str(res, "namespace"), json::str(res, "name"));
    // Only what this app still tracks: another app may have taken an object over.
    if (!live ||
        json::getString(*live, {"metadata", "annotations", kTrackingId}).rfind(name + ":", 0) != 0)
      continue;
    remaining = true;
    if (!client::isDeleting(*live))
      result.merge(
          SyncResult::of(client_.remove(*r, json::str(res, "namespace"), json::str(res, "name"), d),
                         "delete " + json::str(res, "name") + " of " + name));
  }
  if (remaining) return result.merge(SyncResult::after(std::chrono::milliseconds(500)));
  Json obj = app;
  obj["metadata"]["finalizers"] = others;
  auto done = client_.update(kApplications, client::namespaceOf(app), obj);
  if (done) PODIUM_LOG(Info) << "gitops: " << name << " deleted with its resources";
  return SyncResult::of(done, "let go of application " + key);
}

// Writes the status when something in it changed (reconciledAt alone is refreshed at most once
// a minute, so a quiet app costs no writes).
SyncResult AppController::writeStatus(const Json& app, const Json& previous, Json status,
                                      const Json& conditions, const std::string& now, bool refresh,
                                      bool operationDone) {
  std::string ns = client::namespaceOf(app), name = client::nameOf(app);
  status["conditions"] = conditions;
  if (conditions.empty()) status.erase("conditions");
  bool same = sameStatus(previous, status);
  auto last = timefmt::parseRfc3339(json::str(previous, "reconciledAt"));
  bool stale = !last || clock_.now() - *last > std::chrono::seconds(60);
  if (same && !stale && !refresh && !operationDone) return SyncResult::ok();
  if (same && previous.contains("conditions")) status["conditions"] = previous["conditions"];
  status["reconciledAt"] = now;
  // Argo CD's Application has no status subresource: the status goes with the object, and with
  // it the refresh annotation and a done operation come off — one write, at the resourceVersion
  // read. What changed goes as a merge patch (a refresh of an unchanged app sends a timestamp,
  // not its thousand resources); new lists of resources go by update. Changed meanwhile (a
  // sync's progress, an edit), the status still goes on the newest version; an operation asked
  // for meanwhile stays (only the one that was done comes off), and a changed spec is looked at
  // again next.
  std::string what = "status of application " + ns + "/" + name;
  client::Result fresh = Json();  // the app read again after a conflict
  const Json* base = &app;
  for (int attempt = 0;; ++attempt) {
    Json patch = {{"status", json::mergePatchBetween(statusOf(*base), status)}};
    bool large = patch["status"].contains("resources") ||
                 patch["status"].contains("operationState") || patch["status"].contains("history");
    bool dropRefresh = refresh && json::find(*base, {"metadata", "annotations", kRefresh});
    bool dropOperation = operationDone && base->contains("operation") &&
                         json::at(*base, {"operation"}) == json::at(app, {"operation"});
    client::Result r = Json();
    if (large) {
      Json obj = withoutStatus(*base);
      obj["status"] = status;
      if (dropRefresh) obj["metadata"]["annotations"].erase(kRefresh);
      if (dropOperation) obj.erase("operation");
      r = client_.update(kApplications, ns, obj);
    } else {
      patch["metadata"]["resourceVersion"] =
          json::getString(*base, {"metadata", "resourceVersion"});
      if (dropRefresh) patch["metadata"]["annotations"][kRefresh] = nullptr;
      if (dropOperation) patch["operation"] = nullptr;
      r = client_.patch(kApplications, ns, name, patch);
    }
    if (r || r.error().code() != 409 || attempt == 2) return SyncResult::of(r, what);
    fresh = client_.get(kApplications, ns, name);
    if (!fresh) return SyncResult::of(fresh, what);
    base = &*fresh;
  }
}

std::unique_ptr<GitOps> startGitOps(client::Client& client, const GitOpsOptions& options) {
  return std::make_unique<AppController>(client, options);
}

}  // namespace podium::gitops
