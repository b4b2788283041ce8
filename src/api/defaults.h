#pragma once

// Server-side defaulting of built-in kinds: the fields kube-apiserver fills in (SetDefaults_*
// functions and the defaulting admission plug-ins), so objects read back as they do from
// Kubernetes.

#include "podium/api/resources.h"
#include "podium/common/json.h"

namespace podium::api {

void applyDefaults(const ResourceInfo& resource, Json& obj);

// Pod template and pod spec defaulting, also used by controllers that compare templates.
void defaultPodSpec(Json& spec);

}  // namespace podium::api
