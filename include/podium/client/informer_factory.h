#pragma once

// One informer per resource, shared by every controller in a process (client-go's
// SharedInformerFactory): controllers register their handlers, then all start together.

#include <map>
#include <memory>
#include <mutex>

#include "podium/client/informer.h"

namespace podium::client {

class InformerFactory {
 public:
  explicit InformerFactory(Client& client,
                           std::chrono::milliseconds resync = std::chrono::seconds(30))
      : client_(client), resync_(resync) {}
  ~InformerFactory() { stop(); }

  // The shared informer for a resource (all namespaces). Add handlers before start().
  Informer& informer(const Resource& r);
  void start();
  bool waitForSync(std::chrono::milliseconds timeout);
  void stop();
  Client& client() { return client_; }

 private:
  Client& client_;
  std::chrono::milliseconds resync_;
  std::mutex mu_;  // guards informers_, started_
  std::map<std::string, std::unique_ptr<Informer>> informers_;
  bool started_ = false;
};

}  // namespace podium::client
