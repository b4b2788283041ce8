#include "request_info.h"

#include "podium/common/strings.h"

namespace podium::api {

RequestInfo parseRequestInfo(const std::string& method, const std::string& path,
                             const std::string& watchParam) {
  RequestInfo info;
  std::vector<std::string> parts;
  for (auto& p : strings::split(path, '/'))
    if (!p.empty()) parts.push_back(p);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.apiPrefix = parts[0];
  size_t i = 1;
  if (info.apiPrefix == "apis") {
    if (parts.size() < 2) return info;
    info.group = parts[i++];
  }
  if (i >= parts.size()) return info;
  info.version = parts[i++];
  if (i >= parts.size()) return info;  // discovery of a group version
  info.isResourceRequest = true;
  std::vector<std::string> cur(parts.begin() + static_cast<long>(i), parts.end());
  bool legacyWatch = false;
  if (!cur.empty() && cur[0] == "watch") {
    legacyWatch = true;
    cur.erase(cur.begin());
    if (cur.empty()) {
      info.isResourceRequest = false;
      return info;
    }
  }
  if (cur[0] == "namespaces" && cur.size() > 1) {
    info.namespace_ = cur[1];
    if (cur.size() > 2 && cur[2] != "status" && cur[2] != "finalize")
      cur.erase(cur.begin(), cur.begin() + 2);
  }
  info.parts = cur;
  info.resource = cur[0];
  if (cur.size() > 1) info.name = cur[1];
  if (cur.size() > 2) info.subresource = cur[2];
  if (info.resource == "namespaces") info.namespace_.clear();
  if (cur.size() > 3 && info.subresource != "proxy") {
    info.isResourceRequest = false;  // deeper paths are not part of the API (but a proxy's)
    return info;
  }
  bool watch = legacyWatch || strings::parseBool(watchParam).value_or(false);
  if (method == "GET" || method == "HEAD") {
    if (watch)
      info.verb = "watch";
    else
      info.verb = info.name.empty() ? "list" : "get";
  } else if (method == "POST") {
    info.verb = "create";
  } else if (method == "PUT") {
    info.verb = "update";
  } else if (method == "PATCH") {
    info.verb = "patch";
  } else if (method == "DELETE") {
    info.verb = info.name.empty() ? "deletecollection" : "delete";
  } else {
    info.verb = strings::toLower(method);
  }
  return info;
}

}  // namespace podium::api
