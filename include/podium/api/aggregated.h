#pragma once

// APIs served beside the stored resources, the way kube-aggregator fronts an APIService
// (metrics-server's metrics.k8s.io, prometheus-adapter's custom.metrics.k8s.io): the API server
// lists their group in discovery and hands every request under /apis/GROUP/VERSION/ to them,
// after authenticating it. They answer GETs only; nothing of theirs is stored.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/api/status.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api {

// One entry of the group version's APIResourceList. A name with a slash ("pods/cpu_usage") is
// a subresource of the resource before it, as prometheus-adapter lists its metrics.
struct AggregatedResource {
  std::string name;  // "pods"
  std::string kind;  // "PodMetrics"
  bool namespaced = true;
  std::vector<std::string> verbs = {"get", "list"};
};

// What a GET carried in its query.
struct AggregatedQuery {
  std::string labelSelector;
  std::string fieldSelector;
  std::string metricLabelSelector;  // custom.metrics.k8s.io
  int64_t limit = 0;                // 0: no limit given
};

// An answer passed on as its backend gave it.
struct ForwardedReply {
  int status = 0;
  std::string contentType;
  std::string body;
};

class AggregatedApi {
 public:
  virtual ~AggregatedApi() = default;
  // An API with a server of its own (an APIService's): every request under
  // /apis/GROUP/VERSION, its discovery document included, goes there as it came, and the answer
  // comes back as it was. nullopt: an API answered in process (get()).
  virtual std::optional<Expected<ForwardedReply, ApiError>> forward(const HttpRequest& request) {
    return std::nullopt;
  }
  virtual std::string group() const = 0;
  virtual std::string version() const = 0;
  // Read on every discovery request, so a list that changes (metric names) shows at once.
  virtual std::vector<AggregatedResource> resources() const = 0;
  // A GET of /apis/GROUP/VERSION/`path` ("namespaces/my-apps/pods/web-1"). Errors are the
  // Status the client gets (404 for unknown paths, 400 for bad selectors).
  virtual Expected<Json, ApiError> get(const std::string& path, const AggregatedQuery& query) = 0;
};
using AggregatedApiPtr = std::shared_ptr<AggregatedApi>;

// Splits "/apis/GROUP/VERSION/rest?query" into its parts (false if it is not of that shape).
struct AggregatedPath {
  std::string group, version, rest;
  AggregatedQuery query;
};
bool parseAggregatedPath(const std::string& target, AggregatedPath* out);

}  // namespace podium::api
