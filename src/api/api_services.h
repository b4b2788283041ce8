#pragma once

// API aggregation (kube-aggregator): an APIService with spec.service routes every request under
// /apis/GROUP/VERSION — its discovery document included — to a ready endpoint of that Service
// over HTTPS (verified with spec.caBundle, or not with insecureSkipTLSVerify), and the group
// version shows in discovery with the resources the backend lists. An APIService takes its group
// version over from what the server would answer in process (a metrics-server installed by its
// manifests serves metrics.k8s.io), but not from stored resources (those are Local). Each
// APIService's Available condition is kept as Kubernetes' AvailableConditionController keeps it:
// ServiceNotFound, MissingEndpoints, FailedDiscoveryCheck, or Passed; the discovery document that
// check fetches is what discovery lists (requests never wait on a backend's discovery).

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "podium/api/cacher.h"
#include "podium/api/resources.h"
#include "podium/api/storage.h"

namespace podium::api {

class ForwardedApi;

class ApiServices {
 public:
  // Made before the cache starts (it listens to the cache's APIServices).
  ApiServices(Cacher& cacher, ResourceRegistry& registry);
  ~ApiServices();
  // Registers the stored APIServices and starts keeping their status through `storage`.
  void start(Storage& storage);
  // Stops the status loop; the cache may still call in until it is gone (keep this alive).
  void stop();

 private:
  void refresh();     // the registry's forwarded APIs from the stored APIServices
  void statusLoop();  // the Available conditions, every few seconds and on changes
  void checkAll();

  Cacher& cacher_;
  ResourceRegistry& registry_;
  Storage* storage_ = nullptr;
  std::mutex forwardedMu_;                                          // guards forwarded_
  std::map<std::string, std::shared_ptr<ForwardedApi>> forwarded_;  // by APIService name
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false, dirty_ = true;
  std::thread thread_;
};

}  // namespace podium::api
