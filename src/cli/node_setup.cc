#include "node_setup.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "podium/client/local_client.h"
#include "podium/common/log.h"
#include "podium/node/images.h"

namespace podium::cli {

namespace fs = std::filesystem;

namespace {

// The directory holding the running podium binary (podium-pause is built beside it).
std::string selfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

}  // namespace

Expected<void, std::string> ensurePauseImage(const std::string& registry,
                                             const std::string& dataDir) {
  auto ref = node::parseImageRef(kPauseImage);
  if (node::registryHas(registry, ref)) return {};
  std::string binary = selfDir() + "/podium-pause";
  std::error_code ec;
  if (!fs::exists(binary, ec)) return Unexpected("the pause binary is missing: " + binary);
  std::string ctx = dataDir + "/build/pause";
  fs::remove_all(ctx, ec);
  fs::create_directories(ctx, ec);
  fs::copy_file(binary, ctx + "/pause", fs::copy_options::overwrite_existing, ec);
  if (ec) return Unexpected("copy " + binary + ": " + ec.message());
  std::ofstream(ctx + "/Dockerfile")
      << "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n";
  node::BuildOptions b;
  b.contextDir = ctx;
  b.tag = registry + "/" + kPauseImage;
  b.registry = registry;
  b.storageDir = dataDir + "/buildah";
  auto built = node::buildAndPush(b);
  if (!built.ok)
    return Unexpected("pause image: " + built.step + ": " + built.error + "\n" + built.log);
  fs::remove_all(ctx, ec);
  return {};
}

gitops::ImageBuilder imageBuilder(const std::string& registry, const std::string& dataDir) {
  return [registry, dataDir](const gitops::ImageBuildJob& job) {
    node::BuildOptions b;
    b.contextDir = job.contextDir;
    b.dockerfile = job.dockerfile;
    b.tag = job.image;
    b.registry = registry;
    b.storageDir = dataDir + "/buildah";
    auto built = node::buildAndPush(b);
    return gitops::ImageBuildOutcome{built.ok, built.pushed, built.step, built.error, built.log};
  };
}

void NodeRuntime::stop() {
  if (agent_) {
    if (server_) server_->setNodeConnector(agent_->nodeName(), nullptr);
    agent_->stop(true);
    agent_.reset();
  }
  if (registry_) registry_->stop();
}

Expected<std::unique_ptr<NodeRuntime>, std::string> startNode(api::ApiServer& server,
                                                              const NodeSetupOptions& o) {
  auto rt = std::unique_ptr<NodeRuntime>(new NodeRuntime());
  rt->server_ = &server;
  node::RegistryOptions ro;
  ro.dataDir = o.dataDir;
  ro.port = o.registryPort;
  ro.address = o.registryAddress;
  auto reg = node::Registry::start(ro);
  if (!reg) return Unexpected("registry: " + reg.error());
  rt->registry_ = std::move(*reg);
  if (!o.agent) return rt;
  if (auto p = ensurePauseImage(rt->registry_->address(), o.dataDir); !p)
    return Unexpected(p.error());
  node::AgentOptions ao = o.agentOptions;
  ao.dataDir = o.dataDir + "/node";
  ao.registry = rt->registry_->address();
  ao.sandboxImage = rt->registry_->address() + "/" + kPauseImage;
  rt->client_ = client::newLocalClient(server.storage(), "kubelet");
  auto agent = node::startAgent(*rt->client_, ao);
  if (!agent) return Unexpected("node agent: " + agent.error());
  rt->agent_ = std::move(*agent);
  server.setNodeConnector(rt->agent_->nodeName(), rt->agent_.get());
  return rt;
}

}  // namespace podium::cli
