#include "control_plane.h"

namespace podium::cli {

Expected<std::unique_ptr<ControlPlane>, std::string> ControlPlane::start(
    const ClientFactory& connect, const ControlPlaneOptions& options) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  for (auto [client, manager] : {std::pair{&cp->controllerClient_, "podium-controller-manager"},
                                 std::pair{&cp->schedulerClient_, "default-scheduler"},
                                 std::pair{&cp->gitopsClient_, "argocd-controller"}}) {
    auto c = connect(manager);
    if (!c) return Unexpected(c.error());
    *client = std::move(*c);
  }
  cp->controllers_ = controllers::startControllers(*cp->controllerClient_);
  cp->scheduler_ = scheduler::startScheduler(*cp->schedulerClient_);
  gitops::GitOpsOptions go;
  go.dataDir = options.dataDir;
  go.pollInterval = options.gitopsPollInterval;
  cp->gitops_ = gitops::startGitOps(*cp->gitopsClient_, go);
  return cp;
}

void ControlPlane::stop() {
  if (gitops_) gitops_->stop();
  if (scheduler_) scheduler_->stop();
  if (controllers_) controllers_->stop();
}

}  // namespace podium::cli
