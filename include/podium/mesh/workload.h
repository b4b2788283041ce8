#pragma once

// Which pods are in the mesh, decided alike by the node agent (which captures their traffic)
// and by every node proxy (which reaches them over mesh TLS): every pod on the pod network,
// unless it opts out as Istio lets it (label istio.io/dataplane-mode=none, or annotation
// sidecar.istio.io/inject="false").

#include <string>

#include "podium/common/json.h"

namespace podium::mesh {

// The address the node agent's probes come from: pods let it through without mesh TLS (as
// Istio's ambient mode lets its node's probes through from 169.254.7.127).
inline constexpr const char* kProbeSource = "169.254.7.127";

inline bool inMesh(const Json& pod) {
  if (json::boolean(json::at(pod, {"spec"}), "hostNetwork")) return false;
  if (json::getString(pod, {"metadata", "labels", "istio.io/dataplane-mode"}) == "none")
    return false;
  return json::getString(pod, {"metadata", "annotations", "sidecar.istio.io/inject"}) != "false";
}

inline std::string serviceAccountOf(const Json& pod) {
  std::string sa = json::getString(pod, {"spec", "serviceAccountName"});
  return sa.empty() ? "default" : sa;
}

}  // namespace podium::mesh
