#pragma once

// Helpers the controllers share: owner references, pod state, template hashes and
// int-or-percent values, all with Kubernetes' rules.

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "podium/client/informer_factory.h"
#include "podium/client/workqueue.h"
#include "podium/common/json.h"

namespace podium::controllers {

using client::ObjectPtr;

// The value at a path of object keys, or a null value (never throws, never inserts).
using json::at;

// A controller owner reference to `owner` ({apiVersion, kind, name, uid, controller,
// blockOwnerDeletion}).
Json controllerRef(const Json& owner);
// The owner reference with controller=true, or nullptr.
const Json* controllerOf(const Json& obj);
std::string uidOf(const Json& obj);
std::string nameOf(const Json& obj);
std::string namespaceOf(const Json& obj);
bool isDeleting(const Json& obj);

// Pod state as the workload controllers see it.
bool isPodActive(const Json& pod);  // not Succeeded/Failed and not being deleted
bool isPodReady(const Json& pod);
// Ready for at least minReadySeconds at `now`.
bool isPodAvailable(const Json& pod, int64_t minReadySeconds,
                    std::chrono::system_clock::time_point now);
// Seconds until a ready pod becomes available (0 if it is, or if it is not ready).
int64_t secondsUntilAvailable(const Json& pod, int64_t minReadySeconds,
                              std::chrono::system_clock::time_point now);

// The pod-template-hash of a template (FNV-32a over its canonical JSON and the collision
// count, spelled with Kubernetes' "safe" alphabet).
std::string templateHash(const Json& podTemplate, int64_t collisionCount);
// Template equality ignoring the pod-template-hash label (what makes rollback reuse an old
// ReplicaSet).
bool equalIgnoringHash(const Json& a, const Json& b);

// An IntOrString ("25%" or 3) resolved against `total`.
int64_t resolveIntOrPercent(const Json& value, int64_t total, bool roundUp, int64_t dflt);

// Sets or replaces a condition in a conditions array by type; keeps lastTransitionTime when the
// status did not change. Returns true if anything changed.
bool setCondition(Json& conditions, const Json& condition, const std::string& now);
const Json* findCondition(const Json& obj, const std::string& type);

// Runs `workers` threads that take keys from a work queue and call `sync`; failed syncs are
// retried with back-off, successful ones forget their back-off.
class QueueWorkers {
 public:
  using Sync = std::function<bool(const std::string& key)>;  // false = retry later
  QueueWorkers(std::string name, Sync sync, int workers = 1);
  ~QueueWorkers();
  client::WorkQueue& queue() { return queue_; }
  void start();
  void stop();

 private:
  std::string name_;
  Sync sync_;
  int workers_;
  client::WorkQueue queue_;
  std::vector<std::thread> threads_;
};

}  // namespace podium::controllers
