#pragma once

// An informer: a local cache of one resource kept current by list-then-watch (relisting when
// the watch ends or its revision expires), with event handlers for controllers. Handlers run
// on the informer's thread, in order; they should only enqueue work.

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "podium/client/client.h"

namespace podium::client {

struct EventHandlers {
  std::function<void(const ObjectPtr&)> onAdd;
  std::function<void(const ObjectPtr& oldObj, const ObjectPtr& newObj)> onUpdate;
  std::function<void(const ObjectPtr&)> onDelete;
};

class Informer {
 public:
  // `ns` "" watches every namespace. `resync` > 0 re-delivers every cached object as an update
  // that often, so time-based conditions are re-evaluated.
  Informer(Client& client, Resource resource, std::string ns = "", ListOptions options = {},
           std::chrono::milliseconds resync = std::chrono::milliseconds(0));
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void addHandlers(EventHandlers handlers);  // before start()
  void start();
  void stop();
  // Waits until the first list has been delivered.
  bool waitForSync(std::chrono::milliseconds timeout);
  bool synced() const { return synced_; }

  ObjectPtr get(const std::string& ns, const std::string& name) const;
  // Cached objects in `ns` ("" = all), optionally filtered.
  std::vector<ObjectPtr> list(const std::string& ns = "",
                              const std::function<bool(const Json&)>& filter = nullptr) const;

  const Resource& resource() const { return resource_; }

  // "namespace/name" (or "name" for cluster-scoped objects): the key work queues use.
  static std::string keyOf(const Json& obj);
  static std::pair<std::string, std::string> splitKey(const std::string& key);

 private:
  void run();
  bool listAndReplace(std::string* resourceVersion);
  void apply(const Event& e);

  Client& client_;
  const Resource resource_;
  const std::string ns_;
  const ListOptions options_;
  const std::chrono::milliseconds resync_;
  std::vector<EventHandlers> handlers_;
  mutable std::mutex mu_;  // guards cache_
  std::map<std::string, ObjectPtr> cache_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  std::mutex watchMu_;  // guards watch_
  Watch* watch_ = nullptr;
  std::thread thread_;
};

}  // namespace podium::client
