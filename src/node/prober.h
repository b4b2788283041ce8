#pragma once

// Liveness, readiness and startup probes (httpGet, tcpSocket, exec) with Kubernetes' timing:
// initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold, failureThreshold.
// Liveness and readiness wait for the startup probe. Results are per container ID.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cri_client.h"
#include "podium/common/json.h"

namespace podium::node {

class Prober {
 public:
  enum class Kind { Liveness, Readiness, Startup };
  // Called when a probe's result flips (the pod must be synced) and on every failed attempt
  // (for the Unhealthy event).
  using ResultChanged = std::function<void(const std::string& podKey)>;
  using Failed = std::function<void(const std::string& podKey, const std::string& container,
                                    Kind kind, const std::string& message)>;

  Prober(CriClient& cri, ResultChanged changed, Failed failed, int workers = 4);
  ~Prober();

  // Makes the running container's probes match its spec (idempotent).
  void track(const std::string& podKey, const std::string& podIp, const std::string& containerId,
             const std::string& containerName, const Json& spec);
  // Drops probes of the pod's containers not in `keep`.
  void untrackExcept(const std::string& podKey, const std::set<std::string>& keep);

  bool ready(const std::string& containerId) const;    // no readiness probe: true once started
  bool started(const std::string& containerId) const;  // no startup probe: true
  bool livenessFailed(const std::string& containerId) const;

  static const char* kindName(Kind k);

 private:
  struct Probe {
    std::string podKey, podIp, containerId, containerName;
    Kind kind;
    Json spec;
    Json containerSpec;
    std::chrono::steady_clock::time_point next;
    int successes = 0, failures = 0;
    bool result;  // current result (liveness starts true, readiness/startup false)
    bool inFlight = false;
  };
  void work();
  std::pair<bool, std::string> run(const Probe& p);

  CriClient& cri_;
  ResultChanged changed_;
  Failed failed_;
  mutable std::mutex mu_;  // guards probes_, stopping_
  std::condition_variable cv_;
  std::map<std::string, Probe> probes_;  // containerId + "/" + kind
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace podium::node
