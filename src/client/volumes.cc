#include "podium/client/volumes.h"

#include <algorithm>

#include "podium/api/quantity.h"
#include "podium/api/selectors.h"
#include "podium/client/objects.h"

namespace podium::client::volumes {

std::string claimClass(const Json& pvc) {
  const Json& c = at(pvc, {"spec", "storageClassName"});
  return c.is_string() ? c.get<std::string>() : "";
}

int64_t storageOf(const Json& obj, std::initializer_list<std::string_view> path) {
  return api::value(at(obj, path));
}

bool volumeFitsClaim(const Json& pv, const Json& pvc) {
  const Json& ref = at(pv, {"spec", "claimRef"});
  if (ref.is_object() &&
      (json::str(ref, "name") != nameOf(pvc) || json::str(ref, "namespace") != namespaceOf(pvc) ||
       (!json::str(ref, "uid").empty() && json::str(ref, "uid") != uidOf(pvc))))
    return false;
  if (json::getString(pv, {"spec", "storageClassName"}) != claimClass(pvc)) return false;
  if (json::getString(pv, {"spec", "volumeMode"}) != json::getString(pvc, {"spec", "volumeMode"}))
    return false;
  const Json& have = at(pv, {"spec", "accessModes"});
  const Json& want = at(pvc, {"spec", "accessModes"});
  if (want.is_array())
    for (const auto& m : want)
      if (!have.is_array() || std::find(have.begin(), have.end(), m) == have.end()) return false;
  if (storageOf(pv, {"spec", "capacity", "storage"}) <
      storageOf(pvc, {"spec", "resources", "requests", "storage"}))
    return false;
  const Json& selector = at(pvc, {"spec", "selector"});
  if (selector.is_object()) {
    auto sel = api::LabelSelector::fromObject(selector);
    if (!sel || !sel->matches(at(pv, {"metadata", "labels"}))) return false;
  }
  return true;
}

bool volumeAdmitsNode(const Json& pv, const Json& node) {
  const Json& required = at(pv, {"spec", "nodeAffinity", "required"});
  return required.is_null() || matchesNodeSelectorTerms(required, node);
}

std::vector<std::string> claimsOf(const Json& pod) {
  std::vector<std::string> out;
  const Json& vols = at(pod, {"spec", "volumes"});
  if (!vols.is_array()) return out;
  for (const auto& v : vols) {
    std::string c = json::getString(v, {"persistentVolumeClaim", "claimName"});
    if (!c.empty()) out.push_back(c);
  }
  return out;
}

}  // namespace podium::client::volumes
