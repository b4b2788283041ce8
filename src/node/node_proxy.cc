#include "node_proxy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "podium/api/tls.h"
#include "podium/common/http_client.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "podium/mesh/certificates.h"
#include "podium/mesh/workload.h"

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
  // The one annotation the proxy reads (a pod's opt-out of the mesh).
  if (const Json* inject = json::find(o, {"metadata", "annotations", "sidecar.istio.io/inject"}))
    out["metadata"]["annotations"] = {{"sidecar.istio.io/inject", *inject}};
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
      {"authorizationPolicies", res::kAuthorizationPolicies},
      {"peerAuthentications", res::kPeerAuthentications},
      {"telemetries", res::kTelemetries},
      {"meshConfig", res::kConfigMaps}};
  auto changed = [raw = p.get()](const client::ObjectPtr&) {
    std::lock_guard<std::mutex> lock(raw->mu_);
    raw->dirty_ = true;
    raw->cv_.notify_all();
  };
  for (const auto& [field, r] : kinds) {
    client::InformerOptions o;
    if (std::string(field) == "meshConfig") {
      // Istio's MeshConfig: the `istio` ConfigMap of istio-system, key `mesh`.
      o.ns = "istio-system";
      o.list.fieldSelector = "metadata.name=istio";
    }
    auto inf = std::make_unique<client::Informer>(client, r, o);
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
  // The data plane's own binary beside this one (`podium proxy` where it is missing).
  std::vector<std::string> argv = {selfDir() + "/podium-proxy"};
  if (!std::filesystem::exists(argv[0])) argv = {selfDir() + "/podium", "proxy"};
  argv.insert(
      argv.end(),
      {"--capture-port", std::to_string(capturePort_), "--metrics-port",
       std::to_string(metricsPort_ ? metricsPort_ : opts_.metricsPort), "--ingress-http-port",
       std::to_string(ingressPort_ ? ingressPort_ : opts_.ingressHttpPort), "--ingress-https-port",
       std::to_string(ingressTlsPort_ ? ingressTlsPort_ : opts_.ingressHttpsPort), "--port-file",
       portFile});
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
    // Read before the list: every change up to this version is in it.
    std::string version = informer->lastResourceVersion();
    Json list = Json::array();
    for (const auto& o : informer->list()) {
      // Of Secrets, only certificates and keys for TLS termination go to the proxy.
      if (field == "secrets" && json::str(*o, "type") != "kubernetes.io/tls" &&
          !json::find(*o, {"data", "cert"}))
        continue;
      list.push_back(trim(*o));
    }
    snap[field] = std::move(list);
    snap["versions"][field] = version;
  }
  snap["mesh"] = meshIdentities();
  return json::dump(snap) + "\n";
}

void NodeProxy::setMeshPods(std::map<std::string, std::string> pods) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pods == meshPods_) return;
  meshPods_ = std::move(pods);
  dirty_ = true;
  cv_.notify_all();
}

bool NodeProxy::waitMeshPod(const std::string& ip, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = net::httpGet("127.0.0.1", metricsPort_, "/mesh/pods", std::chrono::milliseconds(500));
    if (r && r->status == 200 && r->body.find("\"" + ip + "\"") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

namespace {
// A JSON object from the proxy's metrics port, or an empty object.
Json proxyJson(uint16_t port, const char* path) {
  if (!port) return Json::object();
  auto r = net::httpGet("127.0.0.1", port, path, std::chrono::milliseconds(500), {}, "", 8 << 20);
  if (!r || r->status != 200) return Json::object();
  auto parsed = json::parse(r->body);
  return parsed && parsed->value.is_object() ? parsed->value : Json::object();
}
}  // namespace

Json NodeProxy::podRequestStats() const { return proxyJson(metricsPort_, "/stats/pods"); }

Json NodeProxy::edgeStats() const { return proxyJson(metricsPort_, "/stats/edges"); }

Json NodeProxy::recentSpans(const std::string& traceId) const {
  if (!traceId.empty() && !strings::isLowerHex(traceId)) return Json::array();
  std::string path = "/stats/traces";
  if (!traceId.empty()) path += "?traceId=" + traceId;
  auto r = net::httpGet("127.0.0.1", metricsPort_, path, std::chrono::milliseconds(1000), {}, "",
                        16 << 20);
  if (!r || r->status != 200) return Json::array();
  auto parsed = json::parse(r->body);
  return parsed && parsed->value.is_array() ? parsed->value : Json::array();
}

Json NodeProxy::meshIdentities() {
  std::map<std::string, std::string> pods;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pods = meshPods_;
  }
  // The identities this node needs: its meshed pods' service accounts, and its ingress's.
  std::set<std::string> wanted = {std::string(mesh::kIngressNamespace) + "/" +
                                  mesh::kIngressServiceAccount};
  for (const auto& [field, informer] : informers_) {
    if (field != "pods") continue;
    for (const auto& p : informer->list())
      if (json::getString(*p, {"spec", "nodeName"}) == opts_.nodeName && mesh::inMesh(*p) &&
          pods.count(json::getString(*p, {"status", "podIP"})))
        wanted.insert(json::getString(*p, {"metadata", "namespace"}) + "/" +
                      mesh::serviceAccountOf(*p));
  }
  std::erase_if(identities_, [&](const auto& kv) { return !wanted.count(kv.first); });
  auto now = std::chrono::system_clock::now();
  for (const auto& key : wanted) {
    Identity& id = identities_[key];
    if (!id.chain.empty() && now < id.renewAt) continue;
    if (std::chrono::steady_clock::now() < id.retryAt) continue;
    std::string ns = key.substr(0, key.find('/')), sa = key.substr(key.find('/') + 1);
    auto made = api::tls::newKeyAndCsr();  // the key never leaves this process and the proxy
    if (!made) continue;
    Json req = {{"apiVersion", "mesh.podium.io/v1"},
                {"kind", "WorkloadCertificateRequest"},
                {"spec",
                 {{"nodeName", opts_.nodeName},
                  {"request", made->certPem},
                  {"expirationSeconds", opts_.workloadCertTtl.count()}}}};
    auto signed_ = client_.requestCertificate(ns, sa, req);
    if (!signed_) {
      PODIUM_LOG(Warn) << "mesh certificate for " << key << ": " << signed_.error().message();
      id.retryAt = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      continue;
    }
    auto notAfter =
        timefmt::parseRfc3339(json::getString(*signed_, {"status", "expirationTimestamp"}));
    id.key = made->keyPem;
    id.chain = json::getString(*signed_, {"status", "certificateChain"});
    id.root = json::getString(*signed_, {"status", "rootCertificate"});
    trustDomain_ = json::getString(*signed_, {"status", "trustDomain"});
    id.notAfter = notAfter.value_or(now);
    id.renewAt = now + (id.notAfter - now) / 2;  // at half its life, as Istio's agent does
    PODIUM_LOG(Info) << "mesh certificate for " << key << " valid until "
                     << timefmt::rfc3339(id.notAfter);
  }
  Json out = {{"roots", Json::array()}, {"identities", Json::array()}, {"pods", Json::array()}};
  if (!trustDomain_.empty()) out["trustDomain"] = trustDomain_;
  std::set<std::string> roots;
  for (const auto& [key, id] : identities_) {
    if (id.chain.empty()) continue;
    roots.insert(id.root);
    out["identities"].push_back({{"namespace", key.substr(0, key.find('/'))},
                                 {"serviceAccount", key.substr(key.find('/') + 1)},
                                 {"certChain", id.chain},
                                 {"key", id.key}});
  }
  for (const auto& r : roots) out["roots"].push_back(r);
  for (const auto& [ip, netns] : pods) out["pods"].push_back({{"ip", ip}, {"netns", netns}});
  return out;
}

bool NodeProxy::identitiesDue() const {
  auto now = std::chrono::system_clock::now();
  for (const auto& [key, id] : identities_)
    if (id.chain.empty() || now >= id.renewAt) return true;
  return false;
}

void NodeProxy::feedLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return dirty_ || stopping_; });
      if (stopping_) return;
      if (!dirty_ && process_->running() && !identitiesDue()) continue;
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
