#pragma once

// containerd as the node's container runtime, run and configured by the agent: state under the
// data directory, CRI with runc, the CNI bridge (host-local IPAM from the node's pod CIDR,
// portmap for hostPorts, routes only to the pod and service ranges — no default route off the
// machine), restrict_oom_score_adj (these machines lack CAP_SYS_RESOURCE), the cluster registry
// as docker.io's only host, and Podium's own pause image.

#include <memory>
#include <string>

#include "podium/common/expected.h"
#include "podium/node/process.h"

namespace podium::node {

struct ContainerdOptions {
  std::string dataDir;       // DATA/containerd/...
  std::string registry;      // "127.0.0.1:5000"
  std::string sandboxImage;  // "127.0.0.1:5000/podium/pause:3.10"
  std::string podCidr;       // this node's pod range, "10.42.0.0/24"
  std::string clusterCidr = "10.42.0.0/16";
  std::string serviceCidr = "10.43.0.0/16";
  std::string bridge = "podium0";
  std::string cniBinDir = "/usr/lib/cni";
};

class Containerd {
 public:
  static Expected<std::unique_ptr<Containerd>, std::string> start(const ContainerdOptions& options);
  ~Containerd();
  std::string socket() const { return socket_; }
  void stop();

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string socket_;
};

}  // namespace podium::node
