#pragma once

// Built-in resources served in a version other than the one they are stored in: autoscaling/v1
// HorizontalPodAutoscalers, stored as autoscaling/v2. Requests for such a version are carried
// out on the stored version (so defaulting, validation, strategies and watches are the stored
// version's) and their objects converted on the way in and out; what the older version cannot
// say travels in the annotations Kubernetes uses for it.

#include "podium/api/resources.h"
#include "podium/api/storage.h"

namespace podium::api {

struct VersionConversion {
  Json (*fromStorage)(const Json& stored);  // the stored object in the served version
  Json (*toStorage)(const Json& served);    // an object of the served version as stored
};

// autoscaling/v1 <-> v2: targetCPUUtilizationPercentage is the v2 cpu Utilization metric;
// other metrics, behavior, conditions and other current metrics ride in
// autoscaling.alpha.kubernetes.io/{metrics,behavior,conditions,current-metrics}.
extern const VersionConversion kHpaV1Conversion;

// `inner` with every request for a converted version carried out on its stored version.
StoragePtr withConversions(StoragePtr inner);

}  // namespace podium::api
