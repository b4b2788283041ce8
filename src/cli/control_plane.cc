#include "control_plane.h"

#include <unistd.h>

#include "flags.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::cli {

std::string readControlPlaneFlags(const Flags& flags, ControlPlaneOptions* options) {
  if (auto g = flags.get("gitops-poll-interval")) {
    auto n = strings::parseInt(*g);
    if (!n || *n < 100)
      return "--gitops-poll-interval must be a number of milliseconds (100 or more)";
    options->gitopsPollInterval = std::chrono::milliseconds(*n);
  }
  if (auto g = flags.get("node-monitor-grace-period")) {
    auto d = timefmt::parseGoDuration(*g);
    if (!d || d->count() < 1000)
      return "--node-monitor-grace-period must be a duration of 1s or more";
    options->controllers.nodeMonitorGracePeriod = *d;
  }
  if (auto c = flags.get("cluster-cidr")) {
    auto cidr = net::Cidr::parse(*c);
    if (!cidr || cidr->bits > 30 || c->find('/') == std::string::npos)
      return "--cluster-cidr must be an IPv4 range A.B.C.D/N with N of 30 or less";
    options->controllers.clusterCidr = *c;
  }
  if (auto m = flags.get("node-cidr-mask-size")) {
    auto n = strings::parseInt(*m);
    if (!n || *n < 1 || *n > 30)
      return "--node-cidr-mask-size must be a number of bits from 1 to 30";
    options->controllers.nodeCidrMaskSize = static_cast<int>(*n);
  }
  if (auto cidr = net::Cidr::parse(options->controllers.clusterCidr);
      cidr && cidr->bits > options->controllers.nodeCidrMaskSize)
    return "--node-cidr-mask-size must be larger than the --cluster-cidr's prefix (" +
           std::to_string(cidr->bits) + ")";
  if (flags.has("leader-elect")) options->leaderElect = true;
  if (auto d = flags.get("leader-elect-lease-duration")) {
    auto n = strings::parseInt(*d);
    if (!n || *n < 1000)
      return "--leader-elect-lease-duration must be a number of milliseconds (1000 or more)";
    // Kubernetes' proportions: renew within two thirds of it, try every sixth.
    options->election.leaseDuration = std::chrono::milliseconds(*n);
    options->election.renewDeadline = std::chrono::milliseconds(*n * 2 / 3);
    options->election.retryPeriod = std::chrono::milliseconds(*n / 6);
  }
  return "";
}

Expected<std::unique_ptr<ControlPlane>, std::string> ControlPlane::start(
    const ClientFactory& connect, const ControlPlaneOptions& options) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  cp->options_ = options;
  for (auto [client, manager] : {std::pair{&cp->controllerClient_, "podium-controller-manager"},
                                 std::pair{&cp->schedulerClient_, "default-scheduler"},
                                 std::pair{&cp->gitopsClient_, "argocd-controller"}}) {
    auto c = connect(manager);
    if (!c) return Unexpected(c.error());
    *client = std::move(*c);
  }
  if (!options.leaderElect) {
    cp->startLoops();
    return cp;
  }
  auto c = connect("podium-leader-election");
  if (!c) return Unexpected(c.error());
  cp->electionClient_ = std::move(*c);
  client::LeaderElectionConfig election = options.election;
  if (election.name.empty()) election.name = "podium-controllers";
  if (election.identity.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    election.identity = std::string(host) + "_" + strings::randomSuffix(10);
  }
  ControlPlane* raw = cp.get();
  cp->elector_ = std::make_unique<client::LeaderElector>(
      *cp->electionClient_, realClock(), election, [raw] { raw->startLoops(); },
      [raw] { raw->stopLoops(); });
  cp->elector_->start();
  return cp;
}

void ControlPlane::startLoops() {
  std::lock_guard<std::mutex> lock(mu_);
  if (controllers_) return;
  controllers_ = controllers::startControllers(*controllerClient_, options_.controllers);
  scheduler_ = scheduler::startScheduler(*schedulerClient_);
  gitops::GitOpsOptions go;
  go.dataDir = options_.dataDir;
  go.pollInterval = options_.gitopsPollInterval;
  go.imageBuilder = options_.imageBuilder;
  gitops_ = gitops::startGitOps(*gitopsClient_, go);
}

void ControlPlane::stopLoops() {
  std::lock_guard<std::mutex> lock(mu_);
  if (gitops_) gitops_->stop();
  if (scheduler_) scheduler_->stop();
  if (controllers_) controllers_->stop();
  gitops_.reset();
  scheduler_.reset();
  controllers_.reset();
}

void ControlPlane::stop() {
  if (elector_) elector_->stop();
  stopLoops();
}

bool ControlPlane::running() {
  std::lock_guard<std::mutex> lock(mu_);
  return controllers_ != nullptr;
}

api::HttpResponse ControlPlane::serveArgoCd(const api::HttpRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (gitops_) return gitops_->serve(request);
  api::HttpResponse r;
  r.status = 503;
  r.setHeader("Content-Type", "application/json");
  r.body =
      "{\"error\":\"this server stands by: another runs GitOps (leader election)\",\"code\":14}\n";
  return r;
}

}  // namespace podium::cli
