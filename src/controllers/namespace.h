#pragma once

#include "util.h"

namespace podium::controllers {

// Empties namespaces that are being deleted: deletes every namespaced object in them, waits
// until they are all gone (pods stop gracefully on their nodes), then finalizes the namespace
// (removes "kubernetes" from spec.finalizers), which lets the API server delete it.
class NamespaceController {
 public:
  explicit NamespaceController(client::InformerFactory& informers);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  client::Client& client_;
  client::Informer& namespaces_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
