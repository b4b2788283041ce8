#pragma once

// The scheduler's decisions as pure functions (kube-scheduler's filter and score plugins, the
// subset Podium runs): which nodes can take a pod — ready, schedulable, tolerated taints,
// nodeSelector and required node affinity, volume binding, resource requests against
// allocatable, pod count — and which of them is best:
// the least loaded, spreading the pods of one owner.

#include <map>
#include <string>
#include <vector>

#include "podium/client/client.h"
#include "podium/common/json.h"

namespace podium::scheduler {

struct Requests {
  int64_t milliCpu = 0;
  int64_t memory = 0;
};

// A pod's requests: the sum over its containers, or the largest init container's if more.
Requests requestsOf(const Json& pod);
// Whether the node's Ready condition is True.
bool nodeReady(const Json& node);

// The persistent volume claims of a pod, as the volume binding filter needs them.
struct ClaimInfo {
  client::ObjectPtr claim;
  client::ObjectPtr volume;    // the volume it is bound to; null while unbound
  bool provisionable = false;  // unbound, and its class can make a volume on any node
};
struct PodVolumes {
  std::vector<ClaimInfo> claims;
  std::vector<client::ObjectPtr> freeVolumes;  // volumes an unbound claim could still take
  std::string problem;  // why no node can take the pod ("persistentvolumeclaim "x" not found")
};

struct Decision {
  std::string node;                    // "" when no node fits
  std::map<std::string, int> reasons;  // why nodes were filtered out, and how many
};

// Filters `nodes` for `pod` and picks the best of those that fit. `podsByNode` holds the pods
// each node runs (and those already assumed onto it). Volume binding: a bound claim's volume
// must admit the node; an unbound (WaitForFirstConsumer) claim needs a free volume that fits it
// there, or a class that provisions.
Decision choose(const Json& pod, const std::vector<client::ObjectPtr>& nodes,
                const std::map<std::string, std::vector<client::ObjectPtr>>& podsByNode,
                const PodVolumes& volumes = {});

// kube-scheduler's FailedScheduling message ("0/3 nodes are available: 1 Insufficient cpu, ...").
std::string unschedulableMessage(size_t nodeCount, const std::map<std::string, int>& reasons);

}  // namespace podium::scheduler
