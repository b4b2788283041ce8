#include "podium/controllers/manager.h"

#include "deployment.h"
#include "endpoints.h"
#include "garbage_collector.h"
#include "job.h"
#include "mesh_status.h"
#include "namespace.h"
#include "podium/client/client.h"
#include "podium/client/events.h"
#include "podium/common/log.h"
#include "replicaset.h"
#include "service_lb.h"

namespace podium::controllers {
namespace {

class Manager : public ControllerManager {
 public:
  explicit Manager(api::Storage& storage)
      : client_(client::newLocalClient(storage, "podium-controller-manager")),
        informers_(*client_),
        replicaSetEvents_(*client_, "replicaset-controller"),
        deploymentEvents_(*client_, "deployment-controller"),
        jobEvents_(*client_, "job-controller"),
        replicaSets_(informers_, replicaSetEvents_),
        deployments_(informers_, deploymentEvents_),
        jobs_(informers_, jobEvents_),
        namespaces_(informers_),
        endpoints_(informers_),
        meshStatus_(informers_),
        serviceLb_(informers_),
        gc_(informers_) {
    informers_.start();
    if (!informers_.waitForSync(std::chrono::seconds(30)))
      PODIUM_LOG(Warn) << "controller caches did not sync in 30s";
    replicaSets_.start();
    deployments_.start();
    jobs_.start();
    namespaces_.start();
    endpoints_.start();
    meshStatus_.start();
    serviceLb_.start();
    gc_.start();
  }
  ~Manager() override { stop(); }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    gc_.stop();
    serviceLb_.stop();
    meshStatus_.stop();
    endpoints_.stop();
    namespaces_.stop();
    jobs_.stop();
    deployments_.stop();
    replicaSets_.stop();
    informers_.stop();
  }

 private:
  client::ClientPtr client_;
  client::InformerFactory informers_;
  client::EventRecorder replicaSetEvents_, deploymentEvents_, jobEvents_;
  ReplicaSetController replicaSets_;
  DeploymentController deployments_;
  JobController jobs_;
  NamespaceController namespaces_;
  EndpointsController endpoints_;
  MeshStatusController meshStatus_;
  ServiceLbController serviceLb_;
  GarbageCollector gc_;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<ControllerManager> startControllers(api::Storage& storage) {
  return std::make_unique<Manager>(storage);
}

}  // namespace podium::controllers
