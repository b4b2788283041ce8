// Pod workers: bring the runtime in line with each pod's spec (sandbox, image pulls, init and
// app containers, restarts with back-off, liveness kills, termination) and report status.
#include <filesystem>
#include <fstream>

#include "agent_impl.h"
#include "podium/api/quantity.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "podium/mesh/workload.h"
#include "podium/node/netfilter.h"
#include "podium/node/process.h"

namespace podium::node {

namespace res = client::resources;
using SteadyClock = std::chrono::steady_clock;
using client::isDeleting;
using client::nameOf;
using client::namespaceOf;
using client::uidOf;

RuntimePod AgentImpl::runtimeFor(const std::string& uid) {
  RuntimePod rt;
  if (auto s = cri_->listPodSandboxes())
    for (auto& sb : *s)
      if (sb.metadata().uid() == uid) rt.sandboxes.push_back(std::move(sb));
  if (auto c = cri_->listContainers())
    for (auto& ct : *c) {
      auto it = ct.labels().find(kLabelPodUid);
      if (it != ct.labels().end() && it->second == uid) rt.containers.push_back(std::move(ct));
    }
  std::sort(rt.sandboxes.begin(), rt.sandboxes.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  std::sort(rt.containers.begin(), rt.containers.end(),
            [](const auto& a, const auto& b) { return a.created_at() > b.created_at(); });
  return rt;
}

void AgentImpl::killRuntime(const RuntimePod& rt, int64_t grace) {
  for (const auto& c : rt.containers)
    if (c.state() == runtime::v1::CONTAINER_RUNNING)
      logFailure(cri_->stopContainer(c.id(), grace), "stopContainer");
  for (const auto& s : rt.sandboxes) {
    logFailure(cri_->stopPodSandbox(s.id()), "stopPodSandbox");
    logFailure(cri_->removePodSandbox(s.id()), "removePodSandbox");
  }
}

bool AgentImpl::terminatePod(const Json& pod, PodState& st, const RuntimePod& rt, int64_t grace) {
  std::string key = client::Informer::keyOf(pod);
  for (const auto& c : rt.containers)
    if (c.state() == runtime::v1::CONTAINER_RUNNING)
      events_->record(pod, "Normal", "Killing", "Stopping container " + c.metadata().name(),
                      "spec.containers{" + c.metadata().name() + "}");
  prober_->untrackExcept(key, {});
  killRuntime(rt, grace);
  client::DeleteOptions d;
  d.gracePeriodSeconds = 0;
  d.preconditionUid = uidOf(pod);
  auto r = client_.remove(res::kPods, namespaceOf(pod), nameOf(pod), d);
  if (!r && r.error().code() != 404 && r.error().code() != 409) {
    PODIUM_LOG(Warn) << "deleting pod " << key << ": " << r.error().message();
    return false;
  }
  forgetPod(key, st.uid);
  return true;
}

void AgentImpl::forgetPod(const std::string& key, std::string uid) {
  std::error_code ec;
  std::filesystem::remove_all(podDir(uid), ec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    uidToKey_.erase(uid);
    arrived_.erase(uid);
    states_.erase(key);
  }
  publishMeshPods();
}

bool AgentImpl::syncPod(const std::string& key) {
  if (stopping_) return true;  // the node is shutting down: start nothing new
  auto [ns, name] = client::Informer::splitKey(key);
  ObjectPtr podPtr = pods_->get(ns, name);
  PodState* stp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(key);
    if (!podPtr) {
      if (it == states_.end()) return true;
      stp = &it->second;
    } else {
      stp = &states_[key];
    }
  }
  PodState& st = *stp;
  if (!podPtr) {
    // Gone from the API (forced deletion): tear down what is left.
    killRuntime(runtimeFor(st.uid), 0);
    prober_->untrackExcept(key, {});
    forgetPod(key, st.uid);
    return true;
  }
  const Json& pod = *podPtr;
  std::string uid = uidOf(pod);
  if (st.uid != uid) {
    if (!st.uid.empty()) killRuntime(runtimeFor(st.uid), 0);  // same name, new pod
    st = PodState{};
    st.uid = uid;
    st.timeline.seen = opts_.clock->monotonic();
    std::lock_guard<std::mutex> lock(mu_);
    uidToKey_[uid] = key;
    if (auto a = arrived_.find(uid); a != arrived_.end()) {
      st.timeline.arrived = a->second;
      arrived_.erase(a);
    }
  }
  RuntimePod rt = runtimeFor(uid);
  if (isDeleting(pod))
    return terminatePod(pod, st, rt,
                        json::integer(at(pod, {"metadata"}), "deletionGracePeriodSeconds", 30));
  std::string phase = json::getString(pod, {"status", "phase"});
  if ((phase == "Succeeded" || phase == "Failed") && st.terminated) return true;
  if (st.startTime.empty()) {
    st.startTime = json::getString(pod, {"status", "startTime"});
    if (st.startTime.empty()) st.startTime = timefmt::rfc3339(opts_.clock->now());
  }
  bool created = false;
  if (auto sb = ensureSandbox(pod, st, rt, &created); !sb) {
    events_->record(pod, "Warning", "FailedCreatePodSandBox",
                    "Failed to create pod sandbox: " + sb.error());
    writeStatus(pod, st, rt);
    return false;
  }
  if (created) {
    rt = runtimeFor(uid);
    if (st.timeline.seen && !st.timeline.sandbox) st.timeline.sandbox = opts_.clock->monotonic();
  }
  if (auto m = joinMesh(pod, st); !m) {
    // Without its capture the pod would talk in plaintext: it does not start.
    events_->record(pod, "Warning", "FailedCreatePodSandBox",
                    "Failed to put the pod in the mesh: " + m.error());
    writeStatus(pod, st, rt);
    return false;
  }
  const Json& spec = at(pod, {"spec"});
  // What the runtime holds, as the plan sees it.
  std::map<std::string, ContainerView> views;
  for (const Json* list : {&at(spec, {"initContainers"}), &at(spec, {"containers"})})
    for (const auto& c : *list) {
      std::string cname = json::str(c, "name");
      const auto* cur = rt.latest(st.sandboxId, cname);
      if (!cur) continue;
      ContainerView v;
      v.id = cur->id();
      v.attempt = cur->metadata().attempt();
      v.state = cur->state() == runtime::v1::CONTAINER_RUNNING  ? ContainerView::State::Running
                : cur->state() == runtime::v1::CONTAINER_EXITED ? ContainerView::State::Exited
                                                                : ContainerView::State::Created;
      if (v.state == ContainerView::State::Exited)
        if (auto s = cri_->containerStatus(v.id)) v.exitCode = s->exit_code();
      v.livenessFailed = v.state == ContainerView::State::Running && prober_->livenessFailed(v.id);
      v.killedForLiveness = st.killedForLiveness.count(v.id) > 0;
      views[cname] = v;
    }
  PodPlanInput plan;
  plan.spec = &spec;
  plan.latest = [&](const std::string& n) {
    auto it = views.find(n);
    return it == views.end() ? nullptr : &it->second;
  };
  plan.firstAttempt = [&](const std::string& n) { return st.nextAttempt[n]; };
  plan.backoff = &st.restartBackoff;
  plan.now = opts_.clock->monotonic();
  auto specOf = [&](const ContainerAction& a) -> const Json& {
    for (const auto& c : at(spec, {a.init ? "initContainers" : "containers"}))
      if (json::str(c, "name") == a.container) return c;
    return at(spec, {"-"});
  };
  for (const auto& c : at(spec, {"containers"}))
    if (auto v = views.find(json::str(c, "name"));
        v != views.end() && v->second.state == ContainerView::State::Running)
      st.waiting.erase(v->first);
  for (const auto& a : planPod(plan)) {
    const std::string& cname = a.container;
    switch (a.kind) {
      case ContainerAction::Kind::Create:
        startContainer(pod, st, specOf(a), a.attempt, a.init);
        break;
      case ContainerAction::Kind::Start:
        logFailure(cri_->startContainer(a.id), "startContainer");
        break;
      case ContainerAction::Kind::BackOff: {
        std::string who = nameOf(pod) + "_" + namespaceOf(pod) + "(" + uid + ")";
        st.waiting[cname] = {"CrashLoopBackOff",
                             "back-off " + timefmt::goDuration(st.restartBackoff[cname].delay) +
                                 " restarting failed container=" + cname + " pod=" + who};
        events_->record(pod, "Warning", "BackOff",
                        "Back-off restarting failed container " + cname + " in pod " + who,
                        "spec.containers{" + cname + "}");
        queue_.addAfter(key, a.retryIn + std::chrono::milliseconds(50));
        break;
      }
      case ContainerAction::Kind::Kill:
        st.killedForLiveness.insert(a.id);
        events_->record(pod, "Normal", "Killing",
                        "Container " + cname + " failed liveness probe, will be restarted",
                        "spec.containers{" + cname + "}");
        logFailure(
            cri_->stopContainer(a.id, json::integer(spec, "terminationGracePeriodSeconds", 30)),
            "stopContainer");
        queue_.add(key);
        break;
    }
  }
  rt = runtimeFor(uid);
  // Ephemeral containers (kubectl debug) start once in a running pod and are never restarted.
  if (json::str(st.lastStatus, "phase") == "Running" || phase == "Running") {
    bool started = false;
    for (const auto& e : at(spec, {"ephemeralContainers"}))
      if (!rt.latest(st.sandboxId, json::str(e, "name")))
        started |= startContainer(pod, st, e, 0, false);
    if (started) rt = runtimeFor(uid);
  }
  // Probes follow the running containers.
  std::set<std::string> running;
  const Json& containers = at(spec, {"containers"});
  if (containers.is_array())
    for (const auto& c : containers)
      if (const auto* cur = rt.latest(st.sandboxId, json::str(c, "name"));
          cur && cur->state() == runtime::v1::CONTAINER_RUNNING) {
        running.insert(cur->id());
        prober_->track(key, st.podIp, cur->id(), json::str(c, "name"), c);
      }
  prober_->untrackExcept(key, running);
  if (st.timeline.sandbox && !st.timeline.started && containers.is_array() &&
      running.size() == containers.size())
    st.timeline.started = opts_.clock->monotonic();
  bool ok = writeStatus(pod, st, rt);
  std::string newPhase = json::str(st.lastStatus, "phase");
  if ((newPhase == "Succeeded" || newPhase == "Failed") && !st.terminated) {
    // A finished pod keeps its containers (for logs) but not its sandbox.
    for (const auto& s : rt.sandboxes) logFailure(cri_->stopPodSandbox(s.id()), "stopPodSandbox");
    st.terminated = true;
  }
  return ok;
}

runtime::v1::PodSandboxConfig AgentImpl::sandboxConfigFor(const Json& pod, uint32_t attempt) {
  runtime::v1::PodSandboxConfig c;
  const Json& spec = at(pod, {"spec"});
  std::string ns = namespaceOf(pod), name = nameOf(pod), uid = uidOf(pod);
  auto* md = c.mutable_metadata();
  md->set_name(name);
  md->set_namespace_(ns);
  md->set_uid(uid);
  md->set_attempt(attempt);
  bool hostNetwork = json::boolean(spec, "hostNetwork");
  if (!hostNetwork) {
    std::string hn = json::str(spec, "hostname", name);
    c.set_hostname(hn.substr(0, 63));
  }
  c.set_log_directory(podDir(uid) + "/logs");
  std::string dnsPolicy = json::str(spec, "dnsPolicy", "ClusterFirst");
  auto* dns = c.mutable_dns_config();
  if ((dnsPolicy == "ClusterFirst" && !hostNetwork) || dnsPolicy == "ClusterFirstWithHostNet") {
    dns->add_servers(opts_.clusterDns);
    dns->add_searches(ns + ".svc." + opts_.clusterDomain);
    dns->add_searches("svc." + opts_.clusterDomain);
    dns->add_searches(opts_.clusterDomain);
    dns->add_options("ndots:5");
  } else if (dnsPolicy == "None") {
    const Json& cfg = at(spec, {"dnsConfig"});
    for (const auto& s : at(cfg, {"nameservers"}))
      if (s.is_string()) dns->add_servers(s.get<std::string>());
    for (const auto& s : at(cfg, {"searches"}))
      if (s.is_string()) dns->add_searches(s.get<std::string>());
    for (const auto& o : at(cfg, {"options"})) {
      std::string opt = json::str(o, "name");
      if (o.contains("value")) opt += ":" + json::str(o, "value");
      dns->add_options(opt);
    }
  }
  // hostPorts go through the CNI portmap plugin.
  for (const auto& ct : at(spec, {"containers"}))
    for (const auto& p : at(ct, {"ports"})) {
      int64_t hostPort = json::integer(p, "hostPort", 0);
      if (hostPort <= 0) continue;
      auto* pm = c.add_port_mappings();
      pm->set_container_port(static_cast<int32_t>(json::integer(p, "containerPort")));
      pm->set_host_port(static_cast<int32_t>(hostPort));
      pm->set_host_ip(json::str(p, "hostIP"));
      std::string proto = json::str(p, "protocol", "TCP");
      pm->set_protocol(proto == "UDP"    ? runtime::v1::UDP
                       : proto == "SCTP" ? runtime::v1::SCTP
                                         : runtime::v1::TCP);
    }
  (*c.mutable_labels())[kLabelPodName] = name;
  (*c.mutable_labels())[kLabelPodNamespace] = ns;
  (*c.mutable_labels())[kLabelPodUid] = uid;
  for (const auto& item : at(pod, {"metadata", "labels"}).items())
    if (item.value().is_string())
      (*c.mutable_labels())[item.key()] = item.value().get<std::string>();
  for (const auto& item : at(pod, {"metadata", "annotations"}).items())
    if (item.value().is_string())
      (*c.mutable_annotations())[item.key()] = item.value().get<std::string>();
  auto* linux = c.mutable_linux();
  linux->set_cgroup_parent("/podium/pod" + uid);
  auto* sc = linux->mutable_security_context();
  auto* nso = sc->mutable_namespace_options();
  nso->set_network(hostNetwork ? runtime::v1::NODE : runtime::v1::POD);
  nso->set_pid(json::boolean(spec, "hostPID")                 ? runtime::v1::NODE
               : json::boolean(spec, "shareProcessNamespace") ? runtime::v1::POD
                                                              : runtime::v1::CONTAINER);
  nso->set_ipc(json::boolean(spec, "hostIPC") ? runtime::v1::NODE : runtime::v1::POD);
  const Json& psc = at(spec, {"securityContext"});
  if (psc.contains("runAsUser"))
    sc->mutable_run_as_user()->set_value(json::integer(psc, "runAsUser"));
  if (psc.contains("runAsGroup"))
    sc->mutable_run_as_group()->set_value(json::integer(psc, "runAsGroup"));
  for (const auto& g : at(psc, {"supplementalGroups"}))
    if (g.is_number_integer()) sc->add_supplemental_groups(g.get<int64_t>());
  for (const auto& ct : at(spec, {"containers"}))
    if (json::boolean(at(ct, {"securityContext"}), "privileged")) sc->set_privileged(true);
  return c;
}

Expected<void, std::string> AgentImpl::joinMesh(const Json& pod, PodState& st) {
  if (!mesh::inMesh(pod) || !st.netns.empty() || st.sandboxId.empty()) return {};
  auto netns = cri_->sandboxNetns(st.sandboxId);
  if (!netns) return Unexpected(netns.error().message);
  if (netns->empty())
    return Unexpected(std::string("the runtime does not name its network namespace"));
  if (auto r = applyInNetns(*netns, podMeshScript(opts_.serviceCidr)); !r) return r;
  st.netns = *netns;
  publishMeshPods();
  if (proxy_ && !st.podIp.empty() && !proxy_->waitMeshPod(st.podIp, std::chrono::seconds(5)))
    PODIUM_LOG(Warn) << "the node proxy is not yet listening in pod " << st.podIp
                     << "; its containers start anyway";
  return {};
}

void AgentImpl::publishMeshPods() {
  std::map<std::string, std::string> pods;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, st] : states_)
      if (!st.netns.empty() && !st.podIp.empty()) pods[st.podIp] = st.netns;
  }
  if (proxy_) proxy_->setMeshPods(std::move(pods));
}

Expected<void, std::string> AgentImpl::ensureSandbox(const Json& pod, PodState& st,
                                                     const RuntimePod& rt, bool* created) {
  *created = false;
  if (const auto* ready = rt.readySandbox()) {
    if (st.sandboxId != ready->id() || st.podIp.empty()) {
      if (st.sandboxId != ready->id()) st.netns.clear();
      st.sandboxId = ready->id();
      st.sandboxConfig = sandboxConfigFor(pod, ready->metadata().attempt());
      if (json::boolean(at(pod, {"spec"}), "hostNetwork")) {
        st.podIp = opts_.nodeIp;
      } else if (auto s = cri_->podSandboxStatus(ready->id())) {
        st.podIp = s->network().ip();
      }
    }
    return {};
  }
  uint32_t attempt = rt.sandboxes.empty() ? 0 : rt.sandboxes[0].metadata().attempt() + 1;
  if (!rt.sandboxes.empty())
    events_->record(pod, "Normal", "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.");
  for (const auto& c : rt.containers) {
    uint32_t& next = st.nextAttempt[c.metadata().name()];
    next = std::max(next, c.metadata().attempt() + 1);
  }
  for (const auto& s : rt.sandboxes) {
    logFailure(cri_->stopPodSandbox(s.id()), "stopPodSandbox");
    logFailure(cri_->removePodSandbox(s.id()), "removePodSandbox");
  }
  st.sandboxConfig = sandboxConfigFor(pod, attempt);
  std::error_code ec;
  std::filesystem::create_directories(st.sandboxConfig.log_directory(), ec);
  auto id = cri_->runPodSandbox(st.sandboxConfig);
  if (!id) return Unexpected(id.error().message);
  st.sandboxId = *id;
  st.netns.clear();
  if (json::boolean(at(pod, {"spec"}), "hostNetwork")) {
    st.podIp = opts_.nodeIp;
  } else {
    auto s = cri_->podSandboxStatus(*id);
    if (!s) return Unexpected(s.error().message);
    st.podIp = s->network().ip();
    if (netfilter_ && !st.podIp.empty()) netfilter_->forgetAddress(st.podIp);
  }
  // /etc/hosts for the pod's containers, as the kubelet writes it.
  std::string hosts =
      "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
      "ip6-loopback\n"
      "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-"
      "allrouters\n";
  if (!json::boolean(at(pod, {"spec"}), "hostNetwork"))
    hosts += st.podIp + "\t" + st.sandboxConfig.hostname() + "\n";
  for (const auto& ha : at(pod, {"spec", "hostAliases"})) {
    std::vector<std::string> names;
    for (const auto& h : at(ha, {"hostnames"}))
      if (h.is_string()) names.push_back(h.get<std::string>());
    hosts += json::str(ha, "ip") + "\t" + strings::join(names, "\t") + "\n";
  }
  std::filesystem::create_directories(podDir(st.uid), ec);
  std::ofstream(podDir(st.uid) + "/etc-hosts") << hosts;
  *created = true;
  return {};
}

Expected<std::string, std::string> AgentImpl::pullIfNeeded(const Json& pod, PodState& st,
                                                           const Json& spec) {
  std::string cname = json::str(spec, "name");
  std::string image = json::str(spec, "image");
  std::string policy = json::str(spec, "imagePullPolicy", "IfNotPresent");
  std::string field = "spec.containers{" + cname + "}";
  auto id = cri_->imageId(image);
  std::string present = id ? *id : "";
  if (policy == "Never") {
    if (present.empty()) {
      std::string msg =
          "Container image \"" + image + "\" is not present with pull policy of Never";
      st.waiting[cname] = {"ErrImageNeverPull", msg};
      events_->record(pod, "Warning", "ErrImageNeverPull", msg, field);
      return Unexpected(msg);
    }
    return present;
  }
  if (policy == "IfNotPresent" && !present.empty()) {
    events_->record(pod, "Normal", "Pulled",
                    "Container image \"" + image + "\" already present on machine", field);
    return present;
  }
  auto now = opts_.clock->monotonic();
  Backoff& b = st.pullBackoff[image];
  if (b.active(now)) {
    std::string msg = "Back-off pulling image \"" + image + "\"";
    st.waiting[cname] = {"ImagePullBackOff", msg};
    events_->record(pod, "Normal", "BackOff", msg, field);
    events_->record(pod, "Warning", "Failed", "Error: ImagePullBackOff", field);
    queue_.addAfter(client::Informer::keyOf(pod), b.remaining(now) + std::chrono::milliseconds(50));
    return Unexpected(msg);
  }
  events_->record(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"", field);
  auto t0 = opts_.clock->monotonic();
  auto ref = cri_->pullImage(image);
  if (!ref) {
    b.next(opts_.clock->monotonic());
    std::string msg = "failed to pull and unpack image \"" + image + "\": " + ref.error().message;
    st.waiting[cname] = {"ErrImagePull", msg};
    events_->record(pod, "Warning", "Failed",
                    "Failed to pull image \"" + image + "\": " + ref.error().message, field);
    events_->record(pod, "Warning", "Failed", "Error: ErrImagePull", field);
    queue_.addAfter(client::Informer::keyOf(pod),
                    b.remaining(opts_.clock->monotonic()) + std::chrono::milliseconds(50));
    return Unexpected(msg);
  }
  double secs = std::chrono::duration<double>(opts_.clock->monotonic() - t0).count();
  char took[32];
  snprintf(took, sizeof took, "%.3fs", secs);
  events_->record(pod, "Normal", "Pulled",
                  "Successfully pulled image \"" + image + "\" in " + took + " (" + took +
                      " including waiting)",
                  field);
  st.pullBackoff.erase(image);
  return *ref;
}

void AgentImpl::removeOldAttempts(const RuntimePod& rt, const std::string& sandboxId,
                                  const std::string& name, uint32_t keepFrom) {
  for (const auto& c : rt.containers)
    if (c.pod_sandbox_id() == sandboxId && c.metadata().name() == name &&
        c.metadata().attempt() < keepFrom && c.state() != runtime::v1::CONTAINER_RUNNING)
      logFailure(cri_->removeContainer(c.id()), "removeContainer");
}

bool AgentImpl::startContainer(const Json& pod, PodState& st, const Json& spec, uint32_t attempt,
                               bool init) {
  if (stopping_) return false;
  std::string cname = json::str(spec, "name");
  std::string field = std::string(init ? "spec.initContainers{" : "spec.containers{") + cname + "}";
  auto image = pullIfNeeded(pod, st, spec);
  if (!image) return false;
  st.imageIds[cname] = *image;
  if (attempt > 0) removeOldAttempts(runtimeFor(st.uid), st.sandboxId, cname, attempt - 1);
  auto config = containerConfigFor(pod, st, spec, attempt);
  if (!config) {
    st.waiting[cname] = {"CreateContainerConfigError", config.error()};
    events_->record(pod, "Warning", "Failed", "Error: " + config.error(), field);
    return false;
  }
  auto id = cri_->createContainer(st.sandboxId, *config, st.sandboxConfig);
  if (!id) {
    st.waiting[cname] = {"CreateContainerError", id.error().message};
    events_->record(pod, "Warning", "Failed", "Error: " + id.error().message, field);
    return false;
  }
  events_->record(pod, "Normal", "Created", "Created container " + cname, field);
  auto started = cri_->startContainer(*id);
  if (!started) {
    events_->record(
        pod, "Warning", "Failed",
        "Error: failed to start container \"" + cname + "\": " + started.error().message, field);
    st.waiting.erase(cname);
    return false;
  }
  events_->record(pod, "Normal", "Started", "Started container " + cname, field);
  st.waiting.erase(cname);
  return true;
}

Expected<runtime::v1::ContainerConfig, std::string> AgentImpl::containerConfigFor(
    const Json& pod, PodState& st, const Json& spec, uint32_t attempt) {
  runtime::v1::ContainerConfig c;
  std::string cname = json::str(spec, "name");
  c.mutable_metadata()->set_name(cname);
  c.mutable_metadata()->set_attempt(attempt);
  c.mutable_image()->set_image(st.imageIds.count(cname) ? st.imageIds[cname]
                                                        : json::str(spec, "image"));
  auto env = environment(pod, spec);
  if (!env) return Unexpected(env.error());
  std::map<std::string, std::string> envMap;
  for (const auto& [k, v] : *env) {
    auto* kv = c.add_envs();
    kv->set_key(k);
    kv->set_value(v);
    envMap[k] = v;
  }
  for (const auto& a : at(spec, {"command"}))
    if (a.is_string()) c.add_command(expandVars(a.get<std::string>(), envMap));
  for (const auto& a : at(spec, {"args"}))
    if (a.is_string()) c.add_args(expandVars(a.get<std::string>(), envMap));
  c.set_working_dir(json::str(spec, "workingDir"));
  auto m = mounts(pod, spec);
  if (!m) return Unexpected(m.error());
  for (auto& mount : *m) *c.add_mounts() = std::move(mount);
  (*c.mutable_labels())[kLabelContainerName] = cname;
  (*c.mutable_labels())[kLabelPodName] = nameOf(pod);
  (*c.mutable_labels())[kLabelPodNamespace] = namespaceOf(pod);
  (*c.mutable_labels())[kLabelPodUid] = uidOf(pod);
  (*c.mutable_annotations())["io.kubernetes.container.restartCount"] = std::to_string(attempt);
  c.set_log_path(cname + "/" + std::to_string(attempt) + ".log");
  c.set_stdin(json::boolean(spec, "stdin"));
  c.set_stdin_once(json::boolean(spec, "stdinOnce"));
  c.set_tty(json::boolean(spec, "tty"));
  auto* linux = c.mutable_linux();
  auto* r = linux->mutable_resources();
  const Json& req = at(spec, {"resources", "requests"});
  const Json& lim = at(spec, {"resources", "limits"});
  int64_t cpuReq = api::milliValue(at(req, {"cpu"}));
  int64_t cpuLim = api::milliValue(at(lim, {"cpu"}));
  if (cpuReq == 0 && cpuLim > 0) cpuReq = cpuLim;
  r->set_cpu_shares(std::max<int64_t>(2, cpuReq * 1024 / 1000));
  if (cpuLim > 0) {
    r->set_cpu_period(100000);
    r->set_cpu_quota(std::max<int64_t>(1000, cpuLim * 100000 / 1000));
  }
  int64_t memLim = api::value(at(lim, {"memory"}));
  if (memLim > 0) r->set_memory_limit_in_bytes(memLim);
  std::string qos = json::getString(pod, {"status", "qosClass"});
  // Upstream's OOM score by QoS class; containerd clamps it to what this machine allows.
  r->set_oom_score_adj(qos == "Guaranteed" ? -997 : qos == "BestEffort" ? 1000 : 999);
  const Json& sc = at(spec, {"securityContext"});
  const Json& psc = at(pod, {"spec", "securityContext"});
  auto* lsc = linux->mutable_security_context();
  lsc->set_privileged(json::boolean(sc, "privileged"));
  if (sc.contains("runAsUser") || psc.contains("runAsUser"))
    lsc->mutable_run_as_user()->set_value(
        json::integer(sc, "runAsUser", json::integer(psc, "runAsUser")));
  if (sc.contains("runAsGroup") || psc.contains("runAsGroup"))
    lsc->mutable_run_as_group()->set_value(
        json::integer(sc, "runAsGroup", json::integer(psc, "runAsGroup")));
  lsc->set_readonly_rootfs(json::boolean(sc, "readOnlyRootFilesystem"));
  if (sc.contains("allowPrivilegeEscalation"))
    lsc->set_no_new_privs(!json::boolean(sc, "allowPrivilegeEscalation"));
  for (const auto& cap : at(sc, {"capabilities", "add"}))
    if (cap.is_string()) lsc->mutable_capabilities()->add_add_capabilities(cap.get<std::string>());
  for (const auto& cap : at(sc, {"capabilities", "drop"}))
    if (cap.is_string()) lsc->mutable_capabilities()->add_drop_capabilities(cap.get<std::string>());
  auto* nso = lsc->mutable_namespace_options();
  *nso = st.sandboxConfig.linux().security_context().namespace_options();
  // An ephemeral container with a target shares that container's processes (kubectl debug
  // --target).
  if (std::string target = json::str(spec, "targetContainerName"); !target.empty()) {
    RuntimePod rt = runtimeFor(uidOf(pod));
    const auto* t = rt.latest(st.sandboxId, target);
    if (!t || t->state() != runtime::v1::CONTAINER_RUNNING)
      return Unexpected("target container \"" + target + "\" is not running");
    nso->set_pid(runtime::v1::TARGET);
    nso->set_target_id(t->id());
  }
  return c;
}

// The first Ready this agent reports for a pod it started ends the pod's start-up timeline.
void AgentImpl::noteReady(const Json& pod, PodState& st) {
  if (!st.timeline.started || st.timeline.ready) return;
  for (const auto& c : at(st.lastStatus, {"conditions"}))
    if (json::str(c, "type") == "Ready" && json::str(c, "status") == "True") {
      st.timeline.ready = opts_.clock->monotonic();
      std::string line = startup_.observe(st.timeline);
      PODIUM_LOG(Debug) << "pod " << namespaceOf(pod) << "/" << nameOf(pod) << " started: " << line;
    }
}

bool AgentImpl::writeStatus(const Json& pod, PodState& st, const RuntimePod& rt) {
  Json status = computeStatus(pod, st, rt);
  const Json& current = at(pod, {"status"});
  if (status == current && status == st.lastStatus) return true;
  std::string ns = namespaceOf(pod), name = nameOf(pod);
  Json obj = pod;
  for (int attempt = 0; attempt < 5; ++attempt) {
    obj["status"] = status;
    auto r = client_.update(res::kPods, ns, obj, "status");
    if (r) {
      st.lastStatus = status;
      noteReady(pod, st);
      return true;
    }
    if (r.error().code() == 404) return true;
    if (r.error().code() != 409) {
      PODIUM_LOG(Warn) << "pod status " << ns << "/" << name << ": " << r.error().message();
      return false;
    }
    auto fresh = client_.get(res::kPods, ns, name);
    if (!fresh) return fresh.error().code() == 404;
    if (uidOf(*fresh) != st.uid) return true;
    obj = *fresh;
    // Keep what others own in status (the scheduler's condition, nominated node).
    for (const auto& c : at(obj, {"status", "conditions"}))
      if (json::str(c, "type") == "PodScheduled") {
        bool found = false;
        for (auto& mine : status["conditions"])
          if (json::str(mine, "type") == "PodScheduled") {
            mine = c;
            found = true;
          }
        if (!found) status["conditions"].push_back(c);
      }
  }
  return false;
}

void AgentImpl::cleanupOrphans(const std::map<std::string, std::string>& sandboxUid) {
  std::set<std::string> known;
  for (const auto& p : pods_->list("")) known.insert(uidOf(*p));
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [uid, key] : uidToKey_) known.insert(uid);
  }
  if (!pods_->synced()) return;
  for (const auto& [id, uid] : sandboxUid) {
    if (known.count(uid)) continue;
    PODIUM_LOG(Info) << "removing sandbox " << id.substr(0, 12)
                     << " of a pod this node no longer runs (" << uid << ")";
    RuntimePod rt = runtimeFor(uid);
    killRuntime(rt, 0);
    std::error_code ec;
    std::filesystem::remove_all(podDir(uid), ec);
  }
}

}  // namespace podium::node
