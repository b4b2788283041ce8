#pragma once

#include "util.h"

namespace podium::controllers {

// Empties namespaces that are being deleted: deletes every namespaced object in them, waits
// until they are all gone (pods stop gracefully on their nodes), then finalizes the namespace
// (removes "kubernetes" from spec.finalizers), which lets the API server delete it.
class NamespaceController : public client::Controller {
 public:
  explicit NamespaceController(client::InformerFactory& informers, int workers = 1);
  ~NamespaceController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::Informer& namespaces_;
};

}  // namespace podium::controllers
