#pragma once

#include <map>
#include <mutex>

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Kubernetes' node lifecycle controller with its taint-based eviction: a node whose Lease in
// kube-node-lease has not been renewed for `gracePeriod` (as this controller has watched it)
// gets Ready=Unknown ("Kubelet stopped posting node status."), the taints
// node.kubernetes.io/unreachable NoSchedule and NoExecute, and its pods Ready=False (so
// endpoints drop them at once). A pod on a NoExecute-tainted node is deleted when its
// toleration runs out (at once without one; the API gives every pod 300 s by default), and its
// controller replaces it elsewhere. When the node renews again and reports Ready, the taints go.
class NodeLifecycleController : public client::Controller {
 public:
  NodeLifecycleController(client::InformerFactory& informers, client::EventRecorder& events,
                          std::chrono::milliseconds gracePeriod);
  ~NodeLifecycleController() override { stop(); }

  static constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";

 protected:
  SyncResult sync(const std::string& node) override;

 private:
  // How long the node's Lease has gone unrenewed, as watched from here.
  std::chrono::milliseconds silence(const std::string& node);
  SyncResult markUnknown(const Json& node);
  SyncResult setTaints(const Json& node, bool unreachable);
  SyncResult markPodsNotReady(const std::string& node);
  SyncResult evict(const Json& node);

  client::EventRecorder& events_;
  client::Informer& nodes_;
  client::Informer& leases_;
  client::Informer& pods_;
  std::chrono::milliseconds grace_;
  struct Observed {
    std::string renewTime;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mu_;  // guards observed_
  std::map<std::string, Observed> observed_;
};

}  // namespace podium::controllers
