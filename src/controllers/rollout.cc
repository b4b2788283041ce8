#include "rollout.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "podium/api/selectors.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::controllers {

namespace res = client::resources;

namespace {

constexpr const char* kRevision = "rollout.argoproj.io/revision";
constexpr const char* kScaleDownAt = "scale-down-deadline";  // Argo Rollouts' annotation

std::string hashOf(const Json& rs) {
  return json::getString(rs, {"metadata", "labels", kRolloutHashLabel});
}
int64_t revisionOf(const Json& rs) {
  return strings::parseInt(json::getString(rs, {"metadata", "annotations", kRevision})).value_or(0);
}

// What this controller does not carry out, said instead of ignored.
std::string unsupported(const Json& r) {
  const Json& spec = at(r, {"spec"});
  if (spec.contains("workloadRef")) return "spec.workloadRef is not supported; give spec.template";
  if (at(spec, {"strategy", "blueGreen"}).is_object())
    return "spec.strategy.blueGreen is not supported; use the canary strategy";
  const Json& canary = at(spec, {"strategy", "canary"});
  if (!canary.is_object()) return "spec.strategy.canary is required";
  if (canary.contains("analysis"))
    return "spec.strategy.canary.analysis (background analysis) is not supported yet";
  const Json& steps = at(canary, {"steps"});
  for (size_t i = 0; i < steps.size(); ++i)
    for (const auto& [k, v] : steps[i].items())
      if (k != "setWeight" && k != "pause" && k != "analysis")
        return "spec.strategy.canary.steps[" + std::to_string(i) + "]." + k +
               " is not supported yet (setWeight, pause and analysis are)";
  const Json& tr = at(canary, {"trafficRouting"});
  if (tr.is_object())
    for (const auto& [k, v] : tr.items())
      if (k != "istio")
        return "spec.strategy.canary.trafficRouting." + k +
               " is not supported; Podium's mesh is Istio's (trafficRouting.istio)";
  return "";
}

}  // namespace

bool setVirtualServiceWeights(Json& vs, const std::vector<std::string>& routes,
                              const std::string& stable, const std::string& canary,
                              int canaryWeight) {
  bool changed = false;
  Json& http = vs["spec"]["http"];
  if (!http.is_array()) return false;
  for (auto& route : http) {
    std::string name = json::str(route, "name");
    if (!routes.empty() && std::find(routes.begin(), routes.end(), name) == routes.end()) continue;
    if (!route["route"].is_array()) continue;
    for (auto& d : route["route"]) {
      // Subset-level splitting names subsets; host-level splitting (no DestinationRule) names
      // the stable and canary Services as hosts.
      std::string subset = json::getString(d, {"destination", "subset"});
      std::string host = json::getString(d, {"destination", "host"});
      std::string key = subset.empty() ? host.substr(0, host.find('.')) : subset;
      int want = key == stable ? 100 - canaryWeight : key == canary ? canaryWeight : -1;
      if (want < 0 || (d.contains("weight") && d["weight"] == want)) continue;
      d["weight"] = want;
      changed = true;
    }
  }
  return changed;
}

bool setDestinationRuleHashes(Json& dr, const std::string& stableSubset,
                              const std::string& canarySubset, const std::string& stableHash,
                              const std::string& canaryHash) {
  bool changed = false;
  Json& subsets = dr["spec"]["subsets"];
  if (!subsets.is_array()) return false;
  for (auto& s : subsets) {
    std::string name = json::str(s, "name");
    std::string want = name == stableSubset ? stableHash : name == canarySubset ? canaryHash : "";
    if (want.empty() || json::getString(s, {"labels", kRolloutHashLabel}) == want) continue;
    s["labels"][kRolloutHashLabel] = want;
    changed = true;
  }
  return changed;
}

struct RolloutController::State {
  Json r;
  std::string ns, hash, stableHash;
  ObjectPtr current, stable;   // the ReplicaSets of the current template and of stableRS
  std::vector<ObjectPtr> all;  // every ReplicaSet the rollout owns
  Json status;
  int64_t replicas = 1;
  SyncResult result = SyncResult::ok();
  // What this sync wrote of the routing objects ("DestinationRule/NAME", "VirtualService/NAME"):
  // read back in place of the cache, which has not seen the write yet.
  std::map<std::string, Json> routing;
};

RolloutController::RolloutController(client::InformerFactory& f, client::EventRecorder& events,
                                     int workers)
    : Controller("rollout", f.client(), f.clock(), workers),
      events_(events),
      rollouts_(f.informer(res::kRollouts)),
      replicaSets_(f.informer(res::kReplicaSets)),
      runs_(f.informer(res::kAnalysisRuns)),
      virtualServices_(f.informer(res::kVirtualServices)),
      destinationRules_(f.informer(res::kDestinationRules)) {
  rollouts_.addHandlers(enqueueHandlers());
  // A ReplicaSet's or an AnalysisRun's change is news for the Rollout that owns it.
  auto onOwned = [this](const ObjectPtr& o) {
    std::string name;
    if (controlledBy(*o, "Rollout", &name)) queue().add(namespaceOf(*o) + "/" + name);
  };
  client::EventHandlers h{onOwned, [onOwned](const ObjectPtr&, const ObjectPtr& n) { onOwned(n); },
                          onOwned};
  replicaSets_.addHandlers(h);
  runs_.addHandlers(h);
}

SyncResult RolloutController::replicaSets(State& s) {
  const Json& r = s.r;
  auto sel = api::LabelSelector::fromObject(at(r, {"spec", "selector"}));
  if (!sel || sel->empty()) return SyncResult::ok();
  client::ControllerRefManager refs(client_, res::kRollouts, r, res::kReplicaSets, *sel);
  auto claim = refs.claim(replicaSets_.list(s.ns));
  if (claim.result.failed()) return claim.result;
  s.all = std::move(claim.owned);
  const Json& tmpl = at(r, {"spec", "template"});
  s.hash = templateHash(tmpl, json::integer(at(r, {"status"}), "collisionCount", 0));
  int64_t maxRevision = 0;
  for (const auto& rs : s.all) {
    maxRevision = std::max(maxRevision, revisionOf(*rs));
    // By hash, as Argo Rollouts matches: the ReplicaSet's template was defaulted by the API
    // server, the Rollout's (a custom resource) was not.
    if (hashOf(*rs) == s.hash && !s.current) s.current = rs;
  }
  if (s.current) return SyncResult::ok();
  Json rsTemplate = tmpl;
  rsTemplate["metadata"]["labels"][kRolloutHashLabel] = s.hash;
  Json selector = at(r, {"spec", "selector"});
  selector["matchLabels"][kRolloutHashLabel] = s.hash;
  Json labels = rsTemplate["metadata"]["labels"];
  Json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata",
              {{"name", nameOf(r) + "-" + s.hash},
               {"namespace", s.ns},
               {"labels", labels},
               {"annotations", {{kRevision, std::to_string(maxRevision + 1)}}},
               {"ownerReferences", Json::array({controllerRef(r)})}}},
             {"spec",
              {{"replicas", 0},
               {"minReadySeconds", json::integer(at(r, {"spec"}), "minReadySeconds", 0)},
               {"selector", selector},
               {"template", rsTemplate}}}};
  auto made = client_.create(res::kReplicaSets, s.ns, rs);
  if (!made && made.error().code() != 409)
    return SyncResult::retry("create replica set: " + made.error().message());
  auto got = made ? *made : client_.get(res::kReplicaSets, s.ns, nameOf(rs));
  if (!got) return SyncResult::retry("replica set " + nameOf(rs) + ": " + got.error().message());
  s.current = std::make_shared<Json>(*got);
  s.all.push_back(s.current);
  return SyncResult::ok();
}

SyncResult RolloutController::scale(State& s, const ObjectPtr& rs, int64_t replicas) {
  if (!rs || specReplicas(*rs) == replicas) return SyncResult::ok();
  Json next = *rs;
  int64_t from = specReplicas(next);
  next["spec"]["replicas"] = replicas;
  if (replicas > 0 && next["metadata"].contains("annotations"))
    next["metadata"]["annotations"].erase(kScaleDownAt);
  auto r = client_.update(res::kReplicaSets, s.ns, next);
  if (!r)
    return SyncResult::retry("scale replica set " + nameOf(next) + ": " + r.error().message());
  events_.record(s.r, "Normal", "ScalingReplicaSet",
                 std::string(replicas > from ? "Scaled up" : "Scaled down") + " ReplicaSet " +
                     nameOf(next) + " (revision " + std::to_string(revisionOf(next)) + ") from " +
                     std::to_string(from) + " to " + std::to_string(replicas));
  return SyncResult::ok();
}

// The traffic split: the VirtualService's weights and the DestinationRule's subsets.
SyncResult RolloutController::route(State& s, int weight) {
  const Json& canary = at(s.r, {"spec", "strategy", "canary"});
  const Json& istio = at(canary, {"trafficRouting", "istio"});
  s.status["canary"]["weights"] = {
      {"canary", {{"weight", weight}, {"podTemplateHash", s.hash}}},
      {"stable", {{"weight", 100 - weight}, {"podTemplateHash", s.stableHash}}}};
  if (!istio.is_object()) return SyncResult::ok();
  const Json& drSpec = at(istio, {"destinationRule"});
  std::string stableKey = json::str(drSpec, "stableSubsetName");
  std::string canaryKey = json::str(drSpec, "canarySubsetName");
  if (!drSpec.is_object()) {  // host-level splitting: the two Services
    stableKey = json::str(canary, "stableService");
    canaryKey = json::str(canary, "canaryService");
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> services;
  if (const Json* one = json::find(istio, {"virtualService"})) {
    std::vector<std::string> routes;
    for (const auto& n : at(*one, {"routes"}))
      if (n.is_string()) routes.push_back(n.get<std::string>());
    services.emplace_back(json::str(*one, "name"), routes);
  }
  for (const auto& v : at(istio, {"virtualServices"})) {
    std::vector<std::string> routes;
    for (const auto& n : at(v, {"routes"}))
      if (n.is_string()) routes.push_back(n.get<std::string>());
    services.emplace_back(json::str(v, "name"), routes);
  }
  SyncResult out = SyncResult::ok();
  // Sets one routing object through `change`, from this sync's own write of it if there was one.
  auto write = [&](client::Informer& cache, const client::Resource& r, const char* kind,
                   const std::string& name, const std::function<bool(Json&)>& change) {
    std::string key = std::string(kind) + "/" + name;
    Json next;
    if (auto it = s.routing.find(key); it != s.routing.end()) {
      next = it->second;
    } else if (auto cached = cache.get(s.ns, name)) {
      next = *cached;  // a stale copy only costs a conflict and a retry
    } else {
      out.merge(SyncResult::retry(key + " not found in " + s.ns));
      return;
    }
    if (!change(next)) return;
    auto written = client_.update(r, s.ns, next);
    if (written) s.routing[key] = *written;
    out.merge(SyncResult::of(written, key, {}));
  };
  // The subsets before the weights: a weight never points at a subset not yet labelled with
  // the revision it serves.
  if (drSpec.is_object())
    write(destinationRules_, res::kDestinationRules, "DestinationRule", json::str(drSpec, "name"),
          [&](Json& dr) {
            return setDestinationRuleHashes(dr, stableKey, canaryKey, s.stableHash, s.hash);
          });
  for (const auto& [name, routes] : services) {
    write(virtualServices_, res::kVirtualServices, "VirtualService", name, [&](Json& vs) {
      return setVirtualServiceWeights(vs, routes, stableKey, canaryKey, weight);
    });
  }
  return out;
}

Expected<Json, std::string> RolloutController::createStepRun(State& s, const Json& analysis,
                                                             int64_t step) {
  Json metrics = Json::array(), args = Json::array();
  auto setArg = [&](const Json& a) {
    for (auto& x : args)
      if (json::str(x, "name") == json::str(a, "name")) {
        x = a;
        return;
      }
    args.push_back(a);
  };
  for (const auto& t : at(analysis, {"templates"})) {
    std::string name = json::str(t, "templateName");
    bool cluster = json::boolean(t, "clusterScope");
    auto tmpl = cluster ? client_.get(res::kClusterAnalysisTemplates, "", name)
                        : client_.get(res::kAnalysisTemplates, s.ns, name);
    if (!tmpl)
      return Unexpected(std::string(cluster ? "ClusterAnalysisTemplate" : "AnalysisTemplate") +
                        " " + name + ": " + tmpl.error().message());
    for (const auto& m : at(*tmpl, {"spec", "metrics"})) metrics.push_back(m);
    for (const auto& a : at(*tmpl, {"spec", "args"})) setArg(a);
  }
  for (const auto& a : at(analysis, {"args"})) {
    Json arg = {{"name", json::str(a, "name")}};
    std::string from = json::getString(a, {"valueFrom", "podTemplateHashValue"});
    if (from == "Latest")
      arg["value"] = s.hash;
    else if (from == "Stable")
      arg["value"] = s.stableHash;
    else if (a.contains("value"))
      arg["value"] = a["value"];
    else
      return Unexpected("argument " + json::str(a, "name") +
                        ": give value or valueFrom.podTemplateHashValue");
    setArg(arg);
  }
  for (const auto& a : args)
    if (!a.contains("value"))
      return Unexpected("argument " + json::str(a, "name") + " has no value");
  // Argo Rollouts' name; a retried update gets .1, .2, ...
  std::string base = nameOf(s.r) + "-" + s.hash + "-" + std::to_string(revisionOf(*s.current)) +
                     "-" + std::to_string(step);
  Json run = {{"apiVersion", "argoproj.io/v1alpha1"},
              {"kind", "AnalysisRun"},
              {"metadata",
               {{"namespace", s.ns},
                {"labels",
                 {{kRolloutHashLabel, s.hash},
                  {"rollout-type", "Step"},
                  {"step-index", std::to_string(step)}}},
                {"ownerReferences", Json::array({controllerRef(s.r)})}}},
              {"spec", {{"metrics", metrics}, {"args", args}}}};
  for (int n = 0; n < 100; ++n) {
    run["metadata"]["name"] = n ? base + "." + std::to_string(n) : base;
    auto made = client_.create(res::kAnalysisRuns, s.ns, run);
    if (made) return *made;
    if (made.error().code() != 409) return Unexpected(made.error().message());
  }
  return Unexpected("too many AnalysisRuns named " + base);
}

void RolloutController::terminateStepRun(State& s) {
  std::string name = json::getString(s.status, {"canary", "currentStepAnalysisRunStatus", "name"});
  if (name.empty()) return;
  auto run = runs_.get(s.ns, name);
  std::string phase = run ? json::getString(*run, {"status", "phase"}) : "";
  if (run && phase != "Successful" && phase != "Failed" && phase != "Error" &&
      phase != "Inconclusive" && !json::boolean(at(*run, {"spec"}), "terminate"))
    s.result.merge(SyncResult::of(
        client_.patch(res::kAnalysisRuns, s.ns, name, {{"spec", {{"terminate", true}}}}),
        "terminate AnalysisRun " + name));
  s.status["canary"].erase("currentStepAnalysisRunStatus");
}

SyncResult RolloutController::writeStatus(State& s) {
  int64_t replicas = 0, ready = 0, available = 0;
  for (const auto& rs : s.all) {
    replicas += statusInt(*rs, "replicas");
    ready += statusInt(*rs, "readyReplicas");
    available += statusInt(*rs, "availableReplicas");
  }
  Json& st = s.status;
  st["replicas"] = replicas;
  st["readyReplicas"] = ready;
  st["availableReplicas"] = available;
  st["updatedReplicas"] = s.current ? statusInt(*s.current, "replicas") : 0;
  st["HPAReplicas"] = replicas;
  st["currentPodHash"] = s.hash;
  st["observedGeneration"] = std::to_string(json::integer(at(s.r, {"metadata"}), "generation", 0));
  if (auto sel = api::LabelSelector::fromObject(at(s.r, {"spec", "selector"})))
    st["selector"] = sel->str();
  return s.result.merge(updateStatus(res::kRollouts, s.r, st));
}

SyncResult RolloutController::sync(const std::string& key) {
  auto slash = key.find('/');
  auto obj = rollouts_.get(key.substr(0, slash), key.substr(slash + 1));
  if (!obj || isDeleting(*obj)) return SyncResult::ok();
  State s;
  s.r = *obj;
  s.ns = namespaceOf(s.r);
  s.replicas = specReplicas(s.r);
  s.status = at(s.r, {"status"}).is_object() ? at(s.r, {"status"}) : Json::object();
  std::string now = timefmt::rfc3339(clock_.now());
  auto setPhase = [&](const std::string& phase, const std::string& message) {
    s.status["phase"] = phase;
    s.status["message"] = message;
  };
  if (std::string bad = unsupported(s.r); !bad.empty()) {
    if (!s.status["conditions"].is_array()) s.status["conditions"] = Json::array();
    setCondition(
        s.status["conditions"],
        {{"type", "InvalidSpec"}, {"status", "True"}, {"reason", "InvalidSpec"}, {"message", bad}},
        now);
    setPhase("Degraded", "InvalidSpec: " + bad);
    return writeStatus(s);
  }
  if (s.status.contains("conditions") && s.status["conditions"].is_array()) {
    Json kept = Json::array();
    for (const auto& c : s.status["conditions"])
      if (json::str(c, "type") != "InvalidSpec") kept.push_back(c);
    s.status["conditions"] = kept;
  }
  if (auto r = replicaSets(s); r.failed()) return r;
  const Json& steps = at(s.r, {"spec", "strategy", "canary", "steps"});
  size_t nSteps = steps.is_array() ? steps.size() : 0;
  // A new template starts its steps over, not aborted, not paused.
  if (json::str(s.status, "currentPodHash") != s.hash) {
    s.status["currentStepIndex"] = 0;
    s.status.erase("pauseConditions");
    s.status.erase("promoteFull");
    s.status["controllerPause"] = false;
    s.status["abort"] = false;
    s.status.erase("abortReason");
    terminateStepRun(s);
    if (!json::str(s.status, "currentPodHash").empty())
      events_.record(s.r, "Normal", "RolloutUpdated",
                     "Rollout updated to revision " + std::to_string(revisionOf(*s.current)));
  }
  s.stableHash = json::str(s.status, "stableRS");
  for (const auto& rs : s.all)
    if (hashOf(*rs) == s.stableHash) s.stable = rs;
  if (!s.stable) {  // the first revision is stable at once, as in Argo Rollouts
    s.stableHash = s.hash;
    s.stable = s.current;
  }
  auto oldOnes = [&] {
    std::vector<ObjectPtr> out;
    for (const auto& rs : s.all)
      if (rs != s.current && rs != s.stable) out.push_back(rs);
    return out;
  };
  // ReplicaSets no longer serving traffic go after scaleDownDelaySeconds (default 30 s, the
  // time for every proxy to have the new weights).
  auto retire = [&](const std::vector<ObjectPtr>& list) {
    int64_t delay =
        json::integer(at(s.r, {"spec", "strategy", "canary"}), "scaleDownDelaySeconds", 30);
    for (const auto& rs : list) {
      if (specReplicas(*rs) == 0) continue;
      std::string at = json::getString(*rs, {"metadata", "annotations", kScaleDownAt});
      auto deadline = timefmt::parseRfc3339(at);
      if (!deadline) {
        Json next = *rs;
        next["metadata"]["annotations"][kScaleDownAt] =
            timefmt::rfc3339(clock_.now() + std::chrono::seconds(delay));
        s.result.merge(SyncResult::of(client_.update(res::kReplicaSets, s.ns, next),
                                      "annotate replica set " + nameOf(next), {}));
        s.result.merge(SyncResult::after(std::chrono::seconds(delay)));
      } else if (*deadline <= clock_.now()) {
        s.result.merge(scale(s, rs, 0));
      } else {
        s.result.merge(SyncResult::after(
            std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock_.now())));
      }
    }
  };

  bool aborted = json::boolean(s.status, "abort");
  if (s.hash != s.stableHash && !aborted) {
    int64_t idx = json::integer(s.status, "currentStepIndex", 0);
    if (json::boolean(s.status, "promoteFull")) idx = static_cast<int64_t>(nSteps);
    // The canary's share of spec.replicas at a weight (at least one pod for any weight).
    auto canaryReplicas = [&](int w) -> int64_t {
      return w == 0 ? 0 : std::max<int64_t>(1, (s.replicas * w + 99) / 100);
    };
    int weight = 0;
    for (int64_t i = 0; i < idx && i < static_cast<int64_t>(nSteps); ++i)
      if (steps[i].contains("setWeight"))
        weight = static_cast<int>(json::integer(steps[i], "setWeight"));
    while (idx < static_cast<int64_t>(nSteps)) {
      const Json& step = steps[idx];
      if (step.contains("setWeight")) {
        int before = weight;
        weight = std::clamp(static_cast<int>(json::integer(step, "setWeight")), 0, 100);
        int64_t want = canaryReplicas(weight);
        s.result.merge(scale(s, s.current, want));
        s.result.merge(scale(s, s.stable, s.replicas));
        // Traffic moves once the canary's pods for it are available, as Argo Rollouts waits.
        if (statusInt(*s.current, "availableReplicas") < want || specReplicas(*s.current) != want) {
          s.result.merge(route(s, before));
          setPhase("Progressing", "more replicas need to be updated");
          break;
        }
        s.result.merge(route(s, weight));
        ++idx;
        continue;
      }
      if (step.contains("analysis")) {
        s.result.merge(scale(s, s.current, canaryReplicas(weight)));
        s.result.merge(route(s, weight));
        Json& runStatus = s.status["canary"]["currentStepAnalysisRunStatus"];
        std::string runName = json::str(runStatus, "name");
        ObjectPtr run = runName.empty() ? nullptr : runs_.get(s.ns, runName);
        if (!run && runName.empty()) {
          auto made = createStepRun(s, step["analysis"], idx);
          if (!made) {
            setPhase("Degraded",
                     "InvalidSpec: steps[" + std::to_string(idx) + "].analysis: " + made.error());
            break;
          }
          runStatus = {{"name", nameOf(*made)}, {"status", "Pending"}};
          setPhase("Progressing", "waiting for AnalysisRun " + nameOf(*made));
          break;
        }
        std::string phase = run ? json::getString(*run, {"status", "phase"}) : "Pending";
        std::string why = run ? json::getString(*run, {"status", "message"}) : "";
        runStatus = {{"name", runName}, {"status", phase.empty() ? "Pending" : phase}};
        if (!why.empty()) runStatus["message"] = why;
        if (phase == "Successful") {
          s.status["canary"].erase("currentStepAnalysisRunStatus");
          ++idx;
          continue;
        }
        if (phase == "Failed" || phase == "Error") {
          // The analysis decides: back to stable (below), saying why.
          s.status["abort"] = true;
          s.status["abortReason"] =
              "AnalysisRun " + runName + " " + phase + (why.empty() ? "" : ": " + why);
          break;
        }
        if (phase == "Inconclusive") {
          // Not silently promoted: paused for a person to promote or abort.
          if (!s.status.contains("pauseConditions") || !s.status["pauseConditions"].is_array())
            s.status["pauseConditions"] = {
                {{"reason", "InconclusiveAnalysis"}, {"startTime", now}}};
          s.status["controllerPause"] = true;
          setPhase("Paused", "InconclusiveAnalysisRun: " + why);
          break;
        }
        setPhase("Progressing", "waiting for AnalysisRun " + runName);
        break;
      }
      // pause: until promoted, or for its duration.
      const Json& pause = at(step, {"pause"});
      auto seconds = argoDurationSeconds(at(pause, {"duration"}));
      if (!s.status.contains("pauseConditions") || !s.status["pauseConditions"].is_array()) {
        s.status["pauseConditions"] = {{{"reason", "CanaryPauseStep"}, {"startTime", now}}};
        s.status["controllerPause"] = true;
      }
      if (seconds) {
        auto started =
            timefmt::parseRfc3339(json::str(s.status["pauseConditions"][0], "startTime"));
        auto until = (started ? *started : clock_.now()) + std::chrono::seconds(*seconds);
        if (until <= clock_.now()) {
          s.status.erase("pauseConditions");
          s.status["controllerPause"] = false;
          ++idx;
          continue;
        }
        s.result.merge(SyncResult::after(
            std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_.now())));
      }
      s.result.merge(scale(s, s.current, canaryReplicas(weight)));
      s.result.merge(route(s, weight));
      setPhase("Paused", "CanaryPauseStep");
      break;
    }
    s.status["currentStepIndex"] = idx;
    aborted = json::boolean(s.status, "abort");
    if (aborted) {
      // fall through to the abort below
    } else if (idx >= static_cast<int64_t>(nSteps)) {
      // Every step done: the canary becomes stable.
      s.status["stableRS"] = s.hash;
      s.stableHash = s.hash;
      s.stable = s.current;
      s.status.erase("promoteFull");
      events_.record(s.r, "Normal", "RolloutCompleted",
                     "Rollout completed update to revision " +
                         std::to_string(revisionOf(*s.current)) + " (" + s.hash +
                         "): Completed all " + std::to_string(nSteps) + " canary steps");
      terminateStepRun(s);
    } else {
      s.result.merge(scale(s, s.stable, s.replicas));
      retire(oldOnes());
      return writeStatus(s);
    }
  }
  if (aborted && s.hash != s.stableHash) {
    // Abort: all traffic back on stable at once, then the canary goes.
    s.result.merge(route(s, 0));
    s.result.merge(scale(s, s.stable, s.replicas));
    s.result.merge(scale(s, s.current, 0));
    retire(oldOnes());
    s.status.erase("pauseConditions");
    s.status["controllerPause"] = false;
    terminateStepRun(s);
    std::string reason = json::str(s.status, "abortReason");
    std::string msg = "RolloutAborted: Rollout aborted update to revision " +
                      std::to_string(revisionOf(*s.current)) +
                      (reason.empty() ? "" : ": " + reason);
    if (json::str(s.status, "message") != msg)
      events_.record(s.r, "Warning", "RolloutAborted", msg);
    setPhase("Degraded", msg);
    return writeStatus(s);
  }
  // Fully promoted: the stable ReplicaSet at full size, no canary weight, the rest retired.
  s.status["stableRS"] = s.hash;
  s.status["currentStepIndex"] = static_cast<int64_t>(nSteps);
  s.status["abort"] = false;
  s.status.erase("pauseConditions");
  s.status["controllerPause"] = false;
  s.result.merge(scale(s, s.current, s.replicas));
  s.result.merge(route(s, 0));
  retire(oldOnes());
  if (statusInt(*s.current, "availableReplicas") < s.replicas)
    setPhase("Progressing", "updated replicas are still becoming available");
  else
    setPhase("Healthy", "");
  return writeStatus(s);
}

}  // namespace podium::controllers
