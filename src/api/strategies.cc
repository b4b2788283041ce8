// The per-kind strategies of the API's storage (strategy.h).
#include <algorithm>
#include <set>

#include "podium/common/log.h"
#include "podium/common/net.h"
#include "storage_impl.h"
#include "strategy.h"

namespace podium::api {

bool Strategy::resetsStatusOnCreate(const ResourceInfo& r) const {
  if (r.custom) return r.hasStatus;
  static const std::set<std::string> kinds = {"apps/deployments",
                                              "apps/replicasets",
                                              "apps/statefulsets",
                                              "apps/daemonsets",
                                              "batch/jobs",
                                              "batch/cronjobs",
                                              "autoscaling/horizontalpodautoscalers",
                                              "networking.k8s.io/ingresses",
                                              "policy/poddisruptionbudgets"};
  return kinds.count(r.group + "/" + r.plural) > 0;
}

namespace {

ApiError invalidService(const std::string& name, FieldError e) {
  return ApiError::invalid("", "Service", name, {std::move(e)});
}

// Services: a ClusterIP from the service range (.1 is the API's own Service, .10 the cluster
// DNS, as in k3s) and node ports from 30000-32767, kept across updates. Writes are serialised
// so two services never get one address.
class ServiceStrategy : public Strategy {
 public:
  std::mutex* writeLock() const override { return &mu_; }

  Expected<void, ApiError> prepare(const ResourceInfo&, Json& svc, const Json* old,
                                   StrategyContext& ctx) const override {
    Json& spec = svc["spec"];
    if (!spec.is_object()) return {};
    std::string type = json::str(spec, "type", "ClusterIP");
    std::string name = metaString(svc, "name");
    if (type == "ExternalName") {
      spec.erase("clusterIP");
      spec.erase("clusterIPs");
      return {};
    }
    auto cidr = net::Cidr::parse(ctx.options.serviceCidr);
    if (!cidr || cidr->bits < 8 || cidr->bits > 30)
      return Unexpected(ApiError::internal("bad service CIDR " + ctx.options.serviceCidr));
    std::set<uint32_t> usedIps;
    std::set<int64_t> usedPorts;
    int64_t rev;
    for (const auto& c : ctx.cacher.list("/registry/core/services/", &rev)) {
      if (old && metaString(*c.object, "uid") == metaString(*old, "uid")) continue;
      if (auto ip = net::parseIpv4(json::getString(*c.object, {"spec", "clusterIP"})))
        usedIps.insert(*ip);
      const Json* ports = json::find(*c.object, {"spec", "ports"});
      if (ports && ports->is_array())
        for (const auto& p : *ports)
          if (json::integer(p, "nodePort", 0) != 0)
            usedPorts.insert(json::integer(p, "nodePort", 0));
    }
    std::string ip = json::str(spec, "clusterIP", "");
    if (ip.empty() && old) ip = json::getString(*old, {"spec", "clusterIP"});
    if (ip.empty()) {
      for (uint32_t i = 2; i + 1 < cidr->size(); ++i) {
        uint32_t cand = cidr->base + i;
        if (i == 10 || usedIps.count(cand)) continue;
        ip = net::formatIpv4(cand);
        break;
      }
      if (ip.empty())
        return Unexpected(ApiError::internal("failed to allocate a serviceIP: range is full"));
    } else if (ip != "None") {
      auto parsed = net::parseIpv4(ip);
      if (!parsed)
        return Unexpected(invalidService(
            name, FieldError::invalid("spec.clusterIPs[0]", ip,
                                      "must be a valid IP address, (e.g. 10.9.8.7 or "
                                      "2001:db8::ffff)")));
      if (!old || json::getString(*old, {"spec", "clusterIP"}) != ip) {
        if (!cidr->contains(*parsed))
          return Unexpected(invalidService(
              name, FieldError::invalid("spec.clusterIPs", Json::array({ip}),
                                        "failed to allocate IP " + ip + ": the provided IP (" + ip +
                                            ") is not in the valid range. The range of valid IPs "
                                            "is " +
                                            ctx.options.serviceCidr)));
        if (usedIps.count(*parsed))
          return Unexpected(invalidService(
              name, FieldError::invalid(
                        "spec.clusterIPs", Json::array({ip}),
                        "failed to allocate IP " + ip + ": provided IP is already allocated")));
      }
    }
    spec["clusterIP"] = ip;
    spec["clusterIPs"] = Json::array({ip});
    if (ip == "None") spec["ipFamilies"] = Json::array({"IPv4"});
    allocateNodePorts(type, spec, old, usedPorts, ctx.options);
    return {};
  }

 private:
  static void allocateNodePorts(const std::string& type, Json& spec, const Json* old,
                                std::set<int64_t>& used, const StorageOptions& options) {
    if (!spec.contains("ports") || !spec["ports"].is_array()) return;
    if (type != "NodePort" && type != "LoadBalancer") {
      for (auto& p : spec["ports"]) p.erase("nodePort");
      return;
    }
    const Json* oldPorts = old ? json::find(*old, {"spec", "ports"}) : nullptr;
    for (auto& p : spec["ports"]) {
      if (json::integer(p, "nodePort", 0) != 0) continue;
      if (oldPorts && oldPorts->is_array())
        for (const auto& op : *oldPorts)
          if (json::integer(op, "port", 0) == json::integer(p, "port", 0) &&
              json::integer(op, "nodePort", 0) != 0)
            p["nodePort"] = op["nodePort"];
      if (json::integer(p, "nodePort", 0) != 0) continue;
      for (int64_t port = options.nodePortMin; port <= options.nodePortMax; ++port)
        if (!used.count(port)) {
          p["nodePort"] = port;
          used.insert(port);
          break;
        }
    }
  }
  mutable std::mutex mu_;  // serialises address allocation with the write that claims it
};

// Namespaces: the built-in ones stay, spec.finalizers hold a deletion (the namespace
// controller empties it first) and the phase turns Terminating; each new namespace gets its
// "default" ServiceAccount (the serviceaccounts controller's job upstream).
class NamespaceStrategy : public Strategy {
 public:
  Expected<void, ApiError> checkDelete(const ResourceInfo&,
                                       const std::string& name) const override {
    if (name == "default" || name == "kube-system" || name == "kube-public")
      return Unexpected(ApiError::forbidden("namespaces \"" + name +
                                            "\" is forbidden: this namespace may not be deleted"));
    return {};
  }
  bool holdsDeletion(const Json& obj) const override {
    return nonEmptyList(json::find(obj, {"spec", "finalizers"}));
  }
  void markDeleting(Json& obj) const override { obj["status"]["phase"] = "Terminating"; }
  void afterCreate(const ResourceInfo&, const Json& ns, StrategyContext& ctx) const override {
    std::string name = metaString(ns, "name");
    auto sa = ctx.storage.registry().snapshot()->find("", "v1", "serviceaccounts");
    if (!sa || ctx.cacher.get(sa->key(name, "default"))) return;
    WriteOptions so;
    so.fieldManager = "podium-serviceaccounts";
    Json account = {{"apiVersion", "v1"},
                    {"kind", "ServiceAccount"},
                    {"metadata", {{"name", "default"}, {"namespace", name}}}};
    auto made = ctx.storage.create(*sa, name, account, so);
    if (!made && made.error().code() != 409)
      PODIUM_LOG(Warn) << "default service account for namespace " << name << ": "
                       << made.error().message();
  }
};

// Pods bound to a node get their grace period: the node stops them, then deletes with 0.
class PodStrategy : public Strategy {
 public:
  int64_t gracePeriod(const Json& pod, const DeleteOptions& o) const override {
    if (json::getString(pod, {"spec", "nodeName"}).empty()) return 0;
    std::string phase = json::getString(pod, {"status", "phase"});
    if (phase == "Succeeded" || phase == "Failed") return 0;
    int64_t grace = o.gracePeriodSeconds.value_or(
        json::integer(json::at(pod, {"spec"}), "terminationGracePeriodSeconds", 30));
    return std::max<int64_t>(grace, 0);
  }
};

// Jobs select their own pods by the job's uid unless spec.manualSelector.
class JobStrategy : public Strategy {
 public:
  Expected<void, ApiError> prepare(const ResourceInfo&, Json& job, const Json* old,
                                   StrategyContext&) const override {
    if (old) return {};
    std::string uid = metaString(job, "uid");
    std::string name = metaString(job, "name");
    Json& spec = job["spec"];
    if (!spec.is_object() || json::boolean(spec, "manualSelector", false)) return {};
    Json labels = {{"batch.kubernetes.io/controller-uid", uid},
                   {"batch.kubernetes.io/job-name", name},
                   {"controller-uid", uid},
                   {"job-name", name}};
    if (!spec.contains("selector"))
      spec["selector"] = {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}};
    Json& tl = spec["template"]["metadata"]["labels"];
    if (!tl.is_object()) tl = Json::object();
    for (const auto& item : labels.items()) tl[item.key()] = item.value();
    return {};
  }
};

// Claims and volumes carry their protection finalizer from birth (Kubernetes'
// StorageObjectInUseProtection admission): a claim a pod still uses, or a volume still bound,
// is not removed when deleted; the volume controller takes the finalizer off once it is free.
class VolumeStrategy : public Strategy {
 public:
  explicit VolumeStrategy(const char* finalizer) : finalizer_(finalizer) {}
  Expected<void, ApiError> prepare(const ResourceInfo&, Json& obj, const Json* old,
                                   StrategyContext&) const override {
    if (old) return {};
    Json& f = obj["metadata"]["finalizers"];
    if (!f.is_array()) f = Json::array();
    if (std::find(f.begin(), f.end(), Json(finalizer_)) == f.end()) f.push_back(finalizer_);
    return {};
  }

 private:
  const char* finalizer_;
};

// CustomResourceDefinitions: checked as the registry will read them, their status made
// (NamesAccepted, Established, storedVersions), and their custom resources deleted with them.
class CrdStrategy : public Strategy {
 public:
  Expected<void, ApiError> prepare(const ResourceInfo& r, Json& crd, const Json*,
                                   StrategyContext& ctx) const override {
    if (auto rs = resourcesFromCrd(crd); !rs) {
      std::string err = rs.error();
      auto colon = err.find(": ");
      FieldError fe =
          FieldError::invalid(colon == std::string::npos ? "spec" : err.substr(0, colon), nullptr,
                              colon == std::string::npos ? err : err.substr(colon + 2));
      return Unexpected(
          ApiError::invalid(r.group, r.qualifiedKind(), metaString(crd, "name"), {fe}));
    }
    prepareStatus(crd, timefmt::rfc3339(ctx.clock.now()));
    return {};
  }
  void beforeRemove(const ResourceInfo&, const Json& crd, StrategyContext& ctx) const override {
    std::string prefix = "/registry/" + json::getString(crd, {"spec", "group"}) + "/" +
                         json::getString(crd, {"spec", "names", "plural"}) + "/";
    int64_t rev;
    for (const auto& c : ctx.cacher.list(prefix, &rev)) {
      std::string ns = metaString(*c.object, "namespace");
      auto removed = ctx.store.remove(
          prefix + (ns.empty() ? "" : ns + "/") + metaString(*c.object, "name"), 0);
      if (!removed)
        PODIUM_LOG(Warn) << "deleting " << metaString(*c.object, "name")
                         << " with its definition: " << removed.error().message;
    }
  }

 private:
  static void prepareStatus(Json& crd, const std::string& now) {
    Json& status = crd["status"];
    if (!status.is_object()) status = Json::object();
    Json prev = status.contains("conditions") ? status["conditions"] : Json::array();
    auto keepTime = [&](const std::string& type) -> std::string {
      if (prev.is_array())
        for (const auto& c : prev)
          if (json::str(c, "type", "") == type && json::str(c, "status", "") == "True")
            return json::str(c, "lastTransitionTime", "");
      return "";
    };
    std::string t1 = keepTime("NamesAccepted"), t2 = keepTime("Established");
    status["conditions"] = Json::array({{{"type", "NamesAccepted"},
                                         {"status", "True"},
                                         {"reason", "NoConflicts"},
                                         {"message", "no conflicts found"},
                                         {"lastTransitionTime", t1.empty() ? now : t1}},
                                        {{"type", "Established"},
                                         {"status", "True"},
                                         {"reason", "InitialNamesAccepted"},
                                         {"message", "the initial names have been accepted"},
                                         {"lastTransitionTime", t2.empty() ? now : t2}}});
    if (crd.contains("spec") && crd["spec"].contains("names"))
      status["acceptedNames"] = crd["spec"]["names"];
    Json stored = status.contains("storedVersions") && status["storedVersions"].is_array()
                      ? status["storedVersions"]
                      : Json::array();
    const Json* versions = json::find(crd, {"spec", "versions"});
    if (versions && versions->is_array())
      for (const auto& v : *versions)
        if (json::boolean(v, "storage", false) &&
            std::find(stored.begin(), stored.end(), json::str(v, "name", "")) == stored.end())
          stored.push_back(json::str(v, "name", ""));
    status["storedVersions"] = stored;
  }
};

}  // namespace

const Strategy& strategyFor(const ResourceInfo& r) {
  static const Strategy kDefault;
  static const ServiceStrategy kServices;
  static const NamespaceStrategy kNamespaces;
  static const PodStrategy kPods;
  static const JobStrategy kJobs;
  static const CrdStrategy kCrds;
  static const VolumeStrategy kClaims("kubernetes.io/pvc-protection");
  static const VolumeStrategy kVolumes("kubernetes.io/pv-protection");
  if (r.custom) return kDefault;
  if (r.group.empty()) {
    if (r.plural == "persistentvolumeclaims") return kClaims;
    if (r.plural == "persistentvolumes") return kVolumes;
    if (r.plural == "services") return kServices;
    if (r.plural == "namespaces") return kNamespaces;
    if (r.plural == "pods") return kPods;
  }
  if (r.group == "batch" && r.plural == "jobs") return kJobs;
  if (r.group == "apiextensions.k8s.io" && r.plural == "customresourcedefinitions") return kCrds;
  return kDefault;
}

}  // namespace podium::api
