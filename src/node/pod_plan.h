#pragma once

// What the node agent does next with one pod's containers, decided apart from doing it (the
// kubelet's computePodActions): init containers run one at a time, in order, each to success;
// then every container runs; a container that exited is started again as the pod's
// restartPolicy says, after a back-off (10 s doubling to 5 min: CrashLoopBackOff); a running
// container whose liveness probe failed is killed (and restarted by the next plan). Pure: the
// runtime's state comes in, actions go out, and the test drives it with a fake clock.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::node {

// Kubelet-style exponential back-off: the first restart is immediate, then 10 s, 20 s, ...,
// capped at 300 s; reset after a long quiet spell.
struct Backoff {
  std::chrono::steady_clock::time_point last{};
  std::chrono::seconds delay{0};
  bool active(std::chrono::steady_clock::time_point now) const {
    return delay.count() > 0 && now < last + delay;
  }
  std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point now) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(last + delay - now);
  }
  void next(std::chrono::steady_clock::time_point now) {
    if (delay.count() > 0 && now - last > std::chrono::seconds(600))
      delay = std::chrono::seconds(0);
    delay = delay.count() == 0 ? std::chrono::seconds(10)
                               : std::min(delay * 2, std::chrono::seconds(300));
    last = now;
  }
};

// The latest attempt of one container in the pod's sandbox, as the runtime reports it.
struct ContainerView {
  enum class State { Created, Running, Exited };
  std::string id;
  State state = State::Created;
  uint32_t attempt = 0;
  std::optional<int32_t> exitCode;  // when exited (and known)
  bool livenessFailed = false;      // its liveness probe says so
  bool killedForLiveness = false;   // the agent killed it for that already
};

struct ContainerAction {
  enum class Kind {
    Create,   // create and start a new attempt
    Start,    // start an attempt that was created and not started
    BackOff,  // wait: CrashLoopBackOff until `retryIn`
    Kill,     // stop a running container whose liveness probe failed
  };
  Kind kind;
  std::string container;
  bool init = false;
  uint32_t attempt = 0;  // Create: the attempt number
  std::string id;        // Start, Kill: the container
  std::chrono::milliseconds retryIn{0};
};

struct PodPlanInput {
  const Json* spec = nullptr;  // the pod's spec
  // The latest attempt of a container by name, or nullptr when it never ran in this sandbox.
  std::function<const ContainerView*(const std::string& name)> latest;
  // The attempt a container's first run in this sandbox gets (restart counts carry over).
  std::function<uint32_t(const std::string& name)> firstAttempt;
  std::map<std::string, Backoff>* backoff = nullptr;  // restart back-off by container (updated)
  std::chrono::steady_clock::time_point now;
};

// The actions for the pod's containers now. Restarting a container steps its back-off.
std::vector<ContainerAction> planPod(const PodPlanInput& in);

}  // namespace podium::node
