#include "pod_plan.h"

namespace podium::node {

namespace {

using State = ContainerView::State;
using Kind = ContainerAction::Kind;

// Whether an exited container is started again under the pod's restartPolicy (init containers
// never under Always: they rerun only when they failed).
bool restartable(const std::string& policy, const ContainerView& c, bool init) {
  if (policy == "Always" && !init) return true;
  if (policy == "Never") return false;
  return !c.exitCode || *c.exitCode != 0 || c.killedForLiveness;
}

void restartOrBackOff(const PodPlanInput& in, const std::string& name, const ContainerView& cur,
                      bool init, std::vector<ContainerAction>& out) {
  Backoff& b = (*in.backoff)[name];
  if (b.active(in.now)) {
    out.push_back({Kind::BackOff, name, init, 0, cur.id, b.remaining(in.now)});
    return;
  }
  b.next(in.now);
  out.push_back({Kind::Create, name, init, cur.attempt + 1, "", {}});
}

}  // namespace

std::vector<ContainerAction> planPod(const PodPlanInput& in) {
  std::vector<ContainerAction> out;
  const Json& spec = *in.spec;
  std::string policy = json::str(spec, "restartPolicy", "Always");
  const Json& inits = json::at(spec, {"initContainers"});
  if (inits.is_array())
    for (const auto& ic : inits) {
      std::string name = json::str(ic, "name");
      const ContainerView* cur = in.latest(name);
      if (cur && cur->state == State::Exited && cur->exitCode && *cur->exitCode == 0) continue;
      // This init container is the one to run now; the rest wait for it.
      if (!cur)
        out.push_back({Kind::Create, name, true, in.firstAttempt(name), "", {}});
      else if (cur->state == State::Exited && restartable(policy, *cur, true))
        restartOrBackOff(in, name, *cur, true, out);
      else if (cur->state == State::Created)
        out.push_back({Kind::Start, name, true, 0, cur->id, {}});
      return out;
    }
  const Json& containers = json::at(spec, {"containers"});
  if (!containers.is_array()) return out;
  for (const auto& c : containers) {
    std::string name = json::str(c, "name");
    const ContainerView* cur = in.latest(name);
    if (!cur) {
      out.push_back({Kind::Create, name, false, in.firstAttempt(name), "", {}});
    } else if (cur->state == State::Running) {
      if (cur->livenessFailed && !cur->killedForLiveness)
        out.push_back({Kind::Kill, name, false, 0, cur->id, {}});
    } else if (cur->state == State::Created) {
      out.push_back({Kind::Start, name, false, 0, cur->id, {}});
    } else if (restartable(policy, *cur, false)) {
      restartOrBackOff(in, name, *cur, false, out);
    }
  }
  return out;
}

}  // namespace podium::node
