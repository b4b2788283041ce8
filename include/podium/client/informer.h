#pragma once

// An informer: a local cache of one resource kept current by list-then-watch, with event
// handlers for controllers (client-go's shared informer). When a list or watch fails, or a watch
// ends, it lists again after a back-off with jitter (client-go's reflector: 800 ms doubling to
// 30 s, reset once a watch has run for a while). Handlers run on the informer's thread, in
// order; they should only enqueue work. Reads (get, list) are thread-safe.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "podium/client/client.h"
#include "podium/common/backoff.h"
#include "podium/common/random.h"
#include "podium/common/time.h"

namespace podium::client {

struct EventHandlers {
  std::function<void(const ObjectPtr&)> onAdd;
  std::function<void(const ObjectPtr& oldObj, const ObjectPtr& newObj)> onUpdate;
  std::function<void(const ObjectPtr&)> onDelete;
};

struct InformerOptions {
  std::string ns;    // "" watches every namespace
  ListOptions list;  // label and field selectors
  // > 0: every cached object is delivered again as an update this often, so time-based
  // conditions are looked at again.
  std::chrono::milliseconds resync{0};
  BackoffPolicy backoff;
  Clock* clock = &realClock();
  Random* random = &realRandom();
  // Called when a list or watch fails, with the error and the delay before the next list
  // (client-go's WatchErrorHandler).
  std::function<void(const api::ApiError&, std::chrono::milliseconds)> onError;
};

class Informer {
 public:
  Informer(Client& client, Resource resource, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void addHandlers(EventHandlers handlers);  // before start()
  void start();                              // idempotent
  void stop();
  // Waits until the first list has been delivered.
  bool waitForSync(std::chrono::milliseconds timeout);
  bool synced() const { return synced_; }
  bool started() const { return thread_.joinable(); }
  // The resourceVersion of the newest list or event delivered (client-go's
  // LastSyncResourceVersion): the cache is at least that current.
  std::string lastResourceVersion() const;

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
  Expected<std::string, api::ApiError> listAndReplace();
  // Watches from `rv` until the watch ends; how long it ran.
  std::chrono::steady_clock::duration watchFrom(const std::string& rv);
  void apply(const Event& e);
  void deliverResync();
  void failed(const api::ApiError& error);

  Client& client_;
  const Resource resource_;
  const InformerOptions options_;
  Backoff backoff_;
  std::vector<EventHandlers> handlers_;
  mutable std::mutex mu_;  // guards cache_, lastRv_
  std::map<std::string, ObjectPtr> cache_;
  std::string lastRv_;
  std::chrono::steady_clock::time_point lastResync_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  std::mutex watchMu_;  // guards watch_, and the back-off wait
  std::condition_variable stopCv_;
  Watch* watch_ = nullptr;
  std::thread thread_;
};

}  // namespace podium::client
