#pragma once

// The node half of the built-in `local-path` storage class (the behaviour of Rancher's
// local-path-provisioner, which k3s ships): for a claim whose first pod the scheduler placed on
// this node (selected-node annotation) and which the volume binder handed to
// podium.dev/local-path, it makes the directory DATA/storage/pvc-<uid>_<ns>_<name> and a
// PersistentVolume for it (hostPath, node affinity to this node, the class's reclaim policy,
// claimRef to the claim); the binder then binds them. A Released volume of this node with
// reclaim policy Delete has its directory removed and is deleted. Keys: "claim:<ns>/<name>",
// "volume:<name>".

#include <memory>
#include <string>

#include "podium/client/controller.h"

namespace podium::node {

class LocalVolumes : public client::Controller {
 public:
  LocalVolumes(client::Client& client, std::string nodeName, std::string root,
               Clock& clock = realClock());
  ~LocalVolumes() override;
  // Starts the informers and workers; stop() (the base's) then the informers on destruction.
  void run();

 protected:
  client::SyncResult sync(const std::string& key) override;

 private:
  client::SyncResult provision(const Json& claim);
  client::SyncResult reclaim(const Json& volume);

  std::string node_, root_;
  client::Informer claims_;
  client::Informer volumes_;
};

}  // namespace podium::node
