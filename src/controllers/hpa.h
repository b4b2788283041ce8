#pragma once

// Kubernetes' horizontal pod autoscaler controller for autoscaling/v2 HorizontalPodAutoscalers:
// reads the target's scale subresource, computes a replica count for each metric (Resource and
// ContainerResource from metrics.k8s.io, Pods and Object from custom.metrics.k8s.io) with the
// HPA's algorithm (hpa_replicas.h), takes the largest, holds it to spec.behavior and the
// min/max bounds, and writes the scale. Status carries currentMetrics, desired and current
// replicas and the AbleToScale / ScalingActive / ScalingLimited conditions with Kubernetes'
// reasons; scales and failures are events. Each HPA is evaluated every `syncPeriod` (1 s, on
// metrics read every second), not every 15 s.

#include <map>
#include <mutex>

#include "hpa_replicas.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

struct HpaOptions {
  std::chrono::milliseconds syncPeriod{1000};
  double tolerance = 0.1;
};

class HpaController : public client::Controller {
 public:
  HpaController(client::InformerFactory& informers, client::EventRecorder& events,
                HpaOptions options = {});
  ~HpaController() override { stop(); }

  // One metric's outcome (public for the metric readers in hpa_metrics.cc).
  struct MetricOutcome {
    int32_t replicas = 0;
    Json status;              // its entry in status.currentMetrics
    std::string description;  // "cpu resource utilization (percentage of request)"
    std::string errorReason;  // "FailedGetResourceMetric", ...; "" when it worked
    std::string error;
  };

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  struct Target {
    std::string ns, selector;
    int32_t replicas = 0;
    std::vector<ObjectPtr> pods;  // what the selector takes
  };
  MetricOutcome evaluate(const Json& metric, const Target& target);
  MetricOutcome resourceMetric(const Json& source, const std::string& container,
                               const Target& target);
  MetricOutcome podsMetric(const Json& source, const Target& target);
  MetricOutcome objectMetric(const Json& source, const Target& target);

  struct History {
    std::vector<hpa::Timed> recommendations, scales;
  };

  client::Informer& hpas_;
  client::Informer& pods_;
  client::EventRecorder& events_;
  HpaOptions options_;
  std::mutex mu_;                           // guards history_
  std::map<std::string, History> history_;  // by HPA key
};

// spec.behavior with Kubernetes' defaults for whatever it leaves out.
hpa::Behavior behaviorFrom(const Json& behavior);

}  // namespace podium::controllers
