#pragma once

#include <memory>

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// One measurement of a metric, as a provider took it.
struct Measurement {
  Json value;           // a number, or a list of them (`result` in the conditions)
  std::string phase;    // "" : decided by the conditions; "Inconclusive" or "Error" by the provider
  std::string message;  // why, when the provider decided
};

// Where measurements come from (Argo Rollouts' metric providers). `provider` is the metric's
// `provider` object with its `{{args.*}}` already substituted; `ns` the AnalysisRun's namespace.
class MetricProviders {
 public:
  virtual ~MetricProviders() = default;
  virtual Measurement measure(const Json& provider, const std::string& ns) = 0;
};

// The real ones: `prometheus` (address, query: an instant query's vector or scalar), `web`
// (url, method, headers, body, jsonPath, timeoutSeconds), and the built-in
// `plugin: {"podium.dev/mesh": {metric, workload, namespace}}` reading the node proxies' own
// counters through the API (mesh.podium.io graph): `success-rate` (1 − the 5xx share) or
// `request-duration-p99` (ms) of the requests the workload answered in the last second; a
// workload that answered none is Inconclusive, saying so (Flagger's two built-in checks).
std::unique_ptr<MetricProviders> realMetricProviders(client::Client& client);

// Argo Rollouts' AnalysisRun (argoproj.io/v1alpha1): each metric is measured every `interval`
// (once without one), `count` times (until terminated when 0 with an interval), after
// `initialDelay`; a measurement is Successful, Failed or Inconclusive by successCondition and
// failureCondition; a metric fails when its failed measurements exceed failureLimit, is
// inconclusive past inconclusiveLimit, errs past consecutiveErrorLimit (4); the run takes the
// worst of its metrics (Failed, Error, Inconclusive), else Successful once all are.
// `spec.terminate` ends it (Successful unless something failed). The newest 10 measurements
// per metric are kept.
class AnalysisRunController : public client::Controller {
 public:
  AnalysisRunController(client::InformerFactory& informers, client::EventRecorder& events,
                        MetricProviders& providers, int workers = 2);
  ~AnalysisRunController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::EventRecorder& events_;
  MetricProviders& providers_;
  client::Informer& runs_;
};

// Substitutes `{{args.NAME}}` in every string of `value` from `args` ([{name, value}]); an
// error names an argument that has no value.
Expected<Json, std::string> substituteArgs(const Json& value, const Json& args);

}  // namespace podium::controllers
