#include "cri_client.h"
#include "podium/common/json.h"

#include "podium/common/log.h"

namespace podium::node {

using namespace runtime::v1;

namespace {
CriError toError(const grpc::Status& s) { return CriError{s.error_code(), s.error_message()}; }
constexpr auto kShort = std::chrono::seconds(30);
constexpr auto kLong = std::chrono::seconds(240);
}  // namespace

void logFailure(const CriResult<void>& result, const char* call) {
  if (!result && !result.error().notFound())
    PODIUM_LOG(Warn) << "CRI " << call << ": " << result.error().message;
}

CriClient::CriClient(const std::string& socketPath) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  channel_ =
      grpc::CreateCustomChannel("unix://" + socketPath, grpc::InsecureChannelCredentials(), args);
  runtime_ = RuntimeService::NewStub(channel_);
  images_ = ImageService::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> CriClient::context(std::chrono::seconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

#define PODIUM_CRI_CALL(stub, method, req, resp, timeout)      \
  auto ctx = context(timeout);                                 \
  grpc::Status st = (stub)->method(ctx.get(), (req), &(resp)); \
  if (!st.ok()) return Unexpected(toError(st))

CriResult<VersionResponse> CriClient::version() {
  VersionRequest req;
  req.set_version("v1");
  VersionResponse resp;
  PODIUM_CRI_CALL(runtime_, Version, req, resp, kShort);
  return resp;
}

CriResult<StatusResponse> CriClient::status() {
  StatusRequest req;
  StatusResponse resp;
  PODIUM_CRI_CALL(runtime_, Status, req, resp, kShort);
  return resp;
}

CriResult<std::string> CriClient::runPodSandbox(const PodSandboxConfig& config) {
  RunPodSandboxRequest req;
  *req.mutable_config() = config;
  RunPodSandboxResponse resp;
  PODIUM_CRI_CALL(runtime_, RunPodSandbox, req, resp, kLong);
  return resp.pod_sandbox_id();
}

CriResult<void> CriClient::stopPodSandbox(const std::string& id) {
  StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  StopPodSandboxResponse resp;
  PODIUM_CRI_CALL(runtime_, StopPodSandbox, req, resp, kLong);
  return {};
}

CriResult<void> CriClient::removePodSandbox(const std::string& id) {
  RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  RemovePodSandboxResponse resp;
  PODIUM_CRI_CALL(runtime_, RemovePodSandbox, req, resp, kLong);
  return {};
}

CriResult<PodSandboxStatus> CriClient::podSandboxStatus(const std::string& id) {
  PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  PodSandboxStatusResponse resp;
  PODIUM_CRI_CALL(runtime_, PodSandboxStatus, req, resp, kShort);
  return resp.status();
}

CriResult<std::string> CriClient::sandboxNetns(const std::string& id) {
  PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(true);
  PodSandboxStatusResponse resp;
  PODIUM_CRI_CALL(runtime_, PodSandboxStatus, req, resp, kShort);
  // containerd's verbose info: the sandbox's OCI spec names its network namespace.
  auto info = resp.info().find("info");
  if (info == resp.info().end()) return std::string();
  auto doc = json::parse(info->second);
  if (!doc) return std::string();
  for (const auto& ns : json::at(doc->value, {"runtimeSpec", "linux", "namespaces"}))
    if (json::str(ns, "type") == "network") return json::str(ns, "path");
  return std::string();
}

CriResult<std::vector<PodSandbox>> CriClient::listPodSandboxes() {
  ListPodSandboxRequest req;
  ListPodSandboxResponse resp;
  PODIUM_CRI_CALL(runtime_, ListPodSandbox, req, resp, kShort);
  return std::vector<PodSandbox>(resp.items().begin(), resp.items().end());
}

CriResult<std::string> CriClient::createContainer(const std::string& sandboxId,
                                                  const ContainerConfig& config,
                                                  const PodSandboxConfig& sandboxConfig) {
  CreateContainerRequest req;
  req.set_pod_sandbox_id(sandboxId);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = sandboxConfig;
  CreateContainerResponse resp;
  PODIUM_CRI_CALL(runtime_, CreateContainer, req, resp, kLong);
  return resp.container_id();
}

CriResult<void> CriClient::startContainer(const std::string& id) {
  StartContainerRequest req;
  req.set_container_id(id);
  StartContainerResponse resp;
  PODIUM_CRI_CALL(runtime_, StartContainer, req, resp, kLong);
  return {};
}

CriResult<void> CriClient::stopContainer(const std::string& id, int64_t timeoutSeconds) {
  StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeoutSeconds);
  StopContainerResponse resp;
  PODIUM_CRI_CALL(runtime_, StopContainer, req, resp, std::chrono::seconds(timeoutSeconds + 60));
  return {};
}

CriResult<void> CriClient::removeContainer(const std::string& id) {
  RemoveContainerRequest req;
  req.set_container_id(id);
  RemoveContainerResponse resp;
  PODIUM_CRI_CALL(runtime_, RemoveContainer, req, resp, kLong);
  return {};
}

CriResult<std::vector<Container>> CriClient::listContainers() {
  ListContainersRequest req;
  ListContainersResponse resp;
  PODIUM_CRI_CALL(runtime_, ListContainers, req, resp, kShort);
  return std::vector<Container>(resp.containers().begin(), resp.containers().end());
}

CriResult<std::vector<ContainerStats>> CriClient::listContainerStats() {
  ListContainerStatsRequest req;
  ListContainerStatsResponse resp;
  PODIUM_CRI_CALL(runtime_, ListContainerStats, req, resp, kShort);
  return std::vector<ContainerStats>(resp.stats().begin(), resp.stats().end());
}

CriResult<ContainerStatus> CriClient::containerStatus(const std::string& id) {
  ContainerStatusRequest req;
  req.set_container_id(id);
  ContainerStatusResponse resp;
  PODIUM_CRI_CALL(runtime_, ContainerStatus, req, resp, kShort);
  return resp.status();
}

CriResult<ExecSyncResponse> CriClient::execSync(const std::string& id,
                                                const std::vector<std::string>& cmd,
                                                int64_t timeoutSeconds) {
  ExecSyncRequest req;
  req.set_container_id(id);
  for (const auto& c : cmd) req.add_cmd(c);
  req.set_timeout(timeoutSeconds);
  ExecSyncResponse resp;
  PODIUM_CRI_CALL(runtime_, ExecSync, req, resp, std::chrono::seconds(timeoutSeconds + 10));
  return resp;
}

CriResult<std::string> CriClient::exec(const ExecRequest& request) {
  ExecResponse resp;
  PODIUM_CRI_CALL(runtime_, Exec, request, resp, kShort);
  return resp.url();
}

CriResult<std::string> CriClient::attach(const AttachRequest& request) {
  AttachResponse resp;
  PODIUM_CRI_CALL(runtime_, Attach, request, resp, kShort);
  return resp.url();
}

CriResult<std::string> CriClient::portForward(const std::string& sandboxId,
                                              const std::vector<int32_t>& ports) {
  PortForwardRequest req;
  req.set_pod_sandbox_id(sandboxId);
  for (int32_t p : ports) req.add_port(p);
  PortForwardResponse resp;
  PODIUM_CRI_CALL(runtime_, PortForward, req, resp, kShort);
  return resp.url();
}

CriResult<std::string> CriClient::imageId(const std::string& image) {
  ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  ImageStatusResponse resp;
  PODIUM_CRI_CALL(images_, ImageStatus, req, resp, kShort);
  return resp.has_image() ? resp.image().id() : std::string();
}

CriResult<std::string> CriClient::pullImage(const std::string& image) {
  PullImageRequest req;
  req.mutable_image()->set_image(image);
  PullImageResponse resp;
  PODIUM_CRI_CALL(images_, PullImage, req, resp, kLong);
  return resp.image_ref();
}

#undef PODIUM_CRI_CALL

}  // namespace podium::node
