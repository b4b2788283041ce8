#pragma once

// The control loops beside the API server (kube-controller-manager, kube-scheduler and Argo
// CD's application controller in one): each runs on a client of its own, made by `connect`
// with its field manager. `podium server` connects them in process; `podium controllers` over
// HTTPS to a server elsewhere. They behave the same either way. With leader election (several
// servers on one etcd), only the holder of the Lease kube-system/podium-controllers runs them;
// the others stand by and take over when it stops renewing.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "podium/api/http.h"
#include "podium/client/client.h"
#include "podium/client/leader_election.h"
#include "podium/common/expected.h"
#include "podium/controllers/manager.h"
#include "podium/gitops/app_controller.h"
#include "podium/scheduler/scheduler.h"

namespace podium::cli {

struct ControlPlaneOptions {
  std::string dataDir;  // GitOps keeps its repository mirrors in DATA/gitops
  std::chrono::milliseconds gitopsPollInterval{3000};
  controllers::ControllerOptions controllers;
  bool leaderElect = false;
  client::LeaderElectionConfig election;  // name and identity are filled in when empty
  gitops::ImageBuilder imageBuilder;      // what ImageBuilds build with (none: refused)
};

class Flags;
// --gitops-poll-interval MS, --node-monitor-grace-period DURATION, --cluster-cidr CIDR,
// --node-cidr-mask-size BITS, --leader-elect and --leader-elect-lease-duration MS into
// `options`; an error message ("" on success).
std::string readControlPlaneFlags(const Flags& flags, ControlPlaneOptions* options);

// Makes a client writing as `fieldManager`, or says why it cannot.
using ClientFactory =
    std::function<Expected<client::ClientPtr, std::string>(const std::string& fieldManager)>;

class ControlPlane {
 public:
  static Expected<std::unique_ptr<ControlPlane>, std::string> start(
      const ClientFactory& connect, const ControlPlaneOptions& options);
  ~ControlPlane() { stop(); }
  // Stops campaigning (a leader releases its Lease), GitOps, the scheduler and the controllers;
  // idempotent.
  void stop();
  // Argo CD's API paths, by the GitOps controller when it runs here (503 on a standby).
  api::HttpResponse serveArgoCd(const api::HttpRequest& request);
  bool running();

 private:
  ControlPlane() = default;
  void startLoops();
  void stopLoops();

  ControlPlaneOptions options_;
  client::ClientPtr controllerClient_, schedulerClient_, gitopsClient_, electionClient_;
  std::unique_ptr<client::LeaderElector> elector_;
  std::mutex mu_;  // guards the loops below
  std::unique_ptr<controllers::ControllerManager> controllers_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::unique_ptr<gitops::GitOps> gitops_;
};

}  // namespace podium::cli
