#include "diff.h"

#include "podium/common/strings.h"

namespace podium::gitops {

// Whether `live` has every field `want` sets, with the same value. Fields the server added
// (defaults, status, metadata it manages) are not differences: only what git says is compared,
// so a freshly synced app is never OutOfSync, and a `kubectl scale` or edit of a field git sets is.
bool contains(const Json& live, const Json& want) {
  if (want.is_object()) {
    if (!live.is_object()) return false;
    for (const auto& [k, v] : want.items()) {
      auto it = live.find(k);
      if (it == live.end()) {
        if (v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty())) continue;
        return false;
      }
      if (!contains(*it, v)) return false;
    }
    return true;
  }
  if (want.is_array()) {
    if (!live.is_array() || live.size() != want.size()) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (!contains(live[i], want[i])) return false;
    return true;
  }
  if (want.is_number() && live.is_number()) return want.get<double>() == live.get<double>();
  return live == want;
}

// What of a desired object is compared: everything but status and the metadata the server owns.
Json comparable(const Json& obj) {
  Json out = obj;
  out.erase("status");
  Json md = Json::object();
  for (const char* k : {"labels", "annotations"})
    if (obj.contains("metadata") && obj["metadata"].contains(k)) md[k] = obj["metadata"][k];
  out["metadata"] = md;
  out.erase("apiVersion");
  if (json::str(obj, "kind") == "Secret" && out.contains("stringData")) {
    for (const auto& [k, v] : out["stringData"].items())
      if (v.is_string()) out["data"][k] = strings::base64Encode(v.get<std::string>());
    out.erase("stringData");
  }
  return out;
}

}  // namespace podium::gitops
