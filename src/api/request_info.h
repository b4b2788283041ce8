#pragma once

// Turns a Kubernetes API path and method into what is being asked: discovery, or a verb on a
// resource (apiserver's RequestInfoFactory rules).

#include <string>
#include <vector>

namespace podium::api {

struct RequestInfo {
  bool isResourceRequest = false;
  std::string verb;       // get list watch create update patch delete deletecollection
  std::string apiPrefix;  // "api" or "apis"
  std::string group, version;
  std::string namespace_;
  std::string resource, subresource, name;
  std::vector<std::string> parts;  // path parts after /{api|apis}[/group]/version
};

// `method` is the HTTP method; `watchParam` the value of ?watch=.
RequestInfo parseRequestInfo(const std::string& method, const std::string& path,
                             const std::string& watchParam);

}  // namespace podium::api
