// The node agent's lifecycle: containerd, node registration and heartbeats, the pod informer,
// the pod lifecycle event generator (PLEG) and the pod workers.
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent_impl.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "podium/node/node_api.h"

namespace podium::node {

namespace res = client::resources;
using SteadyClock = std::chrono::steady_clock;

const runtime::v1::PodSandbox* RuntimePod::readySandbox() const {
  for (const auto& s : sandboxes)
    if (s.state() == runtime::v1::SANDBOX_READY) return &s;
  return nullptr;
}

const runtime::v1::Container* RuntimePod::latest(const std::string& sandboxId,
                                                 const std::string& name) const {
  const runtime::v1::Container* best = nullptr;
  for (const auto& c : containers)
    if (c.pod_sandbox_id() == sandboxId && c.metadata().name() == name &&
        (!best || c.metadata().attempt() > best->metadata().attempt()))
      best = &c;
  return best;
}

const runtime::v1::Container* RuntimePod::previous(const std::string& sandboxId,
                                                   const std::string& name) const {
  const runtime::v1::Container* last = latest(sandboxId, name);
  const runtime::v1::Container* best = nullptr;
  for (const auto& c : containers)
    if (c.metadata().name() == name && &c != last && (!best || c.created_at() > best->created_at()))
      best = &c;
  return best;
}

namespace {

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  std::string h = strings::toLower(buf);
  return h.empty() ? "podium-node" : h;
}

std::string detectNodeIp() {
  for (const auto& a : net::localIpv4Addresses()) {
    const std::string& name = a.interface;
    if (a.loopback || name.rfind("podium", 0) == 0 || name.rfind("cni", 0) == 0 ||
        name.rfind("veth", 0) == 0)
      continue;
    return a.ip;
  }
  return "127.0.0.1";
}

std::string readFirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return std::string(strings::trim(line));
}

std::string osImage() {
  std::ifstream f("/etc/os-release");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  return "Linux";
}

}  // namespace

std::string bridgeFor(const std::string& podCidr) {
  auto cidr = net::Cidr::parse(podCidr);
  if (!cidr) return "podium0";
  std::string name = "podium" + std::to_string((cidr->base >> 8) & 0xff);
  if (cidr->bits > 24) name += "-" + std::to_string(cidr->base & 0xff);
  return name;
}

AgentImpl::AgentImpl(client::Client& client, AgentOptions options)
    : client_(client),
      opts_(std::move(options)),
      queue_(std::chrono::milliseconds(200), std::chrono::seconds(60)) {
  if (opts_.nodeName.empty()) opts_.nodeName = hostname();
  if (opts_.nodeIp.empty()) opts_.nodeIp = detectNodeIp();
}

AgentImpl::~AgentImpl() { stop(false); }

Expected<void, std::string> AgentImpl::start() {
  if (opts_.podCidr.empty()) {
    auto cidr = awaitPodCidr();
    if (!cidr) return Unexpected(cidr.error());
    opts_.podCidr = *cidr;
  }
  if (opts_.bridge.empty()) opts_.bridge = bridgeFor(opts_.podCidr);
  // The pod network first: nothing is set up on a bridge another agent is using.
  netfilter_ = std::make_unique<NodeNetfilter>(opts_.bridge);
  if (auto c = netfilter_->claim(); !c) return Unexpected(c.error());
  auto gateway = netfilter_->makeBridge(opts_.podCidr);
  if (!gateway) return Unexpected(gateway.error());
  std::error_code ec;
  std::filesystem::create_directories(opts_.dataDir + "/pods", ec);
  ContainerdOptions co;
  co.dataDir = opts_.dataDir;
  co.registry = opts_.registry;
  co.sandboxImage = opts_.sandboxImage;
  co.podCidr = opts_.podCidr;
  co.clusterCidr = opts_.clusterCidr;
  co.serviceCidr = opts_.serviceCidr;
  co.bridge = opts_.bridge;
  auto c = Containerd::start(co);
  if (!c) return Unexpected(c.error());
  containerd_ = std::move(*c);
  cri_ = std::make_unique<CriClient>(containerd_->socket());
  bool up = waitUntil([&] { return cri_->version().has_value(); }, std::chrono::seconds(30));
  if (!up) return Unexpected(std::string("containerd's CRI did not answer"));
  auto v = cri_->version();
  runtimeVersion_ = v->runtime_name() + "://" + v->runtime_version();
  events_ = std::make_unique<client::EventRecorder>(client_, "kubelet", opts_.nodeName);
  // Cluster DNS for the pods, reached at the cluster DNS IP through the node's nftables table.
  dns::ClusterDnsOptions dnsOptions;
  dnsOptions.domain = opts_.clusterDomain;
  dnsOptions.port = opts_.dnsPort;
  auto dnsServer = dns::startClusterDns(client_, dnsOptions);
  if (!dnsServer) return Unexpected(dnsServer.error());
  dns_ = std::move(*dnsServer);
  NodeProxyOptions po;
  po.dataDir = opts_.dataDir;
  po.nodeName = opts_.nodeName;
  po.workloadCertTtl = opts_.workloadCertTtl;
  po.clusterDomain = opts_.clusterDomain;
  po.ingressHttpPort = opts_.ingressHttpPort;
  po.ingressHttpsPort = opts_.ingressHttpsPort;
  auto proxy = NodeProxy::start(client_, po);
  if (!proxy) return Unexpected(proxy.error());
  proxy_ = std::move(*proxy);
  NetfilterRules rules;
  rules.bridge = opts_.bridge;
  rules.clusterDns = opts_.clusterDns;
  rules.dnsPort = dns_->port();
  rules.serviceCidr = opts_.serviceCidr;
  rules.clusterCidr = opts_.clusterCidr;
  rules.capturePort = proxy_->capturePort();
  if (auto n = netfilter_->apply(rules); !n)
    return Unexpected("node netfilter rules: " + n.error());
  if (auto r = registerNode(); !r) return r;
  routes_ = std::make_unique<PodRoutes>(client_, opts_.nodeName, opts_.podCidr, *gateway);
  routes_->start();
  stats_ = std::make_unique<ResourceStats>(*cri_, opts_.nodeName, *opts_.clock);
  stats_->start();
  prober_ = std::make_unique<Prober>(
      *cri_, [this](const std::string& key) { queue_.add(key); },
      [this](const std::string& key, const std::string& container, Prober::Kind kind,
             const std::string& msg) {
        auto [ns, name] = client::Informer::splitKey(key);
        if (auto pod = pods_->get(ns, name))
          events_->record(*pod, "Warning", "Unhealthy",
                          std::string(Prober::kindName(kind)) + " probe failed: " + msg,
                          "spec.containers{" + container + "}");
      });
  client::InformerOptions mine;
  mine.list.fieldSelector = "spec.nodeName=" + opts_.nodeName;
  mine.resync = std::chrono::seconds(60);
  pods_ = std::make_unique<client::Informer>(client_, res::kPods, mine);
  auto enqueue = [this](const ObjectPtr& p) { queue_.add(client::Informer::keyOf(*p)); };
  auto arrived = [this, enqueue](const ObjectPtr& p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      arrived_[client::uidOf(*p)] = opts_.clock->monotonic();
    }
    enqueue(p);
  };
  pods_->addHandlers(
      {arrived, [enqueue](const ObjectPtr&, const ObjectPtr& n) { enqueue(n); }, enqueue});
  services_ = std::make_unique<client::Informer>(client_, res::kServices);
  services_->start();
  pods_->start();
  pods_->waitForSync(std::chrono::seconds(30));
  services_->waitForSync(std::chrono::seconds(30));
  for (int i = 0; i < opts_.workers; ++i)
    threads_.emplace_back([this] {
      std::string key;
      while (queue_.get(&key)) {
        bool ok = false;
        try {
          ok = syncPod(key);
        } catch (const std::exception& e) {
          PODIUM_LOG(Error) << "sync pod " << key << " threw: " << e.what();
        }
        if (ok)
          queue_.forget(key);
        else
          queue_.addRateLimited(key);
        queue_.done(key);
      }
    });
  threads_.emplace_back([this] { plegLoop(); });
  threads_.emplace_back([this] { heartbeatLoop(); });
  localVolumes_ = std::make_unique<LocalVolumes>(client_, opts_.nodeName,
                                                 opts_.dataDir + "/storage", *opts_.clock);
  localVolumes_->run();
  PODIUM_LOG(Info) << "node agent " << opts_.nodeName << " ready (" << runtimeVersion_ << ", pods "
                   << opts_.podCidr << ")";
  return {};
}

void AgentImpl::stop(bool stopPods) {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(stopMu_);
    stopCv_.notify_all();
  }
  queue_.shutdown();
  localVolumes_.reset();
  if (pods_) pods_->stop();
  if (services_) services_->stop();
  // Sandboxes stop before the workers are joined: a worker waiting out a long grace period
  // in StopContainer returns as soon as the container is gone.
  if (stopPods && cri_) stopAllSandboxes();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (stopPods && cri_) reportStoppedPods();
  prober_.reset();
  if (stats_) stats_->stop();
  if (routes_) routes_->stop();
  if (netfilter_) netfilter_->remove();
  if (proxy_) proxy_->stop();
  if (dns_) dns_->stop();
  if (containerd_) containerd_->stop();
}

Json AgentImpl::statsSummary() const {
  return stats_ ? stats_->summary()
                : Json{{"node", {{"nodeName", opts_.nodeName}}}, {"pods", Json::array()}};
}

Json AgentImpl::meshStats() const {
  if (!proxy_) return Json{{"pods", Json::object()}};
  Json edges = proxy_->edgeStats();
  return Json{{"pods", proxy_->podRequestStats()},
              {"edges", json::at(edges, {"edges"})},
              {"bounds", json::at(edges, {"bounds"})}};
}

Json AgentImpl::recentSpans(const std::string& traceId) const {
  return proxy_ ? proxy_->recentSpans(traceId) : Json::array();
}

void AgentImpl::stopAllSandboxes() {
  auto sandboxes = cri_->listPodSandboxes();
  if (!sandboxes) return;
  // Containers get SIGTERM together and 5 s to exit before SIGKILL.
  auto containers = cri_->listContainers();
  std::vector<std::thread> stoppers;
  if (containers)
    for (const auto& c : *containers)
      if (c.state() == runtime::v1::CONTAINER_RUNNING)
        stoppers.emplace_back(
            [this, id = c.id()] { logFailure(cri_->stopContainer(id, 5), "stopContainer"); });
  for (auto& t : stoppers) t.join();
  for (const auto& s : *sandboxes)
    if (s.state() == runtime::v1::SANDBOX_READY)
      logFailure(cri_->stopPodSandbox(s.id()), "stopPodSandbox");
  PODIUM_LOG(Info) << "stopped " << sandboxes->size() << " pod sandboxes";
}

// After a shutdown stopped the containers, the pods' status says so (not Ready), so nothing
// trusts them until the agent runs them again.
void AgentImpl::reportStoppedPods() {
  std::map<std::string, PodState> states;
  {
    std::lock_guard<std::mutex> lock(mu_);
    states = states_;
  }
  for (auto& [key, st] : states) {
    auto [ns, name] = client::Informer::splitKey(key);
    auto pod = client_.get(res::kPods, ns, name);
    if (!pod || client::uidOf(*pod) != st.uid) continue;
    st.lastStatus = nullptr;
    writeStatus(*pod, st, runtimeFor(st.uid));
  }
}

Json AgentImpl::nodeStatus() {
  struct sysinfo si {};
  sysinfo(&si);
  int64_t memKi = static_cast<int64_t>(si.totalram) * si.mem_unit / 1024;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname u {};
  uname(&u);
  std::string now = timefmt::rfc3339(opts_.clock->now());
  auto cond = [&](const char* type, const char* status, const char* reason, const char* message) {
    return Json{{"type", type},
                {"status", status},
                {"lastHeartbeatTime", now},
                {"lastTransitionTime", now},
                {"reason", reason},
                {"message", message}};
  };
  Json capacity = {{"cpu", std::to_string(cpus)},
                   {"memory", std::to_string(memKi) + "Ki"},
                   {"pods", "110"},
                   {"ephemeral-storage", "100Gi"},
                   {"hugepages-2Mi", "0"}};
  return {{"capacity", capacity},
          {"allocatable", capacity},
          {"conditions",
           Json::array({cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                             "kubelet has sufficient memory available"),
                        cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                             "kubelet has no disk pressure"),
                        cond("PIDPressure", "False", "KubeletHasSufficientPID",
                             "kubelet has sufficient PID available"),
                        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")})},
          {"addresses", Json::array({{{"type", "InternalIP"}, {"address", opts_.nodeIp}},
                                     {{"type", "Hostname"}, {"address", opts_.nodeName}}})},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", opts_.kubeletPort}}}}},
          {"nodeInfo",
           {{"machineID", readFirstLine("/etc/machine-id")},
            {"systemUUID", readFirstLine("/etc/machine-id")},
            {"bootID", readFirstLine("/proc/sys/kernel/random/boot_id")},
            {"kernelVersion", u.release},
            {"osImage", osImage()},
            {"containerRuntimeVersion", runtimeVersion_},
            {"kubeletVersion", "v1.32.4+podium"},
            {"kubeProxyVersion", "v1.32.4+podium"},
            {"operatingSystem", "linux"},
            {"architecture", std::string(u.machine) == "aarch64" ? "arm64" : "amd64"}}}};
}

Json AgentImpl::nodeLabels() const {
  Json labels = {{"kubernetes.io/hostname", opts_.nodeName},
                 {"kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", "amd64"},
                 {"beta.kubernetes.io/os", "linux"},
                 {"beta.kubernetes.io/arch", "amd64"}};
  if (opts_.controlPlane) labels["node-role.kubernetes.io/control-plane"] = "true";
  return labels;
}

Expected<std::string, std::string> AgentImpl::awaitPodCidr() {
  Json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", opts_.nodeName}, {"labels", nodeLabels()}}}};
  if (auto made = client_.create(res::kNodes, "", node); !made && made.error().code() != 409)
    return Unexpected("register node: " + made.error().message());
  std::string cidr;
  std::string last;
  bool got = waitUntil(
      [&] {
        auto cur = client_.get(res::kNodes, "", opts_.nodeName);
        if (!cur) last = cur.error().message();
        cidr = cur ? json::getString(*cur, {"spec", "podCIDR"}) : "";
        return !cidr.empty() || stopping_;
      },
      std::chrono::seconds(60));
  if (!got || cidr.empty())
    return Unexpected("node " + opts_.nodeName +
                      " was given no pod range in 60 s (the server's controllers allocate "
                      "them from --cluster-cidr; or start the agent with --pod-cidr)" +
                      (last.empty() ? "" : ": " + last));
  PODIUM_LOG(Info) << "node " << opts_.nodeName << " was given pod range " << cidr;
  return cidr;
}

Expected<void, std::string> AgentImpl::registerNode() {
  Json labels = nodeLabels();
  auto existing = client_.get(res::kNodes, "", opts_.nodeName);
  if (!existing) {
    Json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata", {{"name", opts_.nodeName}, {"labels", labels}}},
        {"spec", {{"podCIDR", opts_.podCidr}, {"podCIDRs", Json::array({opts_.podCidr})}}}};
    auto made = client_.create(res::kNodes, "", node);
    if (!made && made.error().code() != 409)
      return Unexpected("register node: " + made.error().message());
  } else {
    Json patch = {
        {"metadata", {{"labels", labels}}},
        {"spec", {{"podCIDR", opts_.podCidr}, {"podCIDRs", Json::array({opts_.podCidr})}}}};
    if (auto r = client_.patch(res::kNodes, "", opts_.nodeName, patch); !r)
      return Unexpected("register node: " + r.error().message());
  }
  auto cur = client_.get(res::kNodes, "", opts_.nodeName);
  if (!cur) return Unexpected("register node: " + cur.error().message());
  nodeUid_ = json::getString(*cur, {"metadata", "uid"});
  Json obj = *cur;
  obj["status"] = nodeStatus();
  auto st = client_.update(res::kNodes, "", obj, "status");
  if (!st) return Unexpected("node status: " + st.error().message());
  events_->record(*cur, "Normal", "Starting", "Starting kubelet.");
  events_->record(*cur, "Normal", "NodeReady",
                  "Node " + opts_.nodeName + " status is now: NodeReady");
  return {};
}

void AgentImpl::heartbeatLoop() {
  auto lastStatus = opts_.clock->monotonic();
  while (!stopping_) {
    // The Lease says "alive" every leaseRenewInterval; the full status is refreshed every minute,
    // and at once when the API has it other than Ready (the node lifecycle controller marked it
    // Unknown while this node could not renew).
    std::string now = timefmt::rfc3339Micro(opts_.clock->now());
    Json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata",
         {{"name", opts_.nodeName},
          {"namespace", "kube-node-lease"},
          {"ownerReferences", Json::array({{{"apiVersion", "v1"},
                                            {"kind", "Node"},
                                            {"name", opts_.nodeName},
                                            {"uid", nodeUid_}}})}}},
        {"spec",
         {{"holderIdentity", opts_.nodeName}, {"leaseDurationSeconds", 20}, {"renewTime", now}}}};
    auto r = client_.apply(res::kLeases, "kube-node-lease", lease, true);
    if (!r) PODIUM_LOG(Debug) << "lease: " << r.error().message();
    auto cur = client_.get(res::kNodes, "", opts_.nodeName);
    const Json* ready = cur ? client::findCondition(*cur, "Ready") : nullptr;
    bool stale = !ready || json::str(*ready, "status") != "True";
    if (cur && (stale || opts_.clock->monotonic() - lastStatus > std::chrono::seconds(60))) {
      lastStatus = opts_.clock->monotonic();
      {
        Json obj = *cur;
        Json fresh = nodeStatus();
        // Keep transition times of conditions that did not change.
        const Json& oldConds = at(*cur, {"status", "conditions"});
        for (auto& c : fresh["conditions"])
          for (const auto& o : oldConds)
            if (json::str(o, "type") == json::str(c, "type") &&
                json::str(o, "status") == json::str(c, "status"))
              c["lastTransitionTime"] = json::str(o, "lastTransitionTime");
        obj["status"] = fresh;
        if (auto r = client_.update(res::kNodes, "", obj, "status"); !r)
          PODIUM_LOG(Warn) << "node status: " << r.error().message();
      }
    }
    std::unique_lock<std::mutex> lock(stopMu_);
    stopCv_.wait_for(lock, opts_.leaseRenewInterval, [&] { return stopping_.load(); });
  }
}

// Relists the runtime often and wakes the pods whose containers or sandboxes changed state.
void AgentImpl::plegLoop() {
  std::map<std::string, std::string> last;  // container/sandbox id -> state + attempt
  while (!stopping_) {
    auto sandboxes = cri_->listPodSandboxes();
    auto containers = cri_->listContainers();
    if (sandboxes && containers) {
      std::map<std::string, std::string> now;
      std::map<std::string, std::string> sandboxUid;  // sandbox id -> pod uid
      std::set<std::string> changedUids;
      for (const auto& s : *sandboxes) {
        std::string uid = s.metadata().uid();
        sandboxUid[s.id()] = uid;
        now[s.id()] = "s" + std::to_string(s.state());
      }
      for (const auto& c : *containers) {
        auto it = c.labels().find(kLabelPodUid);
        now[c.id()] =
            "c" + std::to_string(c.state()) + (it == c.labels().end() ? "" : "/" + it->second);
      }
      for (const auto& [id, state] : now) {
        auto it = last.find(id);
        if (it != last.end() && it->second == state) continue;
        if (sandboxUid.count(id))
          changedUids.insert(sandboxUid[id]);
        else if (auto slash = state.find('/'); slash != std::string::npos)
          changedUids.insert(state.substr(slash + 1));
      }
      for (const auto& [id, state] : last)
        if (!now.count(id))
          if (auto slash = state.find('/'); slash != std::string::npos)
            changedUids.insert(state.substr(slash + 1));
      last = std::move(now);
      std::vector<std::string> keys;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& uid : changedUids)
          if (auto k = uidToKey_.find(uid); k != uidToKey_.end()) keys.push_back(k->second);
      }
      for (const auto& k : keys) queue_.add(k);
      cleanupOrphans(sandboxUid);
    }
    std::unique_lock<std::mutex> lock(stopMu_);
    stopCv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_.load(); });
  }
}

Expected<std::unique_ptr<Agent>, std::string> startAgent(client::Client& client,
                                                         const AgentOptions& options) {
  auto a = std::make_unique<AgentImpl>(client, options);
  if (auto r = a->start(); !r) {
    a->stop(false);
    return Unexpected(r.error());
  }
  return std::unique_ptr<Agent>(std::move(a));
}

Expected<api::HttpResponse, api::ApiError> AgentImpl::nodeEndpoint(const std::string& path) {
  return node::nodeEndpoint(*this, path);
}

}  // namespace podium::node
