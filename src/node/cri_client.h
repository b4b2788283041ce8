#pragma once

// The node agent's side of the Container Runtime Interface: containerd's RuntimeService and
// ImageService over gRPC on its Unix socket. Every call has a deadline; errors carry the gRPC
// code and the runtime's message.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "cri.grpc.pb.h"
#include "podium/common/expected.h"

namespace podium::node {

struct CriError {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  bool notFound() const { return code == grpc::StatusCode::NOT_FOUND; }
};

template <class T>
using CriResult = Expected<T, CriError>;

// For calls whose failure the next sync retries: log it (a missing object is no failure).
void logFailure(const CriResult<void>& result, const char* call);

class CriClient {
 public:
  explicit CriClient(const std::string& socketPath);

  CriResult<runtime::v1::VersionResponse> version();
  CriResult<runtime::v1::StatusResponse> status();
  CriResult<std::string> runPodSandbox(const runtime::v1::PodSandboxConfig& config);
  CriResult<void> stopPodSandbox(const std::string& id);
  CriResult<void> removePodSandbox(const std::string& id);
  CriResult<runtime::v1::PodSandboxStatus> podSandboxStatus(const std::string& id);
  // The path of the sandbox's network namespace ("" if the runtime does not say).
  CriResult<std::string> sandboxNetns(const std::string& id);
  CriResult<std::vector<runtime::v1::PodSandbox>> listPodSandboxes();
  CriResult<std::string> createContainer(const std::string& sandboxId,
                                         const runtime::v1::ContainerConfig& config,
                                         const runtime::v1::PodSandboxConfig& sandboxConfig);
  CriResult<void> startContainer(const std::string& id);
  CriResult<void> stopContainer(const std::string& id, int64_t timeoutSeconds);
  CriResult<void> removeContainer(const std::string& id);
  CriResult<std::vector<runtime::v1::Container>> listContainers();
  CriResult<runtime::v1::ContainerStatus> containerStatus(const std::string& id);
  // CPU and memory use of every container (cumulative CPU time, working set).
  CriResult<std::vector<runtime::v1::ContainerStats>> listContainerStats();
  CriResult<runtime::v1::ExecSyncResponse> execSync(const std::string& id,
                                                    const std::vector<std::string>& cmd,
                                                    int64_t timeoutSeconds);
  CriResult<std::string> exec(const runtime::v1::ExecRequest& request);
  CriResult<std::string> attach(const runtime::v1::AttachRequest& request);
  CriResult<std::string> portForward(const std::string& sandboxId,
                                     const std::vector<int32_t>& ports);
  // The image's ID if present locally, "" if not.
  CriResult<std::string> imageId(const std::string& image);
  CriResult<std::string> pullImage(const std::string& image);

 private:
  std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds timeout);
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

}  // namespace podium::node
