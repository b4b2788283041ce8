#include "podium/node/containerd.h"
#include "podium/mesh/workload.h"

#include <sys/stat.h>

#include <filesystem>

#include "podium/api/tls.h"
#include "podium/common/json.h"
#include "podium/common/log.h"

namespace podium::node {

namespace {

std::string configToml(const ContainerdOptions& o, const std::string& dir) {
  return R"(version = 2
root = ")" +
         dir + R"(/root"
state = ")" +
         dir + R"(/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = ")" +
         dir + R"(/containerd.sock"
[ttrpc]
  address = ")" +
         dir + R"(/containerd-ttrpc.sock"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ")" +
         o.sandboxImage + R"("
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = ")" +
         dir + R"(/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ")" +
         o.cniBinDir + R"("
    conf_dir = ")" +
         dir + R"(/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ")" +
         dir + R"(/certs.d"
)";
}

// Every registry name containerd may try resolves to the cluster registry, so no pull ever
// leaves the machine.
std::string hostsToml(const std::string& registry) {
  return "server = \"http://" + registry + "\"\n\n[host.\"http://" + registry +
         "\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n";
}

Json cniConfig(const ContainerdOptions& o, const std::string& dir) {
  return {{"cniVersion", "0.4.0"},
          {"name", "podium"},
          {"plugins",
           Json::array(
               {{{"type", "bridge"},
                 {"bridge", o.bridge},
                 {"isGateway", true},
                 {"ipMasq", false},
                 {"hairpinMode", true},
                 {"ipam",
                  {{"type", "host-local"},
                   {"ranges", Json::array({Json::array({{{"subnet", o.podCidr}}})})},
                   // The pods' routes: other pods, Services, and the node's probe address
                   // (mesh::kProbeSource); nothing else.
                   {"routes", Json::array({{{"dst", o.clusterCidr}},
                                           {{"dst", o.serviceCidr}},
                                           {{"dst", std::string(mesh::kProbeSource) + "/32"}}})},
                   {"dataDir", dir + "/cni-ipam"}}}},
                {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}})}};
}

}  // namespace

Expected<std::unique_ptr<Containerd>, std::string> Containerd::start(const ContainerdOptions& o) {
  namespace fs = std::filesystem;
  std::string dir = o.dataDir + "/containerd";
  std::error_code ec;
  for (const char* sub : {"/root", "/state", "/runc", "/cni", "/cni-ipam", "/certs.d"})
    fs::create_directories(dir + sub, ec);
  if (ec) return Unexpected("create " + dir + ": " + ec.message());
  using api::tls::writeFileAtomic;
  if (auto w = writeFileAtomic(dir + "/config.toml", configToml(o, dir), 0644); !w)
    return Unexpected(w.error());
  // "_default" covers every other registry name (quay.io, registry.k8s.io, ...).
  for (const std::string& host : {std::string("_default"), std::string("docker.io"), o.registry}) {
    fs::create_directories(dir + "/certs.d/" + host, ec);
    if (auto w =
            writeFileAtomic(dir + "/certs.d/" + host + "/hosts.toml", hostsToml(o.registry), 0644);
        !w)
      return Unexpected(w.error());
  }
  if (auto w =
          writeFileAtomic(dir + "/cni/10-podium.conflist", cniConfig(o, dir).dump(2) + "\n", 0644);
      !w)
    return Unexpected(w.error());
  std::string sock = dir + "/containerd.sock";
  fs::remove(sock, ec);
  auto p = ChildProcess::spawn({"containerd", "--config", dir + "/config.toml"},
                               dir + "/containerd.log");
  if (!p) return Unexpected("containerd: " + p.error());
  auto c = std::unique_ptr<Containerd>(new Containerd());
  c->process_ = std::move(*p);
  c->socket_ = sock;
  bool up = waitUntil([&] { return fs::exists(sock) || !c->process_->running(); },
                      std::chrono::seconds(30));
  if (!up || !c->process_->running())
    return Unexpected("containerd did not start (see " + dir + "/containerd.log)");
  PODIUM_LOG(Info) << "containerd running (pid " << c->process_->pid() << ", socket " << sock
                   << ")";
  return c;
}

Containerd::~Containerd() { stop(); }

void Containerd::stop() {
  if (process_) process_->stop(std::chrono::seconds(10));
  process_.reset();
}

}  // namespace podium::node
