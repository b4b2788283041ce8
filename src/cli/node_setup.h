#pragma once

// The node half of `podium server`: the image registry, Podium's pause image in it, and the node
// agent (which runs containerd) wired to the API server for logs, exec and port-forward.

#include <memory>
#include <string>

#include "podium/api/server.h"
#include "podium/client/client.h"
#include "podium/common/expected.h"
#include "podium/gitops/app_controller.h"
#include "podium/node/agent.h"
#include "podium/node/registry.h"

namespace podium::cli {

struct NodeSetupOptions {
  std::string dataDir;
  uint16_t registryPort = 5000;
  std::string registryAddress = "127.0.0.1";
  bool agent = true;  // false: registry only (--no-agent)
  node::AgentOptions agentOptions;
};

class NodeRuntime {
 public:
  ~NodeRuntime() { stop(); }
  // Stops the agent (and with it every pod sandbox and containerd), then the registry.
  void stop();
  const node::Registry& registry() const { return *registry_; }
  node::Agent* agent() const { return agent_.get(); }  // nullptr with --no-agent

 private:
  friend Expected<std::unique_ptr<NodeRuntime>, std::string> startNode(api::ApiServer&,
                                                                       const NodeSetupOptions&);
  api::ApiServer* server_ = nullptr;
  std::unique_ptr<node::Registry> registry_;
  client::ClientPtr client_;
  std::unique_ptr<node::Agent> agent_;
};

Expected<std::unique_ptr<NodeRuntime>, std::string> startNode(api::ApiServer& server,
                                                              const NodeSetupOptions& options);

// Builds ImageBuilds' images with buildah into `registry` (as `podium image build` does), its
// storage in DATA/buildah.
gitops::ImageBuilder imageBuilder(const std::string& registry, const std::string& dataDir);

// The tag of Podium's pause image in the cluster registry.
constexpr const char* kPauseImage = "podium/pause:3.10";

// Builds Podium's pause image (a static binary in a FROM scratch image) and pushes it to
// `registry` ("127.0.0.1:5000"), unless it is there already.
Expected<void, std::string> ensurePauseImage(const std::string& registry,
                                             const std::string& dataDir);

}  // namespace podium::cli
