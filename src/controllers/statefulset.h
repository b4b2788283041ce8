#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Kubernetes' StatefulSet controller. Pods have stable names <set>-<ordinal> (hostname the pod's
// name, subdomain the set's serviceName, so <pod>.<service> resolves through the headless
// Service) and stable claims: each volumeClaimTemplate makes <template>-<pod> before the pod,
// and the pod mounts it. OrderedReady (the default) creates ordinal i only when 0..i-1 are
// Running and Ready and removes the highest ordinal first, one at a time; Parallel does both at
// once. Templates are kept as ControllerRevisions <set>-<hash>: RollingUpdate replaces pods of
// ordinal >= partition that run an older revision, highest first, one at a time once the others
// are Ready (pods below the partition are recreated at the current revision); OnDelete replaces a
// pod only when it is deleted. persistentVolumeClaimRetentionPolicy: whenDeleted=Delete makes the
// set an owner of its claims, whenScaled=Delete the condemned pod an owner of its claims (the
// garbage collector deletes them after). Status: replicas, ready, available, current and updated
// counts, revisions, observedGeneration, as `kubectl get sts` and `kubectl rollout status` read.
class StatefulSetController : public client::Controller {
 public:
  StatefulSetController(client::InformerFactory& informers, client::EventRecorder& events,
                        int workers = 1);
  ~StatefulSetController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  struct Revisions;
  Expected<Revisions, std::string> revisions(const Json& set);
  SyncResult ensureClaims(const Json& set, const Json& pod, bool* waiting);
  SyncResult createPod(const std::string& key, const Json& set, int64_t ordinal,
                       const Revisions& revs);
  SyncResult deletePod(const std::string& key, const Json& set, const Json& pod);
  SyncResult releaseClaims(const Json& set, const Json& pod);

  client::EventRecorder& events_;
  client::Informer& sets_;
  client::Informer& pods_;
  client::Informer& claims_;
  client::Informer& revisions_;
  Expectations expectations_;
};

}  // namespace podium::controllers
