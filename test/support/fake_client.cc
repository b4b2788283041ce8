#include "support/fake_client.h"

#include <thread>

#include "podium/api/selectors.h"
#include "podium/client/objects.h"
#include "podium/common/strings.h"

namespace podium::testing {

using client::EventType;
using client::ObjectPtr;
using client::Resource;
namespace res = client::resources;

// ----------------------------------------------------------------------------- clock

namespace {
// 2026-01-01T00:00:00Z
const auto kEpoch = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));
const auto kMonotonicEpoch = std::chrono::steady_clock::time_point(std::chrono::hours(1000));
}  // namespace

std::chrono::system_clock::time_point FakeClock::now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kEpoch + offset_;
}

std::chrono::steady_clock::time_point FakeClock::monotonic() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kMonotonicEpoch + offset_;
}

void FakeClock::advance(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  offset_ += d;
}

// ----------------------------------------------------------------------------- watch

class FakeClient::FakeWatch : public client::Watch {
 public:
  FakeWatch(FakeClient& owner, std::string resource, std::string ns, client::ListOptions options)
      : owner_(owner),
        resource_(std::move(resource)),
        ns_(std::move(ns)),
        options_(std::move(options)) {}
  ~FakeWatch() override {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    owner_.watches_.erase(this);
  }

  bool next(std::vector<client::Event>& out, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || stopped_; });
    while (!queue_.empty()) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return !stopped_;
  }
  void stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  // Called with the owner's lock held.
  void offer(const Change& c) {
    if (c.resource != resource_ || !owner_.selected(options_, ns_, *c.object)) return;
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({c.type, c.object});
    cv_.notify_all();
  }

 private:
  FakeClient& owner_;
  std::string resource_, ns_;
  client::ListOptions options_;
  std::mutex mu_;  // guards queue_, stopped_
  std::condition_variable cv_;
  std::deque<client::Event> queue_;
  bool stopped_ = false;
};

// ----------------------------------------------------------------------------- client

FakeClient::FakeClient(Clock& clock) : clock_(clock) {
  for (const auto& [r, kind, namespaced] : std::vector<std::tuple<Resource, std::string, bool>>{
           {res::kPods, "Pod", true},
           {res::kNodes, "Node", false},
           {res::kNamespaces, "Namespace", false},
           {res::kEvents, "Event", true},
           {res::kServices, "Service", true},
           {res::kEndpoints, "Endpoints", true},
           {res::kConfigMaps, "ConfigMap", true},
           {res::kSecrets, "Secret", true},
           {res::kServiceAccounts, "ServiceAccount", true},
           {res::kDeployments, "Deployment", true},
           {res::kReplicaSets, "ReplicaSet", true},
           {res::kReplicationControllers, "ReplicationController", true},
           {res::kDaemonSets, "DaemonSet", true},
           {res::kStatefulSets, "StatefulSet", true},
           {res::kControllerRevisions, "ControllerRevision", true},
           {res::kPersistentVolumes, "PersistentVolume", false},
           {res::kPersistentVolumeClaims, "PersistentVolumeClaim", true},
           {res::kStorageClasses, "StorageClass", false},
           {res::kJobs, "Job", true},
           {res::kCronJobs, "CronJob", true},
           {res::kHorizontalPodAutoscalers, "HorizontalPodAutoscaler", true},
           {res::kPodDisruptionBudgets, "PodDisruptionBudget", true},
           {res::kLeases, "Lease", true},
           {res::kEndpointSlices, "EndpointSlice", true},
           {res::kIngresses, "Ingress", true},
           {res::kVirtualServices, "VirtualService", true},
           {res::kDestinationRules, "DestinationRule", true},
           {res::kGateways, "Gateway", true},
           {res::kAuthorizationPolicies, "AuthorizationPolicy", true},
           {res::kPeerAuthentications, "PeerAuthentication", true},
           {res::kRollouts, "Rollout", true},
           {res::kAnalysisRuns, "AnalysisRun", true},
           {res::kAnalysisTemplates, "AnalysisTemplate", true},
           {res::kClusterAnalysisTemplates, "ClusterAnalysisTemplate", false},
           {Resource{"podium.dev", "v1alpha1", "imagebuilds"}, "ImageBuild", true},
           {Resource{"apiextensions.k8s.io", "v1", "customresourcedefinitions"},
            "CustomResourceDefinition", false}})
    serve(r, kind, namespaced);
}

FakeClient::~FakeClient() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto* w : watches_) w->stop();
}

std::string FakeClient::keyOf(const Resource& r) {
  return r.group + "/" + r.version + "/" + r.plural;
}

void FakeClient::serve(const Resource& r, const std::string& kind, bool namespaced) {
  std::lock_guard<std::mutex> lock(mu_);
  served_[keyOf(r)] = Served{r, kind, namespaced};
}

const FakeClient::Served* FakeClient::servedLocked(const Resource& r) const {
  auto it = served_.find(keyOf(r));
  return it == served_.end() ? nullptr : &it->second;
}

Json* FakeClient::findLocked(const Resource& r, const std::string& ns, const std::string& name) {
  const Served* s = servedLocked(r);
  if (!s) return nullptr;
  auto& store = objects_[keyOf(r)];
  auto it = store.find((s->namespaced ? ns : "") + "/" + name);
  return it == store.end() ? nullptr : &it->second;
}

api::ApiError FakeClient::notFound(const Resource& r, const std::string& name) const {
  return api::ApiError(404, "NotFound", r.plural + " \"" + name + "\" not found");
}

Json FakeClient::add(const Resource& r, Json obj) {
  std::string ns = client::namespaceOf(obj);
  std::lock_guard<std::mutex> lock(mu_);
  auto made = writeLocked(r, ns, std::move(obj), "", true);
  return made ? *made : Json();
}

ObjectPtr FakeClient::object(const Resource& r, const std::string& ns,
                             const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto rs = objects_.find(keyOf(r));
  if (rs == objects_.end()) return nullptr;
  auto it = rs->second.find(ns + "/" + name);
  return it == rs->second.end() ? nullptr : std::make_shared<const Json>(it->second);
}

std::vector<ObjectPtr> FakeClient::objects(const Resource& r, const std::string& ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  auto rs = objects_.find(keyOf(r));
  if (rs == objects_.end()) return out;
  for (const auto& [k, o] : rs->second)
    if (ns.empty() || client::namespaceOf(o) == ns) out.push_back(std::make_shared<const Json>(o));
  return out;
}

std::string FakeClient::latestResourceVersion(const Resource& r) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = latest_.find(keyOf(r));
  return std::to_string(it == latest_.end() ? 0 : it->second);
}

void FakeClient::closeWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto* w : watches_) w->stop();
}

void FakeClient::failNext(const std::string& verb, const std::string& plural, api::ApiError error,
                          int times) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.push_back({verb, plural, std::move(error), times});
}

std::optional<api::ApiError> FakeClient::failure(const std::string& verb,
                                                 const std::string& plural) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = failures_.begin(); it != failures_.end(); ++it) {
    if (it->verb != verb || it->plural != plural) continue;
    api::ApiError e = it->error;
    if (--it->times <= 0) failures_.erase(it);
    return e;
  }
  return std::nullopt;
}

void FakeClient::record(Action a) {
  std::lock_guard<std::mutex> lock(mu_);
  actions_.push_back(std::move(a));
}

std::vector<Action> FakeClient::actions(const std::string& verb, const std::string& plural) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Action> out;
  for (const auto& a : actions_)
    if ((verb.empty() || a.verb == verb) && (plural.empty() || a.resource == plural))
      out.push_back(a);
  return out;
}

std::vector<Action> FakeClient::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Action> out;
  for (const auto& a : actions_)
    if (a.verb != "get" && a.verb != "list" && a.verb != "watch") out.push_back(a);
  return out;
}

void FakeClient::clearActions() {
  std::lock_guard<std::mutex> lock(mu_);
  actions_.clear();
}

bool FakeClient::selected(const client::ListOptions& o, const std::string& ns,
                          const Json& obj) const {
  if (!ns.empty() && client::namespaceOf(obj) != ns) return false;
  if (!o.labelSelector.empty()) {
    auto sel = api::LabelSelector::parse(o.labelSelector);
    if (!sel || !sel->matches(client::at(obj, {"metadata", "labels"}))) return false;
  }
  for (const auto& term : strings::split(o.fieldSelector, ',')) {
    if (term.empty()) continue;
    bool negated = term.find("!=") != std::string::npos;
    auto at = term.find(negated ? "!=" : "=");
    if (at == std::string::npos) return false;
    std::string field = term.substr(0, at);
    std::string value = term.substr(at + (negated ? 2 : 1));
    if (!value.empty() && value[0] == '=') value = value.substr(1);  // "=="
    if ((api::fieldValue(obj, field) == value) == negated) return false;
  }
  return true;
}

void FakeClient::emitLocked(const Resource& r, EventType type, const Json& obj) {
  Change c{rv_, keyOf(r), type, std::make_shared<const Json>(obj)};
  latest_[c.resource] = rv_;
  for (auto* w : watches_) w->offer(c);
  history_.push_back(std::move(c));
}

client::Result FakeClient::writeLocked(const Resource& r, const std::string& ns, Json obj,
                                       const std::string& subresource, bool create) {
  const Served* s = servedLocked(r);
  if (!s) return Unexpected(api::ApiError(404, "NotFound", "no resource " + r.plural));
  auto& store = objects_[keyOf(r)];
  Json& meta = obj["metadata"];
  if (!meta.is_object()) meta = Json::object();
  std::string storedNs = s->namespaced ? ns : "";
  if (create) {
    std::string name = json::str(meta, "name");
    if (name.empty()) name = json::str(meta, "generateName") + "f" + std::to_string(++uids_);
    if (name.empty()) return Unexpected(api::ApiError::invalid("", s->kind, "", {}));
    if (store.count(storedNs + "/" + name))
      return Unexpected(
          api::ApiError(409, "AlreadyExists", r.plural + " \"" + name + "\" already exists"));
    meta["name"] = name;
    if (s->namespaced) meta["namespace"] = storedNs;
    meta["uid"] = "uid-" + std::to_string(++uids_);
    meta["creationTimestamp"] = timefmt::rfc3339(clock_.now());
    meta["generation"] = 1;
    obj["apiVersion"] = r.apiVersion();
    obj["kind"] = s->kind;
    meta["resourceVersion"] = std::to_string(++rv_);
    store[storedNs + "/" + name] = obj;
    emitLocked(r, EventType::Added, obj);
    return obj;
  }
  std::string name = json::str(meta, "name");
  auto it = store.find(storedNs + "/" + name);
  if (it == store.end()) return Unexpected(notFound(r, name));
  const Json& old = it->second;
  std::string wantRv = json::str(meta, "resourceVersion");
  if (!wantRv.empty() && wantRv != client::resourceVersionOf(old))
    return Unexpected(api::ApiError(409, "Conflict",
                                    "Operation cannot be fulfilled on " + r.plural + " \"" + name +
                                        "\": the object has been modified; please apply your "
                                        "changes to the latest version and try again"));
  Json next = old;
  if (subresource == "status") {
    if (obj.contains("status"))
      next["status"] = obj["status"];
    else
      next.erase("status");
  } else if (subresource == "finalize") {
    next["spec"]["finalizers"] = client::at(obj, {"spec", "finalizers"}).is_array()
                                     ? obj["spec"]["finalizers"]
                                     : Json::array();
  } else {
    Json keep = old.contains("status") ? old["status"] : Json();
    next = obj;
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "namespace", "name"})
      if (old["metadata"].contains(f))
        next["metadata"][f] = old["metadata"][f];
      else
        next["metadata"].erase(f);
    if (keep.is_null())
      next.erase("status");
    else
      next["status"] = keep;
    Json a = old, b = next;
    for (Json* x : {&a, &b}) {
      x->erase("metadata");
      x->erase("status");
    }
    int64_t gen = json::integer(old["metadata"], "generation", 1);
    next["metadata"]["generation"] = a == b ? gen : gen + 1;
  }
  next["metadata"]["resourceVersion"] = client::resourceVersionOf(old);
  if (next == old) return old;
  next["metadata"]["resourceVersion"] = std::to_string(++rv_);
  bool gone = client::isDeleting(next) && client::at(next, {"metadata", "finalizers"}).empty() &&
              client::at(next, {"spec", "finalizers"}).empty() && r.plural != "pods";
  if (gone) {
    store.erase(it);
    emitLocked(r, EventType::Deleted, next);
    return next;
  }
  it->second = next;
  emitLocked(r, EventType::Modified, next);
  return next;
}

client::Result FakeClient::get(const Resource& r, const std::string& ns, const std::string& name) {
  record({"get", r.plural, ns, name, "", Json()});
  if (auto f = failure("get", r.plural)) return Unexpected(*f);
  auto o = object(r, ns, name);
  if (!o) return Unexpected(notFound(r, name));
  return *o;
}

Expected<client::List, api::ApiError> FakeClient::list(const Resource& r, const std::string& ns,
                                                       const client::ListOptions& options) {
  record({"list", r.plural, ns, "", "", Json()});
  if (auto f = failure("list", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  if (!servedLocked(r)) return Unexpected(api::ApiError(404, "NotFound", "no " + r.plural));
  client::List out;
  for (const auto& [k, o] : objects_[keyOf(r)])
    if (selected(options, ns, o)) out.items.push_back(std::make_shared<const Json>(o));
  out.resourceVersion = std::to_string(rv_);
  return out;
}

Expected<client::WatchPtr, api::ApiError> FakeClient::watch(const Resource& r,
                                                            const std::string& ns,
                                                            const client::ListOptions& options) {
  record({"watch", r.plural, ns, "", "", Json()});
  if (auto f = failure("watch", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  if (!servedLocked(r)) return Unexpected(api::ApiError(404, "NotFound", "no " + r.plural));
  auto w = std::make_unique<FakeWatch>(*this, keyOf(r), ns, options);
  int64_t from = strings::parseInt(options.resourceVersion).value_or(rv_);
  for (const auto& c : history_)
    if (c.rv > from) w->offer(c);
  watches_.insert(w.get());
  return client::WatchPtr(std::move(w));
}

client::Result FakeClient::create(const Resource& r, const std::string& ns, const Json& obj) {
  record({"create", r.plural, ns, client::nameOf(obj), "", obj});
  if (auto f = failure("create", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  return writeLocked(r, ns, obj, "", true);
}

client::Result FakeClient::update(const Resource& r, const std::string& ns, const Json& obj,
                                  const std::string& subresource) {
  record({"update", r.plural, ns, client::nameOf(obj), subresource, obj});
  if (auto f = failure("update", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  if (subresource == "scale") {  // the Scale's replicas into the object's spec
    const Json* cur = findLocked(r, ns, client::nameOf(obj));
    if (!cur) return Unexpected(notFound(r, client::nameOf(obj)));
    Json next = *cur;
    next["spec"]["replicas"] = client::at(obj, {"spec", "replicas"});
    next["metadata"]["resourceVersion"] = client::resourceVersionOf(obj);
    return writeLocked(r, ns, next, "", false);
  }
  return writeLocked(r, ns, obj, subresource, false);
}

client::Result FakeClient::getScale(const Resource& r, const std::string& ns,
                                    const std::string& name) {
  record({"get", r.plural, ns, name, "scale", Json()});
  if (auto f = failure("get", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  const Json* cur = findLocked(r, ns, name);
  if (!cur) return Unexpected(notFound(r, name));
  auto selector = api::LabelSelector::fromObject(client::at(*cur, {"spec", "selector"}));
  return Json{
      {"apiVersion", "autoscaling/v1"},
      {"kind", "Scale"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"resourceVersion", client::resourceVersionOf(*cur)}}},
      {"spec", {{"replicas", client::at(*cur, {"spec", "replicas"})}}},
      {"status",
       {{"replicas", json::integer(client::at(*cur, {"status"}), "replicas")},
        {"selector", selector ? selector->str() : ""}}}};
}

void FakeClient::setRaw(std::function<client::Result(const std::string& path)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  raw_ = std::move(handler);
}

client::Result FakeClient::getRaw(const std::string& path) {
  record({"get", "raw", "", path, "", Json()});
  if (auto f = failure("get", "raw")) return Unexpected(*f);
  std::function<client::Result(const std::string&)> raw;
  {
    std::lock_guard<std::mutex> lock(mu_);
    raw = raw_;
  }
  if (!raw) return Unexpected(api::ApiError(404, "NotFound", "no aggregated API serves " + path));
  return raw(path);
}

client::Result FakeClient::patch(const Resource& r, const std::string& ns, const std::string& name,
                                 const Json& mergePatch, const std::string& subresource) {
  record({"patch", r.plural, ns, name, subresource, mergePatch});
  if (auto f = failure("patch", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  const Json* cur = findLocked(r, ns, name);
  if (!cur) return Unexpected(notFound(r, name));
  Json next = *cur;
  next["metadata"].erase("resourceVersion");
  next.merge_patch(mergePatch);  // a Scale's spec.replicas is the object's
  // A resourceVersion in the patch is a precondition (as the API server takes it).
  if (client::resourceVersionOf(next).empty())
    next["metadata"]["resourceVersion"] = client::resourceVersionOf(*cur);
  return writeLocked(r, ns, next, subresource == "scale" ? "" : subresource, false);
}

client::Result FakeClient::apply(const Resource& r, const std::string& ns, const Json& config,
                                 bool force, DryRun dryRun) {
  record({"apply", r.plural, ns, client::nameOf(config), "", config});
  if (auto f = failure("apply", r.plural)) return Unexpected(*f);
  auto cur = object(r, ns, client::nameOf(config));
  if (dryRun != DryRun::No) {
    Json out = cur ? *cur : config;
    if (cur) out.merge_patch(config);
    return out;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cur) return writeLocked(r, ns, config, "", true);
  Json next = *cur;
  next.merge_patch(config);
  next["metadata"]["resourceVersion"] = client::resourceVersionOf(*cur);
  return writeLocked(r, ns, next, "", false);
}

client::Result FakeClient::remove(const Resource& r, const std::string& ns, const std::string& name,
                                  const client::DeleteOptions& options) {
  Json opts = {{"propagationPolicy", options.propagationPolicy},
               {"preconditionUid", options.preconditionUid},
               {"preconditionResourceVersion", options.preconditionResourceVersion}};
  record({"delete", r.plural, ns, name, "", opts});
  if (auto f = failure("delete", r.plural)) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  const Served* s = servedLocked(r);
  const Json* found = findLocked(r, ns, name);
  if (!found) return Unexpected(notFound(r, name));
  auto& store = objects_[keyOf(r)];
  auto it = store.find((s->namespaced ? ns : "") + "/" + name);
  Json cur = *found;
  if ((!options.preconditionUid.empty() && options.preconditionUid != client::uidOf(cur)) ||
      (!options.preconditionResourceVersion.empty() &&
       options.preconditionResourceVersion != client::resourceVersionOf(cur)))
    return Unexpected(api::ApiError(409, "Conflict", "Precondition failed"));
  Json fin = client::at(cur, {"metadata", "finalizers"}).is_array() ? cur["metadata"]["finalizers"]
                                                                    : Json::array();
  if (options.propagationPolicy == "Foreground") fin.push_back("foregroundDeletion");
  if (options.propagationPolicy == "Orphan") fin.push_back("orphan");
  // A running pod on a node, or an object with finalizers, is marked and waits.
  bool graceful = r.plural == "pods" && !json::getString(cur, {"spec", "nodeName"}).empty() &&
                  client::isPodActive(cur) && options.gracePeriodSeconds.value_or(30) != 0;
  // A namespace waits for its spec.finalizers (the namespace controller empties it first).
  bool namespaceFinalizers =
      r.plural == "namespaces" && !client::at(cur, {"spec", "finalizers"}).empty();
  if (fin.empty() && !graceful && !namespaceFinalizers) {
    store.erase(it);
    cur["metadata"]["resourceVersion"] = std::to_string(++rv_);
    emitLocked(r, EventType::Deleted, cur);
    return cur;
  }
  if (client::isDeleting(cur) && !graceful && !namespaceFinalizers) return cur;
  cur["metadata"]["deletionTimestamp"] = timefmt::rfc3339(clock_.now());
  cur["metadata"]["finalizers"] = fin;
  if (fin.empty()) cur["metadata"].erase("finalizers");
  cur["metadata"]["resourceVersion"] = std::to_string(++rv_);
  it->second = cur;
  emitLocked(r, EventType::Modified, cur);
  return cur;
}

Expected<void, api::ApiError> FakeClient::bind(const std::string& ns, const std::string& pod,
                                               const std::string& uid, const std::string& node) {
  record({"bind", "pods", ns, pod, "binding", Json{{"target", node}}});
  if (auto f = failure("bind", "pods")) return Unexpected(*f);
  std::lock_guard<std::mutex> lock(mu_);
  auto& store = objects_[keyOf(res::kPods)];
  auto it = store.find(ns + "/" + pod);
  if (it == store.end()) return Unexpected(notFound(res::kPods, pod));
  if ((!uid.empty() && client::uidOf(it->second) != uid) ||
      !json::getString(it->second, {"spec", "nodeName"}).empty())
    return Unexpected(api::ApiError(409, "Conflict", "pod " + pod + " is already assigned"));
  Json next = it->second;
  next["spec"]["nodeName"] = node;
  next["metadata"]["resourceVersion"] = std::to_string(++rv_);
  it->second = next;
  emitLocked(res::kPods, EventType::Modified, next);
  return {};
}

client::Result FakeClient::requestCertificate(const std::string& ns, const std::string& sa,
                                              const Json& request) {
  record({"create", "serviceaccounts", ns, sa, "certificate", request});
  return Unexpected(api::ApiError(404, "NotFound", "the fake client runs no mesh CA"));
}

std::vector<Resource> FakeClient::namespacedResources() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Resource> out;
  for (const auto& [k, s] : served_)
    if (s.namespaced) out.push_back(s.resource);
  return out;
}

std::vector<Resource> FakeClient::allResources() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Resource> out;
  for (const auto& [k, s] : served_) out.push_back(s.resource);
  return out;
}

std::optional<Resource> FakeClient::resourceFor(const std::string& apiVersion,
                                                const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, s] : served_)
    if (s.kind == kind && s.resource.apiVersion() == apiVersion) return s.resource;
  return std::nullopt;
}

bool FakeClient::namespaced(const Resource& r) {
  std::lock_guard<std::mutex> lock(mu_);
  const Served* s = servedLocked(r);
  return s && s->namespaced;
}

// ----------------------------------------------------------------------------- waiting

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

bool settle(client::InformerFactory& informers, const FakeClient& fake,
            std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        for (auto* inf : informers.informers()) {
          if (!inf->started()) continue;
          auto seen = strings::parseInt(inf->lastResourceVersion()).value_or(-1);
          auto newest = strings::parseInt(fake.latestResourceVersion(inf->resource())).value_or(0);
          if (seen < newest) return false;
        }
        return true;
      },
      timeout);
}

}  // namespace podium::testing
