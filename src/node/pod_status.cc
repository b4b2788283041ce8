// Pod status as the kubelet reports it: phase, conditions, IPs and one status per container
// with state, lastState, restartCount, ready and started.
#include "agent_impl.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::node {

namespace {

std::string nanosToTime(int64_t nanos) {
  return timefmt::rfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(nanos))));
}

Json terminatedState(const runtime::v1::ContainerStatus& s) {
  std::string reason = s.reason();
  if (reason.empty()) reason = s.exit_code() == 0 ? "Completed" : "Error";
  Json t = {
      {"exitCode", s.exit_code()}, {"reason", reason}, {"containerID", "containerd://" + s.id()}};
  if (s.started_at() > 0) t["startedAt"] = nanosToTime(s.started_at());
  if (s.finished_at() > 0) t["finishedAt"] = nanosToTime(s.finished_at());
  if (!s.message().empty()) t["message"] = s.message();
  return t;
}

// The kubelet's getPhase, from the container statuses it just built.
std::string podPhase(const Json& spec, const Json& initStatuses, const Json& statuses,
                     bool initDone) {
  std::string policy = json::str(spec, "restartPolicy", "Always");
  if (!initDone) {
    for (const auto& s : initStatuses) {
      const Json& term = at(s, {"state", "terminated"});
      const Json& lastTerm = at(s, {"lastState", "terminated"});
      bool failed = (term.is_object() && json::integer(term, "exitCode") != 0) ||
                    (at(s, {"state", "waiting"}).is_object() && lastTerm.is_object() &&
                     json::integer(lastTerm, "exitCode") != 0);
      if (failed && policy == "Never") return "Failed";
    }
    return "Pending";
  }
  int running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const auto& s : statuses) {
    const Json& state = at(s, {"state"});
    if (state.contains("running")) {
      ++running;
    } else if (state.contains("terminated")) {
      ++stopped;
      if (json::integer(state["terminated"], "exitCode") == 0) ++succeeded;
    } else if (at(s, {"lastState", "terminated"}).is_object()) {
      ++stopped;
    } else {
      ++waiting;
    }
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

}  // namespace

Json AgentImpl::computeStatus(const Json& pod, PodState& st, const RuntimePod& rt) {
  const Json& spec = at(pod, {"spec"});
  const Json& old = at(pod, {"status"});
  std::string now = timefmt::rfc3339(opts_.clock->now());
  bool sandboxReady = rt.readySandbox() != nullptr && !st.podIp.empty();

  // One status per container, from its latest and previous attempts in the current sandbox.
  auto containerStatus = [&](const Json& c, bool init, bool podInitializing) {
    std::string name = json::str(c, "name");
    Json s = {{"name", name},
              {"image", json::str(c, "image")},
              {"imageID", ""},
              {"ready", false},
              {"restartCount", 0},
              {"started", false},
              {"lastState", Json::object()}};
    const auto* latest = rt.latest(st.sandboxId, name);
    const auto* previous = rt.previous(st.sandboxId, name);
    if (previous)
      if (auto ps = cri_->containerStatus(previous->id());
          ps && ps->state() == runtime::v1::CONTAINER_EXITED)
        s["lastState"] = {{"terminated", terminatedState(*ps)}};
    auto waitingState = [&](const std::string& fallback) {
      auto w = st.waiting.find(name);
      if (w != st.waiting.end()) {
        Json waiting = {{"reason", w->second.first}};
        if (!w->second.second.empty()) waiting["message"] = w->second.second;
        return Json{{"waiting", waiting}};
      }
      return Json{{"waiting", {{"reason", fallback}}}};
    };
    if (!latest) {
      s["state"] = waitingState(podInitializing ? "PodInitializing" : "ContainerCreating");
      return s;
    }
    auto cs = cri_->containerStatus(latest->id());
    s["restartCount"] = latest->metadata().attempt();
    s["containerID"] = "containerd://" + latest->id();
    if (!cs) {
      s["state"] = waitingState("ContainerCreating");
      return s;
    }
    if (!cs->image_ref().empty()) s["imageID"] = cs->image_ref();
    if (!cs->image().image().empty() && cs->image().image().rfind("sha256:", 0) != 0)
      s["image"] = cs->image().image();
    switch (cs->state()) {
      case runtime::v1::CONTAINER_RUNNING:
        s["state"] = {{"running", {{"startedAt", nanosToTime(cs->started_at())}}}};
        s["started"] = init ? false : prober_->started(latest->id());
        s["ready"] = !init && prober_->started(latest->id()) && prober_->ready(latest->id());
        break;
      case runtime::v1::CONTAINER_EXITED: {
        // Waiting to be restarted (back-off) shows as waiting with the exit as lastState.
        auto w = st.waiting.find(name);
        if (w != st.waiting.end()) {
          s["state"] = waitingState("");
          s["lastState"] = {{"terminated", terminatedState(*cs)}};
        } else {
          s["state"] = {{"terminated", terminatedState(*cs)}};
          if (init && cs->exit_code() == 0) s["ready"] = true;
        }
        break;
      }
      default:
        s["state"] = waitingState("ContainerCreating");
    }
    return s;
  };

  Json initStatuses = Json::array();
  bool initDone = true;
  std::vector<std::string> incompleteInit;
  for (const auto& ic : at(spec, {"initContainers"})) {
    Json s = containerStatus(ic, true, false);
    const Json& term = at(s, {"state", "terminated"});
    if (!(term.is_object() && json::integer(term, "exitCode") == 0)) {
      initDone = false;
      incompleteInit.push_back(json::str(ic, "name"));
    }
    initStatuses.push_back(std::move(s));
  }
  Json statuses = Json::array();
  std::vector<std::string> unready;
  for (const auto& c : at(spec, {"containers"})) {
    Json s = containerStatus(c, false, !initDone);
    if (!json::boolean(s, "ready")) unready.push_back(json::str(c, "name"));
    statuses.push_back(std::move(s));
  }
  std::string phase = podPhase(spec, initStatuses, statuses, initDone);

  // Conditions keep their transition time while their status holds.
  auto condition = [&](const std::string& type, bool ok, const std::string& reason,
                       const std::string& message) {
    Json c = {{"type", type},
              {"status", ok ? "True" : "False"},
              {"lastProbeTime", nullptr},
              {"lastTransitionTime", now}};
    if (!reason.empty()) c["reason"] = reason;
    if (!message.empty()) c["message"] = message;
    for (const auto& o : at(old, {"conditions"}))
      if (json::str(o, "type") == type && json::str(o, "status") == c["status"].get<std::string>())
        c["lastTransitionTime"] = json::str(o, "lastTransitionTime", now);
    return c;
  };
  auto list = [](const std::vector<std::string>& names) {
    return "[" + strings::join(names, " ") + "]";
  };
  bool finished = phase == "Succeeded" || phase == "Failed";
  Json conditions = Json::array();
  conditions.push_back(condition("PodReadyToStartContainers", sandboxReady && !finished, "", ""));
  conditions.push_back(
      condition("Initialized", initDone, initDone ? "" : "ContainersNotInitialized",
                initDone ? "" : "containers with incomplete status: " + list(incompleteInit)));
  bool containersReady = unready.empty() && initDone;
  std::string notReadyReason = finished ? "PodCompleted" : "ContainersNotReady";
  std::string notReadyMessage = finished ? "" : "containers with unready status: " + list(unready);
  conditions.push_back(condition("Ready", containersReady, containersReady ? "" : notReadyReason,
                                 containersReady ? "" : notReadyMessage));
  conditions.push_back(condition("ContainersReady", containersReady,
                                 containersReady ? "" : notReadyReason,
                                 containersReady ? "" : notReadyMessage));
  for (const auto& o : at(old, {"conditions"}))
    if (json::str(o, "type") == "PodScheduled") conditions.push_back(o);

  Json status = {{"phase", phase},
                 {"conditions", conditions},
                 {"hostIP", opts_.nodeIp},
                 {"hostIPs", Json::array({{{"ip", opts_.nodeIp}}})},
                 {"startTime", st.startTime},
                 {"containerStatuses", statuses}};
  if (!st.podIp.empty()) {
    status["podIP"] = st.podIp;
    status["podIPs"] = Json::array({{{"ip", st.podIp}}});
  }
  if (!initStatuses.empty()) status["initContainerStatuses"] = initStatuses;
  Json ephemeral = Json::array();
  for (const auto& e : at(spec, {"ephemeralContainers"})) {
    Json s = containerStatus(e, false, false);
    s["ready"] = false;  // never part of the pod's readiness
    s.erase("started");
    ephemeral.push_back(std::move(s));
  }
  if (!ephemeral.empty()) status["ephemeralContainerStatuses"] = ephemeral;
  if (old.contains("qosClass")) status["qosClass"] = old["qosClass"];
  if (old.contains("nominatedNodeName")) status["nominatedNodeName"] = old["nominatedNodeName"];
  return status;
}

}  // namespace podium::node
