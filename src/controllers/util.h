#pragma once

// What the workload controllers share beyond the client's object helpers: pod-template hashes
// and int-or-percent values, with Kubernetes' rules.

#include <optional>
#include <string>

#include "podium/client/controller.h"
#include "podium/client/informer_factory.h"
#include "podium/client/objects.h"
#include "podium/common/json.h"

namespace podium::controllers {

using client::at;
using client::controlledBy;
using client::controllerOf;
using client::controllerRef;
using client::findCondition;
using client::isDeleting;
using client::isPodActive;
using client::isPodAvailable;
using client::isPodReady;
using client::nameOf;
using client::namespaceOf;
using client::ObjectPtr;
using client::resourceVersionOf;
using client::secondsUntilAvailable;
using client::setCondition;
using client::SyncResult;
using client::uidOf;

// "Complete" or "Failed" for a finished Job (that condition True), "" while it runs.
std::string jobFinishedAs(const Json& job);

// The pod-template-hash of a template (FNV-32a over its canonical JSON and the collision
// count, spelled with Kubernetes' "safe" alphabet).
std::string templateHash(const Json& podTemplate, int64_t collisionCount);
// Template equality ignoring the pod-template-hash label (what makes rollback reuse an old
// ReplicaSet).
bool equalIgnoringHash(const Json& a, const Json& b);

// An IntOrString ("25%" or 3) resolved against `total`.
int64_t resolveIntOrPercent(const Json& value, int64_t total, bool roundUp, int64_t dflt);

// spec.replicas (1 when unset) and an integer status field (0 when unset) of a workload.
inline int64_t specReplicas(const Json& obj) {
  return json::integer(at(obj, {"spec"}), "replicas", 1);
}
inline int64_t statusInt(const Json& obj, const char* field) {
  return json::integer(at(obj, {"status"}), field, 0);
}

// An Argo Rollouts duration: an integer of seconds, or "30s", "5m", "1h"; nullopt when absent
// or malformed.
std::optional<int64_t> argoDurationSeconds(const Json& value);

// A pod object from a controller's pod template: generateName "<owner>-", the owner as its
// controller reference.
Json podFromTemplate(const Json& owner, const Json& podTemplate);

}  // namespace podium::controllers
