#pragma once

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Argo Rollouts' canary strategy (argoproj.io/v1alpha1 Rollout), with its semantics: one
// ReplicaSet per pod template, labelled rollouts-pod-template-hash; the stable ReplicaSet
// (status.stableRS) keeps spec.replicas while the canary one is scaled to the current weight;
// `steps` — setWeight, pause (until promoted, or for a duration), analysis (an AnalysisRun
// from AnalysisTemplates/ClusterAnalysisTemplates with the step's args: Successful goes on,
// Failed or Error aborts, Inconclusive pauses) — walked by status.currentStepIndex; traffic split
// by Istio (trafficRouting.istio: the VirtualService's routes get the stable and canary subsets'
// weights, the DestinationRule's subsets the two hashes); abort (status.abort) sends all traffic
// back to stable and scales the canary down, Degraded, until a retry clears it; full promotion
// makes the canary stable. Phases and messages as Argo Rollouts reports them (Progressing, Paused,
// Degraded, Healthy). What it does not carry out (background analysis, experiments, setCanaryScale,
// header and mirror routes, the blueGreen strategy, workloadRef) is refused with an InvalidSpec
// condition, never ignored.
class RolloutController : public client::Controller {
 public:
  RolloutController(client::InformerFactory& informers, client::EventRecorder& events,
                    int workers = 2);
  ~RolloutController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  struct State;
  SyncResult replicaSets(State& s);
  SyncResult scale(State& s, const ObjectPtr& rs, int64_t replicas);
  SyncResult route(State& s, int weight);
  SyncResult writeStatus(State& s);
  // The step's AnalysisRun, made from its templates; an error says what is missing.
  Expected<Json, std::string> createStepRun(State& s, const Json& analysis, int64_t step);
  void terminateStepRun(State& s);

  client::EventRecorder& events_;
  client::Informer& rollouts_;
  client::Informer& replicaSets_;
  client::Informer& runs_;
  client::Informer& virtualServices_;
  client::Informer& destinationRules_;
};

// The Istio half: sets the weights of `stableSubset` and `canarySubset` in the named http
// routes of a VirtualService (all of them when `routes` is empty), and the hash label of the
// two subsets in a DestinationRule. Pure, for tests: returns whether anything changed.
bool setVirtualServiceWeights(Json& vs, const std::vector<std::string>& routes,
                              const std::string& stableSubset, const std::string& canarySubset,
                              int canaryWeight);
bool setDestinationRuleHashes(Json& dr, const std::string& stableSubset,
                              const std::string& canarySubset, const std::string& stableHash,
                              const std::string& canaryHash);

inline constexpr const char* kRolloutHashLabel = "rollouts-pod-template-hash";

}  // namespace podium::controllers
