#include "defaults.h"

#include "podium/common/strings.h"

namespace podium::api {
namespace {

void setIfMissing(Json& obj, const char* key, Json value) {
  if (!obj.contains(key) || obj[key].is_null()) obj[key] = std::move(value);
}

// The object at obj[key], created empty if absent or not an object.
Json& child(Json& obj, const char* key) {
  Json& c = obj[key];
  if (!c.is_object()) c = Json::object();
  return c;
}

// A RollingUpdate-or-other strategy object with the rolling-update defaults given.
void defaultStrategy(Json& strategy, std::initializer_list<std::pair<const char*, Json>> rolling) {
  setIfMissing(strategy, "type", "RollingUpdate");
  if (strategy["type"] != "RollingUpdate") return;
  Json& ru = child(strategy, "rollingUpdate");
  for (const auto& [k, v] : rolling) setIfMissing(ru, k, v);
}

bool imageUsesLatest(const std::string& image) {
  if (image.find('@') != std::string::npos) return false;  // pinned by digest
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return true;
  return image.substr(colon + 1) == "latest";
}

void defaultProbe(Json& probe) {
  if (!probe.is_object()) return;
  setIfMissing(probe, "timeoutSeconds", 1);
  setIfMissing(probe, "periodSeconds", 10);
  setIfMissing(probe, "successThreshold", 1);
  setIfMissing(probe, "failureThreshold", 3);
  if (probe.contains("httpGet") && probe["httpGet"].is_object()) {
    setIfMissing(probe["httpGet"], "path", "/");
    setIfMissing(probe["httpGet"], "scheme", "HTTP");
  }
}

void defaultContainer(Json& c) {
  if (!c.is_object()) return;
  setIfMissing(c, "terminationMessagePath", "/dev/termination-log");
  setIfMissing(c, "terminationMessagePolicy", "File");
  if (!c.contains("imagePullPolicy") && c.contains("image") && c["image"].is_string())
    c["imagePullPolicy"] =
        imageUsesLatest(c["image"].get<std::string>()) ? "Always" : "IfNotPresent";
  setIfMissing(c, "resources", Json::object());
  if (c.contains("ports") && c["ports"].is_array())
    for (auto& p : c["ports"])
      if (p.is_object()) setIfMissing(p, "protocol", "TCP");
  if (c.contains("env") && c["env"].is_array())
    for (auto& e : c["env"]) {
      if (!e.is_object()) continue;
      if (auto* fr = e.contains("valueFrom") && e["valueFrom"].is_object() &&
                             e["valueFrom"].contains("fieldRef")
                         ? &e["valueFrom"]["fieldRef"]
                         : nullptr;
          fr && fr->is_object())
        setIfMissing(*fr, "apiVersion", "v1");
    }
  for (const char* p : {"livenessProbe", "readinessProbe", "startupProbe"})
    if (c.contains(p)) defaultProbe(c[p]);
}

void defaultVolumes(Json& spec) {
  if (!spec.contains("volumes") || !spec["volumes"].is_array()) return;
  for (auto& v : spec["volumes"]) {
    if (!v.is_object()) continue;
    for (const char* src : {"configMap", "secret", "projected", "downwardAPI"})
      if (v.contains(src) && v[src].is_object()) setIfMissing(v[src], "defaultMode", 420);
    if (v.contains("hostPath") && v["hostPath"].is_object())
      setIfMissing(v["hostPath"], "type", "");
  }
}

void defaultTemplate(Json& obj, std::initializer_list<const char*> path) {
  Json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p) || !(*cur)[p].is_object()) return;
    cur = &(*cur)[p];
  }
  if (cur->contains("spec") && (*cur)["spec"].is_object()) defaultPodSpec((*cur)["spec"]);
}

std::string qosClass(const Json& spec) {
  bool anyRequest = false, allGuaranteed = true;
  auto containers = Json::array();
  for (const char* list : {"containers", "initContainers"})
    if (spec.contains(list) && spec[list].is_array())
      for (const auto& c : spec[list]) containers.push_back(c);
  for (const auto& c : containers) {
    const Json* res = json::find(c, {"resources"});
    const Json* req = res ? json::find(*res, {"requests"}) : nullptr;
    const Json* lim = res ? json::find(*res, {"limits"}) : nullptr;
    bool hasReq = req && req->is_object() && !req->empty();
    bool hasLim = lim && lim->is_object() && !lim->empty();
    if (hasReq || hasLim) anyRequest = true;
    for (const char* r : {"cpu", "memory"}) {
      if (!lim || !lim->is_object() || !lim->contains(r)) {
        allGuaranteed = false;
        continue;
      }
      if (req && req->is_object() && req->contains(r) && (*req)[r] != (*lim)[r])
        allGuaranteed = false;
    }
  }
  if (!anyRequest) return "BestEffort";
  return allGuaranteed ? "Guaranteed" : "Burstable";
}

void defaultPod(Json& pod) {
  Json& spec = pod["spec"];
  if (!spec.is_object()) return;
  defaultPodSpec(spec);
  setIfMissing(spec, "enableServiceLinks", true);
  if (!spec.contains("serviceAccountName") || spec["serviceAccountName"] == "") {
    std::string sa = spec.contains("serviceAccount") && spec["serviceAccount"].is_string()
                         ? spec["serviceAccount"].get<std::string>()
                         : "default";
    spec["serviceAccountName"] = sa.empty() ? "default" : sa;
  }
  setIfMissing(spec, "serviceAccount", spec["serviceAccountName"]);
  setIfMissing(spec, "priority", 0);
  setIfMissing(spec, "preemptionPolicy", "PreemptLowerPriority");
  // Limits without requests request the limit (SetDefaults_Pod).
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (auto& c : spec[list]) {
      Json* lim = c.contains("resources") ? &c["resources"] : nullptr;
      if (!lim || !lim->contains("limits") || !(*lim)["limits"].is_object()) continue;
      Json& req = (*lim)["requests"];
      if (!req.is_object()) req = Json::object();
      for (const auto& item : (*lim)["limits"].items())
        if (!req.contains(item.key())) req[item.key()] = item.value();
    }
  }
  // DefaultTolerationSeconds admission.
  Json& tol = spec["tolerations"];
  if (!tol.is_array()) tol = Json::array();
  for (const char* key : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
    bool has = false;
    for (const auto& t : tol) has = has || (t.is_object() && json::str(t, "key", "") == key);
    if (!has)
      tol.push_back({{"key", key},
                     {"operator", "Exists"},
                     {"effect", "NoExecute"},
                     {"tolerationSeconds", 300}});
  }
  Json& status = child(pod, "status");
  setIfMissing(status, "phase", "Pending");
  status["qosClass"] = qosClass(spec);
}

void defaultService(Json& svc) {
  Json& spec = svc["spec"];
  if (!spec.is_object()) return;
  setIfMissing(spec, "type", "ClusterIP");
  std::string type = spec["type"].is_string() ? spec["type"].get<std::string>() : "ClusterIP";
  setIfMissing(spec, "sessionAffinity", "None");
  if (spec.contains("ports") && spec["ports"].is_array())
    for (auto& p : spec["ports"]) {
      if (!p.is_object()) continue;
      setIfMissing(p, "protocol", "TCP");
      if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
    }
  if (type != "ExternalName") {
    setIfMissing(spec, "internalTrafficPolicy", "Cluster");
    if (type == "NodePort" || type == "LoadBalancer")
      setIfMissing(spec, "externalTrafficPolicy", "Cluster");
    if (type == "LoadBalancer") setIfMissing(spec, "allocateLoadBalancerNodePorts", true);
    setIfMissing(spec, "ipFamilies", Json::array({"IPv4"}));
    setIfMissing(spec, "ipFamilyPolicy", "SingleStack");
  }
  Json& status = child(svc, "status");
  setIfMissing(status, "loadBalancer", Json::object());
}

void defaultSecret(Json& secret) {
  setIfMissing(secret, "type", "Opaque");
  if (secret.contains("stringData") && secret["stringData"].is_object()) {
    Json& data = child(secret, "data");
    for (const auto& item : secret["stringData"].items())
      if (item.value().is_string())
        data[item.key()] = strings::base64Encode(item.value().get<std::string>());
    secret.erase("stringData");
  }
}

void defaultDeploymentLike(Json& obj, const std::string& plural) {
  Json& spec = obj["spec"];
  if (!spec.is_object()) return;
  if (plural != "daemonsets") setIfMissing(spec, "replicas", 1);
  if (plural == "deployments") {
    defaultStrategy(child(spec, "strategy"), {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}});
    setIfMissing(spec, "revisionHistoryLimit", 10);
    setIfMissing(spec, "progressDeadlineSeconds", 600);
  } else if (plural == "statefulsets") {
    setIfMissing(spec, "podManagementPolicy", "OrderedReady");
    defaultStrategy(child(spec, "updateStrategy"), {{"partition", 0}});
    // maxUnavailable above 1 is behind an alpha gate Kubernetes 1.32 keeps off, and a server
    // with the gate off drops the field: so does this one (the controller updates one pod at a
    // time), rather than keep a setting it does not honour.
    Json& strategy = child(spec, "updateStrategy");
    if (strategy.contains("rollingUpdate") && strategy["rollingUpdate"].is_object())
      strategy["rollingUpdate"].erase("maxUnavailable");
    setIfMissing(spec, "revisionHistoryLimit", 10);
    Json& pvc = child(spec, "persistentVolumeClaimRetentionPolicy");
    setIfMissing(pvc, "whenDeleted", "Retain");
    setIfMissing(pvc, "whenScaled", "Retain");
  } else if (plural == "daemonsets") {
    defaultStrategy(child(spec, "updateStrategy"), {{"maxUnavailable", 1}, {"maxSurge", 0}});
    setIfMissing(spec, "revisionHistoryLimit", 10);
  }
  defaultTemplate(obj, {"spec", "template"});
}

void defaultJobSpec(Json& spec) {
  if (!spec.is_object()) return;
  if (!spec.contains("completions") && !spec.contains("parallelism")) {
    spec["completions"] = 1;
    spec["parallelism"] = 1;
  }
  setIfMissing(spec, "parallelism", 1);
  setIfMissing(spec, "backoffLimit", 6);
  setIfMissing(spec, "completionMode", "NonIndexed");
  setIfMissing(spec, "suspend", false);
  setIfMissing(spec, "podReplacementPolicy", "TerminatingOrFailed");
  if (spec.contains("template") && spec["template"].is_object() &&
      spec["template"].contains("spec"))
    defaultPodSpec(spec["template"]["spec"]);
}

}  // namespace

void defaultPodSpec(Json& spec) {
  if (!spec.is_object()) return;
  setIfMissing(spec, "restartPolicy", "Always");
  setIfMissing(spec, "terminationGracePeriodSeconds", 30);
  setIfMissing(spec, "dnsPolicy", "ClusterFirst");
  setIfMissing(spec, "securityContext", Json::object());
  setIfMissing(spec, "schedulerName", "default-scheduler");
  for (const char* list : {"containers", "initContainers"})
    if (spec.contains(list) && spec[list].is_array())
      for (auto& c : spec[list]) defaultContainer(c);
  defaultVolumes(spec);
}

void applyDefaults(const ResourceInfo& r, Json& obj) {
  if (r.custom || !obj.is_object()) return;
  const std::string& g = r.group;
  const std::string& p = r.plural;
  if (g.empty()) {
    if (p == "pods") {
      defaultPod(obj);
    } else if (p == "services") {
      defaultService(obj);
    } else if (p == "secrets") {
      defaultSecret(obj);
    } else if (p == "namespaces") {
      Json& spec = child(obj, "spec");
      setIfMissing(spec, "finalizers", Json::array({"kubernetes"}));
      Json& status = child(obj, "status");
      setIfMissing(status, "phase", "Active");
      std::string name = json::getString(obj, {"metadata", "name"});
      if (!name.empty()) obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    } else if (p == "endpoints") {
      if (obj.contains("subsets") && obj["subsets"].is_array())
        for (auto& s : obj["subsets"])
          if (s.contains("ports") && s["ports"].is_array())
            for (auto& port : s["ports"]) setIfMissing(port, "protocol", "TCP");
    } else if (p == "podtemplates") {
      defaultTemplate(obj, {"template"});
    } else if (p == "replicationcontrollers") {
      // Kubernetes' SetDefaults_ReplicationController: the selector and the controller's own
      // labels default to the template's labels.
      Json& spec = child(obj, "spec");
      setIfMissing(spec, "replicas", 1);
      const Json* labels = json::find(spec, {"template", "metadata", "labels"});
      if (labels && labels->is_object() && !labels->empty()) {
        if (!spec.contains("selector") || !spec["selector"].is_object() || spec["selector"].empty())
          spec["selector"] = *labels;
        Json& meta = child(obj, "metadata");
        if (!meta.contains("labels") || !meta["labels"].is_object() || meta["labels"].empty())
          meta["labels"] = *labels;
      }
      defaultTemplate(obj, {"spec", "template"});
    } else if (p == "persistentvolumeclaims" || p == "persistentvolumes") {
      if (obj.contains("spec") && obj["spec"].is_object()) {
        Json& spec = obj["spec"];
        setIfMissing(spec, "volumeMode", "Filesystem");
        if (p == "persistentvolumes") {
          setIfMissing(spec, "persistentVolumeReclaimPolicy", "Retain");
          if (spec.contains("hostPath") && spec["hostPath"].is_object())
            setIfMissing(spec["hostPath"], "type", "");
        }
      }
      setIfMissing(child(obj, "status"), "phase", "Pending");
    }
  } else if (g == "apps") {
    if (p != "controllerrevisions") defaultDeploymentLike(obj, p);
    // A DaemonSet's status counts are not optional (Go ints without omitempty): clients'
    // models require them, so a new one carries zeros, as Kubernetes' answers do.
    if (p == "statefulsets") {
      if (!obj.contains("status") || !obj["status"].is_object()) obj["status"] = Json::object();
      setIfMissing(obj["status"], "replicas", 0);
      setIfMissing(obj["status"], "availableReplicas", 0);
    }
    if (p == "daemonsets") {
      if (!obj.contains("status") || !obj["status"].is_object()) obj["status"] = Json::object();
      for (const char* f : {"currentNumberScheduled", "desiredNumberScheduled",
                            "numberMisscheduled", "numberReady"})
        setIfMissing(obj["status"], f, 0);
    }
  } else if (g == "batch") {
    if (p == "jobs" && obj.contains("spec")) defaultJobSpec(obj["spec"]);
    if (p == "cronjobs" && obj.contains("spec") && obj["spec"].is_object()) {
      Json& spec = obj["spec"];
      setIfMissing(spec, "concurrencyPolicy", "Allow");
      setIfMissing(spec, "suspend", false);
      setIfMissing(spec, "successfulJobsHistoryLimit", 3);
      setIfMissing(spec, "failedJobsHistoryLimit", 1);
      if (spec.contains("jobTemplate") && spec["jobTemplate"].contains("spec"))
        defaultJobSpec(spec["jobTemplate"]["spec"]);
    }
  } else if (g == "apiregistration.k8s.io") {
    if (obj.contains("spec") && obj["spec"].is_object() && obj["spec"].contains("service") &&
        obj["spec"]["service"].is_object())
      setIfMissing(obj["spec"]["service"], "port", 443);
  } else if (g == "admissionregistration.k8s.io") {
    if (!obj.contains("webhooks") || !obj["webhooks"].is_array()) return;
    for (auto& w : obj["webhooks"]) {
      if (!w.is_object()) continue;
      setIfMissing(w, "failurePolicy", "Fail");
      setIfMissing(w, "matchPolicy", "Equivalent");
      setIfMissing(w, "namespaceSelector", Json::object());
      setIfMissing(w, "objectSelector", Json::object());
      setIfMissing(w, "timeoutSeconds", 10);
      if (p == "mutatingwebhookconfigurations") setIfMissing(w, "reinvocationPolicy", "Never");
      if (w.contains("rules") && w["rules"].is_array())
        for (auto& rule : w["rules"])
          if (rule.is_object()) setIfMissing(rule, "scope", "*");
      if (json::find(w, {"clientConfig", "service"}) && w["clientConfig"]["service"].is_object())
        setIfMissing(w["clientConfig"]["service"], "port", 443);
    }
  } else if (g == "storage.k8s.io" && p == "storageclasses") {
    setIfMissing(obj, "reclaimPolicy", "Delete");
    setIfMissing(obj, "volumeBindingMode", "Immediate");
  } else if (g == "discovery.k8s.io" && p == "endpointslices") {
    if (obj.contains("ports") && obj["ports"].is_array())
      for (auto& port : obj["ports"])
        if (port.is_object()) setIfMissing(port, "protocol", "TCP");
  } else if (g == "autoscaling" && p == "horizontalpodautoscalers") {
    if (obj.contains("spec") && obj["spec"].is_object()) {
      Json& spec = obj["spec"];
      setIfMissing(spec, "minReplicas", 1);
      if (!spec.contains("metrics") || !spec["metrics"].is_array() || spec["metrics"].empty())
        spec["metrics"] =
            Json::array({{{"type", "Resource"},
                          {"resource",
                           {{"name", "cpu"},
                            {"target", {{"type", "Utilization"}, {"averageUtilization", 80}}}}}}});
    }
  } else if (g == "rbac.authorization.k8s.io" &&
             (p == "rolebindings" || p == "clusterrolebindings")) {
    if (obj.contains("subjects") && obj["subjects"].is_array())
      for (auto& s : obj["subjects"]) {
        if (!s.is_object() || s.contains("apiGroup")) continue;
        std::string kind = json::str(s, "kind", "");
        if (kind == "User" || kind == "Group") s["apiGroup"] = "rbac.authorization.k8s.io";
      }
  } else if (g == "apiextensions.k8s.io") {
    Json& spec = obj["spec"];
    if (!spec.is_object()) return;
    Json& conv = child(spec, "conversion");
    setIfMissing(conv, "strategy", "None");
    if (spec.contains("names") && spec["names"].is_object()) {
      Json& names = spec["names"];
      std::string kind = json::str(names, "kind", "");
      if (!kind.empty()) {
        std::string lower = kind;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        setIfMissing(names, "singular", lower);
        setIfMissing(names, "listKind", kind + "List");
      }
    }
  }
}

}  // namespace podium::api
