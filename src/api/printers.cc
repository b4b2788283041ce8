#include "printers.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "podium/api/quantity.h"
#include "podium/api/selectors.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::api {
namespace {

using Clock = std::chrono::system_clock;

struct Col {
  const char* name;
  const char* type;
  int priority;
  const char* description;
};

const Json& at(const Json& v, std::initializer_list<const char*> path) {
  static const Json null;
  const Json* cur = &v;
  for (const char* p : path) {
    if (!cur->is_object()) return null;
    auto it = cur->find(p);
    if (it == cur->end()) return null;
    cur = &*it;
  }
  return *cur;
}

std::string s(const Json& v, std::initializer_list<const char*> path,
              const std::string& dflt = "") {
  const Json& x = at(v, path);
  return x.is_string() ? x.get<std::string>() : dflt;
}

int64_t n(const Json& v, std::initializer_list<const char*> path) {
  const Json& x = at(v, path);
  return x.is_number_integer() ? x.get<int64_t>() : 0;
}

std::string age(const Json& ts, Clock::time_point now) {
  if (!ts.is_string()) return "<unknown>";
  auto t = timefmt::parseRfc3339(ts.get<std::string>());
  if (!t) return "<unknown>";
  return timefmt::humanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
}

std::string objAge(const Json& obj, Clock::time_point now) {
  return age(at(obj, {"metadata", "creationTimestamp"}), now);
}

std::string orNone(const std::string& v) { return v.empty() ? "<none>" : v; }

// Access modes as kubectl abbreviates them ("RWO,ROX").
std::string modes(const Json& list) {
  static const std::map<std::string, std::string> kShort = {{"ReadWriteOnce", "RWO"},
                                                            {"ReadOnlyMany", "ROX"},
                                                            {"ReadWriteMany", "RWX"},
                                                            {"ReadWriteOncePod", "RWOP"}};
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& m : list) {
    if (!m.is_string()) continue;
    auto it = kShort.find(m.get<std::string>());
    out += (out.empty() ? "" : ",") + (it == kShort.end() ? m.get<std::string>() : it->second);
  }
  return out;
}

std::string selectorString(const Json& sel) {
  if (sel.is_null()) return "<none>";
  auto ls = LabelSelector::fromObject(sel, false);
  if (!ls) return "<error>";
  std::string out = ls->str();
  return out.empty() ? "<none>" : out;
}

std::string mapSelector(const Json& m) {
  if (!m.is_object() || m.empty()) return "<none>";
  std::vector<std::string> parts;
  for (const auto& item : m.items())
    parts.push_back(
        item.key() + "=" +
        (item.value().is_string() ? item.value().get<std::string>() : item.value().dump()));
  return strings::join(parts, ",");
}

void containersAndImages(const Json& podSpec, std::string* names, std::string* images) {
  std::vector<std::string> ns, is;
  const Json& cs = at(podSpec, {"containers"});
  if (cs.is_array())
    for (const auto& c : cs) {
      ns.push_back(json::str(c, "name", ""));
      is.push_back(json::str(c, "image", ""));
    }
  *names = strings::join(ns, ",");
  *images = strings::join(is, ",");
}

// ---- per-kind rows -----------------------------------------------------------------------------

Json podRow(const Json& pod, Clock::time_point now) {
  const Json& status = at(pod, {"status"});
  int total = 0, ready = 0;
  int64_t restarts = 0;
  std::string lastRestart;
  Clock::time_point lastRestartTime{};
  const Json& specContainers = at(pod, {"spec", "containers"});
  total = specContainers.is_array() ? static_cast<int>(specContainers.size()) : 0;
  std::string reason = s(pod, {"status", "phase"});
  if (!s(pod, {"status", "reason"}).empty()) reason = s(pod, {"status", "reason"});
  bool initializing = false;
  const Json& initStatuses = at(status, {"initContainerStatuses"});
  if (initStatuses.is_array()) {
    int initTotal = static_cast<int>(initStatuses.size());
    for (int i = 0; i < initTotal; ++i) {
      const Json& c = initStatuses[i];
      restarts += json::integer(c, "restartCount", 0);
      const Json& term = at(c, {"state", "terminated"});
      if (term.is_object() && json::integer(term, "exitCode", 0) == 0) continue;
      initializing = true;
      if (term.is_object()) {
        reason = "Init:" + (json::str(term, "reason", "").empty()
                                ? "ExitCode:" + std::to_string(json::integer(term, "exitCode", 0))
                                : json::str(term, "reason", ""));
      } else if (!s(c, {"state", "waiting", "reason"}).empty() &&
                 s(c, {"state", "waiting", "reason"}) != "PodInitializing") {
        reason = "Init:" + s(c, {"state", "waiting", "reason"});
      } else {
        reason = "Init:" + std::to_string(i) + "/" + std::to_string(initTotal);
      }
      break;
    }
  }
  const Json& cstat = at(status, {"containerStatuses"});
  if (!initializing && cstat.is_array()) {
    bool hasRunning = false;
    for (auto it = cstat.rbegin(); it != cstat.rend(); ++it) {
      const Json& c = *it;
      restarts += json::integer(c, "restartCount", 0);
      std::string lastFinished = s(c, {"lastState", "terminated", "finishedAt"});
      if (!lastFinished.empty()) {
        auto t = timefmt::parseRfc3339(lastFinished);
        if (t && *t > lastRestartTime) lastRestartTime = *t;
      }
      std::string waiting = s(c, {"state", "waiting", "reason"});
      const Json& term = at(c, {"state", "terminated"});
      if (!waiting.empty()) {
        reason = waiting;
      } else if (term.is_object()) {
        if (!json::str(term, "reason", "").empty())
          reason = json::str(term, "reason", "");
        else if (json::integer(term, "signal", 0) != 0)
          reason = "Signal:" + std::to_string(json::integer(term, "signal", 0));
        else
          reason = "ExitCode:" + std::to_string(json::integer(term, "exitCode", 0));
      } else if (at(c, {"state", "running"}).is_object() && json::boolean(c, "ready", false)) {
        hasRunning = true;
        ++ready;
      }
    }
    if (reason == "Completed" && hasRunning) reason = "Running";
  } else if (cstat.is_array()) {
    for (const auto& c : cstat) restarts += json::integer(c, "restartCount", 0);
  }
  if (!at(pod, {"metadata", "deletionTimestamp"}).is_null()) reason = "Terminating";
  std::string restartText = std::to_string(restarts);
  if (restarts > 0 && lastRestartTime != Clock::time_point{})
    restartText += " (" +
                   timefmt::humanDuration(
                       std::chrono::duration_cast<std::chrono::seconds>(now - lastRestartTime)) +
                   " ago)";
  std::string gates = "<none>";
  const Json& rg = at(pod, {"spec", "readinessGates"});
  if (rg.is_array() && !rg.empty()) {
    int trueGates = 0;
    for (const auto& g : rg) {
      const Json& conds = at(status, {"conditions"});
      if (conds.is_array())
        for (const auto& cd : conds)
          if (json::str(cd, "type", "") == json::str(g, "conditionType", "") &&
              json::str(cd, "status", "") == "True")
            ++trueGates;
    }
    gates = std::to_string(trueGates) + "/" + std::to_string(rg.size());
  }
  return Json::array({s(pod, {"metadata", "name"}),
                      std::to_string(ready) + "/" + std::to_string(total), reason, restartText,
                      objAge(pod, now), orNone(s(pod, {"status", "podIP"})),
                      orNone(s(pod, {"spec", "nodeName"})),
                      orNone(s(pod, {"status", "nominatedNodeName"})), gates});
}

Json serviceRow(const Json& svc, Clock::time_point now) {
  std::string type = s(svc, {"spec", "type"}, "ClusterIP");
  std::string clusterIp = s(svc, {"spec", "clusterIP"});
  std::vector<std::string> ext;
  const Json& eips = at(svc, {"spec", "externalIPs"});
  if (eips.is_array())
    for (const auto& e : eips)
      if (e.is_string()) ext.push_back(e.get<std::string>());
  std::string external;
  if (type == "ExternalName") {
    external = s(svc, {"spec", "externalName"});
  } else if (type == "LoadBalancer") {
    const Json& ing = at(svc, {"status", "loadBalancer", "ingress"});
    if (ing.is_array())
      for (const auto& i : ing) ext.push_back(json::str(i, "ip", json::str(i, "hostname")));
    external = ext.empty() ? "<pending>" : strings::join(ext, ",");
  } else {
    external = ext.empty() ? "<none>" : strings::join(ext, ",");
  }
  std::vector<std::string> ports;
  const Json& ps = at(svc, {"spec", "ports"});
  if (ps.is_array())
    for (const auto& p : ps) {
      std::string port = std::to_string(json::integer(p, "port", 0));
      if (json::integer(p, "nodePort", 0) != 0)
        port += ":" + std::to_string(json::integer(p, "nodePort", 0));
      ports.push_back(port + "/" + json::str(p, "protocol", "TCP"));
    }
  return Json::array({s(svc, {"metadata", "name"}), type, clusterIp.empty() ? "<none>" : clusterIp,
                      external, ports.empty() ? "<none>" : strings::join(ports, ","),
                      objAge(svc, now), mapSelector(at(svc, {"spec", "selector"}))});
}

Json deploymentRow(const Json& d, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(d, {"spec", "template", "spec"}), &names, &images);
  int64_t desired =
      at(d, {"spec", "replicas"}).is_number_integer() ? n(d, {"spec", "replicas"}) : 1;
  return Json::array(
      {s(d, {"metadata", "name"}),
       std::to_string(n(d, {"status", "readyReplicas"})) + "/" + std::to_string(desired),
       n(d, {"status", "updatedReplicas"}), n(d, {"status", "availableReplicas"}), objAge(d, now),
       names, images, selectorString(at(d, {"spec", "selector"}))});
}

Json replicaSetRow(const Json& rs, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(rs, {"spec", "template", "spec"}), &names, &images);
  int64_t desired =
      at(rs, {"spec", "replicas"}).is_number_integer() ? n(rs, {"spec", "replicas"}) : 1;
  return Json::array({s(rs, {"metadata", "name"}), desired, n(rs, {"status", "replicas"}),
                      n(rs, {"status", "readyReplicas"}), objAge(rs, now), names, images,
                      selectorString(at(rs, {"spec", "selector"}))});
}

// A ReplicationController's row is a ReplicaSet's, its selector a plain map of labels.
Json replicationControllerRow(const Json& rc, Clock::time_point now) {
  Json row = replicaSetRow(rc, now);
  row[7] = selectorString(Json{{"matchLabels", at(rc, {"spec", "selector"})}});
  return row;
}

Json statefulSetRow(const Json& ss, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(ss, {"spec", "template", "spec"}), &names, &images);
  int64_t desired =
      at(ss, {"spec", "replicas"}).is_number_integer() ? n(ss, {"spec", "replicas"}) : 1;
  return Json::array(
      {s(ss, {"metadata", "name"}),
       std::to_string(n(ss, {"status", "readyReplicas"})) + "/" + std::to_string(desired),
       objAge(ss, now), names, images});
}

Json daemonSetRow(const Json& ds, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(ds, {"spec", "template", "spec"}), &names, &images);
  return Json::array(
      {s(ds, {"metadata", "name"}), n(ds, {"status", "desiredNumberScheduled"}),
       n(ds, {"status", "currentNumberScheduled"}), n(ds, {"status", "numberReady"}),
       n(ds, {"status", "updatedNumberScheduled"}), n(ds, {"status", "numberAvailable"}),
       mapSelector(at(ds, {"spec", "template", "spec", "nodeSelector"})), objAge(ds, now), names,
       images, selectorString(at(ds, {"spec", "selector"}))});
}

Json jobRow(const Json& job, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(job, {"spec", "template", "spec"}), &names, &images);
  std::string status = "Running";
  const Json& conds = at(job, {"status", "conditions"});
  if (conds.is_array())
    for (const auto& c : conds) {
      if (json::str(c, "status", "") != "True") continue;
      std::string t = json::str(c, "type", "");
      if (t == "Complete")
        status = "Complete";
      else if (t == "Failed")
        status = "Failed";
      else if (t == "Suspended")
        status = "Suspended";
      else if (t == "FailureTarget")
        status = "FailureTarget";
      else if (t == "SuccessCriteriaMet")
        status = "SuccessCriteriaMet";
    }
  if (!at(job, {"metadata", "deletionTimestamp"}).is_null()) status = "Terminating";
  std::string completions = at(job, {"spec", "completions"}).is_number_integer()
                                ? std::to_string(n(job, {"status", "succeeded"})) + "/" +
                                      std::to_string(n(job, {"spec", "completions"}))
                                : std::to_string(n(job, {"status", "succeeded"})) + "/1 of " +
                                      std::to_string(n(job, {"spec", "parallelism"}));
  std::string duration;
  auto start = timefmt::parseRfc3339(s(job, {"status", "startTime"}));
  if (start) {
    auto end = timefmt::parseRfc3339(s(job, {"status", "completionTime"}));
    auto d = (end ? *end : now) - *start;
    duration = timefmt::humanDuration(std::chrono::duration_cast<std::chrono::seconds>(d));
  }
  return Json::array({s(job, {"metadata", "name"}), status, completions, duration, objAge(job, now),
                      names, images, selectorString(at(job, {"spec", "selector"}))});
}

Json cronJobRow(const Json& cj, Clock::time_point now) {
  std::string names, images;
  containersAndImages(at(cj, {"spec", "jobTemplate", "spec", "template", "spec"}), &names, &images);
  const Json& active = at(cj, {"status", "active"});
  std::string last = at(cj, {"status", "lastScheduleTime"}).is_string()
                         ? age(at(cj, {"status", "lastScheduleTime"}), now)
                         : "<none>";
  return Json::array(
      {s(cj, {"metadata", "name"}), s(cj, {"spec", "schedule"}),
       orNone(s(cj, {"spec", "timeZone"})), at(cj, {"spec", "suspend"}) == true ? "True" : "False",
       active.is_array() ? static_cast<int64_t>(active.size()) : 0, last, objAge(cj, now), names,
       images, selectorString(at(cj, {"spec", "jobTemplate", "spec", "selector"}))});
}

Json nodeRow(const Json& node, Clock::time_point now) {
  std::string status = "Unknown";
  const Json& conds = at(node, {"status", "conditions"});
  if (conds.is_array())
    for (const auto& c : conds)
      if (json::str(c, "type", "") == "Ready")
        status = json::str(c, "status", "") == "True" ? "Ready" : "NotReady";
  if (at(node, {"spec", "unschedulable"}) == true) status += ",SchedulingDisabled";
  std::vector<std::string> roles;
  const Json& labels = at(node, {"metadata", "labels"});
  if (labels.is_object())
    for (const auto& item : labels.items()) {
      const std::string& k = item.key();
      const std::string prefix = "node-role.kubernetes.io/";
      if (k.rfind(prefix, 0) == 0 && k.size() > prefix.size())
        roles.push_back(k.substr(prefix.size()));
    }
  std::sort(roles.begin(), roles.end());
  std::string internal, external;
  const Json& addrs = at(node, {"status", "addresses"});
  if (addrs.is_array())
    for (const auto& a : addrs) {
      if (json::str(a, "type", "") == "InternalIP" && internal.empty())
        internal = json::str(a, "address", "");
      if (json::str(a, "type", "") == "ExternalIP" && external.empty())
        external = json::str(a, "address", "");
    }
  return Json::array({s(node, {"metadata", "name"}), status,
                      roles.empty() ? "<none>" : strings::join(roles, ","), objAge(node, now),
                      s(node, {"status", "nodeInfo", "kubeletVersion"}), orNone(internal),
                      orNone(external), orNone(s(node, {"status", "nodeInfo", "osImage"})),
                      orNone(s(node, {"status", "nodeInfo", "kernelVersion"})),
                      orNone(s(node, {"status", "nodeInfo", "containerRuntimeVersion"}))});
}

Json eventRow(const Json& ev, Clock::time_point now) {
  const Json& last = !at(ev, {"lastTimestamp"}).is_null() ? at(ev, {"lastTimestamp"})
                     : !at(ev, {"eventTime"}).is_null()   ? at(ev, {"eventTime"})
                                                        : at(ev, {"metadata", "creationTimestamp"});
  const Json& first = !at(ev, {"firstTimestamp"}).is_null() ? at(ev, {"firstTimestamp"}) : last;
  std::string kind = s(ev, {"involvedObject", "kind"});
  std::string object = strings::toLower(kind) + "/" + s(ev, {"involvedObject", "name"});
  std::string source = s(ev, {"source", "component"});
  if (source.empty()) source = s(ev, {"reportingComponent"});
  if (!s(ev, {"source", "host"}).empty()) source += ", " + s(ev, {"source", "host"});
  int64_t count = at(ev, {"count"}).is_number_integer() ? n(ev, {"count"}) : 1;
  return Json::array({age(last, now), s(ev, {"type"}), s(ev, {"reason"}), object,
                      s(ev, {"involvedObject", "fieldPath"}), source, s(ev, {"message"}),
                      age(first, now), count, s(ev, {"metadata", "name"})});
}

Json endpointsRow(const Json& ep, Clock::time_point now) {
  std::vector<std::string> list;
  size_t total = 0;
  const Json& subsets = at(ep, {"subsets"});
  if (subsets.is_array())
    for (const auto& ss : subsets) {
      const Json& addrs = at(ss, {"addresses"});
      const Json& ports = at(ss, {"ports"});
      if (!addrs.is_array()) continue;
      for (const auto& a : addrs) {
        if (ports.is_array() && !ports.empty()) {
          for (const auto& p : ports) {
            ++total;
            if (list.size() < 3)
              list.push_back(json::str(a, "ip", "") + ":" +
                             std::to_string(json::integer(p, "port", 0)));
          }
        } else {
          ++total;
          if (list.size() < 3) list.push_back(json::str(a, "ip", ""));
        }
      }
    }
  std::string text = list.empty() ? "<none>" : strings::join(list, ",");
  if (total > list.size()) text += " + " + std::to_string(total - list.size()) + " more...";
  return Json::array({s(ep, {"metadata", "name"}), text, objAge(ep, now)});
}

Json endpointSliceRow(const Json& es, Clock::time_point now) {
  std::vector<std::string> ports, addrs;
  const Json& ps = at(es, {"ports"});
  if (ps.is_array())
    for (const auto& p : ps) ports.push_back(std::to_string(json::integer(p, "port", 0)));
  size_t total = 0;
  const Json& eps = at(es, {"endpoints"});
  if (eps.is_array())
    for (const auto& e : eps) {
      const Json& as = at(e, {"addresses"});
      if (!as.is_array()) continue;
      for (const auto& a : as) {
        ++total;
        if (addrs.size() < 3 && a.is_string()) addrs.push_back(a.get<std::string>());
      }
    }
  std::string text = addrs.empty() ? "<none>" : strings::join(addrs, ",");
  if (total > addrs.size()) text += " + " + std::to_string(total - addrs.size()) + " more...";
  return Json::array({s(es, {"metadata", "name"}), s(es, {"addressType"}),
                      ports.empty() ? "<unset>" : strings::join(ports, ","), text,
                      objAge(es, now)});
}

Json ingressRow(const Json& ing, Clock::time_point now) {
  std::vector<std::string> hosts, addrs;
  const Json& rules = at(ing, {"spec", "rules"});
  if (rules.is_array())
    for (const auto& r : rules) hosts.push_back(json::str(r, "host", "*"));
  const Json& lb = at(ing, {"status", "loadBalancer", "ingress"});
  if (lb.is_array())
    for (const auto& i : lb) addrs.push_back(json::str(i, "ip", json::str(i, "hostname")));
  bool tls = at(ing, {"spec", "tls"}).is_array() && !at(ing, {"spec", "tls"}).empty();
  return Json::array({s(ing, {"metadata", "name"}), orNone(s(ing, {"spec", "ingressClassName"})),
                      hosts.empty() ? "*" : strings::join(hosts, ","), strings::join(addrs, ","),
                      tls ? "80, 443" : "80", objAge(ing, now)});
}

// A quantity as Go's Quantity.String() shows it: whole values plainly, others in milli-units.
std::string canonicalQuantity(const Json& q) {
  std::string text = q.is_string() ? q.get<std::string>() : q.is_number() ? json::dump(q) : "";
  auto v = parseQuantity(text);
  if (!v) return text;
  double milli = std::round(*v * 1000);
  if (std::fmod(milli, 1000) == 0) return std::to_string(static_cast<int64_t>(milli / 1000));
  return std::to_string(static_cast<int64_t>(milli)) + "m";
}

// One entry of spec.metrics beside its status, as kubectl's HPA printer writes it.
std::string hpaTarget(const Json& m, const Json& status) {
  std::string type = json::str(m, "type", "");
  auto current = [&](const char* source, const char* field) {
    const Json& c = at(status, {source, "current", field});
    return c.is_null() ? std::string("<unknown>") : canonicalQuantity(c);
  };
  if (type == "Pods")
    return current("pods", "averageValue") + "/" +
           canonicalQuantity(at(m, {"pods", "target", "averageValue"}));
  if (type == "Object" || type == "External") {
    const char* source = type == "Object" ? "object" : "external";
    bool average = !at(m, {source, "target", "averageValue"}).is_null();
    const char* field = average ? "averageValue" : "value";
    return current(source, field) + "/" + canonicalQuantity(at(m, {source, "target", field})) +
           (average ? " (avg)" : "");
  }
  if (type == "Resource" || type == "ContainerResource") {
    const char* source = type == "Resource" ? "resource" : "containerResource";
    std::string name = s(m, {source, "name"});
    if (!at(m, {source, "target", "averageValue"}).is_null())
      return name + ": " + current(source, "averageValue") + "/" +
             canonicalQuantity(at(m, {source, "target", "averageValue"}));
    const Json& cu = at(status, {source, "current", "averageUtilization"});
    const Json& tu = at(m, {source, "target", "averageUtilization"});
    return name + ": " +
           (cu.is_number_integer() ? std::to_string(cu.get<int64_t>()) + "%" : "<unknown>") + "/" +
           (tu.is_number_integer() ? std::to_string(tu.get<int64_t>()) + "%" : "<auto>");
  }
  return "<unknown type>";
}

Json hpaRow(const Json& hpa, Clock::time_point now) {
  std::string ref =
      s(hpa, {"spec", "scaleTargetRef", "kind"}) + "/" + s(hpa, {"spec", "scaleTargetRef", "name"});
  std::vector<std::string> targets;
  const Json& metrics = at(hpa, {"spec", "metrics"});
  const Json& current = at(hpa, {"status", "currentMetrics"});
  if (metrics.is_array())
    for (size_t i = 0; i < metrics.size(); ++i)
      targets.push_back(hpaTarget(
          metrics[i], current.is_array() && i < current.size() ? current[i] : Json::object()));
  if (const Json& v1 = at(hpa, {"spec", "targetCPUUtilizationPercentage"});
      v1.is_number_integer()) {
    const Json& cu = at(hpa, {"status", "currentCPUUtilizationPercentage"});
    targets.push_back("cpu: " +
                      (cu.is_number_integer() ? std::to_string(cu.get<int64_t>()) + "%"
                                              : std::string("<unknown>")) +
                      "/" + std::to_string(v1.get<int64_t>()) + "%");
  }
  if (targets.size() > 2) {
    size_t more = targets.size() - 2;
    targets.resize(2);
    targets.back() += " + " + std::to_string(more) + " more...";
  }
  int64_t minR =
      at(hpa, {"spec", "minReplicas"}).is_number_integer() ? n(hpa, {"spec", "minReplicas"}) : 1;
  return Json::array({s(hpa, {"metadata", "name"}), ref,
                      targets.empty() ? "<none>" : strings::join(targets, ", "), minR,
                      n(hpa, {"spec", "maxReplicas"}), n(hpa, {"status", "currentReplicas"}),
                      objAge(hpa, now)});
}

std::string countOf(const Json& v) {
  return std::to_string(v.is_object() || v.is_array() ? v.size() : 0);
}

struct Printer {
  std::vector<Col> columns;
  std::function<Json(const Json&, Clock::time_point)> row;
};

const Printer* builtinPrinter(const ResourceInfo& r) {
  static const std::map<std::string, Printer> printers = [] {
    std::map<std::string, Printer> m;
    const char* nameDesc =
        "Name must be unique within a namespace. Is required when creating resources, although "
        "some resources may allow a client to request the generation of an appropriate name "
        "automatically. Name is primarily intended for creation idempotence and configuration "
        "definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    const char* ageDesc =
        "CreationTimestamp is a timestamp representing the server time when this object was "
        "created. It is not guaranteed to be set in happens-before order across separate "
        "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
        "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/"
        "api-conventions.md#metadata";
    m["/pods"] = {
        {{"Name", "string", 0, nameDesc},
         {"Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."},
         {"Status", "string", 0, "The aggregate status of the containers in this pod."},
         {"Restarts", "string", 0,
          "The number of times the containers in this pod have been restarted and when the last "
          "container in this pod has restarted."},
         {"Age", "string", 0, ageDesc},
         {"IP", "string", 1,
          "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
          "allocated."},
         {"Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."},
         {"Nominated Node", "string", 1,
          "nominatedNodeName is set only when this pod preempts other pods on the node."},
         {"Readiness Gates", "string", 1,
          "If specified, all readiness gates will be evaluated for pod readiness."}},
        podRow};
    m["/services"] = {
        {{"Name", "string", 0, nameDesc},
         {"Type", "string", 0, "type determines how the Service is exposed."},
         {"Cluster-IP", "string", 0, "clusterIP is the IP address of the service."},
         {"External-IP", "string", 0,
          "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
          "traffic for this service."},
         {"Port(s)", "string", 0, "The list of ports that are exposed by this service."},
         {"Age", "string", 0, ageDesc},
         {"Selector", "string", 1,
          "Route service traffic to pods with label keys and values matching this selector."}},
        serviceRow};
    m["apps/deployments"] = {
        {{"Name", "string", 0, nameDesc},
         {"Ready", "string", 0, "Number of the pod with ready state"},
         {"Up-to-date", "integer", 0,
          "Total number of non-terminated pods targeted by this deployment that have the desired "
          "template spec."},
         {"Available", "integer", 0,
          "Total number of available pods (ready for at least minReadySeconds) targeted by this "
          "deployment."},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."},
         {"Selector", "string", 1,
          "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
          "the ones affected by this deployment."}},
        deploymentRow};
    m["apps/replicasets"] = {
        {{"Name", "string", 0, nameDesc},
         {"Desired", "integer", 0, "Replicas is the number of desired replicas."},
         {"Current", "integer", 0, "Replicas is the most recently observed number of replicas."},
         {"Ready", "integer", 0, "The number of ready replicas for this replica set."},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."},
         {"Selector", "string", 1,
          "Selector is a label query over pods that should match the replica count."}},
        replicaSetRow};
    m["/replicationcontrollers"] = {m["apps/replicasets"].columns, replicationControllerRow};
    m["apps/statefulsets"] = {
        {{"Name", "string", 0, nameDesc},
         {"Ready", "string", 0, "Number of the pod with ready state"},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."}},
        statefulSetRow};
    m["apps/daemonsets"] = {
        {{"Name", "string", 0, nameDesc},
         {"Desired", "integer", 0,
          "The total number of nodes that should be running the daemon pod."},
         {"Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod."},
         {"Ready", "integer", 0,
          "The number of nodes that should be running the daemon pod and have one or more of the "
          "daemon pod running and ready."},
         {"Up-to-date", "integer", 0,
          "The total number of nodes that are running updated daemon pod"},
         {"Available", "integer", 0,
          "The number of nodes that should be running the daemon pod and have one or more of the "
          "daemon pod running and available."},
         {"Node Selector", "string", 0,
          "NodeSelector is a selector which must be true for the pod to fit on a node."},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."},
         {"Selector", "string", 1, "A label query over pods that are managed by the daemon set."}},
        daemonSetRow};
    m["batch/jobs"] = {
        {{"Name", "string", 0, nameDesc},
         {"Status", "string", 0, "Status of the job."},
         {"Completions", "string", 0, "The completed job count."},
         {"Duration", "string", 0, "Time required to complete the job."},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."},
         {"Selector", "string", 1, "A label query over pods that should match the pod count."}},
        jobRow};
    m["batch/cronjobs"] = {
        {{"Name", "string", 0, nameDesc},
         {"Schedule", "string", 0, "The schedule in Cron format."},
         {"Timezone", "string", 0, "The timezone name for the given schedule."},
         {"Suspend", "boolean", 0,
          "This flag tells the controller to suspend subsequent executions."},
         {"Active", "integer", 0, "A list of pointers to currently running jobs."},
         {"Last Schedule", "string", 0,
          "Information when was the last time the job was successfully scheduled."},
         {"Age", "string", 0, ageDesc},
         {"Containers", "string", 1, "Names of each container in the template."},
         {"Images", "string", 1, "Images referenced by each container in the template."},
         {"Selector", "string", 1, "A label query over pods that should match the pod count."}},
        cronJobRow};
    m["/namespaces"] = {{{"Name", "string", 0, nameDesc},
                         {"Status", "string", 0, "The status of the namespace"},
                         {"Age", "string", 0, ageDesc}},
                        [](const Json& o, Clock::time_point now) {
                          return Json::array({s(o, {"metadata", "name"}), s(o, {"status", "phase"}),
                                              objAge(o, now)});
                        }};
    m["/nodes"] = {
        {{"Name", "string", 0, nameDesc},
         {"Status", "string", 0, "The status of the node"},
         {"Roles", "string", 0, "The roles of the node"},
         {"Age", "string", 0, ageDesc},
         {"Version", "string", 0, "Kubelet Version reported by the node."},
         {"Internal-IP", "string", 1, "List of addresses reachable to the node."},
         {"External-IP", "string", 1, "List of addresses reachable to the node."},
         {"OS-Image", "string", 1,
          "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."},
         {"Kernel-Version", "string", 1,
          "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."},
         {"Container-Runtime", "string", 1,
          "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
          "containerd://1.4.2)."}},
        nodeRow};
    m["/configmaps"] = {
        {{"Name", "string", 0, nameDesc},
         {"Data", "integer", 0, "Data contains the configuration data."},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          size_t count = (at(o, {"data"}).is_object() ? at(o, {"data"}).size() : 0) +
                         (at(o, {"binaryData"}).is_object() ? at(o, {"binaryData"}).size() : 0);
          return Json::array({s(o, {"metadata", "name"}), count, objAge(o, now)});
        }};
    m["/secrets"] = {{{"Name", "string", 0, nameDesc},
                      {"Type", "string", 0, "The type of the secret"},
                      {"Data", "integer", 0, "The number of data items in the secret"},
                      {"Age", "string", 0, ageDesc}},
                     [](const Json& o, Clock::time_point now) {
                       return Json::array({s(o, {"metadata", "name"}), s(o, {"type"}),
                                           at(o, {"data"}).is_object() ? at(o, {"data"}).size() : 0,
                                           objAge(o, now)});
                     }};
    m["/serviceaccounts"] = {{{"Name", "string", 0, nameDesc},
                              {"Secrets", "string", 0,
                               "Secrets is the list of secrets allowed to be used by pods running "
                               "using this ServiceAccount"},
                              {"Age", "string", 0, ageDesc}},
                             [](const Json& o, Clock::time_point now) {
                               return Json::array({s(o, {"metadata", "name"}),
                                                   countOf(at(o, {"secrets"})), objAge(o, now)});
                             }};
    m["/events"] = {
        {{"Last Seen", "string", 0, "Time when last event occurred"},
         {"Type", "string", 0,
          "Type of this event (Normal, Warning), new types could be added in the future."},
         {"Reason", "string", 0,
          "Short, machine understandable string that gives the reason for this event being "
          "generated."},
         {"Object", "string", 0, "The object that this event is about."},
         {"Subobject", "string", 1, "The subobject that this event is about."},
         {"Source", "string", 1,
          "The component reporting this event. Should be a short machine understandable string."},
         {"Message", "string", 0, "A human-readable description of the status of this operation."},
         {"First Seen", "string", 1, "Time when first event occurred"},
         {"Count", "integer", 1, "The number of times this event has occurred."},
         {"Name", "string", 1, nameDesc}},
        eventRow};
    m["/endpoints"] = {{{"Name", "string", 0, nameDesc},
                        {"Endpoints", "string", 0, "Endpoints of the service"},
                        {"Age", "string", 0, ageDesc}},
                       endpointsRow};
    m["discovery.k8s.io/endpointslices"] = {
        {{"Name", "string", 0, nameDesc},
         {"AddressType", "string", 0, "The IP protocol for this slice"},
         {"Ports", "string", 0, "The ports for this slice"},
         {"Endpoints", "string", 0, "The addresses for this slice"},
         {"Age", "string", 0, ageDesc}},
        endpointSliceRow};
    m["networking.k8s.io/ingresses"] = {
        {{"Name", "string", 0, nameDesc},
         {"Class", "string", 0,
          "The name of the IngressClass resource that should be used for ingress class"},
         {"Hosts", "string", 0,
          "Hosts that incoming requests are matched against before the ingress rule"},
         {"Address", "string", 0,
          "Address is a list containing ingress points for the load-balancer"},
         {"Ports", "string", 0, "Ports of TLS configurations that open"},
         {"Age", "string", 0, ageDesc}},
        ingressRow};
    m["networking.k8s.io/ingressclasses"] = {
        {{"Name", "string", 0, nameDesc},
         {"Controller", "string", 0, "Controller that is responsible for handling this class"},
         {"Parameters", "string", 0, "A reference to a resource with additional parameters"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          std::string params = "<none>";
          const Json& p = at(o, {"spec", "parameters"});
          if (p.is_object()) params = json::str(p, "kind", "") + "/" + json::str(p, "name", "");
          return Json::array(
              {s(o, {"metadata", "name"}), s(o, {"spec", "controller"}), params, objAge(o, now)});
        }};
    m["coordination.k8s.io/leases"] = {
        {{"Name", "string", 0, nameDesc},
         {"Holder", "string", 0, "The holder of the lease"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          return Json::array(
              {s(o, {"metadata", "name"}), s(o, {"spec", "holderIdentity"}), objAge(o, now)});
        }};
    m["autoscaling/horizontalpodautoscalers"] = {
        {{"Name", "string", 0, nameDesc},
         {"Reference", "string", 0, "Reference to target resource"},
         {"Targets", "string", 0, "Target and current metrics"},
         {"MinPods", "string", 0, "Minimum number of replicas"},
         {"MaxPods", "integer", 0, "Maximum number of replicas"},
         {"Replicas", "integer", 0, "Current number of replicas"},
         {"Age", "string", 0, ageDesc}},
        hpaRow};
    m["/persistentvolumeclaims"] = {
        {{"Name", "string", 0, nameDesc},
         {"Status", "string", 0, "The status of the claim"},
         {"Volume", "string", 0, "The volume bound to the claim"},
         {"Capacity", "string", 0, "Capacity of the volume"},
         {"Access Modes", "string", 0, "Access modes of the volume"},
         {"StorageClass", "string", 0, "Storage class of the claim"},
         {"VolumeAttributesClass", "string", 0, "Volume attributes class"},
         {"Age", "string", 0, ageDesc},
         {"VolumeMode", "string", 1, "Volume mode"}},
        [](const Json& o, Clock::time_point now) {
          return Json::array({s(o, {"metadata", "name"}), s(o, {"status", "phase"}),
                              s(o, {"spec", "volumeName"}), s(o, {"status", "capacity", "storage"}),
                              modes(at(o, {"status", "accessModes"})),
                              s(o, {"spec", "storageClassName"}), "<unset>", objAge(o, now),
                              s(o, {"spec", "volumeMode"})});
        }};
    m["/persistentvolumes"] = {
        {{"Name", "string", 0, nameDesc},
         {"Capacity", "string", 0, "Capacity of the volume"},
         {"Access Modes", "string", 0, "Access modes of the volume"},
         {"Reclaim Policy", "string", 0, "What happens to the volume when its claim goes"},
         {"Status", "string", 0, "The phase of the volume"},
         {"Claim", "string", 0, "The claim bound to the volume"},
         {"StorageClass", "string", 0, "Storage class of the volume"},
         {"VolumeAttributesClass", "string", 0, "Volume attributes class"},
         {"Reason", "string", 0, "Why the volume is in its phase"},
         {"Age", "string", 0, ageDesc},
         {"VolumeMode", "string", 1, "Volume mode"}},
        [](const Json& o, Clock::time_point now) {
          std::string claim = s(o, {"spec", "claimRef", "name"});
          if (!claim.empty()) claim = s(o, {"spec", "claimRef", "namespace"}) + "/" + claim;
          return Json::array({s(o, {"metadata", "name"}), s(o, {"spec", "capacity", "storage"}),
                              modes(at(o, {"spec", "accessModes"})),
                              s(o, {"spec", "persistentVolumeReclaimPolicy"}),
                              s(o, {"status", "phase"}), claim, s(o, {"spec", "storageClassName"}),
                              "<unset>", s(o, {"status", "reason"}), objAge(o, now),
                              s(o, {"spec", "volumeMode"})});
        }};
    m["apiregistration.k8s.io/apiservices"] = {
        {{"Name", "string", 0, nameDesc},
         {"Service", "string", 0, "The service that serves the API, or Local"},
         {"Available", "string", 0, "Whether the API answers"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          std::string svc = s(o, {"spec", "service", "name"});
          svc = svc.empty() ? "Local" : s(o, {"spec", "service", "namespace"}) + "/" + svc;
          std::string available = "Unknown";
          const Json& conds = at(o, {"status", "conditions"});
          if (conds.is_array())
            for (const auto& c : conds)
              if (json::str(c, "type") == "Available") {
                available = json::str(c, "status");
                if (available != "True" && !json::str(c, "reason").empty())
                  available += " (" + json::str(c, "reason") + ")";
              }
          return Json::array({s(o, {"metadata", "name"}), svc, available, objAge(o, now)});
        }};
    m["storage.k8s.io/storageclasses"] = {
        {{"Name", "string", 0, nameDesc},
         {"Provisioner", "string", 0, "Who makes the volumes"},
         {"ReclaimPolicy", "string", 0, "What happens to a volume when its claim goes"},
         {"VolumeBindingMode", "string", 0, "When a claim is bound"},
         {"AllowVolumeExpansion", "string", 0, "Whether claims may grow"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          std::string name = s(o, {"metadata", "name"});
          if (s(o, {"metadata", "annotations", "storageclass.kubernetes.io/is-default-class"}) ==
              "true")
            name += " (default)";
          return Json::array(
              {name, s(o, {"provisioner"}), s(o, {"reclaimPolicy"}), s(o, {"volumeBindingMode"}),
               json::boolean(o, "allowVolumeExpansion") ? "true" : "false", objAge(o, now)});
        }};
    m["policy/poddisruptionbudgets"] = {
        {{"Name", "string", 0, nameDesc},
         {"Min Available", "string", 0, "The minimum number of pods that must be available"},
         {"Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable"},
         {"Allowed Disruptions", "integer", 0,
          "Calculated number of pods that may be disrupted at this time"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          auto show = [](const Json& v) {
            return v.is_null()     ? std::string("N/A")
                   : v.is_string() ? v.get<std::string>()
                                   : v.dump();
          };
          return Json::array({s(o, {"metadata", "name"}), show(at(o, {"spec", "minAvailable"})),
                              show(at(o, {"spec", "maxUnavailable"})),
                              n(o, {"status", "disruptionsAllowed"}), objAge(o, now)});
        }};
    m["networking.k8s.io/networkpolicies"] = {
        {{"Name", "string", 0, nameDesc},
         {"Pod-Selector", "string", 0,
          "Selects the pods to which this NetworkPolicy object applies."},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          std::string sel = selectorString(at(o, {"spec", "podSelector"}));
          return Json::array(
              {s(o, {"metadata", "name"}), sel == "<none>" ? "<none>" : sel, objAge(o, now)});
        }};
    m["rbac.authorization.k8s.io/rolebindings"] = {
        {{"Name", "string", 0, nameDesc},
         {"Role", "string", 0, "Role"},
         {"Age", "string", 0, ageDesc},
         {"Users", "string", 1, "Users in the roleBinding"},
         {"Groups", "string", 1, "Groups in the roleBinding"},
         {"ServiceAccounts", "string", 1, "ServiceAccounts in the roleBinding"}},
        [](const Json& o, Clock::time_point now) {
          std::vector<std::string> users, groups, sas;
          const Json& subs = at(o, {"subjects"});
          if (subs.is_array())
            for (const auto& sj : subs) {
              std::string k = json::str(sj, "kind", "");
              if (k == "User")
                users.push_back(json::str(sj, "name", ""));
              else if (k == "Group")
                groups.push_back(json::str(sj, "name", ""));
              else
                sas.push_back(json::str(sj, "namespace", "") + ":" + json::str(sj, "name", ""));
            }
          return Json::array({s(o, {"metadata", "name"}),
                              s(o, {"roleRef", "kind"}) + "/" + s(o, {"roleRef", "name"}),
                              objAge(o, now), strings::join(users, ", "),
                              strings::join(groups, ", "), strings::join(sas, ", ")});
        }};
    m["rbac.authorization.k8s.io/clusterrolebindings"] =
        m["rbac.authorization.k8s.io/rolebindings"];
    m["apps/controllerrevisions"] = {
        {{"Name", "string", 0, nameDesc},
         {"Controller", "string", 0, "Controller of the object"},
         {"Revision", "integer", 0, "Revision"},
         {"Age", "string", 0, ageDesc}},
        [](const Json& o, Clock::time_point now) {
          std::string ctrl = "<none>";
          const Json& owners = at(o, {"metadata", "ownerReferences"});
          if (owners.is_array())
            for (const auto& ow : owners)
              if (json::boolean(ow, "controller", false)) {
                std::string api = json::str(ow, "apiVersion", "");
                std::string group =
                    api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/'));
                ctrl = strings::toLower(json::str(ow, "kind", "")) +
                       (group.empty() ? "" : "." + group) + "/" + json::str(ow, "name", "");
              }
          return Json::array(
              {s(o, {"metadata", "name"}), ctrl, n(o, {"revision"}), objAge(o, now)});
        }};
    return m;
  }();
  auto it = printers.find(r.group + "/" + r.plural);
  return it == printers.end() ? nullptr : &it->second;
}

Json cellFromMatches(const std::vector<Json>& matches, const PrinterColumn& col,
                     Clock::time_point now) {
  if (matches.empty()) return Json();
  const Json& v = matches[0];
  if (col.type == "date") return v.is_string() ? Json(age(v, now)) : Json();
  if (col.type == "integer" && v.is_number())
    return v.is_number_integer() ? v : Json(static_cast<int64_t>(v.get<double>()));
  if (col.type == "number" && v.is_number()) return v;
  if (col.type == "boolean" && v.is_boolean()) return v;
  if (matches.size() == 1) {
    if (v.is_string()) return v;
    if (v.is_number() || v.is_boolean()) return v.dump();
    return json::dump(v);
  }
  std::vector<std::string> parts;
  for (const auto& m : matches)
    parts.push_back(m.is_string() ? m.get<std::string>() : json::dump(m));
  return strings::join(parts, " ");
}

Json partialMetadata(const Json& obj) {
  Json meta = obj.contains("metadata") ? obj["metadata"] : Json::object();
  return {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", meta}};
}

}  // namespace

std::vector<Json> evalJsonPath(const Json& obj, const std::string& pathIn) {
  std::string path = pathIn;
  if (!path.empty() && path.front() == '{' && path.back() == '}')
    path = path.substr(1, path.size() - 2);
  if (!path.empty() && path[0] == '$') path = path.substr(1);
  std::vector<const Json*> cur{&obj};
  size_t i = 0;
  while (i < path.size() && !cur.empty()) {
    std::vector<const Json*> next;
    if (path[i] == '.') {
      ++i;
      size_t end = i;
      while (end < path.size() && path[end] != '.' && path[end] != '[') ++end;
      std::string key = path.substr(i, end - i);
      i = end;
      if (key.empty()) continue;
      for (const Json* c : cur) {
        if (key == "*") {
          if (c->is_object())
            for (const auto& item : c->items()) next.push_back(&item.value());
          continue;
        }
        if (c->is_object() && c->contains(key)) next.push_back(&(*c)[key]);
      }
    } else if (path[i] == '[') {
      size_t end = path.find(']', i);
      if (end == std::string::npos) return {};
      std::string sel = path.substr(i + 1, end - i - 1);
      i = end + 1;
      for (const Json* c : cur) {
        if (!c->is_array()) continue;
        if (sel == "*") {
          for (const auto& item : *c) next.push_back(&item);
        } else if (sel.rfind("?(@.", 0) == 0 && sel.back() == ')') {
          std::string cond = sel.substr(4, sel.size() - 5);
          size_t eq = cond.find("==");
          if (eq == std::string::npos) continue;
          std::string field = cond.substr(0, eq);
          std::string want = std::string(strings::trim(cond.substr(eq + 2)));
          if (want.size() >= 2 && (want.front() == '"' || want.front() == '\''))
            want = want.substr(1, want.size() - 2);
          for (const auto& item : *c) {
            auto got = evalJsonPath(item, "." + field);
            if (!got.empty() && ((got[0].is_string() && got[0].get<std::string>() == want) ||
                                 (!got[0].is_string() && got[0].dump() == want)))
              next.push_back(&item);
          }
        } else if (auto idx = strings::parseInt(sel)) {
          int64_t k = *idx < 0 ? static_cast<int64_t>(c->size()) + *idx : *idx;
          if (k >= 0 && k < static_cast<int64_t>(c->size()))
            next.push_back(&(*c)[static_cast<size_t>(k)]);
        }
      }
    } else {
      // A path without a leading dot ("spec.replicas").
      path = "." + path.substr(i);
      i = 0;
      continue;
    }
    cur = std::move(next);
  }
  std::vector<Json> out;
  for (const Json* c : cur) out.push_back(*c);
  return out;
}

Json toTable(const ResourceInfo& r, const std::vector<ObjectPtr>& objects,
             const TableOptions& options, Clock::time_point now) {
  Json columns = Json::array();
  Json rows = Json::array();
  const Printer* printer = r.custom ? nullptr : builtinPrinter(r);
  std::vector<PrinterColumn> custom;
  if (printer) {
    for (const auto& c : printer->columns)
      columns.push_back({{"name", c.name},
                         {"type", c.type},
                         {"format", std::string(c.name) == "Name" ? "name" : ""},
                         {"description", c.description},
                         {"priority", c.priority}});
  } else {
    columns.push_back({{"name", "Name"},
                       {"type", "string"},
                       {"format", "name"},
                       {"description", "Name must be unique within a namespace."},
                       {"priority", 0}});
    if (r.custom && !r.printerColumns.empty()) {
      custom = r.printerColumns;
    } else if (r.custom) {
      custom.push_back(PrinterColumn{"Age", "date", "", "", 0, ".metadata.creationTimestamp"});
    } else {
      custom.push_back(PrinterColumn{"Created At", "date", "",
                                     "CreationTimestamp is a timestamp representing the server "
                                     "time when this object was created.",
                                     0, ".metadata.creationTimestamp"});
    }
    for (const auto& c : custom)
      columns.push_back({{"name", c.name},
                         {"type", c.type},
                         {"format", c.format},
                         {"description", c.description},
                         {"priority", c.priority}});
  }
  for (const auto& objPtr : objects) {
    const Json& obj = *objPtr;
    Json cells;
    if (printer) {
      cells = printer->row(obj, now);
    } else {
      cells = Json::array({json::getString(obj, {"metadata", "name"})});
      for (const auto& c : custom) {
        if (!r.custom && c.name == "Created At") {
          cells.push_back(json::getString(obj, {"metadata", "creationTimestamp"}));
          continue;
        }
        cells.push_back(cellFromMatches(evalJsonPath(obj, c.jsonPath), c, now));
      }
    }
    Json row = {{"cells", cells}};
    if (options.includeObject == "Object")
      row["object"] = obj;
    else if (options.includeObject != "None")
      row["object"] = partialMetadata(obj);
    rows.push_back(std::move(row));
  }
  Json table = {{"kind", "Table"},
                {"apiVersion", "meta.k8s.io/v1"},
                {"metadata", Json::object()},
                {"rows", rows}};
  if (!options.noHeaders)
    table["columnDefinitions"] = columns;
  else
    table["columnDefinitions"] = nullptr;
  return table;
}

}  // namespace podium::api
