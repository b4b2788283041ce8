#pragma once

// The one way controllers, the scheduler, GitOps and node agents see the cluster (client-go's
// shape): typed-by-resource get/list/watch/create/update/patch/delete on unstructured objects.
// In the server it calls the API's storage directly (local_client.h); elsewhere it speaks HTTPS
// (remote_client.h). Either way the same requests go through the same validation, defaulting
// and admission, so a part behaves the same in one process and across machines.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podium/api/status.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::client {

using ObjectPtr = std::shared_ptr<const Json>;

// A resource by group, version and plural name ("", "v1", "pods").
struct Resource {
  std::string group;
  std::string version;
  std::string plural;
  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
};

namespace resources {
inline const Resource kPods{"", "v1", "pods"};
inline const Resource kNodes{"", "v1", "nodes"};
inline const Resource kNamespaces{"", "v1", "namespaces"};
inline const Resource kEvents{"", "v1", "events"};
inline const Resource kServices{"", "v1", "services"};
inline const Resource kEndpoints{"", "v1", "endpoints"};
inline const Resource kConfigMaps{"", "v1", "configmaps"};
inline const Resource kSecrets{"", "v1", "secrets"};
inline const Resource kServiceAccounts{"", "v1", "serviceaccounts"};
inline const Resource kPersistentVolumes{"", "v1", "persistentvolumes"};
inline const Resource kReplicationControllers{"", "v1", "replicationcontrollers"};
inline const Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims"};
inline const Resource kStorageClasses{"storage.k8s.io", "v1", "storageclasses"};
inline const Resource kStatefulSets{"apps", "v1", "statefulsets"};
inline const Resource kControllerRevisions{"apps", "v1", "controllerrevisions"};
inline const Resource kDeployments{"apps", "v1", "deployments"};
inline const Resource kReplicaSets{"apps", "v1", "replicasets"};
inline const Resource kDaemonSets{"apps", "v1", "daemonsets"};
inline const Resource kJobs{"batch", "v1", "jobs"};
inline const Resource kCronJobs{"batch", "v1", "cronjobs"};
inline const Resource kHorizontalPodAutoscalers{"autoscaling", "v2", "horizontalpodautoscalers"};
inline const Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets"};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases"};
inline const Resource kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices"};
inline const Resource kIngresses{"networking.k8s.io", "v1", "ingresses"};
inline const Resource kVirtualServices{"networking.istio.io", "v1", "virtualservices"};
inline const Resource kDestinationRules{"networking.istio.io", "v1", "destinationrules"};
inline const Resource kGateways{"networking.istio.io", "v1", "gateways"};
inline const Resource kAuthorizationPolicies{"security.istio.io", "v1", "authorizationpolicies"};
inline const Resource kPeerAuthentications{"security.istio.io", "v1", "peerauthentications"};
inline const Resource kTelemetries{"telemetry.istio.io", "v1", "telemetries"};
inline const Resource kRollouts{"argoproj.io", "v1alpha1", "rollouts"};
inline const Resource kAnalysisRuns{"argoproj.io", "v1alpha1", "analysisruns"};
inline const Resource kAnalysisTemplates{"argoproj.io", "v1alpha1", "analysistemplates"};
inline const Resource kClusterAnalysisTemplates{"argoproj.io", "v1alpha1",
                                                "clusteranalysistemplates"};
}  // namespace resources

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  std::string resourceVersion;
};

struct List {
  std::vector<ObjectPtr> items;
  std::string resourceVersion;
};

enum class EventType { Added, Modified, Deleted, Bookmark };

struct Event {
  EventType type;
  ObjectPtr object;
};

// A running watch. next() blocks until events arrive, the deadline passes or the watch ends.
class Watch {
 public:
  virtual ~Watch() = default;
  // Appends events to `out`. Returns false once the watch has ended (the caller relists).
  virtual bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) = 0;
  // Makes a blocked next() return (for shutdown).
  virtual void stop() = 0;
};
using WatchPtr = std::unique_ptr<Watch>;

struct DeleteOptions {
  std::string propagationPolicy;  // "" = the resource's default
  std::optional<int64_t> gracePeriodSeconds;
  std::string preconditionUid;
  std::string preconditionResourceVersion;
};

using Result = Expected<Json, api::ApiError>;

class Client {
 public:
  virtual ~Client() = default;

  virtual Result get(const Resource& r, const std::string& ns, const std::string& name) = 0;
  // get() as a shared, read-only object: in process no copy is made (the API server's cached
  // object is handed out); other clients wrap a fresh copy.
  virtual Expected<ObjectPtr, api::ApiError> getShared(const Resource& r, const std::string& ns,
                                                       const std::string& name) {
    auto obj = get(r, ns, name);
    if (!obj) return Unexpected(obj.error());
    return std::make_shared<const Json>(std::move(*obj));
  }
  virtual Expected<List, api::ApiError> list(const Resource& r, const std::string& ns,
                                             const ListOptions& options = {}) = 0;
  virtual Expected<WatchPtr, api::ApiError> watch(const Resource& r, const std::string& ns,
                                                  const ListOptions& options) = 0;
  virtual Result create(const Resource& r, const std::string& ns, const Json& obj) = 0;
  // PUT of the whole object (metadata.resourceVersion is the precondition). `subresource` is
  // "", "status" or "scale" (an autoscaling/v1 Scale).
  virtual Result update(const Resource& r, const std::string& ns, const Json& obj,
                        const std::string& subresource = "") = 0;
  // JSON merge patch. `subresource` is "", "status" or "scale".
  virtual Result patch(const Resource& r, const std::string& ns, const std::string& name,
                       const Json& mergePatch, const std::string& subresource = "") = 0;
  // Server-side apply as `fieldManager` (force takes fields from other managers). A dry run
  // stores nothing: Strict makes unknown or duplicate fields errors, Lenient drops them (the
  // answer is the object as it would be stored).
  enum class DryRun { No, Strict, Lenient };
  virtual Result apply(const Resource& r, const std::string& ns, const Json& config, bool force,
                       DryRun dryRun = DryRun::No) = 0;
  virtual Result remove(const Resource& r, const std::string& ns, const std::string& name,
                        const DeleteOptions& options = {}) = 0;
  // The pods/binding subresource: assigns a pod to a node.
  virtual Expected<void, api::ApiError> bind(const std::string& ns, const std::string& pod,
                                             const std::string& uid, const std::string& node) = 0;

  // The autoscaling/v1 Scale of an object whose resource has a scale subresource (Deployment,
  // ReplicaSet, StatefulSet, custom resources declaring one). Writes go through update/patch
  // with subresource "scale".
  virtual Result getScale(const Resource& r, const std::string& ns, const std::string& name) = 0;
  // A GET of an aggregated API's path with its query ("/apis/metrics.k8s.io/v1beta1/namespaces/
  // my-apps/pods?labelSelector=app%3Dweb"): the metrics APIs the autoscaler reads.
  virtual Result getRaw(const std::string& path) = 0;

  // serviceaccounts/certificate: a WorkloadCertificateRequest signed by the mesh CA.
  virtual Result requestCertificate(const std::string& ns, const std::string& serviceAccount,
                                    const Json& request) = 0;

  // Namespaced resources the server serves, for callers that must act on all of them (the
  // namespace controller, the garbage collector).
  virtual std::vector<Resource> namespacedResources() = 0;
  virtual std::vector<Resource> allResources() = 0;
  // The resource serving objects of `apiVersion`/`kind` (owner references name kinds).
  virtual std::optional<Resource> resourceFor(const std::string& apiVersion,
                                              const std::string& kind) = 0;
  // Whether objects of `r` live in namespaces.
  virtual bool namespaced(const Resource& r) = 0;
};
using ClientPtr = std::unique_ptr<Client>;

}  // namespace podium::client
