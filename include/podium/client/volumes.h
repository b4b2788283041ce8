#pragma once

// Persistent volumes as the volume controller, the scheduler and the node agents see them: the
// annotations that carry a claim from pending to bound (Kubernetes' names), which volume can
// serve which claim, and which claims a pod uses.

#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::client::volumes {

// On a claim: the node the scheduler chose for its first pod (WaitForFirstConsumer).
inline constexpr const char* kSelectedNode = "volume.kubernetes.io/selected-node";
// On a claim: the provisioner asked to make a volume for it.
inline constexpr const char* kStorageProvisioner = "volume.kubernetes.io/storage-provisioner";
inline constexpr const char* kStorageProvisionerBeta =
    "volume.beta.kubernetes.io/storage-provisioner";
// On a volume: the provisioner that made it (and deletes it).
inline constexpr const char* kProvisionedBy = "pv.kubernetes.io/provisioned-by";
// On a class: the class claims without storageClassName get.
inline constexpr const char* kDefaultClass = "storageclass.kubernetes.io/is-default-class";
// The provisioner of the built-in `local-path` class: a directory on the claim's node, made
// and deleted by that node's agent.
inline constexpr const char* kLocalPathProvisioner = "podium.dev/local-path";

// A claim's class name: "" for none (also when explicitly ""), as binding compares them.
std::string claimClass(const Json& pvc);
// Whether `pv` can serve `pvc` by its spec alone: class, access modes (a superset), volume mode,
// capacity at least the request, the claim's selector, and a claimRef that is empty or names
// this claim. Phase and node affinity are the caller's to check.
bool volumeFitsClaim(const Json& pv, const Json& pvc);
// Whether `pv`'s node affinity admits `node` (no affinity admits every node).
bool volumeAdmitsNode(const Json& pv, const Json& node);
// The claim names of a pod's persistentVolumeClaim volumes.
std::vector<std::string> claimsOf(const Json& pod);
// Bytes of storage a claim requests or a volume holds ("" path: 0).
int64_t storageOf(const Json& obj, std::initializer_list<std::string_view> path);

}  // namespace podium::client::volumes
