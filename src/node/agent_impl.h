#pragma once

// Internals of the node agent, shared by its source files.

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cri_client.h"
#include "local_volumes.h"
#include "node_proxy.h"
#include "pod_plan.h"
#include "pod_routes.h"
#include "podium/client/events.h"
#include "podium/client/informer.h"
#include "podium/client/objects.h"
#include "podium/client/workqueue.h"
#include "podium/dns/cluster_dns.h"
#include "podium/node/agent.h"
#include "podium/node/containerd.h"
#include "podium/node/netfilter.h"
#include "prober.h"
#include "resource_stats.h"
#include "startup_timeline.h"

namespace podium::node {

using client::at;
using client::ObjectPtr;

// What the runtime holds for one pod, read from the CRI at the start of each sync.
struct RuntimePod {
  std::vector<runtime::v1::PodSandbox> sandboxes;  // newest first
  std::vector<runtime::v1::Container> containers;  // all attempts, newest first
  const runtime::v1::PodSandbox* readySandbox() const;
  // The latest attempt of a container in a sandbox, or nullptr.
  const runtime::v1::Container* latest(const std::string& sandboxId, const std::string& name) const;
  const runtime::v1::Container* previous(const std::string& sandboxId,
                                         const std::string& name) const;
};

struct PodState {
  std::string uid;
  std::string startTime;
  std::string podIp;
  std::string netns;  // in the mesh: its network namespace, with the mesh's capture rules
  std::string sandboxId;
  runtime::v1::PodSandboxConfig sandboxConfig;
  std::map<std::string, Backoff> restartBackoff;  // container name
  std::map<std::string, Backoff> pullBackoff;     // image
  std::map<std::string, std::pair<std::string, std::string>>
      waiting;                                  // container -> reason, message
  std::map<std::string, std::string> imageIds;  // container -> image id
  std::set<std::string> killedForLiveness;      // container ids
  // The attempt number a container starts at in a new sandbox: restart counts carry over a
  // sandbox change (a node restart), as the kubelet's do.
  std::map<std::string, uint32_t> nextAttempt;
  Json lastStatus;
  bool terminated = false;  // sandbox stopped after the pod finished
  PodTimeline timeline;     // its start-up, when this agent made its sandbox
};

class AgentImpl : public Agent {
 public:
  AgentImpl(client::Client& client, AgentOptions options);
  ~AgentImpl() override;
  Expected<void, std::string> start();
  void stop(bool stopPods) override;
  const std::string& nodeName() const override { return opts_.nodeName; }
  const std::string& nodeIp() const override { return opts_.nodeIp; }
  Json statsSummary() const override;
  Json meshStats() const override;
  Json recentSpans(const std::string& traceId) const override;
  std::string metrics() const override { return startup_.prometheus(); }

  // api::NodeConnector
  Expected<std::shared_ptr<api::ResponseStream>, api::ApiError> logs(
      const Json& pod, const api::LogOptions& o) override;
  Expected<std::string, api::ApiError> exec(const Json& pod, const api::ExecOptions& o) override;
  Expected<std::string, api::ApiError> attach(const Json& pod, const api::ExecOptions& o) override;
  Expected<std::string, api::ApiError> portForward(const Json& pod,
                                                   const std::vector<int32_t>& ports) override;
  Expected<api::HttpResponse, api::ApiError> nodeEndpoint(const std::string& path) override;

  // --- pod_sync.cc ---
  bool syncPod(const std::string& key);
  void probeResultChanged(const std::string& podKey) { queue_.add(podKey); }

 private:
  // agent.cc
  Expected<void, std::string> registerNode();
  Json nodeLabels() const;
  // The node's pod range as the server allocated it (the Node is created without one).
  Expected<std::string, std::string> awaitPodCidr();
  void heartbeatLoop();
  void plegLoop();
  Json nodeStatus();
  void stopAllSandboxes();
  void reportStoppedPods();

  // pod_sync.cc
  RuntimePod runtimeFor(const std::string& uid);
  bool terminatePod(const Json& pod, PodState& st, const RuntimePod& rt, int64_t grace);
  void killRuntime(const RuntimePod& rt, int64_t grace);
  // Drops the agent's state and files of a pod that is gone.
  void forgetPod(const std::string& key, std::string uid);
  // Puts a meshed pod's traffic through the node proxy (its nftables table) and tells the proxy.
  Expected<void, std::string> joinMesh(const Json& pod, PodState& st);
  void publishMeshPods();
  Expected<void, std::string> ensureSandbox(const Json& pod, PodState& st, const RuntimePod& rt,
                                            bool* created);
  runtime::v1::PodSandboxConfig sandboxConfigFor(const Json& pod, uint32_t attempt);
  // Starts (or restarts) one container; returns false if it could not (status explains why).
  bool startContainer(const Json& pod, PodState& st, const Json& spec, uint32_t attempt, bool init);
  Expected<std::string, std::string> pullIfNeeded(const Json& pod, PodState& st, const Json& spec);
  Expected<runtime::v1::ContainerConfig, std::string> containerConfigFor(const Json& pod,
                                                                         PodState& st,
                                                                         const Json& spec,
                                                                         uint32_t attempt);
  void removeOldAttempts(const RuntimePod& rt, const std::string& sandboxId,
                         const std::string& name, uint32_t keepFrom);
  void noteReady(const Json& pod, PodState& st);
  bool writeStatus(const Json& pod, PodState& st, const RuntimePod& rt);
  void cleanupOrphans(const std::map<std::string, std::string>& sandboxUids);

  // pod_status.cc
  Json computeStatus(const Json& pod, PodState& st, const RuntimePod& rt);

  // pod_env.cc
  Expected<std::vector<std::pair<std::string, std::string>>, std::string> environment(
      const Json& pod, const Json& container);
  Expected<std::vector<runtime::v1::Mount>, std::string> mounts(const Json& pod,
                                                                const Json& container);
  std::string podDir(const std::string& uid) const { return opts_.dataDir + "/pods/" + uid; }

 public:
  client::Client& client_;
  AgentOptions opts_;
  std::unique_ptr<Containerd> containerd_;
  std::unique_ptr<CriClient> cri_;
  std::unique_ptr<client::EventRecorder> events_;
  std::unique_ptr<client::Informer> pods_;
  std::unique_ptr<client::Informer> services_;
  std::unique_ptr<LocalVolumes> localVolumes_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<ResourceStats> stats_;
  std::unique_ptr<dns::ClusterDns> dns_;
  std::unique_ptr<NodeNetfilter> netfilter_;
  std::unique_ptr<NodeProxy> proxy_;
  std::unique_ptr<PodRoutes> routes_;
  client::WorkQueue queue_;
  std::mutex mu_;  // guards states_, uidToKey_ and arrived_
  StartupHistograms startup_;
  std::map<std::string, PodTimeline::Time> arrived_;  // uid → when the watch delivered it
  std::map<std::string, PodState> states_;            // pod key ("ns/name")
  std::map<std::string, std::string> uidToKey_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex stopMu_;  // guards stopCv_ waits
  std::condition_variable stopCv_;
  std::string runtimeVersion_;
  std::string nodeUid_;
};

// $(VAR) references in env values, command and args, resolved against `env`; $$ escapes.
std::string expandVars(const std::string& in, const std::map<std::string, std::string>& env);

// Pod identity labels the agent puts on CRI sandboxes and containers (the kubelet's names).
constexpr const char* kLabelPodName = "io.kubernetes.pod.name";
constexpr const char* kLabelPodNamespace = "io.kubernetes.pod.namespace";
constexpr const char* kLabelPodUid = "io.kubernetes.pod.uid";
constexpr const char* kLabelContainerName = "io.kubernetes.container.name";

}  // namespace podium::node
