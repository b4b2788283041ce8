#include "control_plane.h"

#include "flags.h"
#include "podium/common/strings.h"

namespace podium::cli {

std::string readControlPlaneFlags(const Flags& flags, ControlPlaneOptions* options) {
  if (auto g = flags.get("gitops-poll-interval")) {
    auto n = strings::parseInt(*g);
    if (!n || *n < 100)
      return "--gitops-poll-interval must be a number of milliseconds (100 or more)";
    options->gitopsPollInterval = std::chrono::milliseconds(*n);
  }
  return "";
}

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
