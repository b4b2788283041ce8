#pragma once

// One informer per resource, shared by every controller in a process (client-go's
// SharedInformerFactory): controllers register their handlers, then all start together.
// Informers asked for after start() (custom resources found later) start at the next start().

#include <map>
#include <memory>
#include <mutex>

#include "podium/client/informer.h"

namespace podium::client {

class InformerFactory {
 public:
  explicit InformerFactory(Client& client,
                           std::chrono::milliseconds resync = std::chrono::seconds(30),
                           Clock& clock = realClock())
      : client_(client), resync_(resync), clock_(clock) {}
  ~InformerFactory() { stop(); }

  // The shared informer for a resource (all namespaces). Add handlers before it starts.
  Informer& informer(const Resource& r);
  // Starts every informer not started yet.
  void start();
  bool waitForSync(std::chrono::milliseconds timeout);
  void stop();
  Client& client() { return client_; }
  Clock& clock() { return clock_; }
  std::vector<Informer*> informers();

 private:
  Client& client_;
  std::chrono::milliseconds resync_;
  Clock& clock_;
  std::mutex mu_;  // guards informers_
  std::map<std::string, std::unique_ptr<Informer>> informers_;
};

}  // namespace podium::client
