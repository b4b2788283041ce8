#include "podium/controllers/manager.h"

#include "analysis.h"
#include "cronjob.h"
#include "daemonset.h"
#include "deployment.h"
#include "disruption.h"
#include "endpoints.h"
#include "garbage_collector.h"
#include "hpa.h"
#include "job.h"
#include "mesh_status.h"
#include "namespace.h"
#include "node_ipam.h"
#include "node_lifecycle.h"
#include "podium/client/events.h"
#include "podium/common/log.h"
#include "replicaset.h"
#include "rollout.h"
#include "service_lb.h"
#include "statefulset.h"
#include "volume.h"

namespace podium::controllers {
namespace {

class Manager : public ControllerManager {
 public:
  Manager(client::Client& client, const ControllerOptions& options, Clock& clock)
      : informers_(client, std::chrono::seconds(30), clock),
        replicaSetEvents_(client, "replicaset-controller", "", clock),
        deploymentEvents_(client, "deployment-controller", "", clock),
        jobEvents_(client, "job-controller", "", clock),
        cronJobEvents_(client, "cronjob-controller", "", clock),
        daemonSetEvents_(client, "daemonset-controller", "", clock),
        statefulSetEvents_(client, "statefulset-controller", "", clock),
        volumeEvents_(client, "persistentvolume-controller", "", clock),
        nodeEvents_(client, "node-controller", "", clock),
        hpaEvents_(client, "horizontal-pod-autoscaler", "", clock),
        rolloutEvents_(client, "rollouts-controller", "", clock),
        replicationControllerEvents_(client, "replication-controller", "", clock),
        replicaSets_(informers_, replicaSetEvents_),
        replicationControllers_(informers_, replicationControllerEvents_, 2,
                                ReplicaSetController::kReplicationController),
        deployments_(informers_, deploymentEvents_),
        jobs_(informers_, jobEvents_),
        cronJobs_(informers_, cronJobEvents_),
        daemonSets_(informers_, daemonSetEvents_),
        statefulSets_(informers_, statefulSetEvents_),
        volumes_(informers_, volumeEvents_),
        namespaces_(informers_),
        endpoints_(informers_),
        meshStatus_(informers_),
        serviceLb_(informers_),
        gc_(informers_),
        nodeLifecycle_(informers_, nodeEvents_, options.nodeMonitorGracePeriod),
        disruption_(informers_),
        hpa_(informers_, hpaEvents_),
        rollouts_(informers_, rolloutEvents_),
        providers_(realMetricProviders(client)),
        analysisRuns_(informers_, rolloutEvents_, *providers_) {
    if (auto cidr = net::Cidr::parse(options.clusterCidr); cidr && !options.clusterCidr.empty())
      nodeIpam_ = std::make_unique<NodeIpamController>(informers_, nodeEvents_, *cidr,
                                                       options.nodeCidrMaskSize);
    informers_.start();
    if (!informers_.waitForSync(std::chrono::seconds(30)))
      PODIUM_LOG(Warn) << "controller caches did not sync in 30s";
    for (client::Controller* c : all()) c->start();
  }
  ~Manager() override { stop(); }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    for (client::Controller* c : all()) c->stop();
    informers_.stop();
  }

 private:
  std::vector<client::Controller*> all() {
    std::vector<client::Controller*> out = {&replicaSets_,  &replicationControllers_,
                                            &deployments_,  &jobs_,
                                            &namespaces_,   &endpoints_,
                                            &meshStatus_,   &serviceLb_,
                                            &gc_,           &nodeLifecycle_,
                                            &disruption_,   &hpa_,
                                            &rollouts_,     &analysisRuns_,
                                            &cronJobs_,     &daemonSets_,
                                            &statefulSets_, &volumes_};
    if (nodeIpam_) out.push_back(nodeIpam_.get());
    return out;
  }

  client::InformerFactory informers_;
  client::EventRecorder replicaSetEvents_, deploymentEvents_, jobEvents_, cronJobEvents_,
      daemonSetEvents_, statefulSetEvents_, volumeEvents_, nodeEvents_, hpaEvents_, rolloutEvents_;
  client::EventRecorder replicationControllerEvents_;
  ReplicaSetController replicaSets_;
  ReplicaSetController replicationControllers_;
  DeploymentController deployments_;
  JobController jobs_;
  CronJobController cronJobs_;
  DaemonSetController daemonSets_;
  StatefulSetController statefulSets_;
  VolumeController volumes_;
  NamespaceController namespaces_;
  EndpointsController endpoints_;
  MeshStatusController meshStatus_;
  ServiceLbController serviceLb_;
  GarbageCollector gc_;
  NodeLifecycleController nodeLifecycle_;
  DisruptionController disruption_;
  HpaController hpa_;
  RolloutController rollouts_;
  std::unique_ptr<MetricProviders> providers_;
  AnalysisRunController analysisRuns_;
  std::unique_ptr<NodeIpamController> nodeIpam_;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<ControllerManager> startControllers(client::Client& client,
                                                    const ControllerOptions& options,
                                                    Clock& clock) {
  return std::make_unique<Manager>(client, options, clock);
}

}  // namespace podium::controllers
