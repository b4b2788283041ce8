#include "node_proxy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "podium/api/tls.h"
#include "podium/common/log.h"

namespace podium::node {

namespace {

namespace res = client::resources;

// What the proxy needs of an object: identity, labels, spec; pods' IPs; endpoints' subsets;
// TLS Secrets' type and data.
Json trim(const Json& o) {
  Json out = Json::object();
  for (const char* k : {"apiVersion", "kind", "spec", "subsets", "type", "data"})
    if (o.contains(k)) out[k] = o[k];
  const Json* md = json::find(o, {"metadata"});
  if (md && md->is_object()) {
    Json m = Json::object();
    for (const char* k : {"name", "namespace", "labels", "creationTimestamp"})
      if (md->contains(k)) m[k] = (*md)[k];
    out["metadata"] = m;
  }
  if (const Json* ip = json::find(o, {"status", "podIP"})) out["status"] = {{"podIP", *ip}};
  return out;
}

std::string selfDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

}  // namespace

NodeProxy::NodeProxy(client::Client& client, NodeProxyOptions options)
    : client_(client), opts_(std::move(options)) {}

NodeProxy::~NodeProxy() { stop(); }

Expected<std::unique_ptr<NodeProxy>, std::string> NodeProxy::start(
    client::Client& client, const NodeProxyOptions& options) {
  auto p = std::unique_ptr<NodeProxy>(new NodeProxy(client, options));
  // The kinds a snapshot is made of, in the snapshot's field names.
  const std::vector<std::pair<const char*, client::Resource>> kinds = {
      {"services", res::kServices},
      {"endpoints", res::kEndpoints},
      {"pods", res::kPods},
      {"virtualServices", res::kVirtualServices},
      {"destinationRules", res::kDestinationRules},
      {"gateways", res::kGateways},
      {"ingresses", res::kIngresses},
      {"secrets", res::kSecrets},
      {"authorizationPolicies", res::kAuthorizationPolicies}};
  auto changed = [raw = p.get()](const client::ObjectPtr&) {
    std::lock_guard<std::mutex> lock(raw->mu_);
    raw->dirty_ = true;
    raw->cv_.notify_all();
  };
  for (const auto& [field, r] : kinds) {
    auto inf = std::make_unique<client::Informer>(client, r);
    inf->addHandlers(
        {changed, [changed](const client::ObjectPtr&, const client::ObjectPtr& n) { changed(n); },
         changed});
    p->informers_.emplace_back(field, std::move(inf));
  }
  for (auto& [field, i] : p->informers_) i->start();
  for (auto& [field, i] : p->informers_) i->waitForSync(std::chrono::seconds(10));
  if (auto s = p->spawn(); !s) return Unexpected(s.error());
  p->feeder_ = std::thread([raw = p.get()] { raw->feedLoop(); });
  return p;
}

Expected<void, std::string> NodeProxy::spawn() {
  std::string dir = opts_.dataDir + "/proxy";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string portFile = dir + "/ports.json";
  std::filesystem::remove(portFile, ec);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Unexpected(std::string("pipe: ") + strerror(errno));
  std::vector<std::string> argv = {
      selfDir() + "/podium",
      "proxy",
      "--capture-port",
      std::to_string(capturePort_),
      "--metrics-port",
      std::to_string(metricsPort_ ? metricsPort_ : opts_.metricsPort),
      "--ingress-http-port",
      std::to_string(ingressPort_ ? ingressPort_ : opts_.ingressHttpPort),
      "--ingress-https-port",
      std::to_string(ingressTlsPort_ ? ingressTlsPort_ : opts_.ingressHttpsPort),
      "--port-file",
      portFile};
  // The read end must survive exec in the child: it is dup2'ed onto stdin there.
  auto p = ChildProcess::spawn(argv, dir + "/proxy.log", fds[0]);
  ::close(fds[0]);
  if (!p) {
    ::close(fds[1]);
    return Unexpected("podium proxy: " + p.error());
  }
  process_ = std::move(*p);
  if (pipe_ >= 0) ::close(pipe_);
  pipe_ = fds[1];
  bool up = waitUntil([&] { return std::filesystem::exists(portFile) || !process_->running(); },
                      std::chrono::seconds(10));
  if (!up || !process_->running())
    return Unexpected("podium proxy did not start (see " + dir + "/proxy.log)");
  auto text = api::tls::readFile(portFile);
  if (!text) return Unexpected("podium proxy: " + text.error());
  auto ports = json::parse(*text);
  if (!ports) return Unexpected(std::string("podium proxy: unreadable port file"));
  capturePort_ = static_cast<uint16_t>(json::integer(ports->value, "capture"));
  metricsPort_ = static_cast<uint16_t>(json::integer(ports->value, "metrics"));
  ingressPort_ = static_cast<uint16_t>(json::integer(ports->value, "ingressHttp"));
  ingressTlsPort_ = static_cast<uint16_t>(json::integer(ports->value, "ingressHttps"));
  PODIUM_LOG(Info) << "node proxy running (pid " << process_->pid() << ", capture " << capturePort_
                   << ", metrics " << metricsPort_ << ", ingress " << ingressPort_ << "/"
                   << ingressTlsPort_ << ")";
  return {};
}

std::string NodeProxy::snapshot() {
  Json snap = Json::object();
  for (const auto& [field, informer] : informers_) {
    Json list = Json::array();
    for (const auto& o : informer->list()) {
      // Of Secrets, only certificates and keys for TLS termination go to the proxy.
      if (field == "secrets" && json::str(*o, "type") != "kubernetes.io/tls" &&
          !json::find(*o, {"data", "cert"}))
        continue;
      list.push_back(trim(*o));
    }
    snap[field] = std::move(list);
  }
  return json::dump(snap) + "\n";
}

void NodeProxy::feedLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return dirty_ || stopping_; });
      if (stopping_) return;
      if (!dirty_ && process_->running()) continue;
    }
    // Let a burst of changes settle into one snapshot.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!process_->running()) {
      PODIUM_LOG(Warn) << "node proxy exited; starting it again";
      if (auto s = spawn(); !s) {
        PODIUM_LOG(Error) << s.error();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      dirty_ = false;
    }
    std::string line = snapshot();
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n = write(pipe_, line.data() + off, line.size() - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        break;  // the proxy went away: the next round restarts it
      }
      off += static_cast<size_t>(n);
    }
  }
}

void NodeProxy::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (feeder_.joinable()) feeder_.join();
  for (auto& [field, i] : informers_) i->stop();
  if (pipe_ >= 0) ::close(pipe_);  // the proxy exits when its input ends
  pipe_ = -1;
  if (process_) process_->stop(std::chrono::seconds(5));
  process_.reset();
}

}  // namespace podium::node
