#pragma once

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Kubernetes' PersistentVolume controller (binder) with its claim and volume protection:
// - a claim without storageClassName gets the default class (the one annotated
//   is-default-class), as Kubernetes does retroactively since 1.28;
// - an unbound claim is bound to the smallest Available volume that fits it (class, access
//   modes, mode, capacity, selector; for a WaitForFirstConsumer class only once the scheduler
//   chose its node, and only to a volume that node can reach); with none, a class with a
//   provisioner is asked for one (the storage-provisioner annotation; the local-path
//   provisioner runs in the agent of the chosen node);
// - binding writes the volume's claimRef first, then the claim's volumeName, then both
//   statuses (Bound, with the volume's capacity and access modes on the claim);
// - a volume whose claim is gone is Released; Retain keeps it so, Delete leaves it to its
//   provisioner (and fails one no provisioner made), a bound claim whose volume is gone is Lost;
// - a deleted claim keeps its pvc-protection finalizer while an active pod uses it, and a
//   deleted volume its pv-protection finalizer while it is Bound.
// Keys are "claim:<ns>/<name>" and "volume:<name>".
class VolumeController : public client::Controller {
 public:
  VolumeController(client::InformerFactory& informers, client::EventRecorder& events,
                   int workers = 1);
  ~VolumeController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  SyncResult syncClaim(const std::string& ns, const std::string& name);
  SyncResult syncVolume(const std::string& name);
  SyncResult bind(const Json& pvc, const Json& pv);
  SyncResult dropFinalizer(const client::Resource& r, const Json& obj, const char* finalizer);
  SyncResult setPhase(const client::Resource& r, const Json& obj, Json status);
  void queueClaim(const Json& pvc);
  void queueVolume(const Json& pv);
  std::string defaultClass();

  client::EventRecorder& events_;
  client::Informer& claims_;
  client::Informer& volumes_;
  client::Informer& classes_;
  client::Informer& pods_;
  client::Informer& nodes_;
};

}  // namespace podium::controllers
