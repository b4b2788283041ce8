#pragma once

// Reading objects the way every part of Podium that acts on the cluster needs to: names, owner
// references, deletion, pod state and conditions, all with Kubernetes' rules. Pure functions on
// unstructured objects; they never throw on odd content and never insert.

#include <chrono>
#include <string>

#include "podium/common/json.h"

namespace podium::client {

// The value at a path of object keys, or a null value.
using json::at;

std::string uidOf(const Json& obj);
std::string nameOf(const Json& obj);
std::string namespaceOf(const Json& obj);
std::string resourceVersionOf(const Json& obj);
bool isDeleting(const Json& obj);  // has a deletionTimestamp

// A controller owner reference to `owner` ({apiVersion, kind, name, uid, controller: true,
// blockOwnerDeletion: true}).
Json controllerRef(const Json& owner);
// The owner reference with controller=true, or nullptr.
const Json* controllerOf(const Json& obj);
// Whether `obj`'s controller is of `kind` (and then its name in *name).
bool controlledBy(const Json& obj, const std::string& kind, std::string* name = nullptr);

// Pod state as controllers and the scheduler see it.
bool isPodActive(const Json& pod);  // not Succeeded/Failed and not being deleted
bool isPodReady(const Json& pod);
// Ready for at least minReadySeconds at `now`.
bool isPodAvailable(const Json& pod, int64_t minReadySeconds,
                    std::chrono::system_clock::time_point now);
// Seconds until a ready pod becomes available (0 if it is, or if it is not ready).
int64_t secondsUntilAvailable(const Json& pod, int64_t minReadySeconds,
                              std::chrono::system_clock::time_point now);

// Whether a pod's tolerations tolerate a node's taint (key, value and effect, operators Equal
// and Exists; an empty key with Exists tolerates everything).
bool tolerates(const Json& tolerations, const Json& taint);
// The first of a node's NoSchedule/NoExecute taints that `tolerations` do not tolerate, or
// nullptr: what keeps a pod off the node.
const Json* untoleratedTaint(const Json& tolerations, const Json& node);
// Whether a node's labels carry every label of a pod's nodeSelector (an absent selector matches).
bool matchesNodeSelector(const Json& nodeSelector, const Json& node);
// Whether a node matches a core/v1 NodeSelector ({nodeSelectorTerms: [...]}: a node affinity's
// required terms, a volume's node affinity): any term matches when all of its matchExpressions
// (In, NotIn, Exists, DoesNotExist, Gt, Lt on labels) and matchFields (metadata.name) do. A null
// selector matches every node; one without terms matches none.
bool matchesNodeSelectorTerms(const Json& selector, const Json& node);
// Both of what keeps a pod to nodes: its nodeSelector and its required node affinity.
bool podFitsNode(const Json& podSpec, const Json& node);

// The condition of `type` in obj.status.conditions, or nullptr.
const Json* findCondition(const Json& obj, const std::string& type);
// Sets or replaces a condition in a conditions array by type; keeps lastTransitionTime when the
// status did not change (and lastUpdateTime when nothing did). Returns true if anything changed.
bool setCondition(Json& conditions, const Json& condition, const std::string& now);

}  // namespace podium::client
