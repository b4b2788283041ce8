#pragma once

// Argo CD's health assessment of live objects (gitops-engine's built-in checks): Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Pod, Job, Service, Ingress, PersistentVolumeClaim. Other
// kinds have no health and do not count towards the application's.

#include <optional>
#include <string>

#include "podium/common/json.h"

namespace podium::gitops {

struct Health {
  std::string status;  // Healthy, Progressing, Degraded, Suspended, Missing, Unknown
  std::string message;
};

std::optional<Health> healthOf(const Json& liveObject);
// Argo CD's order from best to worst; an application is as healthy as its worst resource.
int healthRank(const std::string& status);

}  // namespace podium::gitops
