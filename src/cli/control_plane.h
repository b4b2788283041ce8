#pragma once

// The control loops beside the API server (kube-controller-manager, kube-scheduler and Argo
// CD's application controller in one): each runs on a client of its own, made by `connect`
// with its field manager. `podium server` connects them in process; `podium controllers` over
// HTTPS to a server elsewhere. They behave the same either way.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "podium/client/client.h"
#include "podium/common/expected.h"
#include "podium/controllers/manager.h"
#include "podium/gitops/app_controller.h"
#include "podium/scheduler/scheduler.h"

namespace podium::cli {

struct ControlPlaneOptions {
  std::string dataDir;  // GitOps keeps its repository mirrors in DATA/gitops
  std::chrono::milliseconds gitopsPollInterval{3000};
};

class Flags;
// --gitops-poll-interval MS into `options`; an error message ("" on success).
std::string readControlPlaneFlags(const Flags& flags, ControlPlaneOptions* options);

// Makes a client writing as `fieldManager`, or says why it cannot.
using ClientFactory =
    std::function<Expected<client::ClientPtr, std::string>(const std::string& fieldManager)>;

class ControlPlane {
 public:
  static Expected<std::unique_ptr<ControlPlane>, std::string> start(
      const ClientFactory& connect, const ControlPlaneOptions& options);
  ~ControlPlane() { stop(); }
  // Stops GitOps, the scheduler and the controllers; idempotent.
  void stop();
  gitops::GitOps& gitops() { return *gitops_; }

 private:
  ControlPlane() = default;
  client::ClientPtr controllerClient_, schedulerClient_, gitopsClient_;
  std::unique_ptr<controllers::ControllerManager> controllers_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::unique_ptr<gitops::GitOps> gitops_;
};

}  // namespace podium::cli
